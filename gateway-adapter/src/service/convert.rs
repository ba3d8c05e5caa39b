//! Between the API's bodies and the domain: validation of what the CRM sends (every problem is
//! a 400 naming the field), and the views of orders and subscriptions.

use cqrs_es::EventEnvelope;
use sha2::{Digest, Sha256};

use salvage_domain::customer::{Address, CardToken, CredentialKind, Customer, OrderItem};
use salvage_domain::decline::{MastercardAdviceCode, VisaCategory};
use salvage_domain::order::{AttemptResult, Order, OrderEvent, PlaceOrder, SalvageState};
use salvage_domain::ports::GatewayAnswer;
use salvage_domain::routing::RecycleTarget;
use salvage_domain::subscription::Subscription;
use salvage_domain::{Currency, DeclineFacts, DeclineType, Money, OrderType};

use super::dto::*;
use super::error::ApiError;

pub fn order_type(s: &str) -> Result<OrderType, ApiError> {
    match s {
        "new_sale" => Ok(OrderType::NewSale),
        "trial_completion" => Ok(OrderType::TrialCompletion),
        "recurring" => Ok(OrderType::Recurring),
        other => Err(ApiError::invalid(format!(
            "order_type {other:?} is not one of new_sale, trial_completion, recurring"
        ))),
    }
}

pub fn money(amount_minor: i64, currency: &str) -> Result<Money, ApiError> {
    let c = Currency::new(currency).map_err(|e| ApiError::invalid(format!("currency: {e}")))?;
    if amount_minor <= 0 {
        return Err(ApiError::invalid(
            "amount_minor must be a positive integer number of minor units (cents)",
        ));
    }
    Money::new(amount_minor, c).map_err(|e| ApiError::invalid(format!("amount_minor: {e}")))
}

/// The attempt's result, with its decline facts when declined.
pub fn attempt(a: &AttemptIn) -> Result<AttemptResult, ApiError> {
    if a.gateway_id.trim().is_empty() {
        return Err(ApiError::invalid("attempt.gateway_id is required"));
    }
    match a.result.as_str() {
        "approved" => Ok(AttemptResult::Approved),
        "declined" => Ok(AttemptResult::Declined(decline_facts(a)?)),
        other => Err(ApiError::invalid(format!(
            "attempt.result {other:?} is not approved or declined"
        ))),
    }
}

pub fn decline_facts(a: &AttemptIn) -> Result<DeclineFacts, ApiError> {
    let processor_verdict = match a.decline_type.as_deref() {
        Some("soft") => DeclineType::Soft,
        Some("hard") => DeclineType::Hard,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "attempt.decline_type {other:?} is not soft or hard"
            )))
        }
        None => {
            return Err(ApiError::invalid(
                "attempt.decline_type (soft or hard) is required for a declined attempt",
            ))
        }
    };
    if let Some(v) = a.visa_category {
        if !(1..=4).contains(&v) {
            return Err(ApiError::invalid("attempt.visa_category must be 1 to 4"));
        }
    }
    Ok(DeclineFacts {
        gateway: a.gateway_id.as_str().into(),
        response_code: a.response_code.clone().unwrap_or_default(),
        response_message: a.response_message.clone().unwrap_or_default(),
        processor_verdict,
        visa_category: a.visa_category.map(VisaCategory),
        mastercard_advice_code: a.mastercard_advice_code.clone().map(MastercardAdviceCode),
    })
}

/// A charge hook's or rebill report's attempt as a gateway answer.
pub fn gateway_answer(a: &AttemptIn) -> Result<GatewayAnswer, ApiError> {
    Ok(match attempt(a)? {
        AttemptResult::Approved => GatewayAnswer::Approved {
            transaction_id: None,
        },
        AttemptResult::Declined(f) => GatewayAnswer::Declined(f),
    })
}

pub fn customer(c: &CustomerIn) -> Customer {
    Customer {
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        billing_address: Address {
            line1: c.billing_address.line1.clone(),
            line2: c.billing_address.line2.clone(),
            city: c.billing_address.city.clone(),
            state: c.billing_address.state.clone(),
            zip: c.billing_address.zip.clone(),
            country: c.billing_address.country.clone(),
        },
    }
}

pub fn items(items: &[ItemIn]) -> Result<Vec<OrderItem>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            if it.product_id.trim().is_empty() {
                return Err(ApiError::invalid(format!(
                    "items[{i}].product_id is required"
                )));
            }
            if it.quantity == 0 || it.price_minor < 0 {
                return Err(ApiError::invalid(format!(
                    "items[{i}]: quantity must be at least 1 and price_minor not negative"
                )));
            }
            Ok(OrderItem {
                product_id: it.product_id.as_str().into(),
                quantity: it.quantity,
                price_minor: it.price_minor,
            })
        })
        .collect()
}

