//! What an order's events say about its card (N8): each attempt, decline and approval.

use crate::network::CardFact;

use super::event::{CascadeOutcome, OrderEvent, SalvageRoute};

/// Appends the card facts of `event` to `facts`.
pub(super) fn record(facts: &mut Vec<CardFact>, event: &OrderEvent) {
    match event {
        OrderEvent::AttemptApproved { gateway, at } => {
            facts.push(CardFact::Attempt {
                at: *at,
                gateway: gateway.clone(),
                flexfactor: false,
            });
            facts.push(CardFact::Approval { at: *at });
        }
        OrderEvent::AttemptDeclined { facts: f, at, .. } => {
            facts.push(CardFact::Attempt {
                at: *at,
                gateway: f.gateway.clone(),
                flexfactor: false,
            });
            facts.push(CardFact::declined(f, *at));
        }
        OrderEvent::CascadeStepStarted { gateway, at, .. } => facts.push(CardFact::Attempt {
            at: *at,
            gateway: gateway.clone(),
            flexfactor: false,
        }),
        OrderEvent::CascadeStepDeclined { facts: f, at, .. } => {
            facts.push(CardFact::declined(f, *at))
        }
        OrderEvent::CascadeEnded {
            outcome: CascadeOutcome::Approved { .. },
            at,
        }
        | OrderEvent::SalvageSucceeded { at, .. } => facts.push(CardFact::Approval { at: *at }),
        // A recycle hand-over is the subscription's attempt (`RecycleHandedToFlexFactor`): it is
        // counted there, once.
        OrderEvent::SalvageSubmitted {
            route: SalvageRoute::Recycle { .. },
            ..
        } => {}
        OrderEvent::SalvageSubmitted {
            flexfactor_gateway,
            at,
            ..
        } => facts.push(CardFact::Attempt {
            at: *at,
            gateway: flexfactor_gateway.clone(),
            flexfactor: true,
        }),
        _ => {}
    }
}
