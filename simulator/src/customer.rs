//! The driver of one customer's timeline: the gateway and FlexFactor models answer the
//! runtime's effects, the CRM's policy (reruns, cancelling after a chargeback) acts on events, and
//! everything that happens is counted into the variant's [`Tally`].

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use rand::RngExt;
use salvage_domain::customer::{CardToken, CredentialKind, Customer, OrderItem};
use salvage_domain::network::{CardFact, CardNetwork, GatewayFacts, NetworkRule};
use salvage_domain::order::{
    AttemptResult, CascadeOutcome, FlexFactorResult, IgnoredBecause, Order, OrderCommand,
    OrderError, OrderEvent, OrderStatus, ResultSource, SalvageRoute, SalvageState,
};
use salvage_domain::ports::{ChargePurpose, EvaluateAnswer, SubmissionMode};
use salvage_domain::process_manager::{Effect, FollowUp, FollowUps};
use salvage_domain::routing::{RecycleSlot, RecycleTarget};
use salvage_domain::subscription::{
    AdvanceVia, Rebill, RebillParts, Subscription, SubscriptionCommand, SubscriptionEvent,
    SubscriptionStatus,
};
use salvage_domain::{
    DeclineFacts, DeclineType, FlexFactorOrderId, GatewayId, OrderId, OrderType, SubscriptionId,
};

use crate::flexfactor_model::{AsyncKind, AsyncOutcome, AsyncResult, FlexFactorModel};
use crate::gateway_model::{ChargedCard, GatewayModel, Purpose};
use crate::names::{
    advance_name, failure_name, id_of, ignored_name, notification_name, order_error_name,
    recycle_failure_name, subscription_error_name,
};
use crate::network_fees::{self, Avoided};
use crate::population::CustomerProfile;
use crate::recorded::Recorded;
use crate::rng::{stream, Site};
use crate::runtime::{Driver, Refused, Store};
use crate::scenario::Scenario;
use crate::tally::{add_daily, bump, Tally};
use crate::variant::Variant;

/// What the engine keeps about one order of the customer.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderInfo {
    /// 0 for the sale, n for the rebill of cycle n: the order part of its draw sites.
    key: u32,
    declined_at: Option<DateTime<Utc>>,
    status: Option<OrderStatus>,
    advanced: u32,
    failed: u32,
    recovered: u32,
}

/// The driver of one customer's runtime: models answer effects, events are counted.
pub(crate) struct CustomerDriver<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) gateways: &'a GatewayModel,
    pub(crate) flexfactor: &'a FlexFactorModel,
    pub(crate) variant: &'a Variant,
    pub(crate) seed: u64,
    pub(crate) start: DateTime<Utc>,
    pub(crate) horizon_days: usize,
    pub(crate) profile: &'a CustomerProfile,
    pub(crate) customer: Customer,
    pub(crate) card: CardToken,
    pub(crate) tally: &'a mut Tally,
    pub(crate) orders: OrderInfos,
    pub(crate) outcomes: BTreeMap<(OrderId, u32), AsyncOutcome>,
    pub(crate) subscriptions: Vec<SubscriptionId>,
    pub(crate) record: Option<&'a mut Vec<Recorded>>,
    /// The card's issuer has said it will never approve it (Visa category 1, MAC 03, 21 or
    /// 99), and nothing approved it since: the models approve it with
    /// `never_retry_approval_factor`.
    pub(crate) issuer_refuses: bool,
    /// Set while the customer's run is the prefix the variants share ([`Prefix`]).
    pub(crate) prefix: Option<Prefix>,
}

/// The part of a customer's run every variant of a scenario shares: from the sale up to (not
/// including) the first attempt the models decline. Until then only approvals happen (the sale,
/// the subscription, its rebills), and what those decide and count reads nothing a variant
/// changes (FlexFactor's options, recycle profiles, the network rules, the CRM's reruns, the
/// FlexFactor model): the variants run it once, then each continues from a copy of its state
/// (see `engine::run_seeds`). The driver checks that as it goes: any other event, effect or
/// refusal voids the prefix (the variants then run the customer from the start).
#[derive(Debug, Default)]
pub(crate) struct Prefix {
    /// The bill whose first attempt the gateway model declines: where the variants part. Not
    /// performed (nothing of it is counted); each variant performs it again.
    pub(crate) halted: Option<Effect>,
    /// Something the variants may not share happened: the prefix is void.
    pub(crate) void: bool,
}