/// Checks the card's shape before it is tokenized.
/// An order body as `POST /v1/orders` accepts it: every field checked and converted, all but the
/// card, which is tokenized afterwards (see [`place_order`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedOrder {
    pub order_type: OrderType,
    pub amount: Money,
    pub result: AttemptResult,
    pub items: Vec<OrderItem>,
}

/// Checks an order body as `POST /v1/orders` does; the first problem is the error.
pub fn check_order(body: &OrderIn) -> Result<CheckedOrder, ApiError> {
    if body.order_id.trim().is_empty() {
        return Err(ApiError::invalid("order_id is required"));
    }
    let order_type = order_type(&body.order_type)?;
    let amount = money(body.amount_minor, &body.currency)?;
    let result = attempt(&body.attempt)?;
    let items = items(&body.items)?;
    check_card(&body.card)?;
    if order_type != OrderType::NewSale && body.subscription_id.is_none() {
        return Err(ApiError::invalid(format!(
            "subscription_id is required for a {} order",
            body.order_type
        )));
    }
    Ok(CheckedOrder {
        order_type,
        amount,
        result,
        items,
    })
}

/// The command that places a checked order body, with its card as tokenized.
pub fn place_order(body: &OrderIn, checked: CheckedOrder, card: CardToken) -> PlaceOrder {
    PlaceOrder {
        order_id: body.order_id.as_str().into(),
        order_type: checked.order_type,
        campaign_id: body.campaign_id.as_str().into(),
        subscription_id: body.subscription_id.as_deref().map(Into::into),
        ip_address: body.ip_address.clone(),
        amount: checked.amount,
        customer: customer(&body.customer),
        card,
        items: checked.items,
        gateway: body.attempt.gateway_id.as_str().into(),
        gateway_profile: body.attempt.gateway_profile_id.as_deref().map(Into::into),
        result: checked.result,
    }
}

pub fn check_card(card: &CardIn) -> Result<(), ApiError> {
    if !(1..=12).contains(&card.exp_month) {
        return Err(ApiError::invalid("card.exp_month must be 1 to 12"));
    }
    match (&card.number, &card.token) {
        (Some(n), None) => {
            let digits: String = n.chars().filter(|c| !c.is_whitespace()).collect();
            if !(12..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(ApiError::invalid("card.number must be 12 to 19 digits"));
            }
            if let Some(cvv) = &card.cvv {
                if !(3..=4).contains(&cvv.len()) || !cvv.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ApiError::invalid("card.cvv must be 3 or 4 digits"));
                }
            }
            Ok(())
        }
        (None, Some(t)) if !t.trim().is_empty() => Ok(()),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "give card.number or card.token, not both",
        )),
        _ => Err(ApiError::invalid("card.number or card.token is required")),
    }
}

/// A card given as a token.
pub fn token_card(card: &CardIn) -> Option<CardToken> {
    card.token.as_ref().map(|t| CardToken {
        token: t.clone(),
        bin: card.bin.clone().unwrap_or_default(),
        last4: card.last4.clone().unwrap_or_default(),
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        holder: card.holder.clone(),
        fingerprint: card.fingerprint.clone(),
    })
}

/// The fingerprint of an order request: SHA-256 of its JSON without the card number and CVV
/// (their last four digits stand in), so the same order posted twice is recognized and a
/// different one under the same id is a conflict. No card data can be recovered from it.
pub fn fingerprint(o: &OrderIn) -> String {
    let mut copy = o.clone();
    if let Some(n) = copy.card.number.take() {
        let digits: String = n.chars().filter(char::is_ascii_digit).collect();
        copy.card.last4 = Some(digits[digits.len().saturating_sub(4)..].to_string());
    }
    copy.card.cvv = None;
    let json = serde_json::to_vec(&copy).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn history<E: serde::Serialize>(
    envelopes: &[(usize, String, chrono::DateTime<chrono::Utc>, &E)],
) -> Vec<HistoryEntry> {
    envelopes
        .iter()
        .map(|(sequence, name, at, e)| HistoryEntry {
            sequence: *sequence,
            event_type: name.clone(),
            at: *at,
            event: serde_json::to_value(e).unwrap_or(serde_json::Value::Null),
        })
        .collect()
}

fn snake<T: serde::Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The order view: its state and history.
pub fn order_view(order: &Order, events: &[EventEnvelope<Order>]) -> OrderOut {
    let details = order.details.as_ref();
    let skipped = events.iter().rev().find_map(|e| match &e.payload {
        OrderEvent::CascadeSkipped { reason, .. } => Some(reason.as_str().to_string()),
        _ => None,
    });
    let salvage = order.salvage.as_ref().map(|s| SalvageOut {
        route: s.route.name().to_string(),
        attempt: s.attempt,
        flexfactor_gateway_id: s.flexfactor_gateway.to_string(),
        flexfactor_order_id: s.flexfactor_order_id.as_ref().map(|f| f.to_string()),
        idempotency_key: s.idempotency_key.to_string(),
        expires_at: s.expires_at(),
        state: snake(&s.state).unwrap_or_default(),
        result: match s.state {
            SalvageState::Succeeded => Some("succeeded".into()),
            SalvageState::Failed => Some("failed".into()),
            _ => None,
        },
        failure_reason: s.failure.as_ref().and_then(snake),
    });
    let entries: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.sequence,
                e.payload.name().to_string(),
                e.payload.at(),
                &e.payload,
            )
        })
        .collect();
    OrderOut {
        order_id: details.map(|d| d.order_id.to_string()).unwrap_or_default(),
        order_type: details
            .map(|d| d.order_type.as_str().to_string())
            .unwrap_or_default(),
        status: order
            .status
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        amount_minor: details.map(|d| d.amount.amount_minor).unwrap_or(0),
        currency: details
            .map(|d| d.amount.currency.to_string())
            .unwrap_or_default(),
        paid_by_gateway_id: order.paid_by.as_ref().map(|g| g.to_string()),
        cascade_skipped_reason: skipped,
        salvage,
        history: history(&entries),
    }
}

