//! `salvage serve` and `salvage check-config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use salvage_domain::SystemClock;
use salvage_gateway::service::config::{process_env, ServiceConfig};
use salvage_gateway::service::preflight;
use salvage_gateway::service::{start, ServeOptions, ServiceError};

use crate::telemetry::{self, shutdown_signal};

/// The log filter of `salvage serve` when `RUST_LOG` is not set.
const SERVE_LOG_FILTER: &str = "info,sqlx=warn,tower_http=info";

/// Arguments of `salvage serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The service configuration (TOML: the setup plus [service], [flexfactor], [charge_hook],
    /// [notifications]). Without it, the embedded sandbox runs.
    #[arg(long, value_name = "FILE", env = "SALVAGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen on this address instead of the configured one (embedded default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    telemetry::init_logs(SERVE_LOG_FILTER, std::io::stdout);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match &args.config {
            Some(path) => serve_config(path, args.listen).await,
            None => crate::cmd_serve_sandbox::serve_sandbox(args.listen).await,
        }
    })
}

async fn serve_config(path: &Path, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let mut config = match ServiceConfig::load(path, &process_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(addr) = listen {
        config.service.listen = addr;
    }
    for w in config.setup.warnings() {
        tracing::warn!("{w}");
    }
    let mut options = ServeOptions::new(Arc::new(SystemClock));
    options.sandbox_flexfactor = Some(Arc::new(salvage_sim::fake_flexfactor::FakeStarter));
    let running = match start(config, options).await {
        Ok(r) => r,
        // The same problems, worded the same, as `check-config` reports.
        Err(ServiceError::Config(e)) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(anyhow::Error::new(e).context("the service could not start")),
    };
    if running.state.test_mode {
        println!(
            "Salvage listening on {}  (TEST MODE: not for production)",
            running.url()
        );
    } else {
        println!("Salvage listening on {}", running.url());
    }
    println!(
        "  Console: {}/console  (sign in with an API key)",
        running.url()
    );
    running.run_until(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// `salvage check-config FILE`: exactly what `salvage serve --config FILE` checks before it
/// binds (the file read as serve reads it, with the `SALVAGE_*` environment; credentials
/// decoded, keys parsed, URLs parsed, profiles resolved), so no file passes one and fails the
/// other.
pub fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    // A file that cannot be read is a usage error (exit 2), as before any check.
    std::fs::metadata(file)
        .with_context(|| format!("cannot read the setup file {}", file.display()))?;
    match preflight::check_file(file, &process_env, Arc::new(SystemClock)) {
        Ok((c, _)) => {
            println!(
                "{}: valid: `salvage serve --config {}` would start with it",
                file.display(),
                file.display()
            );
            println!("listen: {}", c.service.listen);
            println!("API keys: {}", c.service.api_keys.len());
            println!("read-only API keys: {}", c.service.read_only_api_keys.len());
            println!(
                "charge hook: {}",
                c.charge_hook
                    .as_ref()
                    .map(|h| h.url.as_str())
                    .unwrap_or("none (the CRM bills)")
            );
            println!(
                "notifications: {}",
                c.notifications
                    .as_ref()
                    .map(|n| n.url.as_str())
                    .unwrap_or("none (logged only)")
            );
            print!("{}", c.setup.summary());
            for w in c.setup.warnings() {
                eprintln!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