impl Prefix {
    fn order_event(&mut self, event: &OrderEvent) {
        if !matches!(
            event,
            OrderEvent::OrderPlaced { .. }
                | OrderEvent::AttemptApproved { .. }
                | OrderEvent::FulfillmentRequested { .. }
        ) {
            self.void = true;
        }
    }

    fn subscription_event(&mut self, event: &SubscriptionEvent) {
        if !matches!(
            event,
            SubscriptionEvent::SubscriptionCreated { .. }
                | SubscriptionEvent::CycleAdvanced {
                    via: AdvanceVia::Rebill,
                    ..
                }
        ) {
            self.void = true;
        }
    }
}

/// The engine's records of a customer's orders (a handful: a linear search is the fastest,
/// from the newest, which most events are about).
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderInfos(Vec<(OrderId, OrderInfo)>);

impl OrderInfos {
    fn get(&self, id: &OrderId) -> Option<&OrderInfo> {
        self.0.iter().rev().find(|(k, _)| k == id).map(|(_, i)| i)
    }

    /// The record of `id`, created on first sight.
    fn entry(&mut self, id: &OrderId) -> &mut OrderInfo {
        let at = match self.0.iter().rposition(|(k, _)| k == id) {
            Some(at) => at,
            None => {
                self.0.push((id.clone(), OrderInfo::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }

    pub(crate) fn insert(&mut self, id: OrderId, info: OrderInfo) {
        *self.entry(&id) = info;
    }
}

fn route_index(route: &SalvageRoute) -> usize {
    match route {
        SalvageRoute::Cascade { .. } => 0,
        SalvageRoute::Rerun => 1,
        SalvageRoute::Recycle { .. } => 2,
    }
}

fn slot_index(route: &SalvageRoute) -> Option<usize> {
    match route {
        SalvageRoute::Recycle { slot, .. } => Some(match slot {
            RecycleSlot::Attempts4To6 => 0,
            RecycleSlot::Attempts7To9 => 1,
            RecycleSlot::Final => 2,
        }),
        _ => None,
    }
}

impl<'a> CustomerDriver<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        scenario: &'a Scenario,
        seed: u64,
        gateways: &'a GatewayModel,
        flexfactor: &'a FlexFactorModel,
        variant: &'a Variant,
        profile: &'a CustomerProfile,
        tally: &'a mut Tally,
        record: Option<&'a mut Vec<Recorded>>,
    ) -> Self {
        CustomerDriver {
            scenario,
            gateways,
            flexfactor,
            variant,
            seed,
            start: scenario.start,
            horizon_days: scenario.spec.horizon_days as usize,
            customer: profile.customer(),
            card: profile.card(),
            profile,
            tally,
            orders: OrderInfos::default(),
            outcomes: BTreeMap::new(),
            subscriptions: Vec::new(),
            record,
            issuer_refuses: false,
            prefix: None,
        }
    }
}

/// What kind of attempt the network rules stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    CascadeStep,
    CascadeFlexFactor,
    Rerun,
    RecycleReattempt,
    RecycleHandover,
}

impl CustomerDriver<'_> {
    fn key(&self, order: &OrderId) -> u32 {
        self.orders.get(order).map(|i| i.key).unwrap_or(0)
    }

    fn day(&self, at: DateTime<Utc>) -> usize {
        (((at - self.start).num_seconds().max(0) / 86_400) as usize).min(self.horizon_days)
    }

    /// The customer's card as the models see it now.
    fn charged_card(&self) -> ChargedCard {
        ChargedCard {
            network: self.profile.network,
            approval_factor: if self.issuer_refuses {
                self.scenario.spec.gateways.never_retry_approval_factor
            } else {
                1.0
            },
        }
    }

    /// Whether a decline of the customer's card says the issuer will never approve it: Visa
    /// category 1 (from the setup's code tables when the gateway gave none, N6), Mastercard
    /// advice 03, 21 or 99.
    fn says_never(&self, facts: &DeclineFacts) -> bool {
        match self.profile.network {
            CardNetwork::Visa => {
                let setup = &self.variant.setup;
                let category = facts.visa_category.map(|c| c.0).unwrap_or_else(|| {
                    let processor = setup.processor(&facts.gateway);
                    setup
                        .network_rules
                        .tables()
                        .category(processor, &facts.response_code)
                });
                category == 1
            }
            CardNetwork::Mastercard => facts
                .mastercard_advice_code
                .as_ref()
                .is_some_and(|m| matches!(m.0.trim().parse::<u8>(), Ok(3 | 21 | 99))),
            CardNetwork::Other => false,
        }
    }

