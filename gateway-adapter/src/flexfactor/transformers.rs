//! FlexFactor's wire types (serde structs) and their conversions to and from the domain's types.
//! No I/O and no policy here: the client decides when to send what, this file decides how it
//! looks on the wire.
//!
//! Reading (F5): FlexFactor's answers use camelCase, PascalCase and snake_case depending on the
//! endpoint. Every answer is first turned into a `serde_json::Value` whose object keys are
//! *normalized* recursively ([`normalize_key`]: lower-cased, `_` and `-` removed), and the answer
//! structs below name their fields in that normalized form. Unknown fields are ignored, scalars
//! are read leniently (a number where a string is expected and the reverse), and an unknown
//! status is kept as such.
//!
//! Writing: requests use the casing of FlexFactor's documentation and of the real sandbox
//! transcripts (camelCase for `/evaluate`, `/capture`, `/orders/*`; PascalCase `AppKey`/`AppSecret`
//! for `/oauth2/token`; snake_case for `/tokenize`).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use salvage_domain::customer::{CardDetails, CardToken};
use salvage_domain::ids::FlexFactorOrderId;
use salvage_domain::money::Money;
use salvage_domain::ports::{
    EvaluateAnswer, FlexFactorOrderStatus, RefundAnswer, SalvageRequest, SubmissionMode,
    SubscriptionInfo,
};

use super::error::{redact_card_numbers, snippet, TupleError, ValidationErrors};

/// Why an answer could not be read, or a request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not of the expected shape.
    #[error("unexpected shape: {0}")]
    Shape(String),
    /// A request cannot be built from the domain's data.
    #[error("cannot build the request: {0}")]
    Request(String),
}

// ---------------------------------------------------------------------------------------------
// Case-insensitive reading (F5)
// ---------------------------------------------------------------------------------------------

/// The normalized form of a property name: lower-cased, with `_` and `-` removed, so that
/// `orderSessionKey`, `OrderSessionKey` and `order_session_key` all read as `ordersessionkey`.
pub fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Normalizes every object key of `value`, recursively. When two keys collide after
/// normalization, the first non-null value wins.
pub fn normalize_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let k = normalize_key(&k);
                let v = normalize_keys(v);
                match out.get(&k) {
                    Some(existing) if !existing.is_null() => {}
                    _ => {
                        out.insert(k, v);
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_keys).collect()),
        other => other,
    }
}

/// Parses bytes as JSON with normalized keys.
pub fn parse_normalized(bytes: &[u8]) -> Result<Value, WireError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| WireError::NotJson(snippet(&e.to_string())))?;
    Ok(normalize_keys(value))
}

/// Reads an answer struct (whose fields are named in normalized form) from bytes,
/// case-insensitively.
pub fn from_wire<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    from_wire_value(parse_normalized(bytes)?)
}

/// Reads an answer struct from an already normalized value.
pub fn from_wire_value<T: DeserializeOwned>(value: Value) -> Result<T, WireError> {
    serde_json::from_value(value).map_err(|e| WireError::Shape(snippet(&e.to_string())))
}

/// Lenient scalar readers: FlexFactor (ASP.NET) sometimes sends numbers as strings and back.
mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A string, a number or a bool, read as text; anything else as absent.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    }

    /// An integer given as a number or as numeric text.
    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        })
    }

    /// A bool given as a bool, as `"true"`/`"false"` or as 0/1.
    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Bool(b) => Some(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            Value::Number(n) => n.as_i64().map(|i| i != 0),
            _ => None,
        })
    }
}

/// Keeps a non-empty, trimmed string.
fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A status word in canonical form: upper-case ASCII letters and digits only
/// (`CaptureRequired`, `CAPTURE_REQUIRED` and `capturerequired` are all `CAPTUREREQUIRED`).
pub fn canonical_status(raw: &str) -> String {
    raw.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// /oauth2/token (F1)
// ---------------------------------------------------------------------------------------------

/// `POST /oauth2/token` body. Built at the point of use from the exposed secrets; `Debug` hides
/// both values.
#[derive(Serialize)]
pub struct TokenRequest<'a> {
    /// The public API key.
    #[serde(rename = "AppKey")]
    pub app_key: &'a str,
    /// The API secret.
    #[serde(rename = "AppSecret")]
    pub app_secret: &'a str,
}

impl std::fmt::Debug for TokenRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRequest { AppKey: [REDACTED], AppSecret: [REDACTED] }")
    }
}

/// `/oauth2/token` answer: `accessToken` and `expires` (milliseconds since the Unix epoch).
#[derive(Deserialize, Default)]
pub struct TokenResponse {
    /// The bearer token.
    #[serde(rename = "accesstoken", default, deserialize_with = "lenient::string")]
    pub access_token: Option<String>,
    /// Expiry of the token in milliseconds since the Unix epoch.
    #[serde(rename = "expires", default, deserialize_with = "lenient::int")]
    pub expires_ms: Option<i64>,
    /// `success`, when given.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub success: Option<bool>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_ms", &self.expires_ms)
            .field("success", &self.success)
            .finish()
    }
}

impl TokenResponse {
    /// The expiry as a time, when `expires` is given and in range.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis)
    }
}

// ---------------------------------------------------------------------------------------------
// /tokenize (F2)
// ---------------------------------------------------------------------------------------------

/// `POST /tokenize` body (snake_case, as the newest docs and ActiveMerchant send it). Holds the
/// card number and CVV for the duration of one call; `Debug` hides them.
#[derive(Serialize)]
pub struct TokenizeRequest<'a> {
    /// The card to tokenize.
    pub payment_method: TokenizePaymentMethod<'a>,
}

/// `payment_method` of [`TokenizeRequest`].
#[derive(Serialize)]
pub struct TokenizePaymentMethod<'a> {
    /// Optional cardholder e-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    /// The card.
    pub credit_card: TokenizeCreditCard<'a>,
}

