//! Mapping one subscription event to its trace line.

use salvage_domain::ports::GatewayAnswer;
use salvage_domain::subscription::{AdvanceVia, SubscriptionEvent};
use salvage_domain::SubscriptionId;

use super::line::Line;
use crate::trace::TraceEntry;

/// Maps one subscription event: recycle answers and cancellations are inputs, the rest derived.
pub(super) fn subscription_line(id: &str, event: SubscriptionEvent) -> Line {
    let subscription_id = SubscriptionId::new(id);
    let recycle = |at, order_id, attempt, answer| {
        Some((
            at,
            TraceEntry::RecycleAnswer {
                subscription_id: subscription_id.clone(),
                order_id,
                attempt,
                answer,
            },
        ))
    };
    match event {
        SubscriptionEvent::RecycleAttemptDeclined {
            order_id,
            attempt,
            facts,
            at,
            ..
        } => recycle(at, order_id, attempt, GatewayAnswer::Declined(facts)),
        SubscriptionEvent::RecycleAttemptOutcomeUnknown {
            order_id,
            attempt,
            detail,
            at,
        } => recycle(at, order_id, attempt, GatewayAnswer::Unknown { detail }),
        SubscriptionEvent::CycleAdvanced {
            order_id,
            via: AdvanceVia::Recycle { attempt },
            at,
            ..
        } => recycle(
            at,
            order_id,
            attempt,
            GatewayAnswer::Approved {
                transaction_id: None,
            },
        ),
        SubscriptionEvent::SubscriptionCancelled { reason, at } => Some((
            at,
            TraceEntry::CancelSubscription {
                subscription_id: subscription_id.clone(),
                reason,
            },
        )),
        SubscriptionEvent::SubscriptionCreated { .. }
        | SubscriptionEvent::RebillDeclined { .. }
        | SubscriptionEvent::RecycleBillingStarted { .. }
        | SubscriptionEvent::RecycleAttemptScheduled { .. }
        | SubscriptionEvent::RecycleAttemptStarted { .. }
        | SubscriptionEvent::RecycleHandedToFlexFactor { .. }
        | SubscriptionEvent::RecycleAttemptBlocked { .. }
        | SubscriptionEvent::RecycleAttemptDelayed { .. }
        | SubscriptionEvent::CycleAdvanced { .. }
        | SubscriptionEvent::RecycleFailed { .. }
        | SubscriptionEvent::SalvageResultIgnored { .. } => None,
    }
}
