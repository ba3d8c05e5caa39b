//! The process manager: a pure function from one committed event (with the state of its
//! aggregate after it) to the follow-ups it calls for: commands to other aggregates, effects for
//! the dispatcher (FlexFactor calls, charges, CRM notifications) and timers. The service and the
//! simulator share it.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::CredentialKind;
use crate::ids::{joined, GatewayId, OrderId, Part, SubscriptionId};
use crate::network::CardKey;
use crate::order::{CascadeOutcome, Order, OrderCommand, OrderEvent, RecurringLine, SalvageRoute};
use crate::order_type::OrderType;
use crate::ports::{ChargePurpose, ChargeRequest, SubmissionMode};
use crate::setup::Setup;
use crate::subscription::{
    AdvanceVia, CreateSubscription, RebillOutcome, RecycleFailure, Subscription,
    SubscriptionCommand, SubscriptionEvent,
};

/// How long after a salvage's expiry the first reconciliation poll runs (O8).
pub const RECONCILE_AFTER_EXPIRY: Duration = Duration::hours(1);
/// How soon an unknown outcome is reconciled (F3).
pub const RECONCILE_UNKNOWN_AFTER: Duration = Duration::minutes(5);
/// How long between inconclusive reconciliation polls.
pub const RECONCILE_RETRY_EVERY: Duration = Duration::hours(6);

/// What a CRM must be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotificationKind {
    /// O1/O4: the order is complete; fulfil it.
    OrderCompleted,
    /// O2 (and a failed rebill).
    OrderDeclined,
    /// O3: FlexFactor failed a trial completion; the order's status is unchanged.
    TrialCompletionFailed,
    /// O4, Y2: the subscription moved to its next cycle, billing on this gateway.
    SubscriptionAdvanced {
        billing_gateway: GatewayId,
        cycle: u32,
    },
    /// O5, Y4, D4.
    RecycleFailed { reason: RecycleFailure },
    /// K1.
    Chargeback,
    /// K3.
    Refunded,
}

/// A notification to the CRM, with a stable id for deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `{aggregate type}:{aggregate id}:{sequence}` of the event that caused it: stable across
    /// retries and restarts.
    pub event_id: String,
    #[serde(flatten)]
    pub kind: NotificationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    pub at: DateTime<Utc>,
}

/// An effect the dispatcher performs, driven from the committed log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Call `/evaluate` for submission `attempt` (its key is in the order's SalvageSubmitted).
    SubmitToFlexFactor {
        order_id: OrderId,
        attempt: u32,
    },
    /// Call `/capture` for submission `attempt`.
    Capture {
        order_id: OrderId,
        attempt: u32,
    },
    /// C5: `/orders/{orderId}/external-cancel`.
    ExternalCancel {
        order_id: OrderId,
        attempt: u32,
        flexfactor_gateway: GatewayId,
    },
    /// O8/F3: ask FlexFactor where submission `attempt` stands.
    ReconcileSalvage {
        order_id: OrderId,
        attempt: u32,
    },
    /// A charge on a regular gateway (cascade step or recycle re-attempt).
    Charge(ChargeRequest),
    /// The rebill of cycle `cycle` is due: bill it through the charge hook.
    BillSubscription {
        subscription_id: SubscriptionId,
        cycle: u32,
    },
    NotifyCrm(Notification),
}

/// One thing that follows from an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "follow_up", rename_all = "snake_case")]
pub enum FollowUp {
    Order {
        order_id: OrderId,
        command: OrderCommand,
    },
    Subscription {
        subscription_id: SubscriptionId,
        command: SubscriptionCommand,
    },
    Effect(Effect),
    /// Do `follow_up` at `at` (durable scheduler).
    At {
        at: DateTime<Utc>,
        then: Box<FollowUp>,
    },
}

/// Where the process manager appends follow-ups: a `Vec`, or a runtime's queue directly (the
/// simulator's, which saves moving each follow-up through a buffer).
pub trait FollowUps {
    fn push(&mut self, f: FollowUp);

    /// Whether the CRM notifications pushed here need their ids (`event_id`, `order_id`,
    /// `subscription_id`). A sink that only counts notifications by kind (the simulator's
    /// engine) says no and gets them without: `event_id` empty, no order or subscription id.
    fn notification_ids(&self) -> bool {
        true
    }

    fn push_all(&mut self, follow_ups: Vec<FollowUp>) {
        for f in follow_ups {
            self.push(f);
        }
    }
}