/// `credit_card` of [`TokenizeRequest`].
#[derive(Serialize)]
pub struct TokenizeCreditCard<'a> {
    /// Required by FlexFactor.
    pub first_name: String,
    /// Required by FlexFactor.
    pub last_name: String,
    /// The card number (exposed here, at the point of use, only).
    pub number: &'a str,
    /// The CVV, when the CRM has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_value: Option<&'a str>,
    /// `MM`.
    pub month: String,
    /// `YYYY`.
    pub year: String,
}

impl<'a> TokenizeRequest<'a> {
    /// Builds the body from a card. The holder's name is split at its first space into first and
    /// last name (both are required; a one-word name goes in both).
    pub fn from_card(card: &'a CardDetails, email: Option<&'a str>) -> Self {
        let (first_name, last_name) = split_holder(&card.holder);
        TokenizeRequest {
            payment_method: TokenizePaymentMethod {
                email,
                credit_card: TokenizeCreditCard {
                    first_name,
                    last_name,
                    number: card.number.expose_secret(),
                    verification_value: card.cvv.as_ref().map(|c| c.expose_secret()),
                    month: format!("{:02}", card.exp_month),
                    year: format!("{:04}", card.exp_year),
                },
            },
        }
    }
}

impl std::fmt::Debug for TokenizeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.payment_method.credit_card;
        f.debug_struct("TokenizeRequest")
            .field("number", &"[REDACTED]")
            .field("verification_value", &"[REDACTED]")
            .field("month", &c.month)
            .field("year", &c.year)
            .finish()
    }
}

/// Splits a holder name into (first, last).
pub fn split_holder(holder: &str) -> (String, String) {
    let holder = holder.trim();
    match holder.split_once(char::is_whitespace) {
        Some((first, rest)) if !rest.trim().is_empty() => {
            (first.to_string(), rest.trim().to_string())
        }
        _ => (holder.to_string(), holder.to_string()),
    }
}

/// `/tokenize` answer; the token is `transaction.payment_method.token`.
#[derive(Debug, Deserialize, Default)]
pub struct TokenizeResponse {
    /// The vault transaction.
    #[serde(default)]
    pub transaction: Option<TokenizeTransaction>,
    /// `success`, when given.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub success: Option<bool>,
}

/// `transaction` of [`TokenizeResponse`].
#[derive(Debug, Deserialize, Default)]
pub struct TokenizeTransaction {
    /// Whether the vault took the card.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub succeeded: Option<bool>,
    /// A message, on failure.
    #[serde(default, deserialize_with = "lenient::string")]
    pub message: Option<String>,
    /// The stored card.
    #[serde(rename = "paymentmethod", default)]
    pub payment_method: Option<TokenizedCard>,
}

/// `transaction.payment_method` of [`TokenizeResponse`]: never the number (it is `null`).
#[derive(Debug, Deserialize, Default)]
pub struct TokenizedCard {
    /// The card token.
    #[serde(default, deserialize_with = "lenient::string")]
    pub token: Option<String>,
    /// Last four digits.
    #[serde(
        rename = "lastfourdigits",
        default,
        deserialize_with = "lenient::string"
    )]
    pub last_four_digits: Option<String>,
    /// Despite its name, up to eight digits.
    #[serde(
        rename = "firstsixdigits",
        default,
        deserialize_with = "lenient::string"
    )]
    pub first_six_digits: Option<String>,
    /// Expiry month.
    #[serde(default, deserialize_with = "lenient::int")]
    pub month: Option<i64>,
    /// Expiry year.
    #[serde(default, deserialize_with = "lenient::int")]
    pub year: Option<i64>,
}

impl TokenizeResponse {
    /// The domain's card token (F2): only token, BIN (six digits), last four, expiry and holder.
    /// Values FlexFactor omits are taken from the card that was sent.
    pub fn into_card_token(self, card: &CardDetails) -> Result<CardToken, WireError> {
        let tx = self.transaction.unwrap_or_default();
        if tx.succeeded == Some(false) || self.success == Some(false) {
            let why = tx
                .message
                .map(|m| snippet(&m))
                .unwrap_or_else(|| "the vault did not take the card".into());
            return Err(WireError::Shape(format!("tokenization failed: {why}")));
        }
        let pm = tx.payment_method.unwrap_or_default();
        let token = non_empty(pm.token)
            .ok_or_else(|| WireError::Shape("no transaction.payment_method.token".into()))?;
        let number: String = card
            .number
            .expose_secret()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let bin = non_empty(pm.first_six_digits)
            .filter(|b| b.len() >= 6 && b.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| number.chars().take(8).collect());
        let bin: String = bin.chars().take(6).collect();
        let last4 = non_empty(pm.last_four_digits)
            .filter(|l| l.len() == 4 && l.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| {
                let skip = number.len().saturating_sub(4);
                number.chars().skip(skip).collect()
            });
        let exp_month = pm
            .month
            .and_then(|m| u8::try_from(m).ok())
            .filter(|m| (1..=12).contains(m))
            .unwrap_or(card.exp_month);
        let exp_year = pm
            .year
            .and_then(|y| u16::try_from(y).ok())
            .filter(|y| *y >= 2000)
            .unwrap_or(card.exp_year);
        Ok(CardToken {
            token,
            bin,
            last4,
            exp_month,
            exp_year,
            holder: card.holder.clone(),
            fingerprint: None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// /evaluate
// ---------------------------------------------------------------------------------------------

/// The merchant-side facts an `/evaluate` body needs besides the [`SalvageRequest`].
#[derive(Debug, Clone)]
pub struct EvaluateContext<'a> {
    /// The MID (exposed at the point of use).
    pub mid: &'a str,
    /// The Site ID (exposed at the point of use).
    pub site_id: &'a str,
    /// `transaction.dynamicDescriptor`, when configured.
    pub dynamic_descriptor: Option<&'a str>,
    /// `transaction.timezoneUtcOffset` in hours.
    pub timezone_utc_offset: i32,
    /// `transaction.responseCodeSource`: the processor that declined (the decline's gateway id
    /// translated through the configuration, or the gateway id itself).
    pub response_code_source: &'a str,
}

/// `POST /evaluate` body. `Debug` shows only the order id and the idempotency key (the body
/// holds personal data and the MID).
#[derive(Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateRequest {
    /// Site assignment.
    pub site_id: String,
    /// Merchant id.
    pub mid: String,
    /// Always true for `/evaluate`.
    pub is_declined: bool,
    /// The merchant's (CRM's) order id.
    pub order_id: String,
    /// F3: fixed by (order, salvage attempt).
    pub idempotency_key: String,
    /// CIT only: the shopper's IP (C5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_ip: Option<String>,
    /// MIT only.
    #[serde(rename = "isMIT", skip_serializing_if = "Option::is_none")]
    pub is_mit: Option<bool>,
    /// MIT only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_recurring: Option<bool>,
    /// Managed MIT only: until when FlexFactor may work the decline (ISO-8601 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_date_utc: Option<String>,
    /// Recurring MIT only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<WireSubscription>,
    /// The declined transaction.
    pub transaction: WireTransaction,
    /// The card, as its FlexFactor token.
    pub payment_method: WirePaymentMethod,
    /// Billing address.
    pub billing_information: WireBillingInformation,
    /// The payer.
    pub payer: WirePayer,
}

impl std::fmt::Debug for EvaluateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvaluateRequest")
            .field("order_id", &self.order_id)
            .field("idempotency_key", &self.idempotency_key)
            .field("is_mit", &self.is_mit)
            .finish_non_exhaustive()
    }
}

