//! The one builder of a rebill's order: the order that reports one billing attempt of a
//! subscription, whether Salvage billed it on schedule or the CRM reports it from its own
//! billing. While the subscription is in its trial, its rebill completes the trial
//! (`TrialCompletion`: a failure then leaves the order as it was, O3); otherwise it is
//! `Recurring`.

use crate::customer::{CardToken, Customer, OrderItem};
use crate::ids::{joined, CampaignId, GatewayId, OrderId, Part, SubscriptionId};
use crate::money::Money;
use crate::order::{AttemptResult, OrderDetails, PlaceOrder};
use crate::order_type::OrderType;

use super::{Subscription, SubscriptionStatus};

/// The order id of the rebill that bills `cycle` (the subscription's current cycle):
/// `{subscription_id}-c{cycle + 1}`.
pub fn rebill_order_id(subscription_id: &SubscriptionId, cycle: u32) -> OrderId {
    OrderId::new(joined(&[
        Part::Text(subscription_id.as_str()),
        Part::Text("-c"),
        Part::Number(u64::from(cycle) + 1),
    ]))
}

/// What a rebill's order takes from outside the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebillParts {
    pub campaign_id: CampaignId,
    pub customer: Customer,
    pub card: CardToken,
    pub items: Vec<OrderItem>,
    /// The amount when neither the rebill nor the subscription gives one.
    pub amount: Money,
}

impl RebillParts {
    /// The parts of the subscription's origin order: its campaign, customer, card, the items of
    /// the subscription's product, and its amount.
    pub fn from_origin(origin: &OrderDetails, subscription: &Subscription) -> RebillParts {
        RebillParts {
            campaign_id: origin.campaign_id.clone(),
            customer: origin.customer.clone(),
            card: origin.card.clone(),
            items: origin
                .items
                .iter()
                .filter(|i| Some(&i.product_id) == subscription.product_id.as_ref())
                .cloned()
                .collect(),
            amount: origin.amount,
        }
    }
}

/// One rebill's attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebill {
    /// The CRM's own order id; `None`: [`rebill_order_id`] of the subscription's cycle.
    pub order_id: Option<OrderId>,
    /// `None`: the subscription's price (else the parts' amount).
    pub amount: Option<Money>,
    pub gateway: GatewayId,
    pub result: AttemptResult,
}

impl Subscription {
    /// The type of this subscription's next rebill order: `TrialCompletion` while it is in its
    /// trial (O3), `Recurring` otherwise.
    pub fn rebill_order_type(&self) -> OrderType {
        match self.status {
            Some(SubscriptionStatus::Trial) => OrderType::TrialCompletion,
            _ => OrderType::Recurring,
        }
    }

    /// The order that reports a rebill of this subscription. A rebill is merchant-initiated: no
    /// customer at a browser (no ip_address) and no gateway profile.
    pub fn rebill_order(
        &self,
        subscription_id: &SubscriptionId,
        parts: RebillParts,
        rebill: Rebill,
    ) -> PlaceOrder {
        PlaceOrder {
            order_id: rebill
                .order_id
                .unwrap_or_else(|| rebill_order_id(subscription_id, self.cycle)),
            order_type: self.rebill_order_type(),
            campaign_id: parts.campaign_id,
            subscription_id: Some(subscription_id.clone()),
            ip_address: None,
            amount: rebill.amount.or(self.price).unwrap_or(parts.amount),
            customer: parts.customer,
            card: parts.card,
            items: parts.items,
            gateway: rebill.gateway,
            gateway_profile: None,
            result: rebill.result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::samples::{card, customer};

    fn usd(m: i64) -> Money {
        Money::new(m, Currency::USD).unwrap_or_else(|e| panic!("{e}"))
    }

    fn parts() -> RebillParts {
        RebillParts {
            campaign_id: "skincare".into(),
            customer: customer(),
            card: card(),
            items: Vec::new(),
            amount: usd(1999),
        }
    }

    fn rebill() -> Rebill {
        Rebill {
            order_id: None,
            amount: None,
            gateway: "nmi-main".into(),
            result: AttemptResult::Approved,
        }
    }

    fn subscription(status: SubscriptionStatus, price: Option<Money>) -> Subscription {
        Subscription {
            status: Some(status),
            price,
            cycle: 2,
            product_id: Some("serum-monthly".into()),
            ..Subscription::default()
        }
    }

    #[test]
    fn o3_the_rebill_of_a_subscription_in_its_trial_is_a_trial_completion() {
        let id: SubscriptionId = "sub-1".into();
        let trial = subscription(SubscriptionStatus::Trial, Some(usd(3999)));
        let order = trial.rebill_order(&id, parts(), rebill());
        assert_eq!(order.order_type, OrderType::TrialCompletion);
        for status in [
            SubscriptionStatus::Active,
            SubscriptionStatus::RecycleBilling,
        ] {
            let s = subscription(status, Some(usd(3999)));
            assert_eq!(
                s.rebill_order(&id, parts(), rebill()).order_type,
                OrderType::Recurring,
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_rebill_is_named_for_its_cycle_and_costs_the_price_unless_told() {
        let id: SubscriptionId = "sub-1".into();
        let s = subscription(SubscriptionStatus::Active, Some(usd(3999)));
        assert_eq!(rebill_order_id(&id, 2).as_str(), "sub-1-c3");
        let order = s.rebill_order(&id, parts(), rebill());
        assert_eq!(order.order_id.as_str(), "sub-1-c3");
        assert_eq!(order.amount, usd(3999));
        assert_eq!(order.subscription_id, Some(id.clone()));
        assert_eq!((order.ip_address, order.gateway_profile), (None, None));
        let told = Rebill {
            order_id: Some("crm-77".into()),
            amount: Some(usd(2500)),
            ..rebill()
        };
        let order = s.rebill_order(&id, parts(), told);
        assert_eq!(
            (order.order_id.as_str(), order.amount),
            ("crm-77", usd(2500))
        );
        // No price: the origin's amount.
        let unpriced = subscription(SubscriptionStatus::Active, None);
        assert_eq!(
            unpriced.rebill_order(&id, parts(), rebill()).amount,
            usd(1999)
        );
    }
}
