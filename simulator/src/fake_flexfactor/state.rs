//! The fake's state: access tokens, the card vault, orders and their scheduled transitions,
//! idempotency records, the webhook outbox and the call log. Everything sits behind one mutex in
//! `App` (`app`); nothing here awaits.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;

use super::faults::{Endpoint, Fault, FaultBook};
use super::rules::{splitmix, Mode, Outcome, RuleSet};
use super::wire::Reply;

/// FlexFactor's integer order status (docs `orders-id`), with its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum OrderStatus {
    /// 0: ingested, not yet processing.
    Draft,
    /// 1: on hold (a challenged CIT waiting for the shopper).
    OnHold,
    /// 2: cancelled (declined, expired, cancelled or voided).
    Cancelled,
    /// 3: problem (never produced by the fake).
    Problem,
    /// 4: a managed MIT being worked.
    Processing,
    /// 5: approved on authorization, to be captured.
    CaptureRequired,
    /// 6: refunded.
    Returned,
    /// 7: approved.
    Completed,
}

impl OrderStatus {
    /// The integer of `GET /orders/{id}`.
    pub fn code(self) -> u8 {
        match self {
            OrderStatus::Draft => 0,
            OrderStatus::OnHold => 1,
            OrderStatus::Cancelled => 2,
            OrderStatus::Problem => 3,
            OrderStatus::Processing => 4,
            OrderStatus::CaptureRequired => 5,
            OrderStatus::Returned => 6,
            OrderStatus::Completed => 7,
        }
    }

    /// `statusName` (upper case, as ActiveMerchant's sandbox test reads `CAPTUREREQUIRED`).
    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::Draft => "DRAFT",
            OrderStatus::OnHold => "ONHOLD",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Problem => "PROBLEM",
            OrderStatus::Processing => "PROCESSING",
            OrderStatus::CaptureRequired => "CAPTUREREQUIRED",
            OrderStatus::Returned => "RETURNED",
            OrderStatus::Completed => "COMPLETED",
        }
    }
}

impl From<OrderStatus> for String {
    fn from(s: OrderStatus) -> String {
        s.name().to_string()
    }
}

/// One FlexFactor order as the fake keeps it (also its `/admin/state` view).
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    /// FlexFactor's id (`orderSessionKey`).
    pub id: String,
    /// The merchant's `orderId`.
    pub external_order_id: String,
    /// The `idempotencyKey` of the submission.
    pub idempotency_key: String,
    /// CIT or managed MIT.
    pub mode: Mode,
    /// The current status.
    pub status: OrderStatus,
    /// How a cancelled order ended: `declined`, `expired`, `cancelled`, `voided`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// What the rules decided.
    pub outcome: Outcome,
    /// The rule that decided (`None`: the default outcome).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `transaction.amount`, integer cents.
    pub amount_cents: i64,
    /// `transaction.currency`.
    pub currency: String,
    /// What FlexFactor collected, cents.
    pub paid_cents: i64,
    /// What was refunded, cents.
    pub refunded_cents: i64,
    /// Set when the order completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_id: Option<String>,
    /// `transactionType: AUTHORIZATION` was asked for.
    pub authorization_only: bool,
    /// A chargeback arrived.
    pub chargeback: bool,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// `expiryDateUtc` of a managed MIT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<DateTime<Utc>>,
    /// Billing first name.
    pub first_name: Option<String>,
    /// Billing last name.
    pub last_name: Option<String>,
    /// Payer e-mail.
    pub email: Option<String>,
    /// Payer or billing phone.
    pub phone: Option<String>,
    #[serde(skip)]
    pub(crate) refund_after: Option<Duration>,
    #[serde(skip)]
    pub(crate) chargeback_after: Option<Duration>,
}

/// A transition of an order due at a time of the fake's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Processing → Completed, `order.completed`.
    Complete,
    /// Processing → CaptureRequired, `order.capturerequired`.
    RequireCapture,
    /// Processing → Cancelled (expired), `order.expired`.
    Expire,
    /// Processing → Cancelled, `order.cancelled`.
    Cancel,
    /// CaptureRequired past the capture window → Cancelled (voided), `order.cancelled`.
    Void,
    /// Completed → Returned, `order.refunded`.
    Refund,
    /// Completed or Returned: `payment.chargeback.received`.
    Chargeback,
}

/// A scheduled transition.
#[derive(Debug, Clone, Serialize)]
pub struct Scheduled {
    /// When.
    pub at: DateTime<Utc>,
    /// The order.
    pub order_id: String,
    /// What.
    pub action: Action,
    #[serde(skip)]
    seq: u64,
}