/// `transaction` of [`EvaluateRequest`]: the original decline.
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WireTransaction {
    /// The merchant's transaction id.
    pub id: String,
    /// Statement descriptor, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_descriptor: Option<String>,
    /// Hours from UTC; sent as text like the real sandbox transcript (`"-5"`).
    pub timezone_utc_offset: String,
    /// F4: integer cents.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// The processor's original decline code.
    pub response_code: String,
    /// The processor that declined.
    pub response_code_source: String,
    /// The processor's decline message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_description: Option<String>,
    /// AVS result; `NA` when unknown.
    pub avs_result_code: String,
    /// CVV result; `NA` when unknown.
    pub cvv_result_code: String,
    /// CAVV result; `NA` when unknown.
    pub cavv_result_code: String,
    /// Always true: the CRM's orders are card-not-present.
    pub card_not_present: bool,
}

/// `paymentMethod` of [`EvaluateRequest`]: the token in `cardNumber` with `token: true` (F2).
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WirePaymentMethod {
    /// Cardholder.
    pub holder_name: String,
    /// `CREDIT` (the CRM does not know credit from debit; ActiveMerchant sends `CREDIT` too).
    pub card_type: String,
    /// Derived from the BIN.
    pub card_brand: String,
    /// The billing country (the issuer's country is not known to the CRM).
    pub card_country: String,
    /// 1-12.
    pub expiration_month: u8,
    /// YYYY.
    pub expiration_year: u16,
    /// First six digits.
    pub card_bin_number: String,
    /// Last four digits.
    pub card_last4_digits: String,
    /// The FlexFactor card token (never the PAN).
    pub card_number: String,
    /// The token flag: `cardNumber` is a token.
    pub token: bool,
}

/// `billingInformation` of [`EvaluateRequest`].
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WireBillingInformation {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// ISO alpha-2.
    pub country: String,
    /// Phone, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// ISO alpha-2.
    pub country_code: String,
    /// Street.
    pub address_line1: String,
    /// Second line, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    /// State, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// City.
    pub city: String,
    /// ZIP or postal code.
    pub zip_code: String,
}

/// `payer` of [`EvaluateRequest`].
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WirePayer {
    /// Required; `NA` when unknown (as ActiveMerchant sends it).
    pub email: String,
    /// Phone, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// `subscription` of a recurring MIT [`EvaluateRequest`] (NODE's `Subscription` model: all text).
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WireSubscription {
    /// The CRM's subscription id.
    pub subscription_id: String,
    /// `daily`, `weekly`, `biweekly`, `monthly`, `quarterly`, `yearly` or `"N days"`.
    pub interval: String,
    /// The rebill price in integer cents, as text (F4; NODE sends `"100"` with amount 100).
    pub price: String,
    /// ISO 4217.
    pub currency: String,
    /// Which rebill this is, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_number: Option<String>,
}

impl WireSubscription {
    /// From the domain's subscription block.
    pub fn from_domain(s: &SubscriptionInfo) -> Self {
        WireSubscription {
            subscription_id: s.subscription_id.to_string(),
            interval: interval_name(s.interval_days),
            price: s.price.amount_minor.to_string(),
            currency: s.price.currency.to_string(),
            payment_number: s.payment_number.map(|n| n.to_string()),
        }
    }
}

/// The `subscription.interval` word for a billing interval in days. **[inference]**: only
/// `"monthly"` is seen in FlexFactor's sample; the other words are our guess.
pub fn interval_name(days: i64) -> String {
    match days {
        1 => "daily".into(),
        7 => "weekly".into(),
        14 => "biweekly".into(),
        28..=31 => "monthly".into(),
        84..=92 => "quarterly".into(),
        365 | 366 => "yearly".into(),
        n => format!("{n} days"),
    }
}

/// The card brand for a BIN, upper-case as ActiveMerchant sends it.
pub fn card_brand(bin: &str) -> &'static str {
    let digits = |n: usize| bin.get(..n).and_then(|p| p.parse::<u32>().ok());
    match (digits(1), digits(2), digits(3), digits(4), digits(6)) {
        (Some(4), ..) => "VISA",
        (_, Some(51..=55), ..) => "MASTERCARD",
        (_, _, _, Some(2221..=2720), _) => "MASTERCARD",
        (_, Some(34 | 37), ..) => "AMEX",
        (_, _, _, Some(6011), _) | (_, Some(65), ..) | (_, _, Some(644..=649), ..) => "DISCOVER",
        (_, Some(36 | 38 | 39), ..) | (_, _, Some(300..=305), ..) => "DINERS",
        (_, _, _, Some(3528..=3589), _) => "JCB",
        _ => "UNKNOWN",
    }
}

