//! The trace format: a recorded sequence of what happened to orders and subscriptions, one JSON
//! object per line (JSON Lines), each with its time `at` (RFC 3339) and its `kind`. The service's
//! event feed exports in this format ([`crate::feed_export`], `salvage export-trace`);
//! `salvage replay` runs a trace through the domain.
//!
//! ```text
//! {"at":"2026-03-02T10:00:00Z","kind":"place_order","order":{...PlaceOrder...}}
//! {"at":"2026-03-02T10:00:00Z","kind":"flexfactor_answer","order_id":"o-1","attempt":1,"answer":{"status":"approved","flexfactor_order_id":"ff-1"}}
//! {"at":"2026-03-03T09:00:00Z","kind":"rerun","order_id":"o-2","gateway":"flexfactor"}
//! {"at":"2026-03-06T12:00:00Z","kind":"flexfactor_result","order_id":"o-2","result":{"result":"completed"}}
//! {"at":"2026-04-01T10:00:00Z","kind":"rebill","subscription_id":"sub-1","order_id":"r-1","result":{"result":"approved"}}
//! {"at":"2026-05-31T00:00:00Z","kind":"advance_to"}
//! ```
//!
//! Lines must not go back in time. Blank lines and lines starting with `#` or `//` are skipped.
//! Fields not listed here are ignored (later versions may add some).

use chrono::{DateTime, Utc};
use salvage_domain::order::{AttemptResult, FlexFactorResult, PlaceOrder, ResultSource};
use salvage_domain::ports::{EvaluateAnswer, GatewayAnswer};
use salvage_domain::{GatewayId, OrderId, SubscriptionId};
use serde::{Deserialize, Serialize};

use crate::error::TraceError;

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceLine {
    /// When it happened; the clock moves there first, running every timer due on the way.
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub entry: TraceEntry,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceEntry {
    /// The CRM reported an order and the result of its first attempt (`POST /v1/orders`).
    /// A soft-declined new sale starts its cascade (C1-C6).
    PlaceOrder { order: Box<PlaceOrder> },
    /// A regular gateway's answer to cascade step `step` of an order.
    CascadeAnswer {
        order_id: OrderId,
        step: u32,
        answer: GatewayAnswer,
    },
    /// FlexFactor's answer to `/evaluate` for submission `attempt` of an order (a cascade's
    /// APPROVED or DECLINED, a rerun's or hand-over's SUBMITTED...).
    #[serde(rename = "flexfactor_answer")]
    FlexFactorAnswer {
        order_id: OrderId,
        attempt: u32,
        answer: EvaluateAnswer,
    },
    /// The CRM reruns a declined sale on a FlexFactor gateway (R1-R5).
    Rerun {
        order_id: OrderId,
        gateway: GatewayId,
    },
    /// A result FlexFactor delivered about an order (webhook or status poll): completed,
    /// declined, expired, cancelled, refunded, chargeback... (O1-O8, K1-K3).
    #[serde(rename = "flexfactor_result")]
    FlexFactorResult {
        order_id: OrderId,
        result: FlexFactorResult,
        /// Where it came from; `{"kind":"replay"}` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<ResultSource>,
    },
    /// The CRM billed a subscription (a rebill, or the trial completion of a subscription in
    /// trial) and reports the result. The order takes the subscription's price, billing gateway,
    /// campaign and product unless given here, and its customer and card from the order that
    /// created the subscription.
    Rebill {
        subscription_id: SubscriptionId,
        order_id: OrderId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gateway: Option<GatewayId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount_minor: Option<i64>,
        result: AttemptResult,
    },
    /// The billing gateway's answer to recycle re-attempt `attempt` of a rebill (Y2).
    RecycleAnswer {
        subscription_id: SubscriptionId,
        order_id: OrderId,
        attempt: u32,
        answer: GatewayAnswer,
    },
    /// The CRM cancelled a subscription.
    CancelSubscription {
        subscription_id: SubscriptionId,
        reason: String,
    },
    /// Nothing happened but time: the clock moves to `at`.
    AdvanceTo {},
}

impl TraceEntry {
    /// The `kind` written in the trace.
    pub fn kind(&self) -> &'static str {
        match self {
            TraceEntry::PlaceOrder { .. } => "place_order",
            TraceEntry::CascadeAnswer { .. } => "cascade_answer",
            TraceEntry::FlexFactorAnswer { .. } => "flexfactor_answer",
            TraceEntry::Rerun { .. } => "rerun",
            TraceEntry::FlexFactorResult { .. } => "flexfactor_result",
            TraceEntry::Rebill { .. } => "rebill",
            TraceEntry::RecycleAnswer { .. } => "recycle_answer",
            TraceEntry::CancelSubscription { .. } => "cancel_subscription",
            TraceEntry::AdvanceTo {} => "advance_to",
        }
    }
}

/// A parsed line with its 1-based line number in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberedLine {
    pub number: usize,
    pub line: TraceLine,
}

/// Parses a whole trace; the first bad line stops it, named by number.
pub fn parse(text: &str) -> Result<Vec<NumberedLine>, TraceError> {
    let mut out = Vec::new();
    let mut last: Option<DateTime<Utc>> = None;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        let line: TraceLine = serde_json::from_str(trimmed).map_err(|e| TraceError::Line {
            line: number,
            message: e.to_string(),
        })?;
        if let Some(prev) = last {
            if line.at < prev {
                return Err(TraceError::Line {
                    line: number,
                    message: format!(
                        "at {} is before the previous line's {}: a trace never goes back in time",
                        line.at.to_rfc3339(),
                        prev.to_rfc3339()
                    ),
                });
            }
        }
        last = Some(line.at);
        out.push(NumberedLine { number, line });
    }
    Ok(out)
}

/// One line of JSON, as written in a trace (no newline).
pub fn to_line(line: &TraceLine) -> Result<String, serde_json::Error> {
    serde_json::to_string(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_time_never_goes_back() {
        let text = r#"{"at":"2026-03-03T09:00:00Z","kind":"rerun","order_id":"o-2","gateway":"flexfactor"}
# a comment

{"at":"2026-03-06T12:00:00Z","kind":"flexfactor_result","order_id":"o-2","result":{"result":"completed"}}
{"at":"2026-03-07T00:00:00Z","kind":"advance_to"}"#;
        let lines = parse(text).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].number, 4);
        assert_eq!(lines[2].line.entry, TraceEntry::AdvanceTo {});
        for l in &lines {
            let back: TraceLine = serde_json::from_str(&to_line(&l.line).unwrap()).unwrap();
            assert_eq!(back, l.line);
        }
        let backwards = r#"{"at":"2026-03-03T09:00:00Z","kind":"advance_to"}
{"at":"2026-03-02T09:00:00Z","kind":"advance_to"}"#;
        let e = parse(backwards).unwrap_err();
        assert!(e.to_string().starts_with("line 2:"), "{e}");
        let bad = r#"{"at":"2026-03-03T09:00:00Z","kind":"teleport"}"#;
        assert!(parse(bad).unwrap_err().to_string().contains("line 1"));
    }
}
