//! `salvage`: the one command-line entry point of Salvage.

mod cmd_store;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use salvage_domain::setup::SetupError;
use salvage_domain::Setup;

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
    /// Validate a setup file and print a summary of it; exits non-zero, listing every problem
    /// with its rule ID and entry, when the setup is invalid.
    CheckConfig {
        /// The setup (TOML). Defaults to the sample setup, examples/salvage.toml.
        #[arg(value_name = "FILE", default_value = "examples/salvage.toml")]
        file: PathBuf,
    },
    /// Empty the projections (orders, subscriptions, pending salvages) and rebuild them from the
    /// ordered event log.
    RebuildProjections(cmd_store::RebuildArgs),
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
        Command::CheckConfig { file } => check_config(&file),
        Command::RebuildProjections(args) => cmd_store::rebuild_projections(args),
    }
}

fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the setup file {}", file.display()))?;
    match Setup::from_toml_str(&text) {
        Ok(setup) => {
            println!("{}: valid", file.display());
            print!("{}", setup.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(SetupError::Parse(e)) => {
            eprintln!("{}: {e}", file.display());
            Ok(ExitCode::FAILURE)
        }
        Err(SetupError::Invalid(violations)) => {
            eprintln!(
                "{}: the setup has {} problem(s):",
                file.display(),
                violations.len()
            );
            for v in violations {
                eprintln!("  {}: {v}", file.display());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