/// The value sent for a result code the CRM does not know (AVS, CVV, CAVV).
pub const NOT_AVAILABLE: &str = "NA";

impl EvaluateRequest {
    /// Builds the `/evaluate` body for a submission.
    ///
    /// - CIT (cascade, C5): `customerIp`, no `isMIT`, no `expiryDateUtc`.
    /// - MIT (rerun R2, recycle Y3): `isMIT: true`, `isRecurring`, `expiryDateUtc`, and the
    ///   `subscription` block when recurring and the domain gave one.
    ///
    /// `orderId` and `transaction.id` are the CRM's order id; amounts are integer cents (F4);
    /// `idempotencyKey` is the request's own (F3).
    pub fn from_salvage(
        req: &SalvageRequest,
        ctx: &EvaluateContext<'_>,
    ) -> Result<Self, WireError> {
        if req.amount.amount_minor < 0 {
            return Err(WireError::Request("negative amount".into()));
        }
        if req.idempotency_key.as_str().trim().is_empty() {
            return Err(WireError::Request("empty idempotency key".into()));
        }
        let (customer_ip, is_mit, is_recurring, expiry_date_utc, subscription) = match &req.mode {
            SubmissionMode::Cit { customer_ip } => {
                let ip = customer_ip.trim();
                if ip.is_empty() {
                    return Err(WireError::Request(
                        "a customer-initiated submission needs the customer's IP (C3)".into(),
                    ));
                }
                (Some(ip.to_string()), None, None, None, None)
            }
            SubmissionMode::Mit {
                expires_at,
                recurring,
            } => (
                None,
                Some(true),
                Some(*recurring),
                Some(expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
                if *recurring {
                    req.subscription.as_ref().map(WireSubscription::from_domain)
                } else {
                    None
                },
            ),
        };
        let customer = &req.customer;
        let address = &customer.billing_address;
        let opt = |s: &Option<String>| non_empty(s.clone());
        let country = address.country.trim().to_ascii_uppercase();
        Ok(EvaluateRequest {
            site_id: ctx.site_id.to_string(),
            mid: ctx.mid.to_string(),
            is_declined: true,
            order_id: req.order_id.to_string(),
            idempotency_key: req.idempotency_key.to_string(),
            customer_ip,
            is_mit,
            is_recurring,
            expiry_date_utc,
            subscription,
            transaction: WireTransaction {
                id: req.order_id.to_string(),
                dynamic_descriptor: ctx
                    .dynamic_descriptor
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
                timezone_utc_offset: ctx.timezone_utc_offset.to_string(),
                amount: req.amount.amount_minor,
                currency: req.amount.currency.to_string(),
                response_code: non_empty(Some(req.decline.response_code.clone()))
                    .unwrap_or_else(|| NOT_AVAILABLE.to_string()),
                response_code_source: ctx.response_code_source.to_string(),
                response_description: non_empty(Some(redact_card_numbers(
                    &req.decline.response_message,
                ))),
                avs_result_code: NOT_AVAILABLE.to_string(),
                cvv_result_code: NOT_AVAILABLE.to_string(),
                cavv_result_code: NOT_AVAILABLE.to_string(),
                card_not_present: true,
            },
            payment_method: WirePaymentMethod {
                holder_name: non_empty(Some(req.card.holder.clone())).unwrap_or_else(|| {
                    format!("{} {}", customer.first_name, customer.last_name)
                        .trim()
                        .to_string()
                }),
                card_type: "CREDIT".into(),
                card_brand: card_brand(&req.card.bin).into(),
                card_country: country.clone(),
                expiration_month: req.card.exp_month,
                expiration_year: req.card.exp_year,
                card_bin_number: req.card.bin.chars().take(6).collect(),
                card_last4_digits: req.card.last4.clone(),
                card_number: req.card.token.clone(),
                token: true,
            },
            billing_information: WireBillingInformation {
                first_name: customer.first_name.clone(),
                last_name: customer.last_name.clone(),
                country: country.clone(),
                phone: opt(&customer.phone),
                country_code: country,
                address_line1: address.line1.clone(),
                address_line2: opt(&address.line2),
                state: opt(&address.state),
                city: address.city.clone(),
                zip_code: address.zip.clone(),
            },
            payer: WirePayer {
                email: opt(&customer.email).unwrap_or_else(|| NOT_AVAILABLE.to_string()),
                phone: opt(&customer.phone),
            },
        })
    }
}

/// `/evaluate` answer (the real sandbox transcript: `orderSessionKey`, `orderId` (FlexFactor's),
/// `status`, `success`, `result`, ...).
#[derive(Debug, Deserialize, Default)]
pub struct EvaluateResponse {
    /// FlexFactor's order id, used by `/orders/{id}`.
    #[serde(
        rename = "ordersessionkey",
        default,
        deserialize_with = "lenient::string"
    )]
    pub order_session_key: Option<String>,
    /// FlexFactor's order id again (not the merchant's).
    #[serde(rename = "orderid", default, deserialize_with = "lenient::string")]
    pub order_id: Option<String>,
    /// APPROVED, DECLINED, CHALLENGE, SUBMITTED, CAPTUREREQUIRED, PROCESSING, or other.
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: Option<String>,
    /// A confirmation id, when given.
    #[serde(
        rename = "confirmationid",
        default,
        deserialize_with = "lenient::string"
    )]
    pub confirmation_id: Option<String>,
}

