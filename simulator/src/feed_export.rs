//! Exporting the service's event feed (`GET /v1/events`) as a trace ([`crate::trace`]): the
//! inputs that caused the events, each at the time the service recorded it, so that
//! `salvage replay --setup <the service's setup>` runs them through the domain again and ends in
//! the states the service shows.
//!
//! The feed holds every committed event of every Order and Subscription. Some are inputs (the
//! CRM reported an order, a gateway or FlexFactor answered, a webhook arrived); the rest are
//! consequences the domain derives by itself from those inputs, and that the replay derives
//! again: they must not become trace lines, or the replay would do them twice.
//!
//! | feed event | trace line |
//! |---|---|
//! | `OrderPlaced` + `AttemptApproved` / `AttemptDeclined` (the same command) | `place_order` (the order as placed, with the card token and masked card the event holds, and the first attempt's result), at the `OrderPlaced` time; rebills and trial completions too (`order_type` `recurring` / `trial_completion`, whoever billed them: the CRM's `POST /v1/subscriptions/{id}/rebills`, `POST /v1/orders` or the scheduler's charge hook) |
//! | `CascadeStepDeclined` | `cascade_answer` `{"result":"declined", ...facts}` for its step |
//! | `CascadeEnded` `approved` on a regular gateway | `cascade_answer` `{"result":"approved"}` for the step awaiting its answer |
//! | `CascadeEnded` `unknown` | `cascade_answer` `{"result":"unknown"}` for that step |
//! | `SalvageSubmitted` with route `rerun` | `rerun` on its FlexFactor gateway |
//! | `SalvageAccepted` | `flexfactor_answer` `submitted` / `processing` / `challenge` (its recorded status) |
//! | `SalvageOutcomeUnknown`, `SalvageAnswerUnrecognized` | `flexfactor_answer` `unknown` / `unrecognized` |
//! | `CaptureRequested` | `flexfactor_answer` `capture_required` (also when a webhook or a poll said so: the domain records the same event either way) |
//! | `SalvageSucceeded` without `source` | `flexfactor_answer` `approved` (a cascade's answer, or a capture's) |
//! | `SalvageSucceeded` with `source` | `flexfactor_result` `completed`, with that source (webhook delivery id, status poll) |
//! | `SalvageFailed` without `source` | `flexfactor_answer`: `declined`, `rejected`; for a cascade also `challenge`, `unknown` (`outcome_unknown`), `submitted` (`not_approved`) |
//! | `SalvageFailed` with `source` | `flexfactor_result` `declined`, `expired`, `cancelled`, or `still_pending` (`expired_unreconciled`: a poll without a final answer after the give-up time) |
//! | `OrderRefunded`, `ChargebackRecorded` | `flexfactor_result` `refunded` / `chargeback` with their source |
//! | `ResultDeferred`, `ResultIgnored` | `flexfactor_result` with the recorded result and source |
//! | `ReconciliationInconclusive` | `flexfactor_result` with the recorded result, source `status_poll` |
//! | `RecycleAttemptDeclined` | `recycle_answer` `{"result":"declined", ...facts}` |
//! | `RecycleAttemptOutcomeUnknown` | `recycle_answer` `{"result":"unknown"}` |
//! | `CycleAdvanced` via `recycle` | `recycle_answer` `{"result":"approved"}` for that re-attempt |
//! | `SubscriptionCancelled` | `cancel_subscription` with its reason |
//!
//! Derived, never a line (the replay's domain, process manager and timers make them again):
//! `AttemptApproved` / `AttemptDeclined` (part of `place_order`), `CascadeStarted`,
//! `CascadeSkipped`, `CascadeStepStarted`, `CascadeEnded` `declined` and `approved` after a
//! FlexFactor `SalvageSucceeded`, `SalvageSubmitted` of a cascade step or a recycle hand-over,
//! `ExternalCancelRequested`, `FulfillmentRequested`, `PaidByRecycle`, the `OrderRefunded` /
//! `ChargebackRecorded` / `ResultIgnored` that apply or drop deferred results when a salvage
//! resolves (O7); `SubscriptionCreated`, `RebillDeclined`, `RecycleBillingStarted`,
//! `RecycleAttemptScheduled`, `RecycleAttemptStarted` (a timer), `RecycleHandedToFlexFactor` (a
//! timer), `CycleAdvanced` via `rebill` or `flexfactor`, `RecycleFailed`,
//! `SalvageResultIgnored`.
//!
//! Times: each line takes the `at` its event recorded; a line is never earlier than the one
//! before it (an event committed after another but stamped earlier, which concurrent writers
//! can cause, is moved up to it). When the feed ends with derived events (a re-attempt started,
//! a hand-over), a last `advance_to` moves the replay's clock to the latest event time so that
//! the timers that made them fire on replay too. Timers fire on replay at their due time, where
//! the service's scheduler ran them a little later; the states match, times derived from a
//! timer's own run (a hand-over's `expires_at`) can differ by that delay.
//!
//! An event this module cannot map (an unknown aggregate type, event type or version, a payload
//! it cannot read, positions that go back, a gap in an aggregate's sequence numbers, a
//! combination the domain never produces) is an error naming its feed position and event type;
//! nothing is dropped silently. A feed read with `after` > 0 may start in the middle of an
//! aggregate's history: its events map like the others where they can be told apart without the
//! earlier ones, and are refused, named, where they cannot; replaying such a trace on its own
//! refuses the lines about aggregates it never saw created.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use salvage_domain::order::{
    AttemptResult, CascadeOutcome, FlexFactorResult, OrderDetails, OrderEvent, PlaceOrder,
    ResultSource, SalvageFailure, SalvageRoute,
};
use salvage_domain::ports::{EvaluateAnswer, GatewayAnswer};
use salvage_domain::subscription::{AdvanceVia, SubscriptionEvent};
use salvage_domain::{OrderId, SubscriptionId};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::trace::{TraceEntry, TraceLine};

/// The feed's record, defined once in the gateway (the service serves it, the log stores it).
pub use salvage_gateway::feed::{FeedEvent, FeedPage};

/// The event version this exporter reads.
pub const EVENT_VERSION: &str = "1";

/// Why a feed could not be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedExportError {
    /// The text is not a feed (see [`parse_feed`]).
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// The time the trace should run to is before its last line.
    #[error("the trace cannot end at {until}: its last line is at {last}")]
    Until { until: String, last: String },
    /// An event that cannot be mapped to a trace line.
    #[error("feed position {position}: {event_type} of {aggregate_type} {aggregate_id} (sequence {sequence}): {message}")]
    Event {
        position: i64,
        event_type: String,
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        message: String,
    },
}

fn event_error(e: &FeedEvent, message: impl Into<String>) -> FeedExportError {
    FeedExportError::Event {
        position: e.position,
        event_type: e.event_type.clone(),
        aggregate_type: e.aggregate_type.clone(),
        aggregate_id: e.aggregate_id.clone(),
        sequence: e.sequence,
        message: message.into(),
    }
}