impl FollowUps for Vec<FollowUp> {
    fn push(&mut self, f: FollowUp) {
        Vec::push(self, f);
    }
}

impl FollowUps for VecDeque<FollowUp> {
    fn push(&mut self, f: FollowUp) {
        self.push_back(f);
    }
}

fn at(when: DateTime<Utc>, f: FollowUp) -> FollowUp {
    FollowUp::At {
        at: when,
        then: Box::new(f),
    }
}

/// `{aggregate type}:{aggregate id}:{sequence}` (a notification's `event_id`), without the
/// formatting machinery: a simulation makes millions.
fn event_id_of(aggregate_type: &str, id: &str, sequence: usize) -> String {
    joined(&[
        Part::Text(aggregate_type),
        Part::Text(":"),
        Part::Text(id),
        Part::Text(":"),
        Part::Number(sequence as u64),
    ])
}

/// The ids of a notification: its `event_id`, order id and subscription id.
type NotificationIds = (String, Option<OrderId>, Option<SubscriptionId>);

/// Pushes a notification of `kind` to `out`, with the ids `ids` gives when `out` wants them
/// ([`FollowUps::notification_ids`]).
fn notify(
    out: &mut impl FollowUps,
    kind: NotificationKind,
    ids: impl FnOnce() -> NotificationIds,
    when: DateTime<Utc>,
) {
    let (event_id, order_id, subscription_id) = if out.notification_ids() {
        ids()
    } else {
        (String::new(), None, None)
    };
    out.push(FollowUp::Effect(Effect::NotifyCrm(Notification {
        event_id,
        kind,
        order_id,
        subscription_id,
        at: when,
    })));
}

/// The subscription id of a recurring line: the order's `subscription_id` when it has one
/// recurring product, else `{order}-{product}`.
pub fn subscription_id_for(order: &Order, line: &RecurringLine) -> Option<SubscriptionId> {
    let details = order.details.as_ref()?;
    match (&details.subscription_id, details.recurring_lines.len()) {
        (Some(id), 1) => Some(id.clone()),
        _ => Some(SubscriptionId::new(joined(&[
            Part::Text(details.order_id.as_str()),
            Part::Text("-"),
            Part::Text(line.product_id.as_str()),
        ]))),
    }
}

fn create_subscriptions(
    order: &Order,
    billing: &GatewayId,
    credential: CredentialKind,
) -> Vec<FollowUp> {
    let Some(details) = &order.details else {
        return Vec::new();
    };
    if details.order_type != OrderType::NewSale {
        return Vec::new();
    }
    details
        .recurring_lines
        .iter()
        .filter_map(|line| {
            let subscription_id = subscription_id_for(order, line)?;
            Some(FollowUp::Subscription {
                subscription_id: subscription_id.clone(),
                command: SubscriptionCommand::Create(Box::new(CreateSubscription {
                    subscription_id,
                    origin_order_id: details.order_id.clone(),
                    campaign_id: details.campaign_id.clone(),
                    product_id: line.product_id.clone(),
                    price: line.price,
                    billing_gateway: billing.clone(),
                    credential,
                    terms: line.recurring,
                    card: Some(CardKey::new(details.card.ledger_key(), &details.card.bin)),
                })),
            })
        })
        .collect()
}

/// Follow-ups of an Order event. `order` is the order's state after the event.
pub fn on_order_event(
    setup: &Setup,
    order_id: &OrderId,
    sequence: usize,
    event: &OrderEvent,
    order: &Order,
) -> Vec<FollowUp> {
    let mut out = Vec::new();
    order_follow_ups(setup, order_id, sequence, event, order, &mut out);
    out
}

