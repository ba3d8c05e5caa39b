//! What Salvage sends the CRM and what it reads back, as serialized: the charge hook's request
//! and answer, and the notifications. These types ARE the contract: the charge hook and the
//! notifier serialize them, and `/openapi.json` publishes their schemas as OpenAPI 3.1
//! `webhooks` (`chargeHook`, `notification.<kind>`), so the document cannot drift from what is
//! sent. `docs/integration.md` explains them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use salvage_domain::customer::CredentialKind;
use salvage_domain::decline::{MastercardAdviceCode, VisaCategory};
use salvage_domain::ports::{ChargePurpose, ChargeRequest, GatewayAnswer};
use salvage_domain::process_manager;
use salvage_domain::subscription::RecycleFailure;
use salvage_domain::{DeclineFacts, DeclineType, GatewayId};

/// An amount in integer minor units (cents for USD) of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WireMoney {
    #[schema(example = 3999)]
    pub amount_minor: i64,
    #[schema(example = "USD")]
    pub currency: String,
}

/// How to charge the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// The billing gateway's reusable token of the customer's card.
    Token,
    /// O6: after FlexFactor salvaged the sale there is no token on this gateway: charge the card
    /// number the CRM holds, without CVV.
    CardNumberWithoutCvv,
}

/// Why the charge is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// Step `step` (1-based) of the cascade of a declined new sale: answered at once.
    Cascade { step: u32 },
    /// Re-attempt `attempt` (1-based) of recycle billing of a declined rebill.
    Recycle { attempt: u32 },
    /// The scheduled rebill of cycle `cycle` of a subscription.
    Rebill { cycle: u32 },
}

/// The body of a charge hook call: charge `amount` on regular gateway `gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChargeHookRequest {
    /// The same on every retry of this one attempt (also sent as the `idempotency-key` header):
    /// a call with a key already charged must answer that charge's result, never charge again.
    #[schema(example = "2a51e2af-9ee1-5e22-825c-1c2c06fe7c1a")]
    pub idempotency_key: String,
    /// The CRM's order the charge pays (for a rebill, the rebill order Salvage built).
    pub order_id: String,
    /// The subscription, for recycle re-attempts and rebills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// The regular gateway (never FlexFactor) to charge on.
    pub gateway: String,
    pub amount: WireMoney,
    pub credential: Credential,
    pub purpose: Purpose,
}

impl From<&ChargeRequest> for ChargeHookRequest {
    fn from(r: &ChargeRequest) -> Self {
        ChargeHookRequest {
            idempotency_key: r.idempotency_key.as_str().to_string(),
            order_id: r.order_id.to_string(),
            subscription_id: r.subscription_id.as_ref().map(|s| s.to_string()),
            gateway: r.gateway.to_string(),
            amount: WireMoney {
                amount_minor: r.amount.amount_minor,
                currency: r.amount.currency.to_string(),
            },
            credential: match r.credential {
                CredentialKind::Token => Credential::Token,
                CredentialKind::CardNumberWithoutCvv => Credential::CardNumberWithoutCvv,
            },
            purpose: match r.purpose {
                ChargePurpose::Cascade { step } => Purpose::Cascade { step },
                ChargePurpose::Recycle { attempt } => Purpose::Recycle { attempt },
                ChargePurpose::Rebill { cycle } => Purpose::Rebill { cycle },
            },
        }
    }
}

/// The result of a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChargeResult {
    /// Charged.
    Approved,
    /// Not charged: the gateway declined (give the decline's facts).
    Declined,
    /// Sent to the gateway, result not known yet (Salvage treats it as an unknown outcome: it
    /// does not charge again under another key and waits for the CRM to settle it).
    Pending,
}

/// A decline's verdict by the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineVerdict {
    Soft,
    Hard,
}

/// The charge hook's answer (HTTP 2xx with this JSON). Any other status, a timeout or a body
/// that is not this is an unknown outcome: the charge may have happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChargeHookAnswer {
    pub result: ChargeResult,
    /// The gateway's transaction id (approved) or reference (pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Declined: the processor's raw response code (D1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<String>,
    /// Declined: the processor's response message (decline mappings match on it, D2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_message: Option<String>,
    /// Declined: the processor's soft/hard verdict, `soft` or `hard` (any case); soft when left
    /// out or anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DeclineVerdict>)]
    pub decline_type: Option<String>,
    /// Declined, Visa: the decline category (1-4) when the gateway gives it (N1, N2); any
    /// other number is ignored (the category then comes from the code tables, N6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 4)]
    pub visa_category: Option<u8>,
    /// Declined, Mastercard: the Merchant Advice Code ("01", "03", "21", "24".."30") (N3, N4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mastercard_advice_code: Option<String>,
}