/// Reads saved feed events. The text may hold, one after the other (whitespace or newlines
/// between them): feed pages as `GET /v1/events` answers them (`{"events": [...],
/// "next_after": N}`), single feed events (JSON Lines), or JSON arrays of either. Events are
/// returned in the order they appear.
pub fn parse_feed(text: &str) -> Result<Vec<FeedEvent>, FeedExportError> {
    let mut out = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for (i, value) in stream.enumerate() {
        let value = value.map_err(|e| {
            FeedExportError::NotAFeed(format!(
                "JSON value {} (line {}, column {}): {e}",
                i + 1,
                e.line(),
                e.column()
            ))
        })?;
        collect(value, &format!("JSON value {}", i + 1), &mut out)?;
    }
    Ok(out)
}

fn collect(value: Value, place: &str, out: &mut Vec<FeedEvent>) -> Result<(), FeedExportError> {
    match value {
        Value::Array(items) => {
            for (j, item) in items.into_iter().enumerate() {
                collect(item, &format!("{place}, element {j}"), out)?;
            }
            Ok(())
        }
        Value::Object(map) if map.contains_key("events") => {
            let page: FeedPage = serde_json::from_value(Value::Object(map))
                .map_err(|e| FeedExportError::NotAFeed(format!("{place}: not a feed page: {e}")))?;
            out.extend(page.events);
            Ok(())
        }
        Value::Object(map) => {
            let event: FeedEvent = serde_json::from_value(Value::Object(map)).map_err(|e| {
                FeedExportError::NotAFeed(format!("{place}: not a feed event: {e}"))
            })?;
            out.push(event);
            Ok(())
        }
        other => Err(FeedExportError::NotAFeed(format!(
            "{place}: expected a feed page, a feed event or an array of them, found {}",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "something else",
            }
        ))),
    }
}

/// An `OrderPlaced` waiting for the attempt result recorded with it.
#[derive(Debug)]
struct Placed {
    position: i64,
    at: DateTime<Utc>,
    details: Box<OrderDetails>,
}

/// What the exporter remembers of an order.
#[derive(Debug)]
struct OrderTrack {
    /// The sequence of its first event in the feed (1 unless the feed starts mid-history).
    first_sequence: i64,
    sequence: i64,
    placed: Option<Placed>,
    /// The previous event's name.
    previous: Option<&'static str>,
    /// The regular-gateway cascade step awaiting its answer.
    cascade_step: Option<u32>,
    /// Refunds and chargebacks waiting for the salvage's result (O7); `None`: unknown.
    deferred: Option<usize>,
    /// Deferred results the current resolution is applying (derived events), and its time.
    draining: Option<usize>,
    drain_at: Option<DateTime<Utc>>,
}

impl OrderTrack {
    fn new(first_sequence: i64) -> Self {
        let whole = first_sequence == 1;
        OrderTrack {
            first_sequence,
            sequence: first_sequence - 1,
            placed: None,
            previous: None,
            cascade_step: None,
            deferred: whole.then_some(0),
            draining: Some(0),
            drain_at: None,
        }
    }

    fn needs_history(&self, what: &str) -> String {
        format!(
            "{what}: the feed does not hold this order's earlier events (it starts at its \
             sequence {}); export the feed from its beginning",
            self.first_sequence
        )
    }

    /// A salvage resolved: the deferred results it applies or drops follow at the same time.
    fn resolve(&mut self, at: DateTime<Utc>) {
        self.draining = self.deferred;
        self.drain_at = Some(at);
        self.deferred = Some(0);
    }

    /// Whether a refund, chargeback or ignored result at `at` is one the resolution derived.
    fn drained(&mut self, at: DateTime<Utc>) -> Result<bool, String> {
        if self.drain_at != Some(at) {
            self.draining = Some(0);
        }
        match self.draining {
            Some(0) => Ok(false),
            Some(n) => {
                self.draining = Some(n - 1);
                Ok(true)
            }
            None => Err(self.needs_history(
                "it may apply a result deferred before the feed starts (O7) or be a delivery",
            )),
        }
    }
}

/// Converts feed events, pushed in feed order, into trace lines.
#[derive(Debug, Default)]
pub struct FeedExporter {
    lines: Vec<TraceLine>,
    last_position: Option<i64>,
    last_event_at: Option<DateTime<Utc>>,
    orders: HashMap<String, OrderTrack>,
    subscriptions: HashMap<String, i64>,
    events: usize,
    derived: usize,
}

/// What an export read and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportCounts {
    /// Feed events read.
    pub events: usize,
    /// Of which derived (no line of their own).
    pub derived: usize,
    /// Trace lines written, the final `advance_to` included.
    pub lines: usize,
}

impl FeedExporter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The position of the last event pushed.
    pub fn last_position(&self) -> Option<i64> {
        self.last_position
    }

    /// Maps the next event of the feed.
    pub fn push(&mut self, event: &FeedEvent) -> Result<(), FeedExportError> {
        if let Some(previous) = self.last_position {
            if event.position <= previous {
                return Err(event_error(
                    event,
                    format!("positions must increase, and this one follows position {previous}"),
                ));
            }
        }
        if event.event_version != EVENT_VERSION {
            return Err(event_error(
                event,
                format!(
                    "event_version {:?} is not one this exporter reads ({EVENT_VERSION:?})",
                    event.event_version
                ),
            ));
        }
        let mapped = match event.aggregate_type.as_str() {
            "order" => {
                let e: OrderEvent = decode(event, OrderEvent::name)?;
                self.check_sequence(event, true)?;
                let at = e.at();
                let name = e.name();
                let track = self
                    .orders
                    .get_mut(&event.aggregate_id)
                    .ok_or_else(|| event_error(event, "internal: the order's track is missing"))?;
                let entry = order_line(track, event.position, &event.aggregate_id, e)
                    .map_err(|m| event_error(event, m))?;
                track.previous = Some(name);
                (at, entry)
            }
            "subscription" => {
                let e: SubscriptionEvent = decode(event, SubscriptionEvent::name)?;
                self.check_sequence(event, false)?;
                let at = e.at();
                (at, subscription_line(&event.aggregate_id, e))
            }
            other => {
                return Err(event_error(
                    event,
                    format!("aggregate type {other:?} is neither order nor subscription"),
                ))
            }
        };
        let (event_at, entry) = mapped;
        self.last_position = Some(event.position);
        self.events += 1;
        self.last_event_at = Some(self.last_event_at.map_or(event_at, |t| t.max(event_at)));
        match entry {
            Some((at, entry)) => self.push_line(at, entry),
            None => self.derived += 1,
        }
        Ok(())
    }

    fn push_line(&mut self, at: DateTime<Utc>, entry: TraceEntry) {
        let at = self.lines.last().map_or(at, |l| l.at.max(at));
        self.lines.push(TraceLine { at, entry });
    }

    fn check_sequence(&mut self, event: &FeedEvent, order: bool) -> Result<(), FeedExportError> {
        let previous = if order {
            let track = self
                .orders
                .entry(event.aggregate_id.clone())
                .or_insert_with(|| OrderTrack::new(event.sequence));
            let previous = track.sequence;
            track.sequence = event.sequence;
            previous
        } else {
            let last = self
                .subscriptions
                .entry(event.aggregate_id.clone())
                .or_insert(event.sequence - 1);
            let previous = *last;
            *last = event.sequence;
            previous
        };
        if event.sequence != previous + 1 {
            return Err(event_error(
                event,
                format!(
                    "the feed misses events of this {}: sequence {} follows {previous}",
                    event.aggregate_type, event.sequence
                ),
            ));
        }
        Ok(())
    }

    /// How many events were read and lines written so far.
    pub fn counts(&self) -> ExportCounts {
        ExportCounts {
            events: self.events,
            derived: self.derived,
            lines: self.lines.len(),
        }
    }

    /// The trace: every line, and a final `advance_to` when the feed's last events are derived
    /// ones later than the last line (timers that must fire on replay too).
    pub fn finish(self) -> Result<(Vec<TraceLine>, ExportCounts), FeedExportError> {
        self.finish_until(None)
    }

    /// [`finish`](Self::finish), then a last `advance_to` at `until` when given: the replay's
    /// clock runs on to that time (the time of the export, say), running the timers due by then
    /// as the service did while nothing was recorded (next bills, reconciliations).
    pub fn finish_until(
        mut self,
        until: Option<DateTime<Utc>>,
    ) -> Result<(Vec<TraceLine>, ExportCounts), FeedExportError> {
        if let Some((id, placed)) = self
            .orders
            .iter()
            .find_map(|(id, t)| t.placed.as_ref().map(|p| (id, p)))
        {
            return Err(FeedExportError::Event {
                position: placed.position,
                event_type: "OrderPlaced".into(),
                aggregate_type: "order".into(),
                aggregate_id: id.clone(),
                sequence: 1,
                message: format!(
                    "placed at {} without the result of its first attempt: the feed ends in the \
                     middle of a command",
                    placed.at.to_rfc3339()
                ),
            });
        }
        if let (Some(last_event), Some(last_line)) =
            (self.last_event_at, self.lines.last().map(|l| l.at))
        {
            if last_event > last_line {
                self.lines.push(TraceLine {
                    at: last_event,
                    entry: TraceEntry::AdvanceTo {},
                });
            }
        }
        if let Some(until) = until {
            match self.lines.last().map(|l| l.at) {
                Some(last) if until < last => {
                    return Err(FeedExportError::Until {
                        until: until.to_rfc3339(),
                        last: last.to_rfc3339(),
                    })
                }
                Some(last) if until == last => {}
                _ => self.lines.push(TraceLine {
                    at: until,
                    entry: TraceEntry::AdvanceTo {},
                }),
            }
        }
        let counts = self.counts();
        Ok((self.lines, counts))
    }
}

