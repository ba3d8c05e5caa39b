//! The customer and the payment card as the domain keeps them: no card number, no CVV (F2).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// A billing address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default)]
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default)]
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default)]
    pub zip: String,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country: String,
}

/// The customer of an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default)]
    pub billing_address: Address,
}

/// What is kept of a card once FlexFactor has tokenized it (F2): the token, BIN and last four.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardToken {
    pub token: String,
    pub bin: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
    #[serde(default)]
    pub holder: String,
    /// N8: a keyed fingerprint of the card number (HMAC-SHA-256, see `docs/rules.md`), the same
    /// for every tokenization of one card; the network rules count per fingerprint when there is
    /// one, else per token. No card data can be recovered from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl CardToken {
    /// The key the network rules count a card's attempts under (N8).
    pub fn ledger_key(&self) -> &str {
        self.fingerprint.as_deref().unwrap_or(&self.token)
    }
}

/// A card as the CRM sends it, before tokenization. Never stored, never logged: `Debug` hides
/// the number and the CVV.
#[derive(Clone)]
pub struct CardDetails {
    pub number: SecretString,
    pub cvv: Option<SecretString>,
    pub exp_month: u8,
    pub exp_year: u16,
    pub holder: String,
}

impl std::fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardDetails")
            .field("number", &"[REDACTED]")
            .field("cvv", &"[REDACTED]")
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish()
    }
}

/// How a subscription pays its rebills (O6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A reusable token of the billing gateway.
    Token,
    /// O6: after a FlexFactor-salvaged sale, no token exists on the original gateway: rebills
    /// go there with the card number and without CVV.
    CardNumberWithoutCvv,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: crate::ids::ProductId,
    pub quantity: u32,
    pub price_minor: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F2: a card's number and CVV never show in Debug output.
    #[test]
    fn f2_card_details_debug_hides_number_and_cvv() {
        let card = CardDetails {
            number: SecretString::from("4111111111111111"),
            cvv: Some(SecretString::from("123")),
            exp_month: 9,
            exp_year: 2030,
            holder: "A B".into(),
        };
        let shown = format!("{card:?}");
        assert!(!shown.contains("4111111111111111"));
        assert!(!shown.contains("123"));
    }
}
