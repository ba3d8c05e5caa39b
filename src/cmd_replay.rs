//! `salvage replay`: run a recorded trace through the domain and show the resulting states.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use salvage_domain::Setup;
use salvage_sim::{replay, trace};

/// Replay a recorded trace through the domain and show the resulting states.
///
/// A trace is JSON Lines: orders, declines, reruns, rebills, FlexFactor answers and deliveries,
/// each with its time. The replay runs them through the real aggregates and process manager,
/// timers included, and shows the resulting orders and subscriptions, the CRM notifications,
/// the effects the domain asked for and any refused command. The format is described in
/// docs/simulation.md; an example is simulator/traces/example.jsonl.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trace to replay (one JSON object per line).
    #[arg(value_name = "TRACE.jsonl")]
    pub trace: PathBuf,
    /// The setup the trace was recorded with.
    #[arg(long, value_name = "FILE", default_value = "examples/salvage.toml")]
    pub setup: PathBuf,
    /// Write the resulting states as JSON to FILE (and print a summary) instead of printing
    /// the JSON.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let setup_text = std::fs::read_to_string(&args.setup)
        .with_context(|| format!("cannot read the setup file {}", args.setup.display()))?;
    let setup = Setup::from_toml_str(&setup_text)
        .with_context(|| format!("{}: invalid setup", args.setup.display()))?;
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("cannot read the trace {}", args.trace.display()))?;
    let lines = trace::parse(&text).with_context(|| format!("{}", args.trace.display()))?;
    let outcome = replay::replay(Arc::new(setup), &lines);
    let json = outcome.to_json()?;
    match &args.out {
        Some(file) => {
            std::fs::write(file, json)
                .with_context(|| format!("cannot write {}", file.display()))?;
            print!("{}", outcome.summary_table());
            println!("wrote {}", file.display());
        }
        None => print!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
}