/// Maps a whole feed, in order.
pub fn export(events: &[FeedEvent]) -> Result<Vec<TraceLine>, FeedExportError> {
    let mut exporter = FeedExporter::new();
    for e in events {
        exporter.push(e)?;
    }
    exporter.finish().map(|(lines, _)| lines)
}

/// The trace as JSON Lines (one line per entry, each ending with a newline).
pub fn to_jsonl(lines: &[TraceLine]) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    for l in lines {
        out.push_str(&crate::trace::to_line(l)?);
        out.push('\n');
    }
    Ok(out)
}

/// Reads the payload as a domain event, checking it is the type the feed says.
fn decode<T: DeserializeOwned>(
    event: &FeedEvent,
    name: fn(&T) -> &'static str,
) -> Result<T, FeedExportError> {
    let mut payload = event.payload.clone();
    if let Value::Object(map) = &mut payload {
        // The event's tag; a payload stored without it takes the feed's event_type.
        map.entry("type")
            .or_insert_with(|| Value::String(event.event_type.clone()));
    }
    let decoded: T = serde_json::from_value(payload).map_err(|e| {
        event_error(
            event,
            format!(
                "not an event this exporter can map (unknown event type, or a payload it cannot \
                 read: {e})"
            ),
        )
    })?;
    let actual = name(&decoded);
    if actual != event.event_type {
        return Err(event_error(
            event,
            format!("the payload is a {actual}, not the {}", event.event_type),
        ));
    }
    Ok(decoded)
}

type Line = Option<(DateTime<Utc>, TraceEntry)>;