impl ChargeHookAnswer {
    /// The answer as the domain reads it, for a charge on `gateway`.
    pub fn into_answer(self, gateway: &GatewayId) -> GatewayAnswer {
        match self.result {
            ChargeResult::Approved => GatewayAnswer::Approved {
                transaction_id: self.transaction_id,
            },
            ChargeResult::Declined => GatewayAnswer::Declined(DeclineFacts {
                gateway: gateway.clone(),
                response_code: self.response_code.unwrap_or_default(),
                response_message: self.response_message.unwrap_or_default(),
                processor_verdict: match self.decline_type.as_deref() {
                    Some(t) if t.trim().eq_ignore_ascii_case("hard") => DeclineType::Hard,
                    _ => DeclineType::Soft,
                },
                visa_category: self
                    .visa_category
                    .filter(|c| (1..=4).contains(c))
                    .map(VisaCategory),
                mastercard_advice_code: self.mastercard_advice_code.map(MastercardAdviceCode),
            }),
            ChargeResult::Pending => GatewayAnswer::Pending {
                reference: self.transaction_id,
            },
        }
    }
}

/// Why a subscription is Recycle Failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecycleFailedReason {
    /// D4: the rebill or a re-attempt was hard-declined.
    HardDecline,
    /// Y4: every re-attempt declined.
    Exhausted,
    /// Y4: the billing gateway has no recycle profile.
    NoRecycleProfile,
    /// O5: FlexFactor did not recover the rebill.
    FlexFactorFailed,
    /// N1: the card network forbids any further attempt on the card.
    NetworkNeverRetry,
}

impl From<RecycleFailure> for RecycleFailedReason {
    fn from(r: RecycleFailure) -> Self {
        match r {
            RecycleFailure::HardDecline => RecycleFailedReason::HardDecline,
            RecycleFailure::Exhausted => RecycleFailedReason::Exhausted,
            RecycleFailure::NoRecycleProfile => RecycleFailedReason::NoRecycleProfile,
            RecycleFailure::FlexFactorFailed => RecycleFailedReason::FlexFactorFailed,
            RecycleFailure::NetworkNeverRetry => RecycleFailedReason::NetworkNeverRetry,
        }
    }
}

/// What happened, and what the CRM is to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotificationKind {
    /// O1, O4: the order is paid (salvaged): fulfil it.
    OrderCompleted,
    /// O2, and a rebill whose FlexFactor salvage failed: the order stays declined.
    OrderDeclined,
    /// O3: FlexFactor failed to complete a trial; the order's status is unchanged.
    TrialCompletionFailed,
    /// O4, Y2: the subscription moved to cycle `cycle` and bills on `billing_gateway` from now.
    SubscriptionAdvanced { billing_gateway: String, cycle: u32 },
    /// O5, Y4, D4, N1: the subscription's recycle billing failed.
    RecycleFailed { reason: RecycleFailedReason },
    /// K1: FlexFactor reported a chargeback on the salvaged order.
    Chargeback,
    /// K3: FlexFactor refunded the salvaged order.
    Refunded,
}

impl NotificationKind {
    /// The kind's name, as in the `kind` field and the webhook `notification.<kind>`.
    pub fn name(&self) -> &'static str {
        match self {
            NotificationKind::OrderCompleted => "order_completed",
            NotificationKind::OrderDeclined => "order_declined",
            NotificationKind::TrialCompletionFailed => "trial_completion_failed",
            NotificationKind::SubscriptionAdvanced { .. } => "subscription_advanced",
            NotificationKind::RecycleFailed { .. } => "recycle_failed",
            NotificationKind::Chargeback => "chargeback",
            NotificationKind::Refunded => "refunded",
        }
    }
}

/// A notification to the CRM: POSTed signed, retried until a 2xx, deduplicated by `event_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Stable across retries and restarts (also the `x-salvage-event-id` header): a CRM that
    /// has seen it acknowledges it again and does nothing more.
    #[schema(example = "order:o-1:7")]
    pub event_id: String,
    #[serde(flatten)]
    pub kind: NotificationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// When it happened (RFC 3339, UTC).
    pub at: DateTime<Utc>,
}

impl From<&process_manager::Notification> for Notification {
    fn from(n: &process_manager::Notification) -> Self {
        use process_manager::NotificationKind as K;
        Notification {
            event_id: n.event_id.clone(),
            kind: match &n.kind {
                K::OrderCompleted => NotificationKind::OrderCompleted,
                K::OrderDeclined => NotificationKind::OrderDeclined,
                K::TrialCompletionFailed => NotificationKind::TrialCompletionFailed,
                K::SubscriptionAdvanced {
                    billing_gateway,
                    cycle,
                } => NotificationKind::SubscriptionAdvanced {
                    billing_gateway: billing_gateway.to_string(),
                    cycle: *cycle,
                },
                K::RecycleFailed { reason } => NotificationKind::RecycleFailed {
                    reason: (*reason).into(),
                },
                K::Chargeback => NotificationKind::Chargeback,
                K::Refunded => NotificationKind::Refunded,
            },
            order_id: n.order_id.as_ref().map(|o| o.to_string()),
            subscription_id: n.subscription_id.as_ref().map(|s| s.to_string()),
            at: n.at,
        }
    }
}

