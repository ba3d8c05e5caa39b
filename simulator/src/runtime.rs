//! The in-memory runtime both the simulation engine and the trace replay drive: the real Order
//! and Subscription aggregates (decide, then apply), the real process manager on every committed
//! event, and a timer queue on a virtual clock. Effects (FlexFactor calls, charges, bills, CRM
//! notifications) go to a [`Driver`], which answers them with more follow-ups: the engine from
//! its statistical models, the replay from the recorded trace.
//!
//! Nothing here sleeps or reads the wall clock: time moves only in [`Runtime::advance_to`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use salvage_domain::order::{Order, OrderCommand, OrderError, OrderEvent};
use salvage_domain::process_manager::{
    order_follow_ups, subscription_follow_ups, Effect, FollowUp, FollowUps,
};
use salvage_domain::subscription::{
    Subscription, SubscriptionCommand, SubscriptionError, SubscriptionEvent,
};
use salvage_domain::{DomainServices, ManualClock, OrderId, Setup, SubscriptionId};

use crate::card_ledger::Lender;
pub use crate::store::{Held, Store};

/// A follow-up command the aggregate refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Order {
        order_id: OrderId,
        error: OrderError,
    },
    Subscription {
        subscription_id: SubscriptionId,
        error: SubscriptionError,
    },
}

/// What drives a runtime: it performs the effects and watches the events.
pub trait Driver {
    /// Performs `effect` at `now`; answers (commands) and later work (timers) go to `out`,
    /// the back of the runtime's queue (push them with `FollowUps::push` or `push_back`).
    fn effect(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        effect: Effect,
        out: &mut VecDeque<FollowUp>,
    );

    /// An Order event was committed; `order` is the state after it.
    fn order_event(
        &mut self,
        _order_id: &OrderId,
        _event: &OrderEvent,
        _order: &Order,
        _out: &mut VecDeque<FollowUp>,
    ) {
    }

    /// A Subscription event was committed; `subscription` is the state after it.
    fn subscription_event(
        &mut self,
        _subscription_id: &SubscriptionId,
        _event: &SubscriptionEvent,
        _subscription: &Subscription,
        _out: &mut VecDeque<FollowUp>,
    ) {
    }

    /// Whether the driver reads the ids of the CRM notifications it performs (`event_id`, order
    /// and subscription id); when not, the process manager leaves them out
    /// ([`FollowUps::notification_ids`]).
    fn notification_ids(&self) -> bool {
        true
    }

    /// A follow-up command (from the process manager, a timer or the driver) was refused.
    fn refused(&mut self, _refused: Refused) {}

    /// Only with [`Runtime::watch_unguarded`], in a setup with the network rules off: order
    /// `order_id` is about to make an attempt the rules forbid. `event` is what the guard would
    /// have recorded instead (`AttemptBlocked`), `order` the order with the events decided
    /// before it applied.
    fn order_attempt_unguarded(
        &mut self,
        _order_id: &OrderId,
        _event: &OrderEvent,
        _order: &Order,
    ) {
    }

    /// The same for a subscription's re-attempt or hand-over (`RecycleAttemptBlocked`, or
    /// `RecycleAttemptDelayed`: the attempt is made before the network's advised time).
    fn subscription_attempt_unguarded(
        &mut self,
        _subscription_id: &SubscriptionId,
        _event: &SubscriptionEvent,
        _subscription: &Subscription,
    ) {
    }

    /// The driver stopped the run (asked after each effect and timer): the runtime returns at
    /// once, leaving the rest of the queue and the timers as they are.
    fn halted(&self) -> bool {
        false
    }
}

/// The back of the runtime's queue, where the process manager appends its follow-ups, with
/// the driver's wish about the notifications' ids.
struct Back<'q> {
    queue: &'q mut VecDeque<FollowUp>,
    notification_ids: bool,
}

