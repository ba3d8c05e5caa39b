//! `salvage rebuild-projections`: rebuild the read models from the ordered log.

use std::process::ExitCode;

use anyhow::Context;
use salvage_gateway::store::{event_log, projection, Store};

/// Arguments of `salvage rebuild-projections`.
#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    /// The store: sqlite://PATH (the embedded default is sqlite://salvage.db) or
    /// postgres://USER@HOST/DB.
    #[arg(long, env = "SALVAGE_STORE_URL", default_value = "sqlite://salvage.db")]
    pub store: String,
}

pub fn rebuild_projections(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = Store::open(&args.store)
            .await
            .with_context(|| format!("cannot open the store {}", redact(&args.store)))?;
        let head = event_log::head(&store.backend).await?;
        let replayed = projection::rebuild(&store.backend).await?;
        let (orders, subscriptions, pending) = projection::counts(&store.backend).await?;
        println!(
            "rebuilt projections from {replayed} events (log head {head}): {orders} orders, {subscriptions} subscriptions, {pending} pending salvages"
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The store URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://salvage.db"), "sqlite://salvage.db");
    }
}