fn order_line(
    track: &mut OrderTrack,
    position: i64,
    id: &str,
    event: OrderEvent,
) -> Result<Line, String> {
    let order_id = OrderId::new(id);
    let answer = |at, attempt, answer| {
        Some((
            at,
            TraceEntry::FlexFactorAnswer {
                order_id: order_id.clone(),
                attempt,
                answer,
            },
        ))
    };
    let result = |at, result, source| {
        Some((
            at,
            TraceEntry::FlexFactorResult {
                order_id: order_id.clone(),
                result,
                source,
            },
        ))
    };
    let cascade = |at, step, answer| {
        Some((
            at,
            TraceEntry::CascadeAnswer {
                order_id: order_id.clone(),
                step,
                answer,
            },
        ))
    };
    Ok(match event {
        OrderEvent::OrderPlaced { details, at } => {
            track.placed = Some(Placed {
                position,
                at,
                details,
            });
            None
        }
        OrderEvent::AttemptApproved { .. } | OrderEvent::AttemptDeclined { .. } => {
            let placed = track.placed.take().ok_or_else(|| {
                track.needs_history("the attempt result of an order placed before the feed starts")
            })?;
            let result = match event {
                OrderEvent::AttemptDeclined { facts, .. } => AttemptResult::Declined(facts),
                _ => AttemptResult::Approved,
            };
            let d = *placed.details;
            Some((
                placed.at,
                TraceEntry::PlaceOrder {
                    order: Box::new(PlaceOrder {
                        order_id: d.order_id,
                        order_type: d.order_type,
                        campaign_id: d.campaign_id,
                        subscription_id: d.subscription_id,
                        ip_address: d.ip_address,
                        amount: d.amount,
                        customer: d.customer,
                        card: d.card,
                        items: d.items,
                        gateway: d.gateway,
                        gateway_profile: d.gateway_profile,
                        result,
                    }),
                },
            ))
        }
        OrderEvent::CascadeStepStarted { step, .. } => {
            track.cascade_step = Some(step);
            None
        }
        OrderEvent::CascadeStepDeclined {
            step, facts, at, ..
        } => {
            track.cascade_step = None;
            cascade(at, step, GatewayAnswer::Declined(facts))
        }
        OrderEvent::CascadeEnded { outcome, at } => match &outcome {
            CascadeOutcome::Declined => None,
            CascadeOutcome::Approved { .. } if track.previous == Some("SalvageSucceeded") => None,
            CascadeOutcome::Approved { gateway } | CascadeOutcome::Unknown { gateway } => {
                if track.previous.is_none() {
                    return Err(track.needs_history("the end of a cascade"));
                }
                let step = track.cascade_step.take().ok_or_else(|| {
                    track.needs_history(&format!("no cascade step on {gateway} awaits an answer"))
                })?;
                let answer = match outcome {
                    CascadeOutcome::Approved { .. } => GatewayAnswer::Approved {
                        transaction_id: None,
                    },
                    _ => GatewayAnswer::Unknown {
                        detail: format!("{gateway}: outcome unknown (from the service's feed)"),
                    },
                };
                cascade(at, step, answer)
            }
        },
        OrderEvent::SalvageSubmitted {
            route,
            flexfactor_gateway,
            at,
            ..
        } => match route {
            SalvageRoute::Rerun => Some((
                at,
                TraceEntry::Rerun {
                    order_id: order_id.clone(),
                    gateway: flexfactor_gateway,
                },
            )),
            SalvageRoute::Cascade { .. } | SalvageRoute::Recycle { .. } => None,
        },
        OrderEvent::SalvageAccepted {
            attempt,
            flexfactor_order_id,
            status,
            at,
        } => {
            let accepted = match status.as_str() {
                "SUBMITTED" => EvaluateAnswer::Submitted {
                    flexfactor_order_id,
                },
                "PROCESSING" => EvaluateAnswer::Processing {
                    flexfactor_order_id,
                },
                "CHALLENGE" => EvaluateAnswer::Challenge {
                    flexfactor_order_id,
                },
                other => {
                    return Err(format!(
                        "status {other:?} is not SUBMITTED, PROCESSING or CHALLENGE"
                    ))
                }
            };
            answer(at, attempt, accepted)
        }
        OrderEvent::SalvageOutcomeUnknown {
            attempt,
            detail,
            at,
        } => answer(at, attempt, EvaluateAnswer::Unknown { detail }),
        OrderEvent::SalvageAnswerUnrecognized {
            attempt,
            raw_status,
            at,
        } => answer(
            at,
            attempt,
            EvaluateAnswer::Unrecognized {
                raw_status,
                flexfactor_order_id: None,
            },
        ),
        OrderEvent::CaptureRequested {
            attempt,
            flexfactor_order_id,
            at,
            ..
        } => answer(
            at,
            attempt,
            EvaluateAnswer::CaptureRequired {
                flexfactor_order_id,
            },
        ),
        OrderEvent::SalvageSucceeded {
            attempt,
            flexfactor_order_id,
            confirmation_id,
            source,
            at,
            ..
        } => {
            track.resolve(at);
            match source {
                Some(source) => result(
                    at,
                    FlexFactorResult::Completed {
                        flexfactor_order_id,
                        confirmation_id,
                    },
                    Some(source),
                ),
                None => answer(
                    at,
                    attempt,
                    EvaluateAnswer::Approved {
                        flexfactor_order_id,
                        confirmation_id,
                    },
                ),
            }
        }
        OrderEvent::SalvageFailed {
            attempt,
            route,
            reason,
            source,
            at,
        } => {
            track.resolve(at);
            let is_cascade = matches!(route, SalvageRoute::Cascade { .. });
            match (source, reason) {
                (Some(source), reason) => {
                    let r = match reason {
                        SalvageFailure::Declined => FlexFactorResult::Declined,
                        SalvageFailure::Expired => FlexFactorResult::Expired,
                        SalvageFailure::Cancelled => FlexFactorResult::Cancelled,
                        SalvageFailure::ExpiredUnreconciled => FlexFactorResult::StillPending,
                        other => {
                            return Err(format!(
                                "a failure {other:?} from a delivery or a poll is not one the \
                                 domain records"
                            ))
                        }
                    };
                    result(at, r, Some(source))
                }
                (None, SalvageFailure::Declined) => answer(
                    at,
                    attempt,
                    EvaluateAnswer::Declined {
                        flexfactor_order_id: None,
                    },
                ),
                (None, SalvageFailure::Rejected) => answer(
                    at,
                    attempt,
                    EvaluateAnswer::Rejected {
                        reason: "FlexFactor refused the request (from the service's feed)".into(),
                    },
                ),
                (None, SalvageFailure::Challenge) if is_cascade => answer(
                    at,
                    attempt,
                    EvaluateAnswer::Challenge {
                        flexfactor_order_id: None,
                    },
                ),
                (None, SalvageFailure::OutcomeUnknown) if is_cascade => answer(
                    at,
                    attempt,
                    EvaluateAnswer::Unknown {
                        detail: "no answer (from the service's feed)".into(),
                    },
                ),
                (None, SalvageFailure::NotApproved) if is_cascade => answer(
                    at,
                    attempt,
                    EvaluateAnswer::Submitted {
                        flexfactor_order_id: None,
                    },
                ),
                (None, other) => {
                    return Err(format!(
                        "a {} salvage failed {other:?} without a source is not one the domain \
                         records",
                        route.name()
                    ))
                }
            }
        }
        OrderEvent::ResultDeferred {
            result: r,
            source,
            at,
        } => {
            track.deferred = track.deferred.map(|n| n + 1);
            result(at, r, Some(source))
        }
        OrderEvent::ReconciliationInconclusive { result: r, at, .. } => {
            result(at, r, Some(ResultSource::StatusPoll))
        }
        OrderEvent::OrderRefunded { source, at } => {
            if track.drained(at)? {
                None
            } else {
                result(at, FlexFactorResult::Refunded, Some(source))
            }
        }
        OrderEvent::ChargebackRecorded { source, at } => {
            if track.drained(at)? {
                None
            } else {
                result(at, FlexFactorResult::Chargeback, Some(source))
            }
        }
        OrderEvent::ResultIgnored {
            result: r,
            source,
            at,
            ..
        } => {
            if track.drained(at)? {
                None
            } else {
                result(at, r, Some(source))
            }
        }
        OrderEvent::CascadeStarted { .. }
        | OrderEvent::CascadeSkipped { .. }
        | OrderEvent::ExternalCancelRequested { .. }
        | OrderEvent::FulfillmentRequested { .. }
        | OrderEvent::PaidByRecycle { .. } => None,
    })
}

