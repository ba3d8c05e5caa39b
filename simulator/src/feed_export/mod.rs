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
//!
//! Files: `parse` (reading a saved feed), `error`, `order_track` (what is remembered of an
//! order between its events), `line`, `order_line` and `subscription_line` (one event to its
//! trace line), `exporter` (events in feed order to a trace).

mod error;
mod exporter;
mod line;
mod order_line;
mod order_track;
mod parse;
mod subscription_line;
#[cfg(test)]
mod test_support;

pub use error::FeedExportError;
pub use exporter::{export, to_jsonl, ExportCounts, FeedExporter, EVENT_VERSION};
pub use parse::parse_feed;
/// The feed's record, defined once in the gateway (the service serves it, the log stores it).
pub use salvage_gateway::feed::{FeedEvent, FeedPage};