/// A webhook to deliver (the outbox), until acknowledged with a 2xx.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The fake's number for it.
    pub id: u64,
    /// `Event`.
    pub event: String,
    /// `OrderId` (FlexFactor's).
    pub order_id: String,
    /// `ExternalOrderId` (the merchant's).
    pub external_order_id: String,
    /// `ConfirmationId`.
    pub confirmation_id: Option<String>,
    /// `TimeStamp`: when the event happened.
    pub timestamp: DateTime<Utc>,
    /// When it is (next) due.
    pub due_at: DateTime<Utc>,
    /// Sends so far (duplicates excluded).
    pub attempts: u32,
    /// A 2xx came back.
    pub acknowledged: bool,
    /// The redelivery policy gave up.
    pub gave_up: bool,
}

/// One HTTP send of a delivery.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryAttempt {
    /// Which delivery.
    pub delivery_id: u64,
    /// `Event`.
    pub event: String,
    /// `OrderId`.
    pub order_id: String,
    /// `IsResent` as sent.
    pub is_resent: bool,
    /// Sent as a duplicate (fault).
    pub duplicate: bool,
    /// Signed with a wrong key (fault).
    pub bad_signature: bool,
    /// When (fake's clock).
    pub at: DateTime<Utc>,
    /// `x-fc-nonce`.
    pub nonce: String,
    /// The receiver's HTTP status, when one came.
    pub status: Option<u16>,
    /// The transport error, when none came.
    pub error: Option<String>,
}

/// Calls received, per endpoint, and the bodies of `/evaluate`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallLog {
    /// Requests received per endpoint (faulted ones included).
    pub counts: BTreeMap<Endpoint, u64>,
    /// Every `/evaluate` body received, as sent (the first 10 000).
    pub evaluate_bodies: Vec<Value>,
}

impl CallLog {
    /// Requests received by `endpoint`.
    pub fn count(&self, endpoint: Endpoint) -> u64 {
        self.counts.get(&endpoint).copied().unwrap_or(0)
    }

    /// Requests received in all.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// A card in the fake's vault (from `/tokenize`). `Debug` hides the number and the CVV.
#[derive(Clone)]
pub(crate) struct VaultCard {
    pub pan: String,
    pub cvv: Option<String>,
}

impl std::fmt::Debug for VaultCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultCard([REDACTED])")
    }
}

/// An idempotency record.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub fingerprint: Value,
    pub reply: Reply,
    pub at: DateTime<Utc>,
}

/// Deterministic ids (order ids, confirmation ids, card tokens) from the seed.
#[derive(Debug, Clone)]
pub(crate) struct IdGen {
    state: u64,
}

impl IdGen {
    pub(crate) fn new(seed: u64) -> Self {
        IdGen {
            state: splitmix(seed ^ 0x5eed_f1e7_fac7_0001),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix(self.state)
    }

    /// A GUID-looking id (version 4 layout).
    pub(crate) fn uuid(&mut self) -> String {
        format_uuid(self.next(), self.next())
    }

    /// A short confirmation id like FlexFactor's (`22ACD1D9`).
    pub(crate) fn confirmation(&mut self) -> String {
        format!("{:08X}", self.next() >> 32)
    }
}

/// Formats 128 bits as a version-4 GUID.
pub(crate) fn format_uuid(a: u64, b: u64) -> String {
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Largest number of `/evaluate` bodies kept.
const MAX_KEPT_BODIES: usize = 10_000;

/// Everything the fake remembers.
#[derive(Debug)]
pub(crate) struct State {
    pub tokens: HashMap<String, DateTime<Utc>>,
    pub vault: HashMap<String, VaultCard>,
    pub orders: BTreeMap<String, Order>,
    pub order_sequence: Vec<String>,
    pub idempotency: HashMap<(Endpoint, String), Stored>,
    /// The idempotency records in the order they were stored, oldest first, so that expired ones
    /// are dropped from the front (a sweep of the whole map on every call cost time in
    /// proportion to a day's traffic).
    pub idempotency_expiry: VecDeque<(DateTime<Utc>, (Endpoint, String))>,
    /// Per order: the last successful refund (amount, answer, when), for replays.
    pub refunds: HashMap<String, (i64, Reply, DateTime<Utc>)>,
    pub schedule: Vec<Scheduled>,
    pub outbox: Vec<Delivery>,
    pub attempts: Vec<DeliveryAttempt>,
    pub calls: CallLog,
    pub faults: FaultBook,
    pub rules: RuleSet,
    pub ids: IdGen,
    next_seq: u64,
    next_delivery: u64,
}

impl State {
    /// Stores an idempotency record and drops those older than `window` (at `now`). Each
    /// record is dropped once, from the front of the expiry queue: amortised constant time.
    pub(crate) fn remember_idempotent(
        &mut self,
        key: (Endpoint, String),
        stored: Stored,
        window: Duration,
    ) {
        let now = stored.at;
        while let Some((at, _)) = self.idempotency_expiry.front() {
            if now - *at <= window {
                break;
            }
            let Some((at, old)) = self.idempotency_expiry.pop_front() else {
                break;
            };
            // A key stored again since keeps its newer record.
            if self.idempotency.get(&old).is_some_and(|s| s.at == at) {
                self.idempotency.remove(&old);
            }
        }
        self.idempotency_expiry.push_back((now, key.clone()));
        self.idempotency.insert(key, stored);
    }

    pub(crate) fn new(seed: u64, faults: FaultBook, rules: RuleSet) -> Self {
        State {
            tokens: HashMap::new(),
            vault: HashMap::new(),
            orders: BTreeMap::new(),
            order_sequence: Vec::new(),
            idempotency: HashMap::new(),
            idempotency_expiry: VecDeque::new(),
            refunds: HashMap::new(),
            schedule: Vec::new(),
            outbox: Vec::new(),
            attempts: Vec::new(),
            calls: CallLog::default(),
            faults,
            rules,
            ids: IdGen::new(seed),
            next_seq: 0,
            next_delivery: 0,
        }
    }

    /// Counts a request (and keeps an `/evaluate` body).
    pub(crate) fn record_call(&mut self, endpoint: Endpoint, body: &[u8]) {
        *self.calls.counts.entry(endpoint).or_insert(0) += 1;
        if endpoint == Endpoint::Evaluate && self.calls.evaluate_bodies.len() < MAX_KEPT_BODIES {
            let value = serde_json::from_slice(body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(body).chars().take(4096).collect())
            });
            self.calls.evaluate_bodies.push(value);
        }
    }