impl EvaluateResponse {
    /// FlexFactor's order id: `orderSessionKey`, else `orderId`.
    pub fn flexfactor_order_id(&self) -> Option<FlexFactorOrderId> {
        non_empty(self.order_session_key.clone())
            .or_else(|| non_empty(self.order_id.clone()))
            .map(FlexFactorOrderId::new)
    }

    /// The domain's answer (F5: an unknown or missing status is `Unrecognized`).
    pub fn into_answer(self) -> EvaluateAnswer {
        let id = self.flexfactor_order_id();
        let raw = self.status.unwrap_or_default();
        evaluate_answer(&raw, id, non_empty(self.confirmation_id))
    }
}

/// Maps an `/evaluate` status word onto the domain's answer, case-insensitively.
pub fn evaluate_answer(
    raw_status: &str,
    flexfactor_order_id: Option<FlexFactorOrderId>,
    confirmation_id: Option<String>,
) -> EvaluateAnswer {
    match canonical_status(raw_status).as_str() {
        "APPROVED" => EvaluateAnswer::Approved {
            flexfactor_order_id,
            confirmation_id,
        },
        "DECLINED" => EvaluateAnswer::Declined {
            flexfactor_order_id,
        },
        "CHALLENGE" => EvaluateAnswer::Challenge {
            flexfactor_order_id,
        },
        "SUBMITTED" => EvaluateAnswer::Submitted {
            flexfactor_order_id,
        },
        "PROCESSING" => EvaluateAnswer::Processing {
            flexfactor_order_id,
        },
        "CAPTUREREQUIRED" => EvaluateAnswer::CaptureRequired {
            flexfactor_order_id,
        },
        _ => EvaluateAnswer::Unrecognized {
            raw_status: raw_status.to_string(),
            flexfactor_order_id,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// GET /orders/{id} (O8)
// ---------------------------------------------------------------------------------------------

/// `GET /orders/{id}` answer: `status` (an integer 0-7, read leniently) and `statusName`.
#[derive(Debug, Deserialize, Default)]
pub struct OrderResponse {
    /// FlexFactor's order id.
    #[serde(default, deserialize_with = "lenient::string")]
    pub id: Option<String>,
    /// The integer status (or, leniently, a word).
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: Option<String>,
    /// The status' name.
    #[serde(rename = "statusname", default, deserialize_with = "lenient::string")]
    pub status_name: Option<String>,
    /// A confirmation id, when given.
    #[serde(
        rename = "confirmationid",
        default,
        deserialize_with = "lenient::string"
    )]
    pub confirmation_id: Option<String>,
}

/// The meaning of an order status word, when it has one.
fn order_status_from_name(
    name: &str,
    confirmation_id: &Option<String>,
) -> Option<FlexFactorOrderStatus> {
    Some(match canonical_status(name).as_str() {
        "DRAFT" | "ONHOLD" | "PROCESSING" | "SUBMITTED" | "PENDING" => {
            FlexFactorOrderStatus::Pending
        }
        "COMPLETED" | "APPROVED" => FlexFactorOrderStatus::Completed {
            confirmation_id: confirmation_id.clone(),
        },
        "CANCELLED" | "CANCELED" => FlexFactorOrderStatus::Cancelled,
        "DECLINED" => FlexFactorOrderStatus::Declined,
        "EXPIRED" => FlexFactorOrderStatus::Expired,
        "RETURNED" | "REFUNDED" => FlexFactorOrderStatus::Refunded,
        "CAPTUREREQUIRED" => FlexFactorOrderStatus::CaptureRequired,
        _ => return None,
    })
}

/// The meaning of FlexFactor's integer order status (docs `orders-id`): 0 Draft, 1 Onhold,
/// 2 Cancelled, 3 Problem, 4 Processing, 5 Capturerequired, 6 Returned, 7 Completed.
/// 3 (Problem) has no domain meaning and is kept as unrecognized.
fn order_status_from_int(
    code: i64,
    confirmation_id: &Option<String>,
) -> Option<FlexFactorOrderStatus> {
    Some(match code {
        0 | 1 | 4 => FlexFactorOrderStatus::Pending,
        2 => FlexFactorOrderStatus::Cancelled,
        5 => FlexFactorOrderStatus::CaptureRequired,
        6 => FlexFactorOrderStatus::Refunded,
        7 => FlexFactorOrderStatus::Completed {
            confirmation_id: confirmation_id.clone(),
        },
        _ => return None,
    })
}

impl OrderResponse {
    /// The domain's view (O8). A recognized `statusName` wins (it can say EXPIRED or DECLINED,
    /// which the integer cannot); otherwise the integer; otherwise `Unrecognized` (F5).
    pub fn into_status(self) -> FlexFactorOrderStatus {
        let confirmation = non_empty(self.confirmation_id.clone());
        let name = non_empty(self.status_name.clone());
        let status = non_empty(self.status.clone());
        if let Some(s) = name
            .as_deref()
            .and_then(|n| order_status_from_name(n, &confirmation))
        {
            return s;
        }
        if let Some(raw) = status.as_deref() {
            let known = match raw.parse::<i64>() {
                Ok(code) => order_status_from_int(code, &confirmation),
                Err(_) => order_status_from_name(raw, &confirmation),
            };
            if let Some(s) = known {
                return s;
            }
        }
        let raw_status = match (status, name) {
            (Some(s), Some(n)) => format!("{n} ({s})"),
            (Some(s), None) => s,
            (None, Some(n)) => n,
            (None, None) => String::new(),
        };
        FlexFactorOrderStatus::Unrecognized { raw_status }
    }
}

// ---------------------------------------------------------------------------------------------
// /capture, /orders/{id}/refund, /orders/{id}/cancel, /orders/{id}/external-cancel
// ---------------------------------------------------------------------------------------------

/// `POST /capture` body (amount in integer cents, F4).
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CaptureRequest {
    /// Fixed by (FlexFactor order, amount): a replay, never a second capture.
    pub idempotency_key: String,
    /// FlexFactor's order id (from `/evaluate`).
    pub order_id: String,
    /// Integer cents.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
}

impl CaptureRequest {
    /// Builds the body; the key is a UUIDv5 of the order id, amount and currency.
    pub fn new(id: &FlexFactorOrderId, amount: Money) -> Self {
        let name = format!("capture/{id}/{}/{}", amount.amount_minor, amount.currency);
        CaptureRequest {
            idempotency_key: uuid::Uuid::new_v5(&CAPTURE_NAMESPACE, name.as_bytes()).to_string(),
            order_id: id.to_string(),
            amount: amount.amount_minor,
            currency: amount.currency.to_string(),
        }
    }
}

/// The UUID namespace of capture keys.
const CAPTURE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x8c1e_55a0_3f7d_4b6e_9a21_c0de_f1e0_ca57);