impl FollowUps for Back<'_> {
    fn push(&mut self, f: FollowUp) {
        self.queue.push_back(f);
    }

    fn notification_ids(&self) -> bool {
        self.notification_ids
    }
}

/// A runtime's aggregates, timers and clock, to continue from in another runtime (of another
/// setup): [`Runtime::snapshot`], [`Runtime::restore`].
#[derive(Debug, Clone)]
pub struct Snapshot {
    store: Store,
    timers: BTreeMap<(DateTime<Utc>, u64), Box<FollowUp>>,
    timer_seq: u64,
    queue: VecDeque<FollowUp>,
    now: DateTime<Utc>,
}

/// Aggregates, process manager and timers on one virtual clock.
pub struct Runtime {
    /// The services' clock: only this runtime sets it, always with `now`.
    clock: Arc<ManualClock>,
    /// The time on `clock`, read without going through the clock.
    now: DateTime<Utc>,
    services: DomainServices,
    /// The services with the network rules on, when the setup has them off and the driver
    /// wants to know which attempts they would have stopped ([`Runtime::watch_unguarded`]).
    guarded: Option<DomainServices>,
    /// The card ledger of the decisions the network rules guard (N8).
    lender: Lender,
    pub store: Store,
    timers: BTreeMap<(DateTime<Utc>, u64), Box<FollowUp>>,
    timer_seq: u64,
    queue: VecDeque<FollowUp>,
}

impl Runtime {
    pub fn new(setup: Arc<Setup>, start: DateTime<Utc>) -> Runtime {
        let clock = Arc::new(ManualClock::new(start));
        Runtime {
            services: DomainServices::new(setup, clock.clone()),
            guarded: None,
            lender: Lender::default(),
            clock,
            now: start,
            store: Store::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            queue: VecDeque::new(),
        }
    }

    /// Forgets every aggregate and timer and sets the clock to `start`.
    pub fn reset(&mut self, start: DateTime<Utc>) {
        self.store.orders.clear();
        self.store.subscriptions.clear();
        self.timers.clear();
        self.timer_seq = 0;
        self.queue.clear();
        self.set_now(start);
    }

    /// Sets the clock (and its copy `now`).
    fn set_now(&mut self, to: DateTime<Utc>) {
        self.now = to;
        self.clock.set(to);
    }