    /// The card was declined: its issuer may have said never.
    fn card_declined(&mut self, facts: &DeclineFacts) {
        if !self.issuer_refuses && self.says_never(facts) {
            self.issuer_refuses = true;
        }
    }

    fn rng(&self, site: Site) -> rand::rngs::ChaCha8Rng {
        stream(self.seed, self.profile.index, site)
    }

    /// The CRM reruns a soft-declined sale (or trial completion) on FlexFactor, with the
    /// configured probability, after the configured delay (R1-R5).
    fn maybe_rerun(
        &mut self,
        id: &OrderId,
        order: &Order,
        share: f64,
        at: DateTime<Utc>,
        out: &mut VecDeque<FollowUp>,
    ) {
        let Some(gateway) = &self.variant.rerun_gateway else {
            return;
        };
        let crm = &self.variant.crm;
        let soft = order
            .last_decline
            .as_ref()
            .is_some_and(|d| d.may_go_to_flexfactor());
        if share <= 0.0
            || !soft
            || (order.salvage_attempts > 0 && !crm.rerun_after_cascade_flexfactor)
        {
            return;
        }
        let key = self.key(id);
        if !self.rng(Site::Rerun { order: key }).random_bool(share) {
            return;
        }
        if key == 0 {
            self.tally.reruns.requested_for_new_sales += 1;
        } else {
            self.tally.reruns.requested_for_trial_completions += 1;
        }
        out.push(FollowUp::At {
            at: at + Duration::hours(i64::from(crm.rerun_delay_hours)),
            then: Box::new(FollowUp::Order {
                order_id: id.clone(),
                command: OrderCommand::RequestRerun {
                    gateway: gateway.clone(),
                },
            }),
        });
    }

    /// An attempt the network rules forbid, counted by kind and rule with its fee into
    /// `blocked` (guard on: not made, N7) or `unguarded` (guard off: made). Only attempts on
    /// regular gateways are priced: whether FlexFactor's attempts on a card are fined, and whose
    /// fee they would be, is not public (N9).
    fn forbidden(
        &mut self,
        made: bool,
        kind: Blocked,
        rule: NetworkRule,
        facts: &[CardFact],
        at: DateTime<Utc>,
    ) {
        let n = &mut self.tally.network;
        let f = if made {
            &mut n.unguarded
        } else {
            &mut n.blocked
        };
        let counts = match kind {
            Blocked::CascadeStep => &mut f.cascade_steps,
            Blocked::CascadeFlexFactor => &mut f.cascade_flexfactor,
            Blocked::Rerun => &mut f.reruns,
            Blocked::RecycleReattempt => &mut f.recycle_reattempts,
            Blocked::RecycleHandover => &mut f.recycle_handovers,
        };
        bump(counts, rule.as_str());
        if !matches!(kind, Blocked::CascadeStep | Blocked::RecycleReattempt) {
            return;
        }
        match network_fees::avoided(rule, facts, at) {
            Avoided::Fee(cents) => *f.fees_usd_minor.entry(rule.as_str()).or_default() += cents,
            Avoided::Unpriced => f.n3_unpriced += 1,
            Avoided::NoFee => {}
        }
    }

    /// The kind of an order's attempt the guard blocks (or would).
    fn order_attempt(&self, gateway: &GatewayId, step: Option<u32>) -> Blocked {
        match step {
            Some(_) if self.variant.setup.is_flexfactor(gateway) => Blocked::CascadeFlexFactor,
            Some(_) => Blocked::CascadeStep,
            None => Blocked::Rerun,
        }
    }

    /// The kind of a subscription's re-attempt the guard blocks (or would): the state still
    /// names its target.
    fn recycle_attempt(subscription: &Subscription) -> Blocked {
        let handover = subscription
            .recycle
            .as_ref()
            .and_then(|r| r.next_target.as_ref())
            .is_some_and(|t| matches!(t, RecycleTarget::FlexFactor { .. }));
        if handover {
            Blocked::RecycleHandover
        } else {
            Blocked::RecycleReattempt
        }
    }

