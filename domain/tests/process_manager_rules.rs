//! The process manager, alone and driving both aggregates end to end in memory: rules O4, O5,
//! O6, O7 (no second notification), O8 (reconciliation timer), Y1-Y3 (timers, charges,
//! hand-over), C5 (external cancel effect), S8.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use cqrs_es::Aggregate;
use salvage_domain::customer::CredentialKind;
use salvage_domain::order::*;
use salvage_domain::ports::{ChargePurpose, ChargeRequest, EvaluateAnswer, GatewayAnswer};
use salvage_domain::process_manager::*;
use salvage_domain::subscription::*;
use salvage_domain::{DeclineType, DomainServices, ManualClock, OrderId, Setup, SubscriptionId};

/// A tiny in-memory runtime: aggregates, the process manager, effects answered by scripts,
/// timers run by moving the manual clock.
struct World {
    clock: Arc<ManualClock>,
    services: DomainServices,
    orders: HashMap<OrderId, (Order, usize)>,
    subs: HashMap<SubscriptionId, (Subscription, usize)>,
    sub_events: Vec<SubscriptionEvent>,
    order_events: Vec<(OrderId, OrderEvent)>,
    queue: VecDeque<FollowUp>,
    timers: BTreeMap<(DateTime<Utc>, usize), FollowUp>,
    timer_seq: usize,
    notifications: Vec<Notification>,
    charges: Vec<ChargeRequest>,
    submissions: Vec<(OrderId, u32)>,
    cancels: Vec<OrderId>,
    /// What FlexFactor answers to /evaluate.
    ff_answer: EvaluateAnswer,
    /// Whether regular gateways approve charges.
    charges_approve: bool,
}

impl World {
    fn new(setup: Setup) -> World {
        let clock = Arc::new(ManualClock::new(t0()));
        World {
            services: DomainServices::new(Arc::new(setup), clock.clone()),
            clock,
            orders: HashMap::new(),
            subs: HashMap::new(),
            sub_events: Vec::new(),
            order_events: Vec::new(),
            queue: VecDeque::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            notifications: Vec::new(),
            charges: Vec::new(),
            submissions: Vec::new(),
            cancels: Vec::new(),
            ff_answer: EvaluateAnswer::Submitted {
                flexfactor_order_id: Some("ff-1".into()),
            },
            charges_approve: false,
        }
    }

    fn order(&mut self, id: &str, cmd: OrderCommand) -> Result<(), OrderError> {
        let id = OrderId::new(id);
        let (mut order, mut seq) = self.orders.remove(&id).unwrap_or_default();
        let result = order.decide(cmd, &self.services);
        if let Ok(events) = &result {
            for e in events.clone() {
                order.apply(e.clone());
                seq += 1;
                let follow = on_order_event(&self.services.setup, &id, seq, &e, &order);
                self.order_events.push((id.clone(), e));
                self.queue.extend(follow);
            }
        }
        self.orders.insert(id, (order, seq));
        result.map(|_| self.drain())
    }

    fn sub(
        &mut self,
        id: &SubscriptionId,
        cmd: SubscriptionCommand,
    ) -> Result<(), SubscriptionError> {
        let (mut sub, mut seq) = self.subs.remove(id).unwrap_or_default();
        let result = sub.decide(cmd, &self.services);
        if let Ok(events) = &result {
            for e in events.clone() {
                sub.apply(e.clone());
                seq += 1;
                let follow = on_subscription_event(id, seq, &e, &sub);
                self.sub_events.push(e);
                self.queue.extend(follow);
            }
        }
        self.subs.insert(id.clone(), (sub, seq));
        result.map(|_| ())
    }

