//! The Order aggregate: one CRM order (new sale, trial completion or rebill), its attempts, its
//! cascade, its FlexFactor salvages and what FlexFactor later reports about it.
//!
//! `handle` decides with a scratch state (every event counts as soon as it is decided, so later
//! decisions in the same command see it; the state is copied only if read after an event, see
//! `crate::decision`), then writes the events to the cqrs-es `EventSink`.
//!
//! Layout: `state` (the aggregate's state), `aggregate` (the cqrs-es `Aggregate` impl: `handle`
//! and `apply`), `decide` (`Order::decide` and one file per decision: placement, cascade,
//! submission, rerun, FlexFactor answer, FlexFactor result), beside the command, event, error and
//! status types.

mod aggregate;
mod card_facts;
mod command;
mod decide;
mod error;
mod event;
mod state;
mod status;

pub use command::{AttemptResult, FlexFactorResult, OrderCommand, PlaceOrder, ResultSource};
pub use decide::RECONCILE_GIVE_UP_DAYS;
pub use error::OrderError;
pub use event::{
    CascadeOutcome, IgnoredBecause, OrderDetails, OrderEvent, RecurringLine, RecurringTerms,
    SalvageFailure, SalvageRoute,
};
pub use state::{CascadeProgress, Order, Salvage, SalvageState};
pub use status::OrderStatus;
