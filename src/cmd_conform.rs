//! `salvage conform`: the scenario suite (one or more Given/When/Then scenarios per rule ID)
//! in-process, or against a deployment and its fake FlexFactor. See `docs/conformance.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use salvage_conformance::crm::CrmReceiver;
use salvage_conformance::runner::{run_in_process, run_remote, RemoteOptions};
use salvage_conformance::target::SANDBOX_API_KEY;
use salvage_conformance::{catalogue, report};
use salvage_conformance::{setup, Suite, SCENARIO_DIR};

/// Arguments of `salvage conform`.
#[derive(Debug, clap::Args)]
pub struct ConformArgs {
    /// The deployment to check (its base URL, e.g. http://127.0.0.1:8080). Without it the
    /// scenarios run in-process: a service and a fake FlexFactor on one manual clock. A
    /// deployment in test mode ([test_mode] enabled) runs each scenario in its own sandbox
    /// (its setup, its clock, its fake FlexFactor): none is skipped.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// The fake FlexFactor the deployment talks to (its /v1 URL or its root); its admin
    /// endpoints drive deliveries, faults and the call log. Needed unless the deployment is in
    /// test mode (then each sandbox has its own).
    #[arg(long, value_name = "URL", requires = "target")]
    pub flexfactor: Option<String>,
    /// The deployment's API key.
    #[arg(long, value_name = "KEY", env = "SALVAGE_CONFORM_API_KEY", default_value = SANDBOX_API_KEY, hide_env_values = true)]
    pub api_key: String,
    /// The deployment's setup or service configuration (default: the sample setup); scenarios
    /// needing another setup are skipped.
    #[arg(long, value_name = "FILE", requires = "target")]
    pub setup: Option<PathBuf>,
    /// The HMACSigningKey (base64) to sign webhooks with (default: the setup's).
    #[arg(
        long,
        value_name = "BASE64",
        env = "SALVAGE_CONFORM_HMAC_KEY",
        hide_env_values = true,
        requires = "target"
    )]
    pub hmac_key: Option<String>,
    /// Receive the deployment's CRM notifications on this address (its [notifications] url
    /// must be http://ADDR/notify); without it notification checks are not made.
    #[arg(long, value_name = "ADDR", requires = "target")]
    pub notify_listen: Option<SocketAddr>,
    /// Only the scenarios of these rules: IDs (C3) or groups (C); repeat or separate by commas.
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// The scenario files' directory.
    #[arg(long, value_name = "DIR", default_value = SCENARIO_DIR)]
    pub scenarios: PathBuf,
    /// How many services (in-process) or sandboxes (a deployment in test mode) run at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// A deployment in test mode: leave each scenario's sandbox (and its data) for a look;
    /// the report names them.
    #[arg(long, requires = "target")]
    pub keep: bool,
}

pub fn run(args: ConformArgs) -> anyhow::Result<ExitCode> {
    for f in &args.only {
        if !catalogue::is_filter(f) {
            bail!("--only {f}: not a rule ID (S1..F5) or group letter (S, D, C, R, Y, O, K, W, F)");
        }
    }
    let suite = Suite::load_dir(&args.scenarios)?.only(&args.only);
    if suite.files.is_empty() {
        bail!("no scenario covers {}", args.only.join(", "));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        match (&args.target, &args.flexfactor) {
            (Some(target), flexfactor) => {
                let sandboxed = salvage_conformance::target::in_test_mode(target)
                    .await
                    .map_err(anyhow::Error::msg)?;
                if flexfactor.is_none() && !sandboxed {
                    bail!(
                        "{target} is not in test mode: give --flexfactor URL, the fake FlexFactor it talks to"
                    );
                }
                let deployment = match &args.setup {
                    Some(path) => {
                        let text = std::fs::read_to_string(path)
                            .with_context(|| format!("cannot read {}", path.display()))?;
                        setup::parse(&text)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                    }
                    None => setup::sample().map_err(anyhow::Error::msg)?,
                };
                let receiver = match args.notify_listen {
                    Some(addr) => {
                        let r = CrmReceiver::start(addr).await.map_err(anyhow::Error::msg)?;
                        println!("receiving notifications at {}", r.url());
                        Some(r)
                    }
                    None => None,
                };
                let options = RemoteOptions {
                    target: target.clone(),
                    flexfactor: flexfactor.clone().unwrap_or_default(),
                    api_key: args.api_key.clone(),
                    setup: deployment,
                    hmac_key: args.hmac_key.clone(),
                    notifications: receiver.as_ref().map(|r| r.inbox.clone()),
                    keep: args.keep,
                    jobs: args.jobs,
                };
                Ok::<_, anyhow::Error>(run_remote(&suite, options).await?)
            }
            _ => Ok(run_in_process(&suite, args.jobs).await),
        }
    })?;
    print!("{}", report::terminal(&result));
    if let Some(path) = &args.junit {
        report::write(path, &report::junit(&result))?;
        println!("JUnit XML: {}", path.display());
    }
    if let Some(path) = &args.markdown {
        report::write(path, &report::markdown(&result))?;
        println!("Markdown: {}", path.display());
    }
    Ok(if result.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