    fn drain(&mut self) {
        while let Some(f) = self.queue.pop_front() {
            match f {
                FollowUp::Order { order_id, command } => {
                    if let Err(e) = self.order(order_id.as_str(), command) {
                        panic!("follow-up order command refused: {e}");
                    }
                }
                FollowUp::Subscription {
                    subscription_id,
                    command,
                } => match self.sub(&subscription_id, command) {
                    Ok(()) | Err(SubscriptionError::AlreadyExists(_)) => {}
                    Err(e) => panic!("follow-up subscription command refused: {e}"),
                },
                FollowUp::At { at, then } => {
                    self.timer_seq += 1;
                    self.timers.insert((at, self.timer_seq), *then);
                }
                FollowUp::Effect(effect) => self.effect(effect),
            }
        }
    }

    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::SubmitToFlexFactor { order_id, attempt } => {
                self.submissions.push((order_id.clone(), attempt));
                let answer = self.ff_answer.clone();
                let _ = self.order(
                    order_id.as_str(),
                    OrderCommand::RecordFlexFactorAnswer { attempt, answer },
                );
            }
            Effect::Charge(req) => {
                self.charges.push(req.clone());
                let answer = if self.charges_approve {
                    GatewayAnswer::Approved {
                        transaction_id: None,
                    }
                } else {
                    GatewayAnswer::Declined(decline(
                        req.gateway.as_str(),
                        "Issuer unavailable",
                        DeclineType::Soft,
                    ))
                };
                match req.purpose {
                    ChargePurpose::Cascade { step } => {
                        let _ = self.order(
                            req.order_id.as_str(),
                            OrderCommand::RecordCascadeStep { step, answer },
                        );
                    }
                    ChargePurpose::Recycle { attempt } => {
                        if let Some(sub) = req.subscription_id.clone() {
                            let _ = self.sub(
                                &sub,
                                SubscriptionCommand::RecordRecycleAttemptResult {
                                    order_id: req.order_id.clone(),
                                    attempt,
                                    answer,
                                },
                            );
                        }
                    }
                    ChargePurpose::Rebill { .. } => {}
                }
            }
            Effect::NotifyCrm(n) => self.notifications.push(n),
            Effect::ExternalCancel { order_id, .. } => self.cancels.push(order_id),
            Effect::Capture { .. }
            | Effect::ReconcileSalvage { .. }
            | Effect::BillSubscription { .. } => {}
        }
    }

    /// Moves the clock to `to`, running every timer due on the way, in time order.
    fn advance_to(&mut self, to: DateTime<Utc>) {
        while let Some((&(at, n), _)) = self.timers.iter().next() {
            if at > to {
                break;
            }
            let Some(f) = self.timers.remove(&(at, n)) else {
                break;
            };
            self.clock.set(at.max(self.clock_now()));
            // Only commands run here; effects due later (bills, reconciliation) are noted.
            match f {
                FollowUp::Effect(Effect::BillSubscription { .. })
                | FollowUp::Effect(Effect::ReconcileSalvage { .. }) => {}
                other => {
                    self.queue.push_back(other);
                    self.drain();
                }
            }
        }
        self.clock.set(to);
    }

    fn clock_now(&self) -> DateTime<Utc> {
        salvage_domain::Clock::now(self.clock.as_ref())
    }

    fn webhook(&mut self, order: &str, result: FlexFactorResult) {
        let _ = self.order(
            order,
            OrderCommand::ApplyFlexFactorResult {
                result,
                source: ResultSource::Webhook {
                    delivery_id: "d".into(),
                    resent: false,
                },
            },
        );
    }

    fn subscription(&self, id: &str) -> &Subscription {
        &self.subs[&SubscriptionId::new(id)].0
    }

    fn order_state(&self, id: &str) -> &Order {
        &self.orders[&OrderId::new(id)].0
    }

    fn advances(&self) -> usize {
        self.sub_events
            .iter()
            .filter(|e| matches!(e, SubscriptionEvent::CycleAdvanced { .. }))
            .count()
    }
}

fn completed() -> FlexFactorResult {
    FlexFactorResult::Completed {
        flexfactor_order_id: Some("ff-1".into()),
        confirmation_id: None,
    }
}

/// A subscription on nmi-main whose first rebill soft-declines and recycles to the
/// FlexFactor slot (re-attempt 4 of recycle-standard).
fn world_at_handover() -> World {
    let mut w = World::new(sample_setup());
    w.charges_approve = false;
    let placed = w.order(
        "o-1",
        place(recurring_sale("o-1", "nmi-main", soft_approved())),
    );
    assert!(placed.is_ok());
    assert_eq!(
        w.subscription("sub-1")
            .billing_gateway
            .as_ref()
            .map(|g| g.as_str()),
        Some("nmi-main")
    );
    w.advance_to(t0() + Duration::days(30));
    assert!(w
        .order(
            "r-1",
            place(rebill("r-1", "sub-1", "nmi-main", soft("nmi-main")))
        )
        .is_ok());
    assert_eq!(
        w.subscription("sub-1").status,
        Some(SubscriptionStatus::RecycleBilling)
    );
    w.advance_to(t0() + Duration::days(60));
    w
}

