//! The scenario files (`conformance/scenarios/*.toml`): their model and their loader.
//!
//! The format is documented in `docs/conformance.md`. In short, a file holds `[[scenario]]`
//! entries, each with `id`, `rules`, `title`, an optional `isolated`, a `given` (setup edits of
//! the sample setup and prior steps), `when` steps and `then` steps. Every step does exactly one
//! thing (`post`, `get`, `webhook`, `advance`, `settle`, `fault`, `clear_faults`,
//! `flexfactor_evaluate`, `flexfactor_calls`, `flexfactor_order`, `notifications`,
//! `start_service`) and may say what it expects. Files whose name starts with `_` hold shared
//! request templates (`[templates.NAME]`).
//!
//! Every problem is reported with the file, the scenario and the field.
//!
//! The module, bottom up: `duration` and `json_path` (utilities), `model` (the scenario
//! model), `fields` and `shape` (the loader's table reader and whole-scenario checks),
//! `loader` (a file's text to a [`ScenarioFile`]), `suite` (a directory to a [`Suite`]).

mod duration;
mod fields;
mod json_path;
mod loader;
mod model;
mod shape;
mod suite;

pub use duration::{format_duration, parse_duration};
pub use json_path::{set_json, unset_json};
pub use loader::{load_file, Templates, ACTIONS};
pub use model::{
    Action, Auth, Body, EvaluateCheck, FakeOrderCheck, HttpExpect, HttpStep, Method,
    NotificationCheck, Phase, Scenario, ScenarioFile, Signing, StartExpect, Step, WebhookStep,
    ENDPOINTS,
};
pub use suite::Suite;
