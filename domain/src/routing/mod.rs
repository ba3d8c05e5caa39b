//! Routing decisions as pure functions of the setup and the facts of a decline.

pub mod cascade;
pub mod recycle;
pub mod rerun;

pub use cascade::{
    cascade_route, CascadeDecision, CascadeInput, CascadeRoute, CascadeSource, CascadeStep,
    NoCascadeReason,
};
pub use recycle::{recycle_plan, PlannedAttempt, RecyclePlan, RecycleSlot, RecycleTarget};
pub use rerun::{rerun_admissible, RerunFacts, RerunRefusal};