fn soft_approved() -> AttemptResult {
    AttemptResult::Approved
}

#[test]
fn y1_y2_y3_timers_charge_the_billing_gateway_then_hand_over_once() {
    let w = world_at_handover();
    let recycle_charges: Vec<_> = w
        .charges
        .iter()
        .filter(|c| matches!(c.purpose, ChargePurpose::Recycle { .. }))
        .collect();
    assert_eq!(
        recycle_charges.len(),
        3,
        "re-attempts 1-3 on the billing gateway"
    );
    assert!(recycle_charges
        .iter()
        .all(|c| c.gateway.as_str() == "nmi-main" && c.amount == usd(3999)));
    let keys: std::collections::HashSet<_> = recycle_charges
        .iter()
        .map(|c| c.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), 3, "one key per re-attempt");
    assert_eq!(
        w.submissions,
        vec![(OrderId::new("r-1"), 1)],
        "Y3: submitted once"
    );
    assert_eq!(
        w.order_state("r-1").status,
        Some(OrderStatus::SalvagePending)
    );
}

#[test]
fn o4_salvaged_rebill_advances_one_cycle_reverts_gateway_and_fulfils() {
    let mut w = world_at_handover();
    let cycle = w.subscription("sub-1").cycle;
    w.webhook("r-1", completed());
    w.webhook("r-1", completed());
    let sub = w.subscription("sub-1");
    assert_eq!(sub.cycle, cycle + 1, "exactly one cycle");
    assert_eq!(
        sub.billing_gateway.as_ref().map(|g| g.as_str()),
        Some("nmi-main"),
        "O4, S8"
    );
    assert_eq!(sub.status, Some(SubscriptionStatus::Active));
    assert_eq!(w.advances(), 1);
    let kinds: Vec<_> = w
        .notifications
        .iter()
        .filter(|n| n.order_id.as_ref().map(|o| o.as_str()) == Some("r-1"))
        .map(|n| n.kind.clone())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == NotificationKind::OrderCompleted)
            .count(),
        1,
        "O7: one notification: {kinds:?}"
    );
    assert!(kinds.iter().any(|k| matches!(k, NotificationKind::SubscriptionAdvanced { billing_gateway, .. } if billing_gateway.as_str() == "nmi-main")));
}

#[test]
fn o5_failed_rebill_salvage_is_recycle_failed() {
    let mut w = world_at_handover();
    w.webhook("r-1", FlexFactorResult::Expired);
    assert_eq!(
        w.subscription("sub-1").status,
        Some(SubscriptionStatus::RecycleFailed)
    );
    assert!(w.notifications.iter().any(|n| matches!(
        n.kind,
        NotificationKind::RecycleFailed {
            reason: RecycleFailure::FlexFactorFailed
        }
    )));
    // A late "completed" does not resurrect it.
    w.webhook("r-1", completed());
    assert_eq!(w.advances(), 0);
}

#[test]
fn o6_salvaged_new_sale_creates_subscription_on_declining_gateway_with_card_number() {
    let mut w = World::new(sample_setup());
    // stripe-eu has no cascade profile: the sale is declined, then rerun on FlexFactor.
    assert!(w
        .order(
            "o-1",
            place(recurring_sale("o-1", "stripe-eu", soft("stripe-eu")))
        )
        .is_ok());
    assert!(w.subs.is_empty());
    assert!(w
        .order(
            "o-1",
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into()
            }
        )
        .is_ok());
    w.webhook("o-1", completed());
    let sub = w.subscription("sub-1");
    assert_eq!(
        sub.billing_gateway.as_ref().map(|g| g.as_str()),
        Some("stripe-eu")
    );
    assert_eq!(sub.credential, Some(CredentialKind::CardNumberWithoutCvv));
    assert_eq!(sub.status, Some(SubscriptionStatus::Active));
}