    /// A salvaged order may be charged back or refunded later (K1-K3).
    fn after_sale(&mut self, id: &OrderId, at: DateTime<Utc>, out: &mut VecDeque<FollowUp>) {
        let spec = &self.scenario.spec.after_sale;
        if spec.chargeback_share + spec.refund_share <= 0.0 {
            return;
        }
        let mut rng = self.rng(Site::AfterSale {
            order: self.key(id),
        });
        let u: f64 = rng.random();
        let (result, [lo, hi]) = if u < spec.chargeback_share {
            (FlexFactorResult::Chargeback, spec.chargeback_delay_days)
        } else if u < spec.chargeback_share + spec.refund_share {
            (FlexFactorResult::Refunded, spec.refund_delay_days)
        } else {
            return;
        };
        let seconds = rng.random_range(i64::from(lo) * 86_400..=i64::from(hi) * 86_400);
        out.push(FollowUp::At {
            at: at + Duration::seconds(seconds),
            then: Box::new(FollowUp::Order {
                order_id: id.clone(),
                command: OrderCommand::ApplyFlexFactorResult {
                    source: ResultSource::Webhook {
                        delivery_id: {
                            let mut d = id_of("whk-", id.as_str(), None);
                            d.push('-');
                            d.push_str(result.name());
                            d
                        },
                        resent: false,
                    },
                    result,
                },
            }),
        });
    }

    fn submit(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        order_id: OrderId,
        attempt: u32,
        out: &mut VecDeque<FollowUp>,
    ) {
        let Some(salvage) = store
            .order(&order_id)
            .and_then(|o| o.salvage.as_ref())
            .filter(|s| s.attempt == attempt)
        else {
            return;
        };
        let ff_id = FlexFactorOrderId::new(id_of("ff-", order_id.as_str(), Some(attempt.into())));
        let mut rng = self.rng(Site::FlexFactor {
            order: self.key(&order_id),
            attempt,
        });
        let model = &self.flexfactor;
        let (answer, later) = match &salvage.mode {
            SubmissionMode::Cit { .. } => {
                let factor = self.charged_card().approval_factor;
                let answer = if model.cascade_approves(factor, &mut rng) {
                    EvaluateAnswer::Approved {
                        flexfactor_order_id: Some(ff_id),
                        confirmation_id: None,
                    }
                } else {
                    EvaluateAnswer::Declined {
                        flexfactor_order_id: Some(ff_id),
                    }
                };
                (answer, None)
            }
            SubmissionMode::Mit { expires_at, .. } => {
                let kind = match &salvage.route {
                    SalvageRoute::Recycle { slot, .. } => AsyncKind::Recycle(*slot),
                    _ => AsyncKind::Rerun,
                };
                let factor = self.charged_card().approval_factor;
                let outcome = model.asynchronous(kind, now, *expires_at, factor, &mut rng);
                self.outcomes.insert((order_id.clone(), attempt), outcome);
                let later = (!outcome.webhook_lost).then(|| {
                    let result = match outcome.result {
                        AsyncResult::Completed { .. } => FlexFactorResult::Completed {
                            flexfactor_order_id: Some(ff_id.clone()),
                            confirmation_id: None,
                        },
                        AsyncResult::Expired { .. } => FlexFactorResult::Expired,
                    };
                    FollowUp::At {
                        at: outcome.result.at(),
                        then: Box::new(FollowUp::Order {
                            order_id: order_id.clone(),
                            command: OrderCommand::ApplyFlexFactorResult {
                                result,
                                source: ResultSource::Webhook {
                                    delivery_id: id_of(
                                        "whk-",
                                        order_id.as_str(),
                                        Some(attempt.into()),
                                    ),
                                    resent: false,
                                },
                            },
                        }),
                    }
                });
                (
                    EvaluateAnswer::Submitted {
                        flexfactor_order_id: Some(ff_id),
                    },
                    later,
                )
            }
        };
        out.push(FollowUp::Order {
            order_id,
            command: OrderCommand::RecordFlexFactorAnswer { attempt, answer },
        });
        out.extend(later);
    }

    fn reconcile(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        order_id: OrderId,
        attempt: u32,
        out: &mut VecDeque<FollowUp>,
    ) {
        let open = store
            .order(&order_id)
            .and_then(|o| o.salvage.as_ref())
            .is_some_and(|s| s.attempt == attempt && s.state.is_open());
        if !open {
            return;
        }
        let result = match self.outcomes.get(&(order_id.clone(), attempt)) {
            Some(o) if o.result.at() <= now => {
                self.tally.reconciled_by_poll += 1;
                match o.result {
                    AsyncResult::Completed { .. } => FlexFactorResult::Completed {
                        flexfactor_order_id: None,
                        confirmation_id: None,
                    },
                    AsyncResult::Expired { .. } => FlexFactorResult::Expired,
                }
            }
            _ => FlexFactorResult::StillPending,
        };
        out.push(FollowUp::Order {
            order_id,
            command: OrderCommand::ApplyFlexFactorResult {
                result,
                source: ResultSource::StatusPoll,
            },
        });
    }