    /// Adds an order.
    pub(crate) fn insert_order(&mut self, order: Order) {
        self.order_sequence.push(order.id.clone());
        self.orders.insert(order.id.clone(), order);
    }

    /// Orders carrying a merchant order id, newest first.
    pub(crate) fn orders_by_external(&self, external: &str) -> Vec<String> {
        self.order_sequence
            .iter()
            .rev()
            .filter(|id| {
                self.orders
                    .get(*id)
                    .is_some_and(|o| o.external_order_id == external)
            })
            .cloned()
            .collect()
    }

    /// Schedules a transition.
    pub(crate) fn schedule(&mut self, at: DateTime<Utc>, order_id: &str, action: Action) {
        self.next_seq += 1;
        self.schedule.push(Scheduled {
            at,
            order_id: order_id.to_string(),
            action,
            seq: self.next_seq,
        });
    }

    /// Drops the pending transitions of an order.
    pub(crate) fn unschedule(&mut self, order_id: &str) {
        self.schedule.retain(|s| s.order_id != order_id);
    }

    /// Queues a webhook for an order's event at `at` (a `late` fault delays it).
    pub(crate) fn enqueue(&mut self, event: &str, order_id: &str, at: DateTime<Utc>) {
        let Some(order) = self.orders.get(order_id) else {
            return;
        };
        let (external, confirmation) = (
            order.external_order_id.clone(),
            order.confirmation_id.clone(),
        );
        let late = match self.faults.take_delivery("late") {
            Some(Fault::Late { delay_secs }) => Duration::seconds(delay_secs),
            _ => Duration::zero(),
        };
        self.next_delivery += 1;
        self.outbox.push(Delivery {
            id: self.next_delivery,
            event: event.to_string(),
            order_id: order_id.to_string(),
            external_order_id: external,
            confirmation_id: confirmation,
            timestamp: at,
            due_at: at + late,
            attempts: 0,
            acknowledged: false,
            gave_up: false,
        });
    }

    /// Applies every transition due at `now`, in time order.
    pub(crate) fn settle(&mut self, now: DateTime<Utc>, capture_window: Duration) {
        loop {
            let next = self
                .schedule
                .iter()
                .enumerate()
                .filter(|(_, s)| s.at <= now)
                .min_by_key(|(_, s)| (s.at, s.seq))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let s = self.schedule.remove(i);
            self.apply(s, capture_window);
        }
    }

