//! Salvage's conformance suite.
//!
//! - The scenario suite: Given/When/Then scenarios keyed by rule ID, written as data in
//!   `conformance/scenarios/*.toml` ([`scenario`]), run black-box over HTTP against the service
//!   and the fake FlexFactor, in-process on one manual clock or against a deployment
//!   ([`runner`], [`target`]), reported as a table of rule IDs, JUnit XML and Markdown
//!   ([`report`]). `salvage conform` is its command line; `docs/conformance.md` its manual.
//! - The contract suite: the FlexFactor client against the fake, and against FlexFactor's
//!   sandbox when credentials are in the environment ([`contract`]).

pub mod catalogue;
pub mod contract;
pub mod crm;
pub mod error;
pub mod matcher;
pub mod model;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod setup;
pub mod target;
pub mod vars;

pub use error::{LoadError, RunError};
pub use runner::{RemoteOptions, ScenarioResult, Status, SuiteResult};
pub use scenario::Suite;

/// Where the scenario files live in the source tree.
pub const SCENARIO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

/// Where reports go by default: `target/conformance/` of the workspace (or of
/// `CARGO_TARGET_DIR`).
pub fn default_report_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::PathBuf::from(dir).join("conformance"),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("conformance"),
    }
}
