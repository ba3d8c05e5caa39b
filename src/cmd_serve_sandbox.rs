//! The embedded sandbox of `salvage serve` (no --config): a SQLite file in the working
//! directory, the sample setup, the sandbox processor for regular gateways, and an in-process
//! fake FlexFactor that answers with FlexFactor's payloads and delivers signed webhooks back to
//! this service.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use salvage_domain::SystemClock;
use salvage_gateway::service::config::{process_env, ServiceConfig, DEFAULT_LISTEN};
use salvage_gateway::service::{start, ServeOptions};
use salvage_sim::fake_flexfactor::{FakeConfig, FakeFlexFactor};

use crate::telemetry::shutdown_signal;

/// The API key of the embedded sandbox (only there).
pub const SANDBOX_API_KEY: &str = "sandbox-key-0123456789";
/// The sandbox's read-only key (support staff: sees everything, changes nothing).
pub const SANDBOX_READ_ONLY_KEY: &str = "sandbox-read-only-0123456789";

const SAMPLE_SETUP: &str = include_str!("../examples/salvage.toml");

/// The sandbox's configuration text: the sample setup, and the service pointed at the fake.
pub fn sandbox_config(listen: SocketAddr, flexfactor_url: &str) -> String {
    format!(
        "{SAMPLE_SETUP}\n[service]\nlisten = \"{listen}\"\nstore_url = \"sqlite://salvage.db\"\napi_keys = [\"{SANDBOX_API_KEY}\"]\nread_only_api_keys = [\"{SANDBOX_READ_ONLY_KEY}\"]\n\n[flexfactor]\nbase_url = \"{flexfactor_url}\"\n\n[test_mode]\nenabled = true\n"
    )
}

pub async fn serve_sandbox(listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let listen = match listen {
        Some(a) => a,
        None => DEFAULT_LISTEN.parse().context("default listen address")?,
    };
    let fake = FakeFlexFactor::start(FakeConfig::sandbox_defaults())
        .await
        .context("the in-process fake FlexFactor could not start")?;
    let text = sandbox_config(listen, &fake.base_url());
    let config = match ServiceConfig::from_str(&text, Path::new("embedded sandbox"), &process_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut options = ServeOptions::new(Arc::new(SystemClock));
    options.sandbox_charges = true;
    options.sandbox_flexfactor = Some(Arc::new(salvage_sim::fake_flexfactor::FakeStarter));
    let running = start(config, options)
        .await
        .context("the service could not start")?;
    fake.set_webhook_url(Some(&format!("{}/webhooks/flexfactor", running.url())))
        .context("cannot point the fake FlexFactor at the service")?;
    let url = running.url();
    println!("Salvage sandbox listening on {url}  (TEST MODE: not for production)");
    println!("  store:       sqlite://salvage.db (in the working directory)");
    println!("  setup:       the sample setup (examples/salvage.toml)");
    println!(
        "  FlexFactor:  in-process fake at {} (sandbox test cards; webhooks come back signed)",
        fake.base_url()
    );
    println!("  Console:     {url}/console  (sign in with the API key)");
    println!("  API key:     {SANDBOX_API_KEY}");
    println!("  read-only:   {SANDBOX_READ_ONLY_KEY}  (sees everything, changes nothing)");
    println!("  OpenAPI:     {url}/openapi.json");
    println!();
    println!(
        "Try a soft-declined sale that cascades to FlexFactor (card 4111111111111111 is approved):"
    );
    println!(
        "  curl -s -X POST {url}/v1/orders -H 'Authorization: Bearer {SANDBOX_API_KEY}' -H 'Content-Type: application/json' \\\n    -d '{{\"order_id\":\"demo-1\",\"order_type\":\"new_sale\",\"campaign_id\":\"skincare\",\"ip_address\":\"203.0.113.7\",\"amount_minor\":1999,\"currency\":\"USD\",\"card\":{{\"number\":\"4111111111111111\",\"cvv\":\"123\",\"exp_month\":9,\"exp_year\":2030,\"holder\":\"Cure Tester\"}},\"items\":[{{\"product_id\":\"cleanser\",\"quantity\":1,\"price_minor\":1999}}],\"attempt\":{{\"gateway_id\":\"nmi-main\",\"gateway_profile_id\":\"atri-us\",\"result\":\"declined\",\"response_code\":\"91\",\"response_message\":\"Issuer unavailable\",\"decline_type\":\"soft\"}}}}'"
    );
    println!("Stop with Ctrl-C.");
    running.run_until(shutdown_signal()).await?;
    fake.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