/// The answer of `/capture` and `/orders/{id}/refund`: `status` SUCCESS/FAILED (refunds may also
/// say APPROVED), with `responseCode`/`responseMessage` and `errors` on failure.
#[derive(Debug, Deserialize, Default)]
pub struct StatusResponse {
    /// SUCCESS, FAILED, APPROVED...
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: Option<String>,
    /// `success`, when given.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub success: Option<bool>,
    /// Failure code.
    #[serde(rename = "responsecode", default, deserialize_with = "lenient::string")]
    pub response_code: Option<String>,
    /// Failure message.
    #[serde(
        rename = "responsemessage",
        default,
        deserialize_with = "lenient::string"
    )]
    pub response_message: Option<String>,
    /// Errors: a list of C# tuples, or of strings.
    #[serde(default)]
    pub errors: Option<Value>,
}

impl StatusResponse {
    /// The tuple errors of the answer.
    pub fn tuple_errors(&self) -> Vec<TupleError> {
        match &self.errors {
            Some(Value::Array(items)) => items.iter().filter_map(tuple_error).collect(),
            _ => Vec::new(),
        }
    }

    fn failure(&self) -> (String, String) {
        let tuples = self.tuple_errors();
        let first = tuples.first();
        let code = non_empty(self.response_code.clone())
            .or_else(|| first.and_then(|t| t.code.clone()))
            .unwrap_or_else(|| canonical_status(self.status.as_deref().unwrap_or("FAILED")));
        let message = non_empty(self.response_message.clone())
            .or_else(|| first.map(|t| t.message.clone()))
            .unwrap_or_else(|| "FlexFactor did not say why".into());
        (code, snippet(&message))
    }

    /// The capture answer as an evaluate answer: SUCCESS is `Approved`, FAILED `Declined`,
    /// anything else `Unrecognized` (F5).
    pub fn into_capture_answer(self, id: &FlexFactorOrderId) -> EvaluateAnswer {
        let raw = self.status.clone().unwrap_or_default();
        let flexfactor_order_id = Some(id.clone());
        match canonical_status(&raw).as_str() {
            "SUCCESS" | "APPROVED" | "CAPTURED" => EvaluateAnswer::Approved {
                flexfactor_order_id,
                confirmation_id: None,
            },
            "FAILED" | "DECLINED" => EvaluateAnswer::Declined {
                flexfactor_order_id,
            },
            _ => EvaluateAnswer::Unrecognized {
                raw_status: raw,
                flexfactor_order_id,
            },
        }
    }

    /// The refund answer. `Err` carries the raw status when it is neither a success
    /// (SUCCESS, APPROVED) nor a failure (FAILED, DECLINED, or `success: false`): the domain's
    /// `RefundAnswer` has no "unrecognized" case, and F5 forbids guessing.
    pub fn into_refund_answer(self) -> Result<RefundAnswer, String> {
        let raw = self.status.clone().unwrap_or_default();
        match canonical_status(&raw).as_str() {
            "SUCCESS" | "APPROVED" | "REFUNDED" => Ok(RefundAnswer::Refunded),
            "FAILED" | "DECLINED" => {
                let (code, message) = self.failure();
                Ok(RefundAnswer::Failed { code, message })
            }
            _ if self.success == Some(false) => {
                let (code, message) = self.failure();
                Ok(RefundAnswer::Failed { code, message })
            }
            _ => Err(raw),
        }
    }
}

fn tuple_error(v: &Value) -> Option<TupleError> {
    match v {
        Value::Object(m) => {
            let text = |k: &str| match m.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                _ => None,
            };
            let message = text("item1").or_else(|| text("message"))?;
            Some(TupleError {
                message: snippet(&message),
                code: text("item2").or_else(|| text("code")),
                code2: text("item3"),
                flag: match m.get("item4") {
                    Some(Value::Bool(b)) => Some(*b),
                    _ => None,
                },
            })
        }
        Value::String(s) => Some(TupleError {
            message: snippet(s),
            ..TupleError::default()
        }),
        _ => None,
    }
}

/// `POST /orders/{id}/refund` body: `amountToRefund` in decimal dollars (F4), written as an exact
/// JSON number (`19.99`, never through a float).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// Major units, exact.
    pub amount_to_refund: Box<RawValue>,
    /// Optional message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_message: Option<String>,
}

