//! `salvage fake-flexfactor`: run the fake FlexFactor server (`salvage_sim::fake_flexfactor`)
//! until interrupted.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use salvage_sim::fake_flexfactor::{ClockMode, FakeConfig, FakeFlexFactor, FakeScenario};

use crate::telemetry::{self, shutdown_signal};

/// How the fake tells time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockArg {
    /// The wall clock; due webhooks go out in the background.
    Real,
    /// A clock that moves only through `POST /admin/clock/advance`, which also delivers.
    Driven,
}

/// Arguments of `salvage fake-flexfactor`.
#[derive(Debug, clap::Args)]
pub struct FakeArgs {
    /// Address to listen on (127.0.0.1:0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,
    /// Where to deliver FlexFactor's signed webhooks (e.g. http://127.0.0.1:8080/webhooks/flexfactor).
    #[arg(long, value_name = "URL")]
    pub webhook_url: String,
    /// Scenario file (TOML): outcome rules, faults, credentials, webhook settings
    /// (see docs/fake-flexfactor.md). Without it: the sandbox test cards and credentials.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Seed of the probability draws and ids (overrides the scenario's).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Real or driven clock.
    #[arg(long, value_enum, default_value = "real")]
    pub clock: ClockArg,
    /// Start time of a driven clock (RFC 3339); default: now.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
}

/// Runs the fake until Ctrl-C (or SIGTERM).
pub fn run(args: FakeArgs) -> anyhow::Result<ExitCode> {
    telemetry::init_logs("info", std::io::stderr);

    let mut config = FakeConfig::sandbox_defaults();
    config.listen = args.listen;
    config.webhook_url = Some(args.webhook_url.clone());
    if let Some(path) = &args.scenario {
        let scenario = FakeScenario::from_file(path)?;
        config = config.with_scenario(scenario)?;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if args.clock == ClockArg::Driven {
        config.clock = match &args.start {
            Some(text) => ClockMode::driven_from_rfc3339(text)?,
            None => ClockMode::Driven {
                start: salvage_domain::Clock::now(&salvage_domain::SystemClock),
            },
        };
        config.auto_deliver = None;
    } else if args.start.is_some() {
        anyhow::bail!("--start needs --clock driven");
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let fake = FakeFlexFactor::start(config)
            .await
            .context("cannot start the fake FlexFactor")?;
        let mut out = std::io::stdout();
        writeln!(
            out,
            "fake FlexFactor listening on {} (admin: {}); webhooks to {}; {} clock",
            fake.base_url(),
            fake.admin_url(),
            args.webhook_url,
            if fake.is_clock_driven() {
                "driven"
            } else {
                "real"
            },
        )?;
        out.flush()?;
        shutdown_signal().await;
        fake.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
