//! Errors of the simulator library.

use std::path::PathBuf;

use salvage_domain::setup::SetupError;

/// One thing wrong with a scenario: the field (a dotted path such as
/// `population.products[1].campaign`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioProblem {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ScenarioProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

/// Collects problems with their field paths.
#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<ScenarioProblem>);

impl Problems {
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ScenarioProblem {
            field: field.into(),
            message: message.into(),
        });
    }

    pub(crate) fn share(&mut self, field: impl Into<String>, value: f64) {
        if !(0.0..=1.0).contains(&value) {
            self.add(field, format!("{value} is not a share between 0 and 1"));
        }
    }
}

fn render(problems: &[ScenarioProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The OS error is the source, not part of the message: a chain printer (anyhow's `{:#}`)
    /// shows it once.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid scenario: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: the scenario has {} problem(s):\n{}", path.display(), problems.len(), render(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<ScenarioProblem>,
    },
    #[error("{}: field `setup`: the base setup {setup} is invalid: {error}", path.display())]
    Setup {
        path: PathBuf,
        /// The setup file as written in the scenario, or "(inline)".
        setup: String,
        error: SetupError,
    },
}

/// Why a trace could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot serialize the report: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot draw chart {chart}: {message}")]
    Chart {
        chart: &'static str,
        message: String,
    },
}
