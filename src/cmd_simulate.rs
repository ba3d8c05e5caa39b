//! `salvage simulate`: run a scenario and write `report.json` and `report.html`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use salvage_sim::{html, shipped, Engine, Report, RunOptions, Scenario, ScenarioOverrides};

/// Simulate a scenario and compare its setup variants (report.json, report.html).
///
/// A deterministic discrete-event simulation: customers place sales and subscribe, gateways
/// decline (with the Visa category or Mastercard advice of the card's network), FlexFactor
/// recovers after delays, chargebacks arrive; several setup variants run on the same traffic
/// through the real domain, and the report compares them, with the attempts the card-network
/// rules blocked and the fees that spared. Every variant runs on --seeds independent traffic
/// seeds (the same for all), and the report gives each headline figure's mean and 95% interval,
/// and says when a difference between variants is within noise. Writes DIR/report.json (same
/// scenario and seeds: same bytes) and DIR/report.html (SVG charts), and prints a summary
/// table. Scenarios are described in docs/simulation.md.
///
/// The shipped scenarios are compiled in: `salvage simulate` runs `default` from any directory,
/// `salvage simulate slots` runs one by name, `salvage simulate --list` names them all.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A scenario file (TOML), or the name of a shipped scenario (see --list). A file on the
    /// disk wins over a shipped scenario of the same name. Default: the shipped `default`.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<String>,
    /// List the shipped scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// The directory the report is written to (created if needed).
    #[arg(long, short, value_name = "DIR", default_value = "simulation")]
    pub out: PathBuf,
    /// Worker threads; the report is the same whatever the number. Defaults to the CPUs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Replace the scenario's seed (the first seed of the run).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Run every variant on N independent traffic seeds (the seed, the seed + 1, ...; the same
    /// for every variant): the report gives each headline figure's mean and 95% interval per
    /// run, and each variant's paired difference against the first, saying when it is within
    /// noise.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub seeds: u32,
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

/// The shipped scenarios, one a line: the name and the description.
fn list() -> String {
    let all = shipped::scenarios();
    let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
    all.iter()
        .map(|s| format!("{:<width$}  {}\n", s.name, s.description()))
        .collect()
}

/// The scenario named on the command line: a file on the disk, else a shipped scenario by name
/// (or by its path in the repository), else an error naming the argument once and the shipped
/// names.
fn open(arg: Option<&str>, overrides: ScenarioOverrides) -> anyhow::Result<Scenario> {
    let arg = arg.unwrap_or(shipped::DEFAULT);
    let path = Path::new(arg);
    if path.is_file() {
        return Ok(Scenario::load(path, overrides)?);
    }
    if let Some(s) = shipped::scenario(arg) {
        return Ok(Scenario::shipped(&s, overrides)?);
    }
    let names: Vec<&str> = shipped::scenarios().iter().map(|s| s.name).collect();
    let why = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => "a directory, not a file".to_string(),
        Ok(_) => "not readable".to_string(),
        Err(e) => e.to_string(),
    };
    anyhow::bail!(
        "cannot read the scenario {arg}: {why}; it is not a shipped scenario either (shipped: {})",
        names.join(", ")
    )
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        print!("{}", list());
        return Ok(ExitCode::SUCCESS);
    }
    let overrides = ScenarioOverrides {
        seed: args.seed,
        customers: args.customers,
        horizon_days: args.horizon_days,
    };
    let scenario = open(args.scenario.as_deref(), overrides)?;
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let engine = Engine::new(&scenario);
    let seeds: Vec<u64> = (0..u64::from(args.seeds))
        .map(|i| scenario.spec.seed.wrapping_add(i))
        .collect();
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(engine.total_work() * seeds.len() as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} customer runs, {eta} left",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!(
            "simulating {} ({} variant(s), {} seed(s))",
            scenario.spec.name,
            scenario.variants.len(),
            seeds.len()
        ));
        bar
    });
    let progress = |n: u64| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    };
    let runs = engine.run_seeds(
        &seeds,
        &RunOptions {
            threads,
            progress: bar.as_ref().map(|_| &progress as &(dyn Fn(u64) + Sync)),
        },
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    let report = Report::build_seeds(&scenario, &seeds, &runs);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {}", args.out.display()))?;
    let json_path = args.out.join("report.json");
    let html_path = args.out.join("report.html");
    std::fs::write(&json_path, report.to_json()?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(&html_path, html::render(&report)?)
        .with_context(|| format!("cannot write {}", html_path.display()))?;

    println!(
        "{}: {} customers, {} days, {}",
        scenario.spec.name,
        scenario.spec.population.customers,
        scenario.spec.horizon_days,
        report.seeds_words()
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
