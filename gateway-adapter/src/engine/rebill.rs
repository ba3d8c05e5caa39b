//! A rebill the CRM reports from its own billing (Y1-Y4, D4): it becomes the subscription's
//! rebill order, built by the domain's one builder (`Subscription::rebill_order`, which makes
//! the rebill of a subscription still in its trial a trial completion, O3), and is placed like
//! any order; a soft decline then enters recycle billing. The scheduled rebills Salvage charges
//! itself are built by the same builder (`engine::effects`).

use std::collections::HashMap;

use salvage_domain::order::{AttemptResult, OrderCommand, OrderError};
use salvage_domain::subscription::{Rebill, RebillParts};
use salvage_domain::{GatewayId, Money, OrderId, SubscriptionId};

use super::inline::ToDrive;
use super::Engine;
use crate::store::ExecuteError;

/// A rebill as the CRM reports it.
#[derive(Debug, Clone)]
pub struct RebillReport {
    /// The CRM's order id; `None`: the subscription's next rebill order id.
    pub order_id: Option<OrderId>,
    /// In the currency of the subscription's price; `None`: the price.
    pub amount_minor: Option<i64>,
    pub gateway: GatewayId,
    pub result: AttemptResult,
}

/// Why a rebill was not placed.
#[derive(Debug, thiserror::Error)]
pub enum RebillError {
    #[error("subscription {0} is not known")]
    UnknownSubscription(SubscriptionId),
    #[error("the subscription has no origin order")]
    NoOrigin,
    #[error("the subscription's origin order is missing")]
    OriginMissing,
    #[error("amount_minor must be a positive integer number of minor units (cents)")]
    Amount,
    #[error(transparent)]
    Subscription(ExecuteError<salvage_domain::subscription::SubscriptionError>),
    #[error(transparent)]
    Order(ExecuteError<OrderError>),
}

impl Engine {
    /// Places the order of a rebill the CRM reports; returns its id and what to drive (nothing
    /// when the same order was placed before).
    pub async fn report_rebill(
        &self,
        subscription_id: &SubscriptionId,
        report: RebillReport,
    ) -> Result<(OrderId, ToDrive), RebillError> {
        let (sub, n) = self
            .store
            .subscriptions
            .load(subscription_id.as_str())
            .await
            .map_err(RebillError::Subscription)?;
        if n == 0 {
            return Err(RebillError::UnknownSubscription(subscription_id.clone()));
        }
        let origin = sub.origin_order_id.as_ref().ok_or(RebillError::NoOrigin)?;
        let (origin, _) = self
            .store
            .orders
            .load(origin.as_str())
            .await
            .map_err(RebillError::Order)?;
        let details = origin.details.ok_or(RebillError::OriginMissing)?;
        let amount = match report.amount_minor {
            None => None,
            Some(m) if m <= 0 => return Err(RebillError::Amount),
            Some(m) => {
                let currency = sub.price.unwrap_or(details.amount).currency;
                Some(Money::new(m, currency).map_err(|_| RebillError::Amount)?)
            }
        };
        let parts = RebillParts::from_origin(&details, &sub);
        let order = sub.rebill_order(
            subscription_id,
            parts,
            Rebill {
                order_id: report.order_id,
                amount,
                gateway: report.gateway,
                result: report.result,
            },
        );
        let id = order.order_id.clone();
        let command = OrderCommand::Place(Box::new(order));
        match self
            .order_inline(&id, command, HashMap::new(), &[], None)
            .await
        {
            Ok(placed) => Ok((id, placed)),
            Err(ExecuteError::Refused(OrderError::AlreadyPlaced(_))) => {
                Ok((id, ToDrive::nothing()))
            }
            Err(e) => Err(RebillError::Order(e)),
        }
    }
}
