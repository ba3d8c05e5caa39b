//! The exporter: feed events pushed in order become trace lines ([`FeedExporter`], [`export`],
//! [`to_jsonl`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use salvage_domain::order::OrderEvent;
use salvage_domain::subscription::SubscriptionEvent;
use salvage_gateway::feed::FeedEvent;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{event_error, FeedExportError};
use super::order_line::order_line;
use super::order_track::OrderTrack;
use super::subscription_line::subscription_line;
use crate::trace::{to_line, TraceEntry, TraceLine};

/// The event version this exporter reads.
pub const EVENT_VERSION: &str = "1";

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
        out.push_str(&to_line(l)?);
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

#[cfg(test)]
mod tests {
    use salvage_domain::order::{FlexFactorResult, SalvageFailure, SalvageState};
    use salvage_domain::{OrderId, SubscriptionId};
    use serde_json::json;

    use super::*;
    use crate::feed_export::test_support::{
        event, feed_of_text, line, numbered, round_trip, sale, sale_of, setup, soft, stories,
        EXAMPLE,
    };
    use crate::replay::replay;

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
}