impl RefundRequest {
    /// Builds the body with `Money::to_decimal_string`.
    pub fn new(amount: Money, message: Option<String>) -> Result<Self, WireError> {
        if amount.amount_minor <= 0 {
            return Err(WireError::Request(
                "a refund needs a positive amount".into(),
            ));
        }
        let amount_to_refund = RawValue::from_string(amount.to_decimal_string())
            .map_err(|e| WireError::Request(format!("amount: {e}")))?;
        Ok(RefundRequest {
            amount_to_refund,
            refund_message: message,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// 400 answers
// ---------------------------------------------------------------------------------------------

impl ValidationErrors {
    /// Reads a 400 answer in any of its three shapes (see [`ValidationErrors`]). Never fails:
    /// what cannot be read ends up, redacted and shortened, in `title`.
    pub fn from_body(status: Option<u16>, body: &[u8]) -> Self {
        let mut out = ValidationErrors {
            status,
            ..ValidationErrors::default()
        };
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                if !text.trim().is_empty() {
                    out.title = Some(snippet(text.trim()));
                }
                return out;
            }
        };
        let Value::Object(map) = value else {
            out.title = Some(snippet(&value.to_string()));
            return out;
        };
        // Keys of the error map are field paths: keep their spelling. Look up the envelope's own
        // properties case-insensitively.
        let get = |name: &str| {
            map.iter()
                .find(|(k, _)| normalize_key(k) == name)
                .map(|(_, v)| v)
        };
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => non_empty(Some(s.clone())),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        out.title = text(get("title"))
            .or_else(|| text(get("responsemessage")))
            .map(|t| snippet(&t));
        out.trace_id = text(get("traceid"));
        match get("errors") {
            Some(Value::Object(fields)) => collect_fields(fields, &mut out),
            Some(Value::Array(items)) => {
                out.tuples = items
                    .iter()
                    .cloned()
                    .map(normalize_keys)
                    .filter_map(|i| tuple_error(&i))
                    .collect();
            }
            _ => {
                // The bare ModelState map: every value a list of messages.
                let bare = map
                    .values()
                    .all(|v| matches!(v, Value::Array(a) if a.iter().all(Value::is_string)));
                if bare && !map.is_empty() {
                    collect_fields(&map, &mut out);
                }
            }
        }
        if out.status.is_none() {
            out.status = text(get("status")).and_then(|s| s.parse::<u16>().ok());
        }
        out
    }
}

fn collect_fields(fields: &Map<String, Value>, out: &mut ValidationErrors) {
    for (field, messages) in fields {
        let messages: Vec<String> = match messages {
            Value::Array(items) => items
                .iter()
                .filter_map(|m| match m {
                    Value::String(s) => Some(snippet(s)),
                    Value::Null => None,
                    other => Some(snippet(&other.to_string())),
                })
                .collect(),
            Value::String(s) => vec![snippet(s)],
            Value::Null => Vec::new(),
            other => vec![snippet(&other.to_string())],
        };
        if normalize_key(field) == "traceid" {
            if out.trace_id.is_none() {
                out.trace_id = messages.into_iter().next();
            }
            continue;
        }
        out.fields.insert(field.clone(), messages);
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook payload (W1)
// ---------------------------------------------------------------------------------------------

/// A webhook delivery's body (PascalCase on the wire: `Event`, `TimeStamp`, `EventData`,
/// `ExternalOrderId`, `OrderId`, `ConfirmationId`, `IsTestMode`, `IsResent`), read
/// case-insensitively.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct WebhookPayload {
    /// `order.completed`, `order.expired`, ...
    #[serde(default, deserialize_with = "lenient::string")]
    pub event: Option<String>,
    /// When FlexFactor produced the event.
    #[serde(rename = "timestamp", default, deserialize_with = "lenient::string")]
    pub timestamp: Option<String>,
    /// Event-specific data (content undocumented).
    #[serde(rename = "eventdata", default)]
    pub event_data: Option<Value>,
    /// The merchant's (our) order id.
    #[serde(
        rename = "externalorderid",
        default,
        deserialize_with = "lenient::string"
    )]
    pub external_order_id: Option<String>,
    /// FlexFactor's order id.
    #[serde(rename = "orderid", default, deserialize_with = "lenient::string")]
    pub order_id: Option<String>,
    /// Confirmation id of a completed order.
    #[serde(
        rename = "confirmationid",
        default,
        deserialize_with = "lenient::string"
    )]
    pub confirmation_id: Option<String>,
    /// Sandbox delivery.
    #[serde(rename = "istestmode", default, deserialize_with = "lenient::boolean")]
    pub is_test_mode: Option<bool>,
    /// A redelivery.
    #[serde(rename = "isresent", default, deserialize_with = "lenient::boolean")]
    pub is_resent: Option<bool>,
}

impl WebhookPayload {
    /// `TimeStamp` as a UTC time: RFC 3339, or a zone-less ISO time taken as UTC.
    pub fn timestamp_utc(&self) -> Option<DateTime<Utc>> {
        let raw = self.timestamp.as_deref()?.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            return Some(t.with_timezone(&Utc));
        }
        NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|n| n.and_utc())
    }
}

