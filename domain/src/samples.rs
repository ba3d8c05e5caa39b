//! Sample values and commands for the tests, benchmarks and crash drill of every crate: the
//! customer Cure Tester, a tokenized test card, and one-time sales of `cleanser` on the sample
//! setup's `skincare` campaign (`examples/salvage.toml`). Not for production use.

use crate::customer::{Address, CardToken, Customer, OrderItem};
use crate::order::{AttemptResult, OrderCommand, PlaceOrder};
use crate::{Currency, DeclineFacts, DeclineType, Money, OrderType};

/// A tokenized Visa test card (4111 1111 1111 1111).
pub fn card() -> CardToken {
    CardToken {
        token: "tok_1".into(),
        bin: "411111".into(),
        last4: "1111".into(),
        exp_month: 9,
        exp_year: 2030,
        holder: "Cure Tester".into(),
        fingerprint: None,
    }
}

/// The sample customer, with an Ottawa billing address.
pub fn customer() -> Customer {
    Customer {
        first_name: "Cure".into(),
        last_name: "Tester".into(),
        email: Some("cure@example.com".into()),
        phone: None,
        billing_address: Address {
            line1: "456 My Street".into(),
            city: "Ottawa".into(),
            zip: "K1C2N6".into(),
            country: "CA".into(),
            ..Address::default()
        },
    }
}

/// A decline by `gateway` (response code 05).
pub fn decline(gateway: &str, message: &str, verdict: DeclineType) -> DeclineFacts {
    DeclineFacts {
        gateway: gateway.into(),
        response_code: "05".into(),
        response_message: message.into(),
        processor_verdict: verdict,
        visa_category: None,
        mastercard_advice_code: None,
    }
}

/// A soft decline ("Issuer unavailable") by `gateway`.
pub fn soft(gateway: &str) -> AttemptResult {
    AttemptResult::Declined(decline(gateway, "Issuer unavailable", DeclineType::Soft))
}

/// A hard decline ("Pick up card") by `gateway`.
pub fn hard(gateway: &str) -> AttemptResult {
    AttemptResult::Declined(decline(gateway, "Pick up card", DeclineType::Hard))
}

/// A one-time new sale of `cleanser` (19.99 USD) on the skincare campaign.
pub fn new_sale(order: &str, gateway: &str, ip: Option<&str>, result: AttemptResult) -> PlaceOrder {
    PlaceOrder {
        order_id: order.into(),
        order_type: OrderType::NewSale,
        campaign_id: "skincare".into(),
        subscription_id: None,
        ip_address: ip.map(str::to_string),
        amount: Money {
            amount_minor: 1999,
            currency: Currency::USD,
        },
        customer: customer(),
        card: card(),
        items: vec![OrderItem {
            product_id: "cleanser".into(),
            quantity: 1,
            price_minor: 1999,
        }],
        gateway: gateway.into(),
        gateway_profile: None,
        result,
    }
}

/// The command that places `order`.
pub fn place(order: PlaceOrder) -> OrderCommand {
    OrderCommand::Place(Box::new(order))
}

/// A one-time sale on stripe-eu (which cascades nowhere), approved or soft-declined.
pub fn sale(order: &str, approved: bool) -> OrderCommand {
    let result = if approved {
        AttemptResult::Approved
    } else {
        soft("stripe-eu")
    };
    place(new_sale(order, "stripe-eu", Some("203.0.113.7"), result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_sale_is_what_its_name_says() {
        let OrderCommand::Place(p) = sale("o-1", false) else {
            panic!("a Place command")
        };
        assert_eq!(p.amount.amount_minor, 1999);
        assert_eq!(p.items.iter().map(|i| i.price_minor).sum::<i64>(), 1999);
        assert!(
            matches!(p.result, AttemptResult::Declined(ref d) if d.processor_verdict == DeclineType::Soft)
        );
        assert!(
            matches!(hard("x"), AttemptResult::Declined(ref d) if d.processor_verdict == DeclineType::Hard)
        );
    }
}
