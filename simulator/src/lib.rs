//! # salvage-sim
//!
//! Salvage's simulator: a deterministic discrete-event simulation that runs the real domain
//! (the Order and Subscription aggregates and the process manager of `salvage-domain`) on a
//! virtual clock, with statistical models of the processor gateways and of FlexFactor, several
//! setup variants on the same traffic, and a report (JSON, HTML with SVG charts, a text table);
//! and the replay of recorded traces through the same domain.
//!
//! See `docs/simulation.md` for the scenario format, the models and their sources, the trace
//! format and the benchmark.

pub mod aggregates;
pub mod calibrate;
mod card_ledger;
mod crm;
mod customer;
pub mod engine;
pub mod error;
pub mod fake_flexfactor;
pub mod feed_export;
pub mod flexfactor_model;
pub mod gateway_model;
pub mod html;
mod names;
pub mod network_fees;
pub mod population;
mod recorded;
pub mod replay;
pub mod report;
pub mod rng;
pub mod runtime;
pub mod scenario;
pub mod shipped;
pub mod sim_trace;
pub mod stats;
pub mod store;
pub mod sweep;
pub mod tally;
pub mod trace;
pub mod uncertainty;
pub mod variant;

pub use engine::{Engine, RunOptions};
pub use error::{ReportError, ScenarioError, ScenarioProblem, TraceError};
pub use report::Report;
pub use scenario::{Scenario, ScenarioOverrides};