/// The subscription view.
pub fn subscription_view(
    id: &str,
    sub: &Subscription,
    events: &[EventEnvelope<Subscription>],
) -> SubscriptionOut {
    let recycle = sub.recycle.as_ref().map(|r| RecycleOut {
        order_id: r.order_id.to_string(),
        attempt: r.next_attempt,
        next_attempt_at: r.due_at,
        gateway_id: match &r.next_target {
            Some(RecycleTarget::FlexFactor { gateway, .. }) => Some(gateway.to_string()),
            Some(RecycleTarget::BillingGateway) | None => {
                sub.billing_gateway.as_ref().map(|g| g.to_string())
            }
        },
        flexfactor_slot: r.handed_over.map(|s| s.as_str().to_string()),
    });
    let entries: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.sequence,
                e.payload.name().to_string(),
                e.payload.at(),
                &e.payload,
            )
        })
        .collect();
    SubscriptionOut {
        subscription_id: id.to_string(),
        status: sub
            .status
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        billing_gateway_id: sub.billing_gateway.as_ref().map(|g| g.to_string()),
        cycle: sub.cycle,
        next_bill_at: sub.next_bill_at,
        payment_credential: sub.credential.map(|c| match c {
            CredentialKind::Token => "token".to_string(),
            CredentialKind::CardNumberWithoutCvv => "card_number_without_cvv".to_string(),
        }),
        recycle,
        history: history(&entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(overrides: serde_json::Value) -> OrderIn {
        let mut v = json!({
            "order_id": "o-1", "order_type": "new_sale", "campaign_id": "skincare",
            "ip_address": "203.0.113.7", "amount_minor": 1999, "currency": "USD",
            "card": {"number": "4111111111111111", "cvv": "123", "exp_month": 9, "exp_year": 2030,
                     "holder": "Cure Tester"},
            "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": 1999}],
            "attempt": {"gateway_id": "nmi-main", "result": "declined", "response_code": "91",
                        "response_message": "Issuer unavailable", "decline_type": "soft"}
        });
        if let (Some(v), Some(o)) = (v.as_object_mut(), overrides.as_object()) {
            for (k, x) in o {
                v.insert(k.clone(), x.clone());
            }
        }
        match serde_json::from_value(v) {
            Ok(b) => b,
            Err(e) => panic!("a valid body: {e}"),
        }
    }

    #[test]
    fn an_order_body_is_checked_then_placed_as_sent() {
        let b = body(json!({}));
        let checked = match check_order(&b) {
            Ok(c) => c,
            Err(e) => panic!("accepted: {}", e.message),
        };
        assert_eq!(checked.order_type, OrderType::NewSale);
        assert_eq!(checked.amount.amount_minor, 1999);
        let card = salvage_domain::samples::card();
        let placed = place_order(&b, checked, card.clone());
        assert_eq!(placed.order_id.as_str(), "o-1");
        assert_eq!(placed.card, card);
        assert_eq!(placed.gateway.as_str(), "nmi-main");
        assert_eq!(placed.ip_address.as_deref(), Some("203.0.113.7"));
        assert!(matches!(placed.result, AttemptResult::Declined(_)));
    }

    #[test]
    fn an_order_body_missing_what_it_needs_is_refused_with_the_reason() {
        let refused = |b: OrderIn| match check_order(&b) {
            Ok(_) => panic!("refused"),
            Err(e) => (e.code, e.message),
        };
        let (code, message) = refused(body(json!({"order_id": "  "})));
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("invalid_request", "order_id is required")
        );
        let (code, message) = refused(body(json!({"order_type": "trial_completion"})));
        assert_eq!(code, "invalid_request");
        assert_eq!(
            message,
            "subscription_id is required for a trial_completion order"
        );
        let (code, _) = refused(body(json!({"order_type": "layaway"})));
        assert_eq!(code, "invalid_request");
    }
}