    fn bill(
        &mut self,
        store: &Store,
        subscription_id: SubscriptionId,
        cycle: u32,
        out: &mut VecDeque<FollowUp>,
    ) {
        let Some(sub) = store.subscription(&subscription_id) else {
            return;
        };
        if !matches!(
            sub.status,
            Some(SubscriptionStatus::Trial | SubscriptionStatus::Active)
        ) {
            return;
        }
        let order_type = sub.rebill_order_type();
        let (Some(gateway), Some(price), Some(campaign), Some(product)) = (
            &sub.billing_gateway,
            sub.price,
            &sub.campaign_id,
            &sub.product_id,
        ) else {
            return;
        };
        if sub.cycle != cycle {
            return;
        }
        let credential = sub.credential.unwrap_or(CredentialKind::Token);
        let result = self.gateways.attempt(
            gateway,
            Purpose::Rebill,
            credential,
            self.charged_card(),
            &mut self.rng(Site::Rebill { cycle }),
        );
        if let Some(prefix) = &mut self.prefix {
            if matches!(result, AttemptResult::Declined(_)) {
                // The variants part here: each bills this cycle itself.
                prefix.halted = Some(Effect::BillSubscription {
                    subscription_id,
                    cycle,
                });
                return;
            }
        }
        let subs = &mut self.tally.subscriptions;
        if order_type == OrderType::TrialCompletion {
            subs.trial_completions += 1;
        } else {
            subs.rebills += 1;
        }
        subs.rebills_minor += price.amount_minor;
        // The domain's one rebill builder, as the service's: a trial's rebill completes it (O3).
        let parts = RebillParts {
            campaign_id: campaign.clone(),
            customer: self.customer.clone(),
            card: self.card.clone(),
            items: vec![OrderItem {
                product_id: product.clone(),
                quantity: 1,
                price_minor: price.amount_minor,
            }],
            amount: price,
        };
        let rebill = Rebill {
            order_id: None,
            amount: Some(price),
            gateway: gateway.clone(),
            result,
        };
        let place = sub.rebill_order(&subscription_id, parts, rebill);
        let order_id = place.order_id.clone();
        self.orders.insert(
            order_id.clone(),
            OrderInfo {
                key: cycle,
                ..OrderInfo::default()
            },
        );
        out.push(FollowUp::Order {
            order_id,
            command: OrderCommand::Place(Box::new(place)),
        });
    }

    /// The horizon is reached: count what stands, and audit the salvaged money from the final
    /// states of the orders.
    pub(crate) fn finish(&mut self, store: &Store) {
        for held in store.orders.values() {
            let order = &held.state;
            let (Some(details), Some(status)) = (&order.details, order.status) else {
                continue;
            };
            bump(
                self.tally
                    .orders_at_horizon
                    .entry(details.order_type.as_str())
                    .or_default(),
                status.as_str(),
            );
            let Some(s) = &order.salvage else {
                continue;
            };
            let r = route_index(&s.route);
            let slot = slot_index(&s.route);
            for t in std::iter::once(&mut self.tally.routes[r])
                .chain(slot.map(|i| &mut self.tally.slots[i]))
            {
                if s.state.is_open() {
                    t.pending_at_horizon += 1;
                }
                if s.state == SalvageState::Succeeded {
                    t.audit_salvaged += 1;
                    t.audit_salvaged_minor += s.amount.amount_minor;
                }
            }
        }
        for held in store.subscriptions.values() {
            if let Some(status) = held.state.status {
                bump(
                    &mut self.tally.subscriptions.status_at_horizon,
                    status.as_str(),
                );
            }
        }
    }
}

