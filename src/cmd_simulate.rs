//! `salvage simulate`: run a scenario and write `report.json` and `report.html`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use salvage_sim::{html, Engine, Report, RunOptions, Scenario, ScenarioOverrides};

/// Simulate a scenario and compare its setup variants (report.json, report.html).
///
/// A deterministic discrete-event simulation: customers place sales and subscribe, gateways
/// decline (with the Visa category or Mastercard advice of the card's network), FlexFactor
/// recovers after delays, chargebacks arrive; several setup variants run on the same traffic
/// through the real domain, and the report compares them, with the attempts the card-network
/// rules blocked and the fees that spared. Writes DIR/report.json (same scenario and seed: same
/// bytes) and DIR/report.html (SVG charts), and prints a summary table. Scenarios are described
/// in docs/simulation.md.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The scenario (TOML). Shipped ones are in simulator/scenarios/: default.toml, slots.toml,
    /// cascade_all.toml, expiry_days.toml, network_rules.toml.
    #[arg(
        value_name = "SCENARIO.toml",
        default_value = "simulator/scenarios/default.toml"
    )]
    pub scenario: PathBuf,
    /// The directory the report is written to (created if needed).
    #[arg(long, short, value_name = "DIR", default_value = "simulation")]
    pub out: PathBuf,
    /// Worker threads; the report is the same whatever the number. Defaults to the CPUs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Replace the scenario's seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Replace the scenario's number of customers (for a quick run, or a bigger one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub customers: Option<u32>,
    /// Replace the scenario's horizon, in days.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub horizon_days: Option<u32>,
    /// No progress bar (there is none anyway when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let overrides = ScenarioOverrides {
        seed: args.seed,
        customers: args.customers,
        horizon_days: args.horizon_days,
    };
    let scenario = Scenario::load(&args.scenario, overrides)?;
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let engine = Engine::new(&scenario);
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(engine.total_work());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} customer runs, {eta} left",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!(
            "simulating {} ({} variant(s))",
            scenario.spec.name,
            scenario.variants.len()
        ));
        bar
    });
    let progress = |n: u64| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    };
    let tallies = engine.run(&RunOptions {
        threads,
        progress: bar.as_ref().map(|_| &progress as &(dyn Fn(u64) + Sync)),
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    let report = Report::build(&scenario, &tallies);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {}", args.out.display()))?;
    let json_path = args.out.join("report.json");
    let html_path = args.out.join("report.html");
    std::fs::write(&json_path, report.to_json()?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(&html_path, html::render(&report)?)
        .with_context(|| format!("cannot write {}", html_path.display()))?;

    println!(
        "{}: {} customers, {} days, seed {}",
        scenario.spec.name,
        scenario.spec.population.customers,
        scenario.spec.horizon_days,
        scenario.spec.seed
    );
    print!("{}", report.summary_table());
    println!("wrote {} and {}", json_path.display(), html_path.display());

    let broken: Vec<&str> = report
        .variants
        .iter()
        .filter(|v| !v.audit.balanced || v.invariants != Default::default())
        .map(|v| v.name.as_str())
        .collect();
    if broken.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: the audit or an invariant failed in variant(s) {}: see `audit` and `invariants` in {}",
            broken.join(", "),
            json_path.display()
        );
        Ok(ExitCode::FAILURE)
    }
}