#[test]
fn o6_cascade_salvage_also_bills_on_the_declining_gateway_never_flexfactor() {
    let mut w = World::new(sample_setup());
    w.ff_answer = EvaluateAnswer::Approved {
        flexfactor_order_id: Some("ff-9".into()),
        confirmation_id: None,
    };
    let mut cmd = recurring_sale("o-1", "nmi-main", soft("nmi-main"));
    cmd.gateway_profile = Some("atri-us".into());
    assert!(w.order("o-1", place(cmd)).is_ok());
    assert_eq!(w.order_state("o-1").status, Some(OrderStatus::Complete));
    let sub = w.subscription("sub-1");
    assert_eq!(
        sub.billing_gateway.as_ref().map(|g| g.as_str()),
        Some("nmi-main")
    );
    assert_eq!(sub.credential, Some(CredentialKind::CardNumberWithoutCvv));
}

#[test]
fn o6_subscription_from_regular_approval_keeps_a_token() {
    let mut w = World::new(sample_setup());
    w.charges_approve = true;
    // nmi-main declines, its cascade's first step nmi-backup approves.
    assert!(w
        .order(
            "o-1",
            place(recurring_sale("o-1", "nmi-main", soft("nmi-main")))
        )
        .is_ok());
    let sub = w.subscription("sub-1");
    assert_eq!(
        sub.billing_gateway.as_ref().map(|g| g.as_str()),
        Some("nmi-backup")
    );
    assert_eq!(sub.credential, Some(CredentialKind::Token));
    assert!(w.submissions.is_empty());
}

#[test]
fn c5_cascade_unknown_outcome_emits_external_cancel() {
    let mut w = World::new(sample_setup());
    w.ff_answer = EvaluateAnswer::Unknown {
        detail: "timeout".into(),
    };
    let mut cmd = new_sale("o-1", "nmi-main", Some("203.0.113.7"), soft("nmi-main"));
    cmd.gateway_profile = Some("atri-us".into());
    assert!(w.order("o-1", place(cmd)).is_ok());
    assert_eq!(w.cancels, vec![OrderId::new("o-1")]);
    assert_eq!(w.order_state("o-1").status, Some(OrderStatus::Declined));
    assert!(w
        .notifications
        .iter()
        .any(|n| n.kind == NotificationKind::OrderDeclined));
}

#[test]
fn o8_a_reconciliation_is_scheduled_after_the_expiry() {
    let s = services();
    let history = order_history(
        &s,
        vec![
            place(new_sale(
                "o-1",
                "stripe-eu",
                Some("203.0.113.7"),
                soft("stripe-eu"),
            )),
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into(),
            },
        ],
    );
    let order = order_state(&history);
    let submitted = history.last().unwrap();
    let f = on_order_event(&s.setup, &"o-1".into(), history.len(), submitted, &order);
    assert!(f.contains(&FollowUp::Effect(Effect::SubmitToFlexFactor {
        order_id: "o-1".into(),
        attempt: 1
    })));
    assert!(f.contains(&FollowUp::At {
        at: t0() + Duration::days(21) + RECONCILE_AFTER_EXPIRY,
        then: Box::new(FollowUp::Effect(Effect::ReconcileSalvage {
            order_id: "o-1".into(),
            attempt: 1
        })),
    }));
}

#[test]
fn notifications_have_stable_unique_event_ids() {
    let mut w = world_at_handover();
    w.webhook("r-1", completed());
    let ids: Vec<_> = w.notifications.iter().map(|n| n.event_id.clone()).collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    assert!(ids
        .iter()
        .all(|i| i.starts_with("order:") || i.starts_with("subscription:")));
    // The same event gives the same id when the process manager runs again (crash, retry).
    let s = &w.services;
    let (order, seq) = &w.orders[&OrderId::new("r-1")];
    let last = w
        .order_events
        .iter()
        .rev()
        .find(|(id, _)| id.as_str() == "r-1")
        .map(|(_, e)| e.clone())
        .unwrap();
    assert_eq!(
        on_order_event(&s.setup, &"r-1".into(), *seq, &last, order),
        on_order_event(&s.setup, &"r-1".into(), *seq, &last, order)
    );
}

#[test]
fn follow_ups_serialize_for_the_outbox() {
    let w = world_at_handover();
    let (order, seq) = &w.orders[&OrderId::new("r-1")];
    let (_, e) = w
        .order_events
        .iter()
        .rev()
        .find(|(id, _)| id.as_str() == "r-1")
        .unwrap();
    for f in on_order_event(&w.services.setup, &"r-1".into(), *seq, e, order) {
        let json = serde_json::to_string(&f).unwrap();
        let back: FollowUp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
    }
}