/// [`on_order_event`], appending the follow-ups to `out` (a buffer the caller reuses).
pub fn order_follow_ups(
    setup: &Setup,
    order_id: &OrderId,
    sequence: usize,
    event: &OrderEvent,
    order: &Order,
    out: &mut impl FollowUps,
) {
    let Some(details) = &order.details else {
        return;
    };
    // Formatted only for the events that notify the CRM (most events do not).
    let event_id = || event_id_of("order", order_id.as_str(), sequence);
    let when = event.at();
    let sub_id = || details.subscription_id.clone();
    match event {
        OrderEvent::AttemptApproved { gateway, .. } => match details.order_type {
            OrderType::NewSale => {
                out.push_all(create_subscriptions(order, gateway, CredentialKind::Token))
            }
            OrderType::Recurring | OrderType::TrialCompletion => {
                if let Some(s) = sub_id() {
                    out.push(FollowUp::Subscription {
                        subscription_id: s,
                        command: SubscriptionCommand::RecordRebill {
                            order_id: order_id.clone(),
                            outcome: RebillOutcome::Approved {
                                gateway: gateway.clone(),
                            },
                        },
                    });
                }
            }
        },
        OrderEvent::AttemptDeclined {
            facts, effective, ..
        } if details.order_type == OrderType::Recurring => {
            if let Some(s) = sub_id() {
                out.push(FollowUp::Subscription {
                    subscription_id: s,
                    command: SubscriptionCommand::RecordRebill {
                        order_id: order_id.clone(),
                        outcome: RebillOutcome::Declined {
                            facts: facts.clone(),
                            effective: effective.clone(),
                        },
                    },
                });
            }
        }
        OrderEvent::CascadeStepStarted {
            step,
            gateway,
            idempotency_key,
            ..
        } => out.push(FollowUp::Effect(Effect::Charge(ChargeRequest {
            idempotency_key: idempotency_key.clone(),
            order_id: order_id.clone(),
            subscription_id: None,
            gateway: gateway.clone(),
            amount: details.amount,
            credential: CredentialKind::Token,
            purpose: ChargePurpose::Cascade { step: *step },
        }))),
        OrderEvent::CascadeEnded { outcome, .. } => match outcome {
            CascadeOutcome::Approved { gateway } => {
                if setup.is_flexfactor(gateway) {
                    // O6: salvaged by FlexFactor: bill on the declining gateway, card number
                    // without CVV.
                    if let Some(declining) = order.declining_gateway() {
                        out.push_all(create_subscriptions(
                            order,
                            declining,
                            CredentialKind::CardNumberWithoutCvv,
                        ));
                    }
                } else {
                    out.push_all(create_subscriptions(order, gateway, CredentialKind::Token));
                }
            }
            CascadeOutcome::Declined => notify(
                out,
                NotificationKind::OrderDeclined,
                || (event_id(), Some(order_id.clone()), None),
                when,
            ),
            CascadeOutcome::Unknown { .. } => {}
        },
        OrderEvent::SalvageSubmitted { attempt, mode, .. } => {
            out.push(FollowUp::Effect(Effect::SubmitToFlexFactor {
                order_id: order_id.clone(),
                attempt: *attempt,
            }));
            if let SubmissionMode::Mit { expires_at, .. } = mode {
                // O8: a pending salvage is reconciled once its expiry has passed.
                out.push(at(
                    *expires_at + RECONCILE_AFTER_EXPIRY,
                    FollowUp::Effect(Effect::ReconcileSalvage {
                        order_id: order_id.clone(),
                        attempt: *attempt,
                    }),
                ));
            }
        }
        OrderEvent::SalvageOutcomeUnknown { attempt, .. }
        | OrderEvent::SalvageAnswerUnrecognized { attempt, .. } => {
            let is_cascade = order
                .salvage
                .as_ref()
                .is_some_and(|s| matches!(s.route, SalvageRoute::Cascade { .. }));
            if !is_cascade {
                out.push(at(
                    when + RECONCILE_UNKNOWN_AFTER,
                    FollowUp::Effect(Effect::ReconcileSalvage {
                        order_id: order_id.clone(),
                        attempt: *attempt,
                    }),
                ));
            }
        }
        OrderEvent::ReconciliationInconclusive { attempt, .. } => out.push(at(
            when + RECONCILE_RETRY_EVERY,
            FollowUp::Effect(Effect::ReconcileSalvage {
                order_id: order_id.clone(),
                attempt: *attempt,
            }),
        )),
        OrderEvent::CaptureRequested { attempt, .. } => {
            out.push(FollowUp::Effect(Effect::Capture {
                order_id: order_id.clone(),
                attempt: *attempt,
            }))
        }
        OrderEvent::ExternalCancelRequested {
            attempt,
            flexfactor_gateway,
            ..
        } => out.push(FollowUp::Effect(Effect::ExternalCancel {
            order_id: order_id.clone(),
            attempt: *attempt,
            flexfactor_gateway: flexfactor_gateway.clone(),
        })),
        OrderEvent::SalvageSucceeded { route, .. } => match route {
            SalvageRoute::Recycle {
                subscription_id, ..
            } => {
                if let Some(declined) = order.declining_gateway() {
                    out.push(FollowUp::Subscription {
                        subscription_id: subscription_id.clone(),
                        command: SubscriptionCommand::ApplySalvageOutcome {
                            order_id: order_id.clone(),
                            succeeded: true,
                            declined_gateway: declined.clone(),
                        },
                    });
                }
            }
            SalvageRoute::Rerun => match details.order_type {
                OrderType::NewSale => {
                    if let Some(declining) = order.declining_gateway() {
                        out.push_all(create_subscriptions(
                            order,
                            declining,
                            CredentialKind::CardNumberWithoutCvv,
                        ));
                    }
                }
                OrderType::TrialCompletion | OrderType::Recurring => {
                    if let (Some(s), Some(declined)) = (sub_id(), order.declining_gateway()) {
                        out.push(FollowUp::Subscription {
                            subscription_id: s,
                            command: SubscriptionCommand::ApplySalvageOutcome {
                                order_id: order_id.clone(),
                                succeeded: true,
                                declined_gateway: declined.clone(),
                            },
                        });
                    }
                }
            },
            // The cascade's end creates the subscriptions.
            SalvageRoute::Cascade { .. } => {}
        },
        OrderEvent::SalvageFailed { route, .. } => match route {
            SalvageRoute::Recycle {
                subscription_id, ..
            } => {
                if let Some(declined) = order.declining_gateway() {
                    out.push(FollowUp::Subscription {
                        subscription_id: subscription_id.clone(),
                        command: SubscriptionCommand::ApplySalvageOutcome {
                            order_id: order_id.clone(),
                            succeeded: false,
                            declined_gateway: declined.clone(),
                        },
                    });
                }
                notify(
                    out,
                    NotificationKind::OrderDeclined,
                    || {
                        (
                            event_id(),
                            Some(order_id.clone()),
                            Some(subscription_id.clone()),
                        )
                    },
                    when,
                );
            }
            SalvageRoute::Rerun => notify(
                out,
                if details.order_type == OrderType::TrialCompletion {
                    NotificationKind::TrialCompletionFailed
                } else {
                    NotificationKind::OrderDeclined
                },
                || (event_id(), Some(order_id.clone()), sub_id()),
                when,
            ),
            SalvageRoute::Cascade { .. } => {}
        },
        OrderEvent::FulfillmentRequested { .. } => notify(
            out,
            NotificationKind::OrderCompleted,
            || (event_id(), Some(order_id.clone()), sub_id()),
            when,
        ),
        OrderEvent::OrderRefunded { .. } => notify(
            out,
            NotificationKind::Refunded,
            || (event_id(), Some(order_id.clone()), None),
            when,
        ),
        OrderEvent::ChargebackRecorded { .. } => notify(
            out,
            NotificationKind::Chargeback,
            || (event_id(), Some(order_id.clone()), None),
            when,
        ),
        _ => {}
    }
}

