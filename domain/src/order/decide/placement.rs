//! Placing an order: checks, `OrderPlaced`, the first attempt's result, and the cascade of a
//! declined new sale.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::cascade::start_cascade;
use super::decision::Decision;
use crate::money::Money;
use crate::order::command::{AttemptResult, PlaceOrder};
use crate::order::error::OrderError;
use crate::order::event::{OrderDetails, OrderEvent, RecurringLine};
use crate::order_type::OrderType;
use crate::services::DomainServices;

pub(super) fn place(
    d: &mut Decision<'_>,
    cmd: PlaceOrder,
    services: &DomainServices,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    if d.state().details.is_some() {
        return Err(OrderError::AlreadyPlaced(cmd.order_id.to_string()));
    }
    let setup = &services.setup;
    if cmd.amount.amount_minor <= 0 {
        return Err(OrderError::ZeroAmount);
    }
    let campaign = setup
        .campaign(&cmd.campaign_id)
        .ok_or_else(|| OrderError::UnknownCampaign(cmd.campaign_id.to_string()))?;
    if campaign.currency != cmd.amount.currency {
        return Err(OrderError::CurrencyMismatch {
            order: cmd.amount.currency.to_string(),
            campaign: campaign.currency.to_string(),
        });
    }
    match setup.gateway(&cmd.gateway) {
        None => return Err(OrderError::UnknownGateway(cmd.gateway.to_string())),
        Some(g) if g.is_flexfactor() => {
            return Err(OrderError::FirstAttemptOnFlexFactor(
                cmd.gateway.to_string(),
            ))
        }
        Some(_) => {}
    }
    if cmd.order_type.is_recurring_billing() && cmd.subscription_id.is_none() {
        return Err(OrderError::MissingSubscription(cmd.order_type.as_str()));
    }
    let recurring_lines = cmd
        .items
        .iter()
        .filter_map(|item| {
            let product = campaign.product(&item.product_id)?;
            let recurring = product.recurring?;
            Some(RecurringLine {
                product_id: item.product_id.clone(),
                price: Money {
                    amount_minor: item
                        .price_minor
                        .saturating_mul(i64::from(item.quantity.max(1))),
                    currency: cmd.amount.currency,
                },
                recurring: recurring.into(),
            })
        })
        .collect();
    let details = OrderDetails {
        order_id: cmd.order_id,
        order_type: cmd.order_type,
        campaign_id: cmd.campaign_id,
        subscription_id: cmd.subscription_id,
        ip_address: cmd.ip_address.filter(|ip| !ip.trim().is_empty()),
        amount: cmd.amount,
        customer: cmd.customer,
        card: cmd.card,
        items: cmd.items,
        gateway: cmd.gateway.clone(),
        gateway_profile: cmd.gateway_profile,
        recurring_lines,
    };
    // Taken before OrderPlaced is decided, so the decision needs no scratch copy of the order.
    let order_type = details.order_type;
    d.emit(OrderEvent::OrderPlaced {
        details: Arc::new(details),
        at: now,
    });
    match cmd.result {
        AttemptResult::Approved => {
            d.emit(OrderEvent::AttemptApproved {
                gateway: cmd.gateway,
                at: now,
            });
            d.emit(OrderEvent::FulfillmentRequested { at: now });
        }
        AttemptResult::Declined(mut facts) => {
            facts.gateway = cmd.gateway;
            let effective = setup.effective_decline(&facts, order_type);
            d.emit(OrderEvent::AttemptDeclined {
                facts,
                effective,
                at: now,
            });
            if order_type == OrderType::NewSale {
                start_cascade(d, services, now)?;
            }
        }
    }
    Ok(())
}