    fn apply(&mut self, s: Scheduled, capture_window: Duration) {
        let Some(order) = self.orders.get(&s.order_id) else {
            return;
        };
        let status = order.status;
        let at = s.at;
        let id = s.order_id.as_str();
        match (s.action, status) {
            (Action::Complete, OrderStatus::Processing) => self.complete(id, at, true),
            (Action::RequireCapture, OrderStatus::Processing) => {
                self.require_capture(id, at, capture_window, true)
            }
            (Action::Expire, OrderStatus::Processing) => {
                self.close(id, "expired");
                self.enqueue("order.expired", id, at);
            }
            (Action::Cancel, OrderStatus::Processing) => {
                self.close(id, "cancelled");
                self.enqueue("order.cancelled", id, at);
            }
            (Action::Void, OrderStatus::CaptureRequired) => {
                self.close(id, "voided");
                self.enqueue("order.cancelled", id, at);
            }
            (Action::Refund, OrderStatus::Completed) => {
                if let Some(o) = self.orders.get_mut(id) {
                    o.refunded_cents = o.paid_cents;
                    o.status = OrderStatus::Returned;
                }
                self.enqueue("order.refunded", id, at);
            }
            (Action::Chargeback, OrderStatus::Completed | OrderStatus::Returned) => {
                if let Some(o) = self.orders.get_mut(id) {
                    o.chargeback = true;
                }
                self.enqueue("payment.chargeback.received", id, at);
            }
            _ => {}
        }
    }

    /// Marks an order cancelled with a resolution.
    pub(crate) fn close(&mut self, id: &str, resolution: &str) {
        if let Some(o) = self.orders.get_mut(id) {
            o.status = OrderStatus::Cancelled;
            o.resolution = Some(resolution.to_string());
        }
        self.unschedule(id);
    }

    /// Completes an order at `at`: paid, confirmation id, `order.completed`, and the rule's
    /// later refund and chargeback.
    pub(crate) fn complete(&mut self, id: &str, at: DateTime<Utc>, notify: bool) {
        let confirmation = self.ids.confirmation();
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        o.status = OrderStatus::Completed;
        o.paid_cents = o.amount_cents;
        o.confirmation_id = Some(confirmation);
        let (refund, chargeback) = (o.refund_after, o.chargeback_after);
        self.unschedule(id);
        if notify {
            self.enqueue("order.completed", id, at);
        }
        if let Some(d) = refund {
            self.schedule(at + d, id, Action::Refund);
        }
        if let Some(d) = chargeback {
            self.schedule(at + d, id, Action::Chargeback);
        }
    }

    /// Approves on authorization: `order.capturerequired`, auto-void after the capture window.
    pub(crate) fn require_capture(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        capture_window: Duration,
        notify: bool,
    ) {
        if let Some(o) = self.orders.get_mut(id) {
            o.status = OrderStatus::CaptureRequired;
        }
        self.unschedule(id);
        if notify {
            self.enqueue("order.capturerequired", id, at);
        }
        self.schedule(at + capture_window, id, Action::Void);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_guids() {
        let a = IdGen::new(9).uuid();
        assert_eq!(a, IdGen::new(9).uuid());
        assert_ne!(a, IdGen::new(10).uuid());
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_eq!(IdGen::new(1).confirmation().len(), 8);
    }

    fn stored(at: DateTime<Utc>, n: i64) -> Stored {
        Stored {
            fingerprint: serde_json::json!(n),
            reply: Reply::json(200, serde_json::json!({})),
            at,
        }
    }

    #[test]
    fn idempotency_records_expire_from_the_front_and_a_restored_key_keeps_its_newer_record() {
        let mut st = State::new(1, FaultBook::new(vec![]), RuleSet::empty());
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let window = Duration::hours(1);
        let key = |k: &str| (Endpoint::Evaluate, k.to_string());
        st.remember_idempotent(key("a"), stored(t0, 1), window);
        st.remember_idempotent(key("b"), stored(t0 + Duration::minutes(10), 2), window);
        // "a" is stored again later: its first expiry must not drop the newer record.
        st.remember_idempotent(key("a"), stored(t0 + Duration::minutes(20), 3), window);
        // 65 minutes on: the first "a" and "b" are past the window, the second "a" is not.
        st.remember_idempotent(key("c"), stored(t0 + Duration::minutes(75), 4), window);
        assert!(!st.idempotency.contains_key(&key("b")));
        assert_eq!(
            st.idempotency.get(&key("a")).map(|s| s.fingerprint.clone()),
            Some(serde_json::json!(3))
        );
        assert!(st.idempotency.contains_key(&key("c")));
        assert_eq!(st.idempotency_expiry.len(), 2);
        // Far later, everything but the newest is gone.
        st.remember_idempotent(key("d"), stored(t0 + Duration::hours(5), 5), window);
        assert_eq!(st.idempotency.len(), 1);
        assert_eq!(st.idempotency_expiry.len(), 1);
    }
}
