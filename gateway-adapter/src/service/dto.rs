//! The CRM-facing API's request and response bodies (JSON, snake_case). Names are stable: CRMs
//! and the conformance suite rely on them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A billing address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AddressIn {
    #[serde(default)]
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub zip: String,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country: String,
}

/// The customer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub billing_address: AddressIn,
}

/// The card: its number (tokenized at once, never stored) or a token from an earlier call.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CardIn {
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub cvv: Option<String>,
    pub exp_month: u8,
    pub exp_year: u16,
    #[serde(default)]
    pub holder: String,
    /// A FlexFactor token instead of the number.
    #[serde(default)]
    pub token: Option<String>,
    /// With a token: the card's BIN and last four, when known.
    #[serde(default)]
    pub bin: Option<String>,
    #[serde(default)]
    pub last4: Option<String>,
    /// The CRM's own fingerprint of the card (the same for every token of one card), so the
    /// card-network rules count the card across orders and tokens (N8). Without it, a card sent
    /// as a number gets Salvage's keyed fingerprint of the number, and a token counts alone.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

impl std::fmt::Debug for CardIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardIn")
            .field("number", &self.number.as_ref().map(|_| "[REDACTED]"))
            .field("cvv", &self.cvv.as_ref().map(|_| "[REDACTED]"))
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field("token", &self.token)
            .finish()
    }
}

/// One line of the order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    pub product_id: String,
    pub quantity: u32,
    pub price_minor: i64,
}

/// The result of an attempt on a regular gateway, as the CRM saw it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttemptIn {
    pub gateway_id: String,
    /// The ATRI gateway profile the sale was routed through, if any.
    #[serde(default)]
    pub gateway_profile_id: Option<String>,
    /// `approved` or `declined`.
    pub result: String,
    #[serde(default)]
    pub response_code: Option<String>,
    #[serde(default)]
    pub response_message: Option<String>,
    /// `soft` or `hard` (required when declined).
    #[serde(default)]
    pub decline_type: Option<String>,
    #[serde(default)]
    pub visa_category: Option<u8>,
    #[serde(default)]
    pub mastercard_advice_code: Option<String>,
}

/// `POST /v1/orders`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OrderIn {
    pub order_id: String,
    /// `new_sale`, `trial_completion` or `recurring`.
    pub order_type: String,
    pub campaign_id: String,
    /// Required for trial completions and rebills.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// Required for a cascade to FlexFactor.
    #[serde(default)]
    pub ip_address: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(default)]
    pub customer: CustomerIn,
    pub card: CardIn,
    #[serde(default)]
    pub items: Vec<ItemIn>,
    pub attempt: AttemptIn,
}

/// `POST /v1/orders/{order_id}/rerun`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunIn {
    /// The FlexFactor gateway itself (never an ATRI gateway profile).
    pub gateway_id: String,
}

/// `POST /v1/subscriptions/{subscription_id}/rebills`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RebillIn {
    /// The rebill's order id; default `{subscription_id}-c{next cycle}`.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Default: the subscription's price.
    #[serde(default)]
    pub amount_minor: Option<i64>,
    pub attempt: AttemptIn,
}

/// One event of an aggregate's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub sequence: usize,
    /// The event's stable name (`OrderPlaced`, `SalvageSucceeded`...).
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: DateTime<Utc>,
    /// The whole event.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// Where an order's FlexFactor salvage stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SalvageOut {
    /// `cascade`, `rerun` or `recycle`.
    pub route: String,
    pub attempt: u32,
    pub flexfactor_gateway_id: String,
    pub flexfactor_order_id: Option<String>,
    pub idempotency_key: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// `submitted`, `accepted`, `outcome_unknown`, `unrecognized`, `capture_required`,
    /// `succeeded`, `failed`.
    pub state: String,
    /// `succeeded`, `failed` or absent while pending.
    pub result: Option<String>,
    pub failure_reason: Option<String>,
}

/// An order as `GET /v1/orders/{order_id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderOut {
    pub order_id: String,
    pub order_type: String,
    /// `pending`, `complete`, `declined`, `salvage_pending`, `refunded`, `chargeback`.
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub paid_by_gateway_id: Option<String>,
    /// Why the sale did not cascade, when it did not (`missing_ip_address`...).
    pub cascade_skipped_reason: Option<String>,
    pub salvage: Option<SalvageOut>,
    pub history: Vec<HistoryEntry>,
}

/// Recycle billing in progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecycleOut {
    pub order_id: String,
    /// The next re-attempt's number.
    pub attempt: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The gateway of the next re-attempt (the billing gateway, or FlexFactor at its slot).
    pub gateway_id: Option<String>,
    /// Set once handed to FlexFactor (`4-6`, `7-9`, `final`).
    pub flexfactor_slot: Option<String>,
}

/// A subscription as `GET /v1/subscriptions/{id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionOut {
    pub subscription_id: String,
    /// `trial`, `active`, `recycle_billing`, `recycle_failed`, `cancelled`.
    pub status: String,
    pub billing_gateway_id: Option<String>,
    pub cycle: u32,
    pub next_bill_at: Option<DateTime<Utc>>,
    /// `token`, or `card_number_without_cvv` for a subscription FlexFactor salvaged.
    pub payment_credential: Option<String>,
    pub recycle: Option<RecycleOut>,
    pub history: Vec<HistoryEntry>,
}