/// Follow-ups of a Subscription event. `subscription` is its state after the event.
pub fn on_subscription_event(
    subscription_id: &SubscriptionId,
    sequence: usize,
    event: &SubscriptionEvent,
    subscription: &Subscription,
) -> Vec<FollowUp> {
    let mut out = Vec::new();
    subscription_follow_ups(subscription_id, sequence, event, subscription, &mut out);
    out
}

/// [`on_subscription_event`], appending the follow-ups to `out` (a buffer the caller reuses).
pub fn subscription_follow_ups(
    subscription_id: &SubscriptionId,
    sequence: usize,
    event: &SubscriptionEvent,
    subscription: &Subscription,
    out: &mut impl FollowUps,
) {
    let event_id = || event_id_of("subscription", subscription_id.as_str(), sequence);
    let when = event.at();
    match event {
        SubscriptionEvent::SubscriptionCreated { next_bill_at, .. } => out.push(at(
            *next_bill_at,
            FollowUp::Effect(Effect::BillSubscription {
                subscription_id: subscription_id.clone(),
                cycle: 1,
            }),
        )),
        SubscriptionEvent::RecycleAttemptScheduled {
            order_id,
            attempt,
            due_at,
            ..
        } => out.push(at(
            *due_at,
            FollowUp::Subscription {
                subscription_id: subscription_id.clone(),
                command: SubscriptionCommand::RunDueRecycleAttempt {
                    order_id: order_id.clone(),
                    attempt: *attempt,
                },
            },
        )),
        SubscriptionEvent::RecycleAttemptStarted {
            order_id,
            attempt,
            gateway,
            idempotency_key,
            ..
        } => {
            if let Some(price) = subscription.price {
                out.push(FollowUp::Effect(Effect::Charge(ChargeRequest {
                    idempotency_key: idempotency_key.clone(),
                    order_id: order_id.clone(),
                    subscription_id: Some(subscription_id.clone()),
                    gateway: gateway.clone(),
                    amount: price,
                    credential: subscription.credential.unwrap_or(CredentialKind::Token),
                    purpose: ChargePurpose::Recycle { attempt: *attempt },
                })));
            }
        }
        SubscriptionEvent::RecycleHandedToFlexFactor {
            order_id,
            attempt,
            slot,
            flexfactor_gateway,
            ..
        } => out.push(FollowUp::Order {
            order_id: order_id.clone(),
            command: OrderCommand::SubmitRecycleHandover {
                subscription_id: subscription_id.clone(),
                recycle_attempt: *attempt,
                slot: *slot,
                flexfactor_gateway: flexfactor_gateway.clone(),
            },
        }),
        SubscriptionEvent::CycleAdvanced {
            order_id,
            to_cycle,
            billing_gateway,
            via,
            next_bill_at,
            ..
        } => {
            if let AdvanceVia::Recycle { attempt } = via {
                out.push(FollowUp::Order {
                    order_id: order_id.clone(),
                    command: OrderCommand::RecordPaidByRecycle {
                        gateway: billing_gateway.clone(),
                        recycle_attempt: *attempt,
                    },
                });
            }
            notify(
                out,
                NotificationKind::SubscriptionAdvanced {
                    billing_gateway: billing_gateway.clone(),
                    cycle: *to_cycle,
                },
                || {
                    (
                        event_id(),
                        Some(order_id.clone()),
                        Some(subscription_id.clone()),
                    )
                },
                when,
            );
            out.push(at(
                *next_bill_at,
                FollowUp::Effect(Effect::BillSubscription {
                    subscription_id: subscription_id.clone(),
                    cycle: *to_cycle,
                }),
            ));
        }
        SubscriptionEvent::RecycleFailed {
            order_id, reason, ..
        } => notify(
            out,
            NotificationKind::RecycleFailed { reason: *reason },
            || {
                (
                    event_id(),
                    Some(order_id.clone()),
                    Some(subscription_id.clone()),
                )
            },
            when,
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// A sink that counts notifications by kind only.
    struct KindsOnly(Vec<FollowUp>);

    impl FollowUps for KindsOnly {
        fn push(&mut self, f: FollowUp) {
            self.0.push(f);
        }

        fn notification_ids(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_sink_that_counts_kinds_gets_notifications_without_ids() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let event = SubscriptionEvent::RecycleFailed {
            order_id: OrderId::new("c1-c2"),
            reason: RecycleFailure::Exhausted,
            at,
        };
        let id = SubscriptionId::new("c1-coaching");
        let subscription = Subscription::default();
        let full = on_subscription_event(&id, 7, &event, &subscription);
        let mut kinds = KindsOnly(Vec::new());
        subscription_follow_ups(&id, 7, &event, &subscription, &mut kinds);
        let expected = Notification {
            event_id: "subscription:c1-coaching:7".into(),
            kind: NotificationKind::RecycleFailed {
                reason: RecycleFailure::Exhausted,
            },
            order_id: Some(OrderId::new("c1-c2")),
            subscription_id: Some(id.clone()),
            at,
        };
        assert_eq!(
            full,
            [FollowUp::Effect(Effect::NotifyCrm(expected.clone()))]
        );
        let without = Notification {
            event_id: String::new(),
            order_id: None,
            subscription_id: None,
            ..expected
        };
        assert_eq!(kinds.0, [FollowUp::Effect(Effect::NotifyCrm(without))]);
    }

    #[test]
    fn event_ids_read_as_formatted() {
        for (kind, id, sequence) in [
            ("order", "c12", 0),
            ("order", "c12-c3", 7),
            ("subscription", "c1-coaching", 10),
            ("subscription", "", 1234567),
            ("order", "x", usize::MAX),
        ] {
            assert_eq!(
                event_id_of(kind, id, sequence),
                format!("{kind}:{id}:{sequence}")
            );
        }
    }
}