/// Serializes a request body to bytes.
pub fn to_body<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    serde_json::to_vec(value).map_err(|e| WireError::Request(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use salvage_domain::money::Currency;

    #[test]
    fn f5_keys_are_normalized_recursively() {
        let v: Value = serde_json::json!({"OrderSessionKey": "a", "inner": {"Last_Four_Digits": "1"}, "list": [{"ABC": 1}]});
        let n = normalize_keys(v);
        assert_eq!(n["ordersessionkey"], "a");
        assert_eq!(n["inner"]["lastfourdigits"], "1");
        assert_eq!(n["list"][0]["abc"], 1);
    }

    /// F5: camelCase, PascalCase and snake_case answers read alike; unknown fields are ignored.
    #[test]
    fn f5_property_names_match_case_insensitively() {
        for body in [
            r#"{"orderSessionKey":"k","status":"APPROVED","extra":1}"#,
            r#"{"OrderSessionKey":"k","Status":"approved"}"#,
            r#"{"order_session_key":"k","STATUS":"Approved","new_field":{"x":[1]}}"#,
        ] {
            let r: EvaluateResponse = from_wire(body.as_bytes()).unwrap();
            assert_eq!(
                r.into_answer(),
                EvaluateAnswer::Approved {
                    flexfactor_order_id: Some("k".into()),
                    confirmation_id: None
                },
                "{body}"
            );
        }
    }

    /// F5: an unknown status is kept as such, never taken for success or pending.
    #[test]
    fn f5_unknown_status_kept_as_unrecognized() {
        let r: EvaluateResponse =
            from_wire(br#"{"orderSessionKey":"k","status":"SUCCESS"}"#).unwrap();
        assert_eq!(
            r.into_answer(),
            EvaluateAnswer::Unrecognized {
                raw_status: "SUCCESS".into(),
                flexfactor_order_id: Some("k".into())
            }
        );
        let r: EvaluateResponse = from_wire(br#"{"orderSessionKey":"k"}"#).unwrap();
        assert!(matches!(
            r.into_answer(),
            EvaluateAnswer::Unrecognized { .. }
        ));
    }

    #[test]
    fn every_evaluate_status_maps() {
        let cases = [
            ("APPROVED", "approved"),
            ("DECLINED", "declined"),
            ("CHALLENGE", "challenge"),
            ("SUBMITTED", "submitted"),
            ("PROCESSING", "processing"),
            ("CAPTUREREQUIRED", "capture_required"),
            ("CaptureRequired", "capture_required"),
            ("NOTFOUND", "unrecognized"),
        ];
        for (wire, expected) in cases {
            let a = evaluate_answer(wire, None, None);
            let tag = serde_json::to_value(&a).unwrap()["status"].clone();
            assert_eq!(tag, expected, "{wire}");
        }
    }

    /// O8: the integer order status and its name.
    #[test]
    fn o8_order_status_mapping() {
        let st = |body: &str| {
            from_wire::<OrderResponse>(body.as_bytes())
                .unwrap()
                .into_status()
        };
        assert_eq!(
            st(r#"{"status":0,"statusName":"Draft"}"#),
            FlexFactorOrderStatus::Pending
        );
        assert_eq!(st(r#"{"status":4}"#), FlexFactorOrderStatus::Pending);
        assert_eq!(st(r#"{"status":2}"#), FlexFactorOrderStatus::Cancelled);
        assert_eq!(
            st(r#"{"status":5,"statusName":"CAPTUREREQUIRED"}"#),
            FlexFactorOrderStatus::CaptureRequired
        );
        assert_eq!(st(r#"{"status":"6"}"#), FlexFactorOrderStatus::Refunded);
        assert_eq!(
            st(r#"{"status":7,"statusName":"Completed","confirmationId":"AB12"}"#),
            FlexFactorOrderStatus::Completed {
                confirmation_id: Some("AB12".into())
            }
        );
        assert_eq!(
            st(r#"{"status":2,"statusName":"EXPIRED"}"#),
            FlexFactorOrderStatus::Expired
        );
        assert_eq!(
            st(r#"{"status":3,"statusName":"Problem"}"#),
            FlexFactorOrderStatus::Unrecognized {
                raw_status: "Problem (3)".into()
            }
        );
        assert_eq!(
            st(r#"{"status":42}"#),
            FlexFactorOrderStatus::Unrecognized {
                raw_status: "42".into()
            }
        );
    }

    /// F4: refunds go in decimal dollars, written exactly.
    #[test]
    fn f4_refund_body_is_exact_decimal() {
        let body =
            to_body(&RefundRequest::new(Money::new(1999, Currency::USD).unwrap(), None).unwrap())
                .unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"amountToRefund":19.99}"#
        );
        let body =
            to_body(&RefundRequest::new(Money::new(1200, Currency::USD).unwrap(), None).unwrap())
                .unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"amountToRefund":12.00}"#
        );
        assert!(RefundRequest::new(Money::zero(Currency::USD), None).is_err());
    }

    /// F4: captures go in integer cents, with a key fixed by order and amount.
    #[test]
    fn f4_capture_body_in_cents_with_fixed_key() {
        let id = FlexFactorOrderId::new("ff-1");
        let m = Money::new(10000, Currency::USD).unwrap();
        let a = CaptureRequest::new(&id, m);
        assert_eq!(a.amount, 10000);
        assert_eq!(a, CaptureRequest::new(&id, m));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["orderId"], "ff-1");
        assert_eq!(v["currency"], "USD");
        assert!(v["idempotencyKey"].is_string());
    }

    #[test]
    fn card_brands_from_bin() {
        assert_eq!(card_brand("411111"), "VISA");
        assert_eq!(card_brand("510026"), "MASTERCARD");
        assert_eq!(card_brand("222100"), "MASTERCARD");
        assert_eq!(card_brand("371449"), "AMEX");
        assert_eq!(card_brand("601100"), "DISCOVER");
        assert_eq!(card_brand(""), "UNKNOWN");
    }

    #[test]
    fn holder_names_split() {
        assert_eq!(
            split_holder("Cure Tester"),
            ("Cure".into(), "Tester".into())
        );
        assert_eq!(
            split_holder("Ann Mary Lee"),
            ("Ann".into(), "Mary Lee".into())
        );
        assert_eq!(split_holder("Cher"), ("Cher".into(), "Cher".into()));
    }

    /// F2: the tokenize body never shows its number or CVV in Debug.
    #[test]
    fn f2_tokenize_request_debug_is_redacted() {
        let card = CardDetails {
            number: secrecy::SecretString::from("4111111111111111"),
            cvv: Some(secrecy::SecretString::from("987")),
            exp_month: 3,
            exp_year: 2029,
            holder: "Joe Jones".into(),
        };
        let req = TokenizeRequest::from_card(&card, None);
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("4111111111111111") && !shown.contains("987"),
            "{shown}"
        );
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(body["payment_method"]["credit_card"]["month"], "03");
        assert_eq!(body["payment_method"]["credit_card"]["year"], "2029");
        assert_eq!(body["payment_method"]["credit_card"]["first_name"], "Joe");
        let token = TokenResponse {
            access_token: Some("secret-token".into()),
            expires_ms: Some(1),
            success: None,
        };
        assert!(!format!("{token:?}").contains("secret-token"));
    }

    #[test]
    fn interval_names() {
        assert_eq!(interval_name(30), "monthly");
        assert_eq!(interval_name(7), "weekly");
        assert_eq!(interval_name(45), "45 days");
    }
}
