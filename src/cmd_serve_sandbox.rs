//! The embedded sandbox of `salvage serve` (no --config).

use std::net::SocketAddr;
use std::process::ExitCode;

pub async fn serve_sandbox(_listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the embedded sandbox is being wired to the in-process fake FlexFactor; use --config FILE")
}
