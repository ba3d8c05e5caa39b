//! `salvage calibrate`: fit a scenario's population parameters from a trace of real traffic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use salvage_domain::Setup;
use salvage_sim::calibrate::Fit;
use salvage_sim::replay::replay;
use salvage_sim::trace;

/// Fit a simulation scenario from a trace of real traffic.
///
/// Replays TRACE (from `salvage export-trace` of a running service) through the domain with the
/// service's setup, and fits what a scenario needs from the events: the order mix, ip_address
/// share and card networks, first-attempt approval of new sales and rebills, the decline code
/// mix with Visa categories and Mastercard advice codes, cascade steps and recycle re-attempts,
/// FlexFactor's cascade approval, rerun and hand-over recovery by slot and the days to a
/// recovery, lost webhooks, chargebacks and refunds, the CRM's reruns. Writes a scenario TOML in
/// which every fitted value is commented with its sample size and 95% interval; `salvage
/// simulate` runs it.
///
/// Example:
///
///   salvage export-trace --url http://127.0.0.1:8080 --api-key KEY --out trace.jsonl
///
///   salvage calibrate trace.jsonl --setup salvage.toml --out fitted.toml
///
///   salvage simulate fitted.toml --seeds 8
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The trace (JSON Lines).
    #[arg(value_name = "TRACE.jsonl")]
    pub trace: PathBuf,
    /// The service's setup (TOML); the scenario names it by its absolute path.
    #[arg(long, value_name = "FILE", default_value = "examples/salvage.toml")]
    pub setup: PathBuf,
    /// Where to write the scenario (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The scenario's name.
    #[arg(long, default_value = "calibrated")]
    pub name: String,
}

pub fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("cannot read the trace {}", args.trace.display()))?;
    let lines = trace::parse(&text).with_context(|| args.trace.display().to_string())?;
    let setup_text = std::fs::read_to_string(&args.setup)
        .with_context(|| format!("cannot read the setup {}", args.setup.display()))?;
    let setup = Setup::from_toml_str(&setup_text)
        .with_context(|| format!("{}: not a valid setup", args.setup.display()))?;
    let setup = Arc::new(setup);
    let outcome = replay(Arc::clone(&setup), &lines);
    if !outcome.refused.is_empty() {
        eprintln!(
            "warning: the replay refused {} command(s) (see `salvage replay`); the fit reads the events committed",
            outcome.refused.len()
        );
    }
    let fit = Fit::of_events(&setup, &outcome.events);
    let setup_path =
        std::fs::canonicalize(&args.setup).unwrap_or_else(|_| Path::new(&args.setup).to_path_buf());
    let scenario = fit.to_scenario_toml(
        &args.name,
        &setup_path.display().to_string(),
        &args.trace.display().to_string(),
    );
    match &args.out {
        Some(file) => {
            std::fs::write(file, &scenario)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!(
                "fitted {} new sale(s) from {} trace line(s); wrote {}",
                fit.new_sales,
                lines.len(),
                file.display()
            );
        }
        None => print!("{scenario}"),
    }
    Ok(ExitCode::SUCCESS)
}
