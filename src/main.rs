//! `salvage`: the one command-line entry point of Salvage.

mod cmd_calibrate;
mod cmd_conform;
mod cmd_export_trace;
mod cmd_fake;
mod cmd_replay;
mod cmd_serve;
mod cmd_serve_sandbox;
mod cmd_simulate;
mod cmd_store;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the simulator allocates and frees millions of small strings and events, which it
/// does in about a third less time than with the system allocator (docs/benchmarks.md, issue 17).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Salvage rescues declined payments through the FlexFactor decline-recovery gateway: it
/// cascades soft-declined new sales, reruns declined sales, hands rebills over from recycle
/// billing, and writes the results back to event-sourced orders and subscriptions.
#[derive(Debug, Parser)]
#[command(name = "salvage", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: the CRM-facing API, FlexFactor's webhooks, the background worker. With
    /// no --config, runs the embedded sandbox: a SQLite file in the working directory, the sample
    /// setup and an in-process fake FlexFactor.
    Serve(cmd_serve::ServeArgs),
    /// Validate a configuration (a service configuration, or a setup alone) and print a summary;
    /// exits non-zero, listing every problem with its file, entry and rule, when it is invalid.
    CheckConfig {
        /// The file (TOML). Defaults to the sample setup, examples/salvage.toml.
        #[arg(value_name = "FILE", default_value = "examples/salvage.toml")]
        file: PathBuf,
    },
    /// Empty the projections (orders, subscriptions, pending salvages) and rebuild them from the
    /// ordered event log.
    RebuildProjections(cmd_store::RebuildArgs),
    Simulate(cmd_simulate::SimulateArgs),
    Replay(cmd_replay::ReplayArgs),
    Calibrate(cmd_calibrate::CalibrateArgs),
    ExportTrace(cmd_export_trace::ExportTraceArgs),
    /// Run the fake FlexFactor server: FlexFactor's endpoints and payloads, sandbox-like outcomes
    /// from scenario rules, signed webhooks to --webhook-url, a real or driven clock, fault
    /// injection and admin endpoints (see docs/fake-flexfactor.md).
    FakeFlexfactor(cmd_fake::FakeArgs),
    /// Run the conformance scenarios (Given/When/Then per rule ID) in-process, or against a
    /// deployment and its fake FlexFactor with --target and --flexfactor; prints passed, failed
    /// and skipped per rule, writes JUnit XML and Markdown on request, exits non-zero on a
    /// failure (see docs/conformance.md).
    Conform(cmd_conform::ConformArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => cmd_serve::serve(args),
        Command::CheckConfig { file } => cmd_serve::check_config(&file),
        Command::RebuildProjections(args) => cmd_store::rebuild_projections(args),
        Command::Simulate(args) => cmd_simulate::run(args),
        Command::Replay(args) => cmd_replay::run(args),
        Command::Calibrate(args) => cmd_calibrate::run(args),
        Command::ExportTrace(args) => cmd_export_trace::run(args),
        Command::FakeFlexfactor(args) => cmd_fake::run(args),
        Command::Conform(args) => cmd_conform::run(args),
    }
}