/// One real instance of every notification kind and of each charge purpose, for the docs, the
/// schema test and the examples.
pub mod samples {
    use chrono::TimeZone;

    use super::*;
    use salvage_domain::idempotency::IdempotencyKey;
    use salvage_domain::{Currency, Money};

    pub fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    /// Every notification kind, as the domain produces them.
    pub fn notifications() -> Vec<process_manager::Notification> {
        use process_manager::NotificationKind as K;
        let kinds = vec![
            K::OrderCompleted,
            K::OrderDeclined,
            K::TrialCompletionFailed,
            K::SubscriptionAdvanced {
                billing_gateway: "nmi-main".into(),
                cycle: 2,
            },
            K::RecycleFailed {
                reason: RecycleFailure::Exhausted,
            },
            K::Chargeback,
            K::Refunded,
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| process_manager::Notification {
                event_id: format!("order:o-1:{}", i + 3),
                kind,
                order_id: Some("o-1".into()),
                subscription_id: Some("sub-1".into()),
                at: at(),
            })
            .collect()
    }

    /// A charge request of each purpose.
    pub fn charges() -> Vec<ChargeRequest> {
        [
            ChargePurpose::Cascade { step: 1 },
            ChargePurpose::Recycle { attempt: 2 },
            ChargePurpose::Rebill { cycle: 3 },
        ]
        .into_iter()
        .map(|purpose| ChargeRequest {
            idempotency_key: IdempotencyKey::recycle_charge(&"sub-1-c3".into(), 2),
            order_id: "sub-1-c3".into(),
            subscription_id: Some("sub-1".into()),
            gateway: "nmi-main".into(),
            amount: Money {
                amount_minor: 3999,
                currency: Currency::USD,
            },
            credential: CredentialKind::Token,
            purpose,
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire types say exactly what the domain's types serialized to before them: a CRM sees
    /// no change.
    #[test]
    fn the_wire_is_the_domains_json() {
        for n in samples::notifications() {
            let domain = serde_json::to_value(&n).unwrap();
            let wire = serde_json::to_value(Notification::from(&n)).unwrap();
            assert_eq!(domain, wire);
            let kind = wire["kind"].as_str().unwrap_or_default().to_string();
            assert_eq!(kind, Notification::from(&n).kind.name());
        }
        for c in samples::charges() {
            let domain = serde_json::to_value(&c).unwrap();
            let wire = serde_json::to_value(ChargeHookRequest::from(&c)).unwrap();
            assert_eq!(domain, wire);
        }
    }

    #[test]
    fn every_recycle_failure_has_its_wire_name() {
        for r in [
            RecycleFailure::HardDecline,
            RecycleFailure::Exhausted,
            RecycleFailure::NoRecycleProfile,
            RecycleFailure::FlexFactorFailed,
            RecycleFailure::NetworkNeverRetry,
        ] {
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::to_value(RecycleFailedReason::from(r)).unwrap()
            );
        }
    }

    #[test]
    fn answers_map_to_the_domains() {
        let gw: GatewayId = "nmi-main".into();
        let a: ChargeHookAnswer = serde_json::from_str(
            r#"{"result":"declined","response_code":"51","response_message":"Insufficient funds","decline_type":"hard","visa_category":2}"#,
        )
        .unwrap();
        match a.into_answer(&gw) {
            GatewayAnswer::Declined(f) => {
                assert_eq!(f.processor_verdict, DeclineType::Hard);
                assert_eq!(f.visa_category, Some(VisaCategory(2)));
                assert_eq!(f.response_code, "51");
            }
            other => panic!("{other:?}"),
        }
        let a: ChargeHookAnswer =
            serde_json::from_str(r#"{"result":"approved","transaction_id":"t-1"}"#).unwrap();
        assert_eq!(
            a.into_answer(&gw),
            GatewayAnswer::Approved {
                transaction_id: Some("t-1".into())
            }
        );
        assert!(serde_json::from_str::<ChargeHookAnswer>(r#"{"result":"maybe"}"#).is_err());
        // As before the wire types: the verdict in any case, anything else soft; a category
        // that does not exist is left for the tables.
        let a: ChargeHookAnswer = serde_json::from_str(
            r#"{"result":"declined","decline_type":"HARD","visa_category":9}"#,
        )
        .unwrap();
        match a.into_answer(&gw) {
            GatewayAnswer::Declined(f) => {
                assert_eq!(f.processor_verdict, DeclineType::Hard);
                assert_eq!(f.visa_category, None);
            }
            other => panic!("{other:?}"),
        }
    }
}