impl Driver for CustomerDriver<'_> {
    fn effect(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        effect: Effect,
        out: &mut VecDeque<FollowUp>,
    ) {
        if let Some(prefix) = &mut self.prefix {
            if !matches!(
                effect,
                Effect::BillSubscription { .. } | Effect::NotifyCrm(_)
            ) {
                prefix.void = true;
            }
        }
        match effect {
            Effect::SubmitToFlexFactor { order_id, attempt } => {
                self.submit(store, now, order_id, attempt, out)
            }
            Effect::ReconcileSalvage { order_id, attempt } => {
                self.reconcile(store, now, order_id, attempt, out)
            }
            Effect::Charge(req) => match req.purpose {
                ChargePurpose::Cascade { step } => {
                    let answer = self.gateways.answer(
                        &req.gateway,
                        Purpose::Cascade,
                        req.credential,
                        self.charged_card(),
                        &mut self.rng(Site::CascadeStep { step }),
                    );
                    out.push(FollowUp::Order {
                        order_id: req.order_id,
                        command: OrderCommand::RecordCascadeStep { step, answer },
                    });
                }
                ChargePurpose::Recycle { attempt } => {
                    self.tally.recycle.gateway_reattempts += 1;
                    let cycle = self.key(&req.order_id);
                    let answer = self.gateways.answer(
                        &req.gateway,
                        Purpose::Recycle { attempt },
                        req.credential,
                        self.charged_card(),
                        &mut self.rng(Site::Recycle { cycle, attempt }),
                    );
                    if let Some(subscription_id) = req.subscription_id {
                        out.push(FollowUp::Subscription {
                            subscription_id,
                            command: SubscriptionCommand::RecordRecycleAttemptResult {
                                order_id: req.order_id,
                                attempt,
                                answer,
                            },
                        });
                    }
                }
                ChargePurpose::Rebill { .. } => {}
            },
            Effect::BillSubscription {
                subscription_id,
                cycle,
            } => self.bill(store, subscription_id, cycle, out),
            Effect::NotifyCrm(n) => bump(&mut self.tally.notifications, notification_name(&n.kind)),
            Effect::ExternalCancel { .. } => self.tally.cascade.external_cancels += 1,
            // The model never answers CAPTURE REQUIRED.
            Effect::Capture { .. } => {}
        }
    }

    fn order_event(
        &mut self,
        id: &OrderId,
        event: &OrderEvent,
        order: &Order,
        out: &mut VecDeque<FollowUp>,
    ) {
        if let Some(record) = self.record.as_deref_mut() {
            record.push(Recorded::Order(id.clone(), event.clone()));
        }
        if let Some(prefix) = &mut self.prefix {
            prefix.order_event(event);
        }
        match event {
            OrderEvent::AttemptDeclined { facts, .. }
            | OrderEvent::CascadeStepDeclined { facts, .. } => self.card_declined(facts),
            OrderEvent::AttemptApproved { .. }
            | OrderEvent::CascadeEnded {
                outcome: CascadeOutcome::Approved { .. },
                ..
            }
            | OrderEvent::SalvageSucceeded { .. }
            | OrderEvent::PaidByRecycle { .. } => self.issuer_refuses = false,
            _ => {}
        }
        let Some(details) = &order.details else {
            return;
        };
        let amount = details.amount.amount_minor;
        let order_type = details.order_type;
        let crm = &self.variant.crm;
        match event {
            OrderEvent::AttemptApproved { .. } => {
                self.tally.collected_minor += amount;
                match order_type {
                    OrderType::NewSale => {
                        self.tally.new_sales.approved += 1;
                        self.tally.new_sales.approved_minor += amount;
                    }
                    OrderType::Recurring => self.tally.subscriptions.rebills_approved += 1,
                    OrderType::TrialCompletion => {
                        self.tally.subscriptions.trial_completions_approved += 1
                    }
                }
            }
            OrderEvent::AttemptDeclined { effective, at, .. } => {
                self.orders.entry(id).declined_at.get_or_insert(*at);
                let soft = effective.decline_type == DeclineType::Soft;
                match order_type {
                    OrderType::NewSale => {
                        let s = &mut self.tally.new_sales;
                        if soft {
                            s.declined_soft += 1;
                        } else {
                            s.declined_hard += 1;
                        }
                        s.declined_minor += amount;
                    }
                    OrderType::Recurring => {
                        let s = &mut self.tally.subscriptions;
                        s.declined_minor += amount;
                        if soft {
                            s.rebills_declined_soft += 1;
                        } else {
                            s.rebills_declined_hard += 1;
                        }
                    }
                    OrderType::TrialCompletion => {
                        self.tally.subscriptions.trial_completions_declined += 1;
                        self.tally.subscriptions.declined_minor += amount;
                        let share = crm.rerun_trial_share;
                        self.maybe_rerun(id, order, share, *at, out);
                    }
                }
            }
            OrderEvent::CascadeStarted { .. } => self.tally.cascade.started += 1,
            OrderEvent::CascadeSkipped { reason, at } => {
                bump(&mut self.tally.cascade.skipped, reason.as_str());
                if order.status == Some(OrderStatus::Declined) {
                    let share = crm.rerun_share;
                    self.maybe_rerun(id, order, share, *at, out);
                }
            }
            OrderEvent::CascadeEnded { outcome, at } => match outcome {
                CascadeOutcome::Approved { gateway }
                    if !self.variant.setup.is_flexfactor(gateway) =>
                {
                    let c = &mut self.tally.cascade;
                    c.approved_by_regular_gateway += 1;
                    c.approved_by_regular_gateway_minor += amount;
                    self.tally.collected_minor += amount;
                    let day = self.day(*at);
                    add_daily(&mut self.tally.daily_gateway_minor, day, amount);
                }
                CascadeOutcome::Declined => {
                    self.tally.cascade.ended_declined += 1;
                    let share = crm.rerun_share;
                    self.maybe_rerun(id, order, share, *at, out);
                }
                _ => {}
            },
            OrderEvent::SalvageSubmitted { route, amount, .. } => {
                let r = route_index(route);
                for t in std::iter::once(&mut self.tally.routes[r])
                    .chain(slot_index(route).map(|i| &mut self.tally.slots[i]))
                {
                    t.submitted += 1;
                    t.submitted_minor += amount.amount_minor;
                }
            }
            OrderEvent::SalvageSucceeded { route, at, .. } => {
                let info = self.orders.entry(id);
                info.recovered += 1;
                if info.recovered > 1 {
                    self.tally.invariants.recovered_twice += 1;
                }
                let from_decline = info.declined_at.map(|d| (*at - d).num_seconds());
                let from_submission = order
                    .salvage
                    .as_ref()
                    .map(|s| (*at - s.submitted_at).num_seconds());
                let r = route_index(route);
                let day = self.day(*at);
                for t in std::iter::once(&mut self.tally.routes[r])
                    .chain(slot_index(route).map(|i| &mut self.tally.slots[i]))
                {
                    t.recovered += 1;
                    t.recovered_minor += amount;
                    if let Some(s) = from_decline {
                        t.from_decline.record(s);
                    }
                    if let Some(s) = from_submission {
                        t.from_submission.record(s);
                    }
                }
                add_daily(&mut self.tally.daily_flexfactor_minor[r], day, amount);
                self.tally.collected_minor += amount;
                self.after_sale(id, *at, out);
            }
            OrderEvent::SalvageFailed { route, reason, .. } => {
                let r = route_index(route);
                let name = failure_name(reason);
                for t in std::iter::once(&mut self.tally.routes[r])
                    .chain(slot_index(route).map(|i| &mut self.tally.slots[i]))
                {
                    bump(&mut t.failed, name);
                }
                // The status before this event: kept below for trial completions only.
                let status_before = self.orders.get(id).and_then(|i| i.status);
                if order_type == OrderType::TrialCompletion && order.status != status_before {
                    self.tally.invariants.trial_status_changed_by_failure += 1;
                }
            }
            OrderEvent::PaidByRecycle { at, .. } => {
                let rc = &mut self.tally.recycle;
                rc.recovered_by_gateway += 1;
                rc.recovered_by_gateway_minor += amount;
                self.tally.collected_minor += amount;
                let day = self.day(*at);
                add_daily(&mut self.tally.daily_gateway_minor, day, amount);
            }
            OrderEvent::ChargebackRecorded { .. } => {
                let a = &mut self.tally.after_sale;
                a.chargebacks_recorded += 1;
                a.chargebacks_recorded_minor += amount;
                if let Some(s) = &order.salvage {
                    self.tally.routes[route_index(&s.route)].chargebacks += 1;
                    if let Some(i) = slot_index(&s.route) {
                        self.tally.slots[i].chargebacks += 1;
                    }
                }
                if crm.cancel_on_chargeback {
                    for subscription_id in &self.subscriptions {
                        out.push(FollowUp::Subscription {
                            subscription_id: subscription_id.clone(),
                            command: SubscriptionCommand::Cancel {
                                reason: "chargeback".into(),
                            },
                        });
                    }
                }
            }
            OrderEvent::OrderRefunded { .. } => {
                let a = &mut self.tally.after_sale;
                a.refunds += 1;
                a.refunds_minor += amount;
                if let Some(s) = &order.salvage {
                    self.tally.routes[route_index(&s.route)].refunds += 1;
                    if let Some(i) = slot_index(&s.route) {
                        self.tally.slots[i].refunds += 1;
                    }
                }
            }
            OrderEvent::AttemptBlocked {
                gateway,
                step,
                rule,
                at,
                ..
            } => {
                let kind = self.order_attempt(gateway, *step);
                self.forbidden(false, kind, *rule, &order.card_facts, *at);
            }
            OrderEvent::ResultIgnored { reason, .. } => match reason {
                IgnoredBecause::ChargebacksNotIncluded => {
                    self.tally.after_sale.chargebacks_ignored += 1
                }
                other => bump(&mut self.tally.results_ignored, ignored_name(other)),
            },
            _ => {}
        }
        if order_type == OrderType::TrialCompletion {
            // Only O3 needs the status before an event.
            self.orders.entry(id).status = order.status;
        }
    }

    fn subscription_event(
        &mut self,
        id: &SubscriptionId,
        event: &SubscriptionEvent,
        subscription: &Subscription,
        _out: &mut VecDeque<FollowUp>,
    ) {
        if let Some(record) = self.record.as_deref_mut() {
            record.push(Recorded::Subscription(id.clone(), event.clone()));
        }
        if let Some(prefix) = &mut self.prefix {
            prefix.subscription_event(event);
        }
        match event {
            SubscriptionEvent::RecycleAttemptDeclined { facts, .. } => self.card_declined(facts),
            SubscriptionEvent::CycleAdvanced { .. } => self.issuer_refuses = false,
            _ => {}
        }
        let subs = &mut self.tally.subscriptions;
        match event {
            SubscriptionEvent::SubscriptionCreated {
                credential, status, ..
            } => {
                subs.created += 1;
                match credential {
                    CredentialKind::Token => subs.with_token += 1,
                    CredentialKind::CardNumberWithoutCvv => subs.with_card_number_without_cvv += 1,
                }
                if *status == SubscriptionStatus::Trial {
                    subs.trials += 1;
                }
                self.subscriptions.push(id.clone());
            }
            SubscriptionEvent::RecycleBillingStarted { .. } => self.tally.recycle.started += 1,
            SubscriptionEvent::CycleAdvanced { order_id, via, .. } => {
                bump(&mut subs.advanced, advance_name(via));
                let info = self.orders.entry(order_id);
                info.advanced += 1;
                if info.advanced > 1 {
                    self.tally.invariants.advanced_twice_same_cycle += 1;
                }
                if info.failed > 0 {
                    self.tally.invariants.advanced_and_failed_same_cycle += 1;
                }
            }
            SubscriptionEvent::RecycleFailed {
                order_id, reason, ..
            } => {
                bump(&mut self.tally.recycle.failed, recycle_failure_name(reason));
                let info = self.orders.entry(order_id);
                info.failed += 1;
                if info.advanced > 0 {
                    self.tally.invariants.advanced_and_failed_same_cycle += 1;
                }
            }
            SubscriptionEvent::SubscriptionCancelled { .. } => subs.cancelled += 1,
            SubscriptionEvent::RecycleAttemptBlocked { rule, at, .. } => {
                let kind = Self::recycle_attempt(subscription);
                self.forbidden(false, kind, *rule, &subscription.card_facts, *at);
            }
            SubscriptionEvent::RecycleAttemptDelayed { until, at, .. } => {
                let n = &mut self.tally.network;
                n.delayed += 1;
                n.delayed_seconds += (*until - *at).num_seconds().max(0);
            }
            _ => {}
        }
    }

    fn order_attempt_unguarded(&mut self, _order_id: &OrderId, event: &OrderEvent, order: &Order) {
        if let OrderEvent::AttemptBlocked {
            gateway,
            step,
            rule,
            at,
            ..
        } = event
        {
            let kind = self.order_attempt(gateway, *step);
            self.forbidden(true, kind, *rule, &order.card_facts, *at);
        }
    }

    fn subscription_attempt_unguarded(
        &mut self,
        _subscription_id: &SubscriptionId,
        event: &SubscriptionEvent,
        subscription: &Subscription,
    ) {
        match event {
            SubscriptionEvent::RecycleAttemptBlocked { rule, at, .. } => {
                let kind = Self::recycle_attempt(subscription);
                self.forbidden(true, kind, *rule, &subscription.card_facts, *at);
            }
            SubscriptionEvent::RecycleAttemptDelayed { .. } => {
                self.tally.network.unguarded_early += 1
            }
            _ => {}
        }
    }

    /// Notifications are only counted, by kind.
    fn notification_ids(&self) -> bool {
        false
    }

    fn halted(&self) -> bool {
        self.prefix
            .as_ref()
            .is_some_and(|p| p.void || p.halted.is_some())
    }

    fn refused(&mut self, refused: Refused) {
        if let Some(prefix) = &mut self.prefix {
            prefix.void = true;
        }
        let name = match &refused {
            Refused::Order { error, .. } => {
                if matches!(error, OrderError::RerunRefused(_)) {
                    self.tally.reruns.refused += 1;
                }
                order_error_name(error)
            }
            Refused::Subscription { error, .. } => subscription_error_name(error),
        };
        bump(&mut self.tally.refused, name);
    }
}