fn subscription_line(id: &str, event: SubscriptionEvent) -> Line {
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
        | SubscriptionEvent::CycleAdvanced { .. }
        | SubscriptionEvent::RecycleFailed { .. }
        | SubscriptionEvent::SalvageResultIgnored { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use salvage_domain::order::{OrderCommand, SalvageState};
    use salvage_domain::process_manager::{Effect, FollowUp};
    use salvage_domain::subscription::{SubscriptionCommand, SubscriptionStatus};
    use salvage_domain::{Money, OrderType, Setup};
    use serde_json::json;

    use super::*;
    use crate::replay::{replay, ReplayOutcome};
    use crate::runtime::{Driver, Runtime, Store};
    use crate::trace::{self, NumberedLine};

    const SETUP: &str = include_str!("../../examples/salvage.toml");
    const EXAMPLE: &str = include_str!("../traces/example.jsonl");

    fn setup() -> Arc<Setup> {
        Arc::new(Setup::from_toml_str(SETUP).expect("the sample setup"))
    }

    /// Records every committed event as the service's feed shows it.
    #[derive(Default)]
    struct Recorder {
        feed: Vec<FeedEvent>,
        sequences: HashMap<(String, String), i64>,
    }

    impl Recorder {
        fn record(&mut self, kind: &str, id: &str, name: &str, payload: Value) {
            let sequence = self
                .sequences
                .entry((kind.to_string(), id.to_string()))
                .or_insert(0);
            *sequence += 1;
            self.feed.push(FeedEvent {
                position: self.feed.len() as i64 + 1,
                aggregate_type: kind.into(),
                aggregate_id: id.into(),
                sequence: *sequence,
                event_type: name.into(),
                event_version: "1".into(),
                payload,
            });
        }
    }

    impl Driver for Recorder {
        fn effect(&mut self, _: &Store, _: DateTime<Utc>, _: Effect, _: &mut Vec<FollowUp>) {}

        fn order_event(
            &mut self,
            id: &OrderId,
            event: &OrderEvent,
            _: &salvage_domain::order::Order,
            _: &mut Vec<FollowUp>,
        ) {
            let payload = serde_json::to_value(event).expect("an event serializes");
            self.record("order", id.as_str(), event.name(), payload);
        }

        fn subscription_event(
            &mut self,
            id: &SubscriptionId,
            event: &SubscriptionEvent,
            _: &salvage_domain::subscription::Subscription,
            _: &mut Vec<FollowUp>,
        ) {
            let payload = serde_json::to_value(event).expect("an event serializes");
            self.record("subscription", id.as_str(), event.name(), payload);
        }
    }

    /// Runs a trace through the runtime as the replay does, and returns the feed it commits:
    /// what the service would serve for the same inputs.
    fn feed_of(lines: &[NumberedLine]) -> Vec<FeedEvent> {
        let mut rt = Runtime::new(setup(), lines[0].line.at);
        let mut rec = Recorder::default();
        for l in lines {
            rt.advance_to(l.line.at, &mut rec);
            let order = |id: &OrderId, command| (id.clone(), command);
            let order_command = match &l.line.entry {
                TraceEntry::PlaceOrder { order: o } => {
                    Some(order(&o.order_id, OrderCommand::Place(o.clone())))
                }
                TraceEntry::CascadeAnswer {
                    order_id,
                    step,
                    answer,
                } => Some(order(
                    order_id,
                    OrderCommand::RecordCascadeStep {
                        step: *step,
                        answer: answer.clone(),
                    },
                )),
                TraceEntry::FlexFactorAnswer {
                    order_id,
                    attempt,
                    answer,
                } => Some(order(
                    order_id,
                    OrderCommand::RecordFlexFactorAnswer {
                        attempt: *attempt,
                        answer: answer.clone(),
                    },
                )),
                TraceEntry::Rerun { order_id, gateway } => Some(order(
                    order_id,
                    OrderCommand::RequestRerun {
                        gateway: gateway.clone(),
                    },
                )),
                TraceEntry::FlexFactorResult {
                    order_id,
                    result,
                    source,
                } => Some(order(
                    order_id,
                    OrderCommand::ApplyFlexFactorResult {
                        result: result.clone(),
                        source: source.clone().unwrap_or(ResultSource::Replay),
                    },
                )),
                TraceEntry::Rebill {
                    subscription_id,
                    order_id,
                    gateway,
                    amount_minor,
                    result,
                } => {
                    let sub = rt
                        .store
                        .subscription(subscription_id)
                        .expect("subscription");
                    let origin = sub
                        .origin_order_id
                        .as_ref()
                        .and_then(|o| rt.store.order(o))
                        .and_then(|o| o.details.clone())
                        .expect("origin order");
                    let price = sub.price.expect("price");
                    let amount = Money {
                        amount_minor: amount_minor.unwrap_or(price.amount_minor),
                        currency: price.currency,
                    };
                    let place = PlaceOrder {
                        order_id: order_id.clone(),
                        order_type: if sub.status == Some(SubscriptionStatus::Trial) {
                            OrderType::TrialCompletion
                        } else {
                            OrderType::Recurring
                        },
                        campaign_id: origin.campaign_id.clone(),
                        subscription_id: Some(subscription_id.clone()),
                        ip_address: origin.ip_address.clone(),
                        amount,
                        customer: origin.customer.clone(),
                        card: origin.card.clone(),
                        items: vec![salvage_domain::customer::OrderItem {
                            product_id: sub.product_id.clone().expect("product"),
                            quantity: 1,
                            price_minor: amount.amount_minor,
                        }],
                        gateway: gateway
                            .clone()
                            .or(sub.billing_gateway.clone())
                            .expect("gateway"),
                        gateway_profile: None,
                        result: result.clone(),
                    };
                    Some(order(order_id, OrderCommand::Place(Box::new(place))))
                }
                TraceEntry::RecycleAnswer {
                    subscription_id,
                    order_id,
                    attempt,
                    answer,
                } => {
                    let _ = rt.subscription_command(
                        subscription_id.clone(),
                        SubscriptionCommand::RecordRecycleAttemptResult {
                            order_id: order_id.clone(),
                            attempt: *attempt,
                            answer: answer.clone(),
                        },
                        &mut rec,
                    );
                    None
                }
                TraceEntry::CancelSubscription {
                    subscription_id,
                    reason,
                } => {
                    let _ = rt.subscription_command(
                        subscription_id.clone(),
                        SubscriptionCommand::Cancel {
                            reason: reason.clone(),
                        },
                        &mut rec,
                    );
                    None
                }
                TraceEntry::AdvanceTo {} => None,
            };
            if let Some((id, command)) = order_command {
                let _ = rt.order_command(id, command, &mut rec);
            }
        }
        rec.feed
    }

    fn numbered(lines: Vec<TraceLine>) -> Vec<NumberedLine> {
        lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| NumberedLine {
                number: i + 1,
                line,
            })
            .collect()
    }

    /// The trace replayed, then its feed exported and replayed again: the same end states.
    fn round_trip(text: &str) -> (ReplayOutcome, ReplayOutcome, Vec<TraceLine>) {
        let original = trace::parse(text).expect("the trace parses");
        let feed = feed_of(&original);
        let mut exporter = FeedExporter::new();
        for e in &feed {
            exporter.push(e).expect("the feed exports");
        }
        // Up to the original's end, as `--until` does: timers without events fire too.
        let end = original.last().map(|l| l.line.at);
        let (exported, counts) = exporter.finish_until(end).expect("the feed exports");
        assert_eq!(counts.events, feed.len());
        assert_eq!(counts.lines, exported.len());
        // Through its text form, as `salvage export-trace` writes it.
        let text = to_jsonl(&exported).expect("lines serialize");
        let reparsed = trace::parse(&text).expect("the exported trace parses");
        assert_eq!(
            reparsed.iter().map(|l| l.line.clone()).collect::<Vec<_>>(),
            exported
        );
        let first = replay(setup(), &original);
        let second = replay(setup(), &numbered(exported.clone()));
        assert!(
            second.refused.is_empty(),
            "the exported trace replays without refusal: {:#?}",
            second.refused
        );
        assert_eq!(
            first.orders.keys().collect::<Vec<_>>(),
            second.orders.keys().collect::<Vec<_>>()
        );
        for (id, a) in &first.orders {
            let b = &second.orders[id];
            assert_eq!(a.history, b.history, "order {id}");
            assert_eq!(a.state, b.state, "order {id}");
        }
        assert_eq!(
            first.subscriptions.keys().collect::<Vec<_>>(),
            second.subscriptions.keys().collect::<Vec<_>>()
        );
        for (id, a) in &first.subscriptions {
            let b = &second.subscriptions[id];
            assert_eq!(a.history, b.history, "subscription {id}");
            assert_eq!(a.state, b.state, "subscription {id}");
        }
        assert_eq!(first.notifications, second.notifications);
        assert_eq!(first.pending_timers, second.pending_timers);
        let effects = |o: &ReplayOutcome| {
            o.effects
                .iter()
                .map(|e| (e.at, e.effect.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(effects(&first), effects(&second));
        // Nothing the domain derives is an input of the exported trace.
        let inputs = feed.len()
            - exported
                .iter()
                .filter(|l| l.entry == TraceEntry::AdvanceTo {})
                .count();
        assert!(exported.len() <= inputs);
        (first, second, exported)
    }

    #[test]
    fn the_example_trace_round_trips_through_its_feed() {
        let (first, _, exported) = round_trip(EXAMPLE);
        assert!(first.refused.is_empty());
        let kinds: Vec<&str> = exported.iter().map(|l| l.entry.kind()).collect();
        // The rebills of the example become the orders the domain recorded for them.
        assert!(!kinds.contains(&"rebill"), "{kinds:?}");
        for kind in [
            "place_order",
            "cascade_answer",
            "flexfactor_answer",
            "rerun",
            "flexfactor_result",
            "recycle_answer",
        ] {
            assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
        }
    }

    fn sale(at: &str, id: &str, gateway: &str, profile: Option<&str>, result: Value) -> String {
        sale_of(at, id, gateway, profile, "cleanser", 1999, None, result)
    }

    #[allow(clippy::too_many_arguments)]
    fn sale_of(
        at: &str,
        id: &str,
        gateway: &str,
        profile: Option<&str>,
        product: &str,
        amount: i64,
        subscription: Option<&str>,
        result: Value,
    ) -> String {
        json!({"at": at, "kind": "place_order", "order": {
            "order_id": id, "order_type": "new_sale", "campaign_id": "skincare",
            "subscription_id": subscription, "ip_address": "203.0.113.9",
            "amount": {"amount_minor": amount, "currency": "USD"},
            "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
            "card": {"token": format!("tok-{id}"), "bin": "411111", "last4": "1111", "exp_month": 12, "exp_year": 2030},
            "items": [{"product_id": product, "quantity": 1, "price_minor": amount}],
            "gateway": gateway, "gateway_profile": profile, "result": result}})
        .to_string()
    }

    fn soft(gateway: &str) -> Value {
        json!({"result": "declined", "gateway": gateway, "response_code": "05",
               "response_message": "Do not honor", "processor_verdict": "soft"})
    }

    fn line(v: Value) -> String {
        v.to_string()
    }

    /// Every mapping of the table, each exercised by a short story.
    fn stories() -> String {
        let webhook = |id: &str| json!({"kind": "webhook", "delivery_id": id, "resent": false});
        [
            // c-1: the cascade's first step (nmi-backup) approves.
            sale("2026-03-02T10:00:00Z", "c-1", "nmi-main", None, soft("nmi-main")),
            line(json!({"at": "2026-03-02T10:00:01Z", "kind": "cascade_answer", "order_id": "c-1", "step": 1, "answer": {"result": "approved"}})),
            // c-2: the cascade step's outcome is unknown: pending.
            sale("2026-03-02T10:01:00Z", "c-2", "nmi-main", None, soft("nmi-main")),
            line(json!({"at": "2026-03-02T10:01:01Z", "kind": "cascade_answer", "order_id": "c-2", "step": 1, "answer": {"result": "pending"}})),
            // c-3: nmi-backup declines, FlexFactor challenges (C5: declined, cancelled).
            sale("2026-03-02T10:02:00Z", "c-3", "nmi-main", None, soft("nmi-main")),
            line(json!({"at": "2026-03-02T10:02:01Z", "kind": "cascade_answer", "order_id": "c-3", "step": 1, "answer": soft("nmi-backup")})),
            line(json!({"at": "2026-03-02T10:02:02Z", "kind": "flexfactor_answer", "order_id": "c-3", "attempt": 1, "answer": {"status": "challenge", "flexfactor_order_id": "ff-c3"}})),
            // c-4: FlexFactor wants a capture, then the capture approves.
            sale("2026-03-02T10:03:00Z", "c-4", "nmi-main", Some("atri-us"), soft("nmi-main")),
            line(json!({"at": "2026-03-02T10:03:01Z", "kind": "flexfactor_answer", "order_id": "c-4", "attempt": 1, "answer": {"status": "capture_required", "flexfactor_order_id": "ff-c4"}})),
            line(json!({"at": "2026-03-02T10:03:02Z", "kind": "flexfactor_answer", "order_id": "c-4", "attempt": 1, "answer": {"status": "approved", "flexfactor_order_id": "ff-c4", "confirmation_id": "CONF-4"}})),
            // c-5, c-6: no answer, and an answer a cascade cannot use.
            sale("2026-03-02T10:04:00Z", "c-5", "nmi-main", Some("atri-us"), soft("nmi-main")),
            line(json!({"at": "2026-03-02T10:04:01Z", "kind": "flexfactor_answer", "order_id": "c-5", "attempt": 1, "answer": {"status": "unknown", "detail": "timeout"}})),
            sale("2026-03-02T10:05:00Z", "c-6", "nmi-main", Some("atri-us"), soft("nmi-main")),
            line(json!({"at": "2026-03-02T10:05:01Z", "kind": "flexfactor_answer", "order_id": "c-6", "attempt": 1, "answer": {"status": "processing", "flexfactor_order_id": "ff-c6"}})),
            // r-1: a refund before the completion (O7: deferred, then applied).
            sale("2026-03-02T11:00:00Z", "r-1", "stripe-eu", None, soft("stripe-eu")),
            line(json!({"at": "2026-03-02T11:00:01Z", "kind": "rerun", "order_id": "r-1", "gateway": "flexfactor"})),
            line(json!({"at": "2026-03-02T11:00:02Z", "kind": "flexfactor_answer", "order_id": "r-1", "attempt": 1, "answer": {"status": "submitted", "flexfactor_order_id": "ff-r1"}})),
            line(json!({"at": "2026-03-03T11:00:00Z", "kind": "flexfactor_result", "order_id": "r-1", "result": {"result": "refunded"}, "source": webhook("d-r1-a")})),
            line(json!({"at": "2026-03-03T12:00:00Z", "kind": "flexfactor_result", "order_id": "r-1", "result": {"result": "completed", "flexfactor_order_id": "ff-r1", "confirmation_id": "C-1"}, "source": webhook("d-r1-b")})),
            line(json!({"at": "2026-03-03T12:30:00Z", "kind": "flexfactor_result", "order_id": "r-1", "result": {"result": "completed", "flexfactor_order_id": "ff-r1"}, "source": webhook("d-r1-c")})),
            // r-2: a poll without an answer, then a decline.
            sale("2026-03-02T12:00:00Z", "r-2", "stripe-eu", None, soft("stripe-eu")),
            line(json!({"at": "2026-03-02T12:00:01Z", "kind": "rerun", "order_id": "r-2", "gateway": "flexfactor"})),
            line(json!({"at": "2026-03-02T12:00:02Z", "kind": "flexfactor_answer", "order_id": "r-2", "attempt": 1, "answer": {"status": "processing", "flexfactor_order_id": "ff-r2"}})),
            line(json!({"at": "2026-03-04T12:00:00Z", "kind": "flexfactor_result", "order_id": "r-2", "result": {"result": "still_pending"}, "source": {"kind": "status_poll"}})),
            line(json!({"at": "2026-03-05T12:00:00Z", "kind": "flexfactor_result", "order_id": "r-2", "result": {"result": "declined"}, "source": webhook("d-r2")})),
            // r-3: FlexFactor refuses the request.
            sale("2026-03-02T13:00:00Z", "r-3", "stripe-eu", None, soft("stripe-eu")),
            line(json!({"at": "2026-03-02T13:00:01Z", "kind": "rerun", "order_id": "r-3", "gateway": "flexfactor"})),
            line(json!({"at": "2026-03-02T13:00:02Z", "kind": "flexfactor_answer", "order_id": "r-3", "attempt": 1, "answer": {"status": "rejected", "reason": "bad field"}})),
            // r-4: an answer not understood, then polls until the give-up time (O8).
            sale("2026-03-02T14:00:00Z", "r-4", "stripe-eu", None, soft("stripe-eu")),
            line(json!({"at": "2026-03-02T14:00:01Z", "kind": "rerun", "order_id": "r-4", "gateway": "flexfactor"})),
            line(json!({"at": "2026-03-02T14:00:02Z", "kind": "flexfactor_answer", "order_id": "r-4", "attempt": 1, "answer": {"status": "unrecognized", "raw_status": "WEIRD", "flexfactor_order_id": null}})),
            // r-5: a chargeback before an expiry (O7: deferred, then dropped).
            sale("2026-03-02T15:00:00Z", "r-5", "stripe-eu", None, soft("stripe-eu")),
            line(json!({"at": "2026-03-02T15:00:01Z", "kind": "rerun", "order_id": "r-5", "gateway": "flexfactor"})),
            line(json!({"at": "2026-03-02T15:00:02Z", "kind": "flexfactor_answer", "order_id": "r-5", "attempt": 1, "answer": {"status": "submitted", "flexfactor_order_id": "ff-r5"}})),
            line(json!({"at": "2026-03-04T15:00:00Z", "kind": "flexfactor_result", "order_id": "r-5", "result": {"result": "chargeback"}, "source": webhook("d-r5-a")})),
            line(json!({"at": "2026-03-05T15:00:00Z", "kind": "flexfactor_result", "order_id": "r-5", "result": {"result": "expired"}, "source": webhook("d-r5-b")})),
            // s-1: a rebill paid by its first re-attempt (Y2).
            sale_of("2026-03-06T09:00:00Z", "s-1", "nmi-main", None, "serum-monthly", 3999, Some("sub-1"), json!({"result": "approved"})),
            // s-2: a re-attempt whose outcome is unknown, then the CRM cancels.
            sale_of("2026-03-06T09:01:00Z", "s-2", "nmi-main", None, "serum-monthly", 3999, Some("sub-2"), json!({"result": "approved"})),
            line(json!({"at": "2026-03-10T09:00:00Z", "kind": "rebill", "subscription_id": "sub-1", "order_id": "s-1-c2", "result": soft("nmi-main")})),
            line(json!({"at": "2026-03-10T09:01:00Z", "kind": "rebill", "subscription_id": "sub-2", "order_id": "s-2-c2", "result": soft("nmi-main")})),
            line(json!({"at": "2026-03-11T09:30:00Z", "kind": "recycle_answer", "subscription_id": "sub-1", "order_id": "s-1-c2", "attempt": 1, "answer": {"result": "approved"}})),
            line(json!({"at": "2026-03-11T09:31:00Z", "kind": "recycle_answer", "subscription_id": "sub-2", "order_id": "s-2-c2", "attempt": 1, "answer": {"result": "unknown", "detail": "timeout"}})),
            line(json!({"at": "2026-03-12T00:00:00Z", "kind": "cancel_subscription", "subscription_id": "sub-2", "reason": "customer asked"})),
            // r-4's polls: still pending after the expiry and the give-up time.
            line(json!({"at": "2026-03-27T15:00:00Z", "kind": "flexfactor_result", "order_id": "r-4", "result": {"result": "still_pending"}, "source": {"kind": "status_poll"}})),
        ]
        .into_iter()
        .map(|l| {
            let at = serde_json::from_str::<Value>(&l).expect("json")["at"].to_string();
            (at, l)
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect::<Vec<_>>()
        .join("\n")
    }

    #[test]
    fn every_mapping_round_trips_to_the_same_states() {
        let (first, _, exported) = round_trip(&stories());
        assert!(first.refused.is_empty(), "{:#?}", first.refused);
        let status = |id: &str| first.orders[&OrderId::new(id)].status.unwrap_or("-");
        let salvage = |id: &str| first.orders[&OrderId::new(id)].state.salvage.clone();
        assert_eq!(status("c-1"), "complete");
        assert_eq!(status("c-2"), "pending");
        assert_eq!(status("c-3"), "declined");
        assert_eq!(status("c-4"), "complete");
        assert_eq!(status("c-5"), "declined");
        assert_eq!(status("c-6"), "declined");
        assert_eq!(status("r-1"), "refunded", "O7: the early refund applies");
        assert_eq!(status("r-2"), "declined");
        assert_eq!(status("r-3"), "declined");
        assert_eq!(
            salvage("r-4").map(|s| s.failure),
            Some(Some(SalvageFailure::ExpiredUnreconciled))
        );
        assert_eq!(status("r-5"), "declined");
        assert_eq!(salvage("r-5").map(|s| s.state), Some(SalvageState::Failed));
        let sub = |id: &str| &first.subscriptions[&SubscriptionId::new(id)];
        assert_eq!(
            (sub("sub-1").status, sub("sub-1").cycle),
            (Some("active"), 2)
        );
        assert_eq!(sub("sub-2").status, Some("cancelled"));
        let kinds: Vec<&str> = exported.iter().map(|l| l.entry.kind()).collect();
        for kind in [
            "place_order",
            "cascade_answer",
            "flexfactor_answer",
            "rerun",
            "flexfactor_result",
            "recycle_answer",
            "cancel_subscription",
        ] {
            assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
        }
        // The derived refund that applies r-1's deferred one is not an input of its own.
        let r1_refunds = exported
            .iter()
            .filter(|l| {
                matches!(&l.entry, TraceEntry::FlexFactorResult { order_id, result: FlexFactorResult::Refunded, .. } if order_id.as_str() == "r-1")
            })
            .count();
        assert_eq!(r1_refunds, 1);
    }

    #[test]
    fn a_feed_ending_with_a_timer_gets_an_advance_to_so_the_timer_fires_on_replay() {
        let text = [
            sale_of("2026-03-06T09:00:00Z", "s-1", "nmi-main", None, "serum-monthly", 3999, Some("sub-1"), json!({"result": "approved"})),
            line(json!({"at": "2026-03-10T09:00:00Z", "kind": "rebill", "subscription_id": "sub-1", "order_id": "s-1-c2", "result": soft("nmi-main")})),
            // Re-attempt 1 is due a day later; nothing answers it before the end.
            line(json!({"at": "2026-03-12T00:00:00Z", "kind": "advance_to"})),
        ]
        .join("\n");
        round_trip(&text);
        // Without --until: the trace ends at the feed's last event, the re-attempt's start.
        let exported = export(&feed_of_text(&text)).expect("exports");
        let last = exported.last().expect("lines");
        assert_eq!(last.entry, TraceEntry::AdvanceTo {});
        assert_eq!(last.at.to_rfc3339(), "2026-03-11T09:00:00+00:00");
        let replayed = replay(setup(), &numbered(exported));
        let sub = &replayed.subscriptions[&SubscriptionId::new("sub-1")];
        assert_eq!(sub.history.last(), Some(&"RecycleAttemptStarted"));
        assert_eq!(
            sub.state.recycle.as_ref().and_then(|r| r.in_flight),
            Some(1)
        );
    }

    fn event(position: i64, kind: &str, id: &str, sequence: i64, payload: Value) -> FeedEvent {
        FeedEvent {
            position,
            aggregate_type: kind.into(),
            aggregate_id: id.into(),
            sequence,
            event_type: payload["type"].as_str().unwrap_or("").into(),
            event_version: "1".into(),
            payload,
        }
    }

    fn feed_of_text(text: &str) -> Vec<FeedEvent> {
        feed_of(&trace::parse(text).expect("trace"))
    }

    #[test]
    fn unmappable_events_are_named_by_position_and_type() {
        let mut feed = feed_of_text(&sale(
            "2026-03-02T10:00:00Z",
            "c-1",
            "nmi-main",
            None,
            json!({"result": "approved"}),
        ));
        let next = feed.len() as i64 + 1;
        feed.push(event(
            next,
            "order",
            "c-1",
            feed.len() as i64 + 1,
            json!({"type": "OrderTeleported", "at": "2026-03-02T10:00:00Z"}),
        ));
        let e = export(&feed).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "feed position {next}: OrderTeleported of order c-1"
            )),
            "{text}"
        );
        assert!(
            text.contains("not an event this exporter can map"),
            "{text}"
        );

        let mut other = feed_of_text(&sale(
            "2026-03-02T10:00:00Z",
            "c-1",
            "nmi-main",
            None,
            json!({"result": "approved"}),
        ));
        other[1].aggregate_type = "invoice".into();
        let text = export(&other).unwrap_err().to_string();
        assert!(
            text.starts_with("feed position 2: AttemptApproved of invoice c-1"),
            "{text}"
        );
        assert!(text.contains("neither order nor subscription"), "{text}");

        let mut version = other.clone();
        version[1].aggregate_type = "order".into();
        version[1].event_version = "2".into();
        let text = export(&version).unwrap_err().to_string();
        assert!(text.contains("event_version \"2\""), "{text}");

        let mut mismatch = version.clone();
        mismatch[1].event_version = "1".into();
        mismatch[1].event_type = "AttemptDeclined".into();
        let text = export(&mismatch).unwrap_err().to_string();
        assert!(
            text.contains("the payload is a AttemptApproved, not the AttemptDeclined"),
            "{text}"
        );
    }

    #[test]
    fn positions_must_grow_and_sequences_must_not_have_gaps() {
        let feed = feed_of_text(&stories());
        let mut back = feed.clone();
        back[3].position = back[2].position;
        let text = export(&back).unwrap_err().to_string();
        assert!(text.contains("positions must increase"), "{text}");
        assert!(text.starts_with(&format!("feed position {}", back[3].position)));

        let mut gap = feed.clone();
        gap.remove(1); // c-1's AttemptDeclined
        let text = export(&gap).unwrap_err().to_string();
        assert!(text.contains("misses events of this order"), "{text}");

        // A feed cut after an OrderPlaced.
        let text = export(&feed[..1]).unwrap_err().to_string();
        assert!(
            text.starts_with("feed position 1: OrderPlaced of order c-1"),
            "{text}"
        );
        assert!(
            text.contains("without the result of its first attempt"),
            "{text}"
        );
    }

    #[test]
    fn a_feed_starting_mid_history_maps_what_it_can_and_names_what_it_cannot() {
        let feed = feed_of_text(&stories());
        // c-1's cascade answer is at its third-to-last event; start after its step started.
        let started = feed
            .iter()
            .position(|e| e.aggregate_id == "c-1" && e.event_type == "CascadeStepStarted")
            .expect("c-1 cascades");
        let tail: Vec<FeedEvent> = feed[started + 1..].to_vec();
        let text = export(&tail).unwrap_err().to_string();
        assert!(text.contains("CascadeEnded of order c-1"), "{text}");
        assert!(
            text.contains("export the feed from its beginning"),
            "{text}"
        );
        // From a clean cut (after c-1's last event), everything maps.
        let last_c1 = feed
            .iter()
            .rposition(|e| e.aggregate_id == "c-1")
            .expect("c-1");
        assert!(export(&feed[last_c1 + 1..]).is_ok());
    }

    #[test]
    fn lines_never_go_back_in_time() {
        let mut feed = feed_of_text(&stories());
        // c-2's OrderPlaced stamped before c-1's answer.
        let i = feed
            .iter()
            .position(|e| e.aggregate_id == "c-2")
            .expect("c-2");
        feed[i].payload["at"] = json!("2026-03-01T00:00:00Z");
        let lines = export(&feed).expect("exports");
        assert!(lines.windows(2).all(|w| w[0].at <= w[1].at));
        let c2 = lines
            .iter()
            .find(|l| matches!(&l.entry, TraceEntry::PlaceOrder { order } if order.order_id.as_str() == "c-2"))
            .expect("c-2 placed");
        assert_eq!(c2.at.to_rfc3339(), "2026-03-02T10:00:01+00:00");
    }

    #[test]
    fn a_payload_without_its_tag_takes_the_event_type() {
        let mut feed = feed_of_text(&sale(
            "2026-03-02T10:00:00Z",
            "c-1",
            "nmi-main",
            None,
            json!({"result": "approved"}),
        ));
        for e in &mut feed {
            if let Value::Object(map) = &mut e.payload {
                map.remove("type");
            }
        }
        let lines = export(&feed).expect("exports");
        assert_eq!(lines[0].entry.kind(), "place_order");
    }

    #[test]
    fn saved_feeds_are_read_as_pages_arrays_or_json_lines() {
        let feed = feed_of_text(&stories());
        let (a, b) = feed.split_at(10);
        let page = |events: &[FeedEvent], next: i64| {
            serde_json::to_string(&FeedPage {
                events: events.to_vec(),
                next_after: next,
            })
            .unwrap()
        };
        let pages = format!("{}\n{}\n", page(a, 10), page(b, feed.len() as i64));
        assert_eq!(parse_feed(&pages).unwrap(), feed);
        let array = serde_json::to_string_pretty(&feed).unwrap();
        assert_eq!(parse_feed(&array).unwrap(), feed);
        let jsonl: String = feed
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        assert_eq!(parse_feed(&jsonl).unwrap(), feed);
        assert!(parse_feed("").unwrap().is_empty());
        let e = parse_feed("42").unwrap_err().to_string();
        assert!(e.contains("JSON value 1: expected a feed page"), "{e}");
        let e = parse_feed("{\"events\": 3}").unwrap_err().to_string();
        assert!(e.contains("not a feed page"), "{e}");
        let e = parse_feed("{\"position\": 1} {").unwrap_err().to_string();
        assert!(e.contains("not a feed event"), "{e}");
    }
}