    /// Everything this runtime holds but its setup: aggregates, timers, queue and clock.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            store: self.store.clone(),
            timers: self.timers.clone(),
            timer_seq: self.timer_seq,
            queue: self.queue.clone(),
            now: self.now,
        }
    }

    /// Takes `snapshot`'s aggregates, timers, queue and clock (keeping this runtime's setup).
    pub fn restore(&mut self, snapshot: &Snapshot) {
        self.store.orders.clone_from(&snapshot.store.orders);
        self.store
            .subscriptions
            .clone_from(&snapshot.store.subscriptions);
        self.timers.clone_from(&snapshot.timers);
        self.timer_seq = snapshot.timer_seq;
        self.queue.clone_from(&snapshot.queue);
        self.set_now(snapshot.now);
    }

    /// Performs `effect` now, ahead of the queue, then everything that follows from it: the
    /// effect a driver halted at ([`Driver::halted`]), performed again by another driver.
    pub fn resume(&mut self, effect: Effect, driver: &mut dyn Driver) {
        self.queue.push_front(FollowUp::Effect(effect));
        self.drain(driver);
    }

    pub fn setup(&self) -> &Setup {
        &self.services.setup
    }

    /// When the setup has the network rules off (`[network_rules] enabled = false`), decide
    /// every command that may make an attempt on a card a second time with the rules on, and
    /// tell the driver of each attempt they would have stopped or moved
    /// ([`Driver::order_attempt_unguarded`]). Nothing of that second decision is committed.
    pub fn watch_unguarded(&mut self) {
        if self.services.setup.network_rules.enabled {
            return;
        }
        let mut setup = (*self.services.setup).clone();
        setup.network_rules.enabled = true;
        self.guarded = Some(DomainServices::new(Arc::new(setup), self.clock.clone()));
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Timers not yet run.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Runs a command on an order now, then everything that follows from it. Only this
    /// command's refusal is returned; refused follow-ups go to the driver.
    pub fn order_command(
        &mut self,
        order_id: OrderId,
        command: OrderCommand,
        driver: &mut dyn Driver,
    ) -> Result<(), OrderError> {
        let result = self.commit_order(order_id, command, driver);
        self.drain(driver);
        result.map_err(|(_, e)| e)
    }

    /// Runs a command on a subscription now, then everything that follows from it.
    pub fn subscription_command(
        &mut self,
        subscription_id: SubscriptionId,
        command: SubscriptionCommand,
        driver: &mut dyn Driver,
    ) -> Result<(), SubscriptionError> {
        let result = self.commit_subscription(subscription_id, command, driver);
        self.drain(driver);
        result.map_err(|(_, e)| e)
    }

    /// Schedules `then` at `at`.
    pub fn schedule(&mut self, at: DateTime<Utc>, then: FollowUp) {
        self.schedule_boxed(at, Box::new(then));
    }

    fn schedule_boxed(&mut self, at: DateTime<Utc>, then: Box<FollowUp>) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), then);
    }

    /// Moves the clock to `to`, running every timer due on the way in time order (timers due at
    /// the same time in the order they were set).
    pub fn advance_to(&mut self, to: DateTime<Utc>, driver: &mut dyn Driver) {
        while let Some(entry) = self.timers.first_entry() {
            let (at, _) = *entry.key();
            if at > to {
                break;
            }
            let then = entry.remove();
            if at > self.now {
                self.set_now(at);
            }
            self.queue.push_back(*then);
            self.drain(driver);
            if driver.halted() {
                return;
            }
        }
        if to > self.now {
            self.set_now(to);
        }
    }

    fn drain(&mut self, driver: &mut dyn Driver) {
        while let Some(f) = self.queue.pop_front() {
            match f {
                FollowUp::Order { order_id, command } => {
                    if let Err((order_id, error)) = self.commit_order(order_id, command, driver) {
                        driver.refused(Refused::Order { order_id, error });
                    }
                }
                FollowUp::Subscription {
                    subscription_id,
                    command,
                } => {
                    if let Err((subscription_id, error)) =
                        self.commit_subscription(subscription_id, command, driver)
                    {
                        driver.refused(Refused::Subscription {
                            subscription_id,
                            error,
                        });
                    }
                }
                FollowUp::At { at, then } => self.schedule_boxed(at, then),
                FollowUp::Effect(effect) => {
                    let now = self.now;
                    driver.effect(&self.store, now, effect, &mut self.queue);
                    if driver.halted() {
                        return;
                    }
                }
            }
        }
    }

    /// [`Runtime::watch_unguarded`]: decides `command` with the rules on and tells the driver
    /// of the attempt they would have stopped or moved.
    fn watch_order(&mut self, order_id: &OrderId, command: &OrderCommand, driver: &mut dyn Driver) {
        let Some(guarded) = &self.guarded else {
            return;
        };
        let services =
            self.lender
                .order_services(&self.store, self.now, guarded, order_id, command);
        let Some(services) = services else {
            return;
        };
        let empty = Order::default();
        let order = self.store.order(order_id).unwrap_or(&empty);
        let Ok(events) = order.decide(command.clone(), &services) else {
            return;
        };
        // The first: the attempt the unguarded decision makes now (a cascade moves on to its
        // next step only when the step before is blocked).
        let Some(at) = events
            .iter()
            .position(|e| matches!(e, OrderEvent::AttemptBlocked { .. }))
        else {
            return;
        };
        let mut before = order.clone();
        for e in &events[..at] {
            before.apply(e.clone());
        }
        driver.order_attempt_unguarded(order_id, &events[at], &before);
    }

    fn watch_subscription(
        &mut self,
        subscription_id: &SubscriptionId,
        command: &SubscriptionCommand,
        driver: &mut dyn Driver,
    ) {
        let Some(guarded) = &self.guarded else {
            return;
        };
        let services = self.lender.subscription_services(
            &self.store,
            self.now,
            guarded,
            subscription_id,
            command,
        );
        let Some(services) = services else {
            return;
        };
        let Some(subscription) = self.store.subscription(subscription_id) else {
            return;
        };
        let Ok(events) = subscription.decide(command.clone(), &services) else {
            return;
        };
        if let Some(e) = events.iter().find(|e| {
            matches!(
                e,
                SubscriptionEvent::RecycleAttemptBlocked { .. }
                    | SubscriptionEvent::RecycleAttemptDelayed { .. }
            )
        }) {
            driver.subscription_attempt_unguarded(subscription_id, e, subscription);
        }
    }

    fn commit_order(
        &mut self,
        order_id: OrderId,
        command: OrderCommand,
        driver: &mut dyn Driver,
    ) -> Result<(), (OrderId, OrderError)> {
        let services = match self.services.setup.network_rules.enabled {
            true => self.lender.order_services(
                &self.store,
                self.now,
                &self.services,
                &order_id,
                &command,
            ),
            false => {
                self.watch_order(&order_id, &command, driver);
                None
            }
        };
        let services = services.as_ref().unwrap_or(&self.services);
        let held = self.store.orders.get_or_default(&order_id);
        let events = match held.state.decide(command, services) {
            Ok(events) => events,
            Err(e) => {
                if held.sequence == 0 {
                    self.store.orders.remove(&order_id);
                }
                return Err((order_id, e));
            }
        };
        for event in &events {
            // By reference: the process manager and the driver read the event after it.
            held.state.apply_ref(event);
            held.sequence += 1;
            // The process manager's follow-ups, then the driver's, in that order.
            let mut back = Back {
                queue: &mut self.queue,
                notification_ids: driver.notification_ids(),
            };
            order_follow_ups(
                &self.services.setup,
                &order_id,
                held.sequence,
                event,
                &held.state,
                &mut back,
            );
            driver.order_event(&order_id, event, &held.state, &mut self.queue);
        }
        if held.sequence == 0 {
            self.store.orders.remove(&order_id);
        }
        Ok(())
    }

    fn commit_subscription(
        &mut self,
        subscription_id: SubscriptionId,
        command: SubscriptionCommand,
        driver: &mut dyn Driver,
    ) -> Result<(), (SubscriptionId, SubscriptionError)> {
        let services = match self.services.setup.network_rules.enabled {
            true => self.lender.subscription_services(
                &self.store,
                self.now,
                &self.services,
                &subscription_id,
                &command,
            ),
            false => {
                self.watch_subscription(&subscription_id, &command, driver);
                None
            }
        };
        let services = services.as_ref().unwrap_or(&self.services);
        let held = self.store.subscriptions.get_or_default(&subscription_id);
        let events = match held.state.decide(command, services) {
            Ok(events) => events,
            Err(e) => {
                if held.sequence == 0 {
                    self.store.subscriptions.remove(&subscription_id);
                }
                return Err((subscription_id, e));
            }
        };
        for event in &events {
            held.state.apply_ref(event);
            held.sequence += 1;
            let mut back = Back {
                queue: &mut self.queue,
                notification_ids: driver.notification_ids(),
            };
            subscription_follow_ups(
                &subscription_id,
                held.sequence,
                event,
                &held.state,
                &mut back,
            );
            driver.subscription_event(&subscription_id, event, &held.state, &mut self.queue);
        }
        if held.sequence == 0 {
            self.store.subscriptions.remove(&subscription_id);
        }
        Ok(())
    }
}
