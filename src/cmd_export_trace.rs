//! `salvage export-trace`: the service's ordered event feed as a trace for `salvage replay`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args};
use salvage_sim::feed_export::{self, ExportCounts, FeedExporter, FeedPage};

/// Export the service's event feed as a trace that `salvage replay` accepts.
///
/// Reads the ordered feed of every committed event (GET /v1/events on a running service, page
/// after page until it is exhausted, or a saved feed with --feed) and writes the inputs that
/// caused them as a trace (JSON Lines): orders as placed with their first attempt's result,
/// cascade and recycle answers, FlexFactor answers, reruns, FlexFactor deliveries and polls,
/// cancellations, each at the time the service recorded it. Events the domain derives by itself
/// (cascade steps started, timers, subscriptions created or advanced by an order) are left to
/// the replay. `salvage replay TRACE --setup <the service's setup>` then ends in the states the
/// service shows. Card numbers are never in the feed: orders carry the card token and masked
/// card the service stored.
///
/// An event that cannot be mapped stops the export with its feed position and event type. The
/// mapping is described in docs/simulation.md.
///
/// Examples:
///
///   salvage export-trace --url http://127.0.0.1:8080 --api-key KEY --out trace.jsonl
///
///   salvage replay trace.jsonl --setup examples/salvage.toml
///
///   curl -s -H 'Authorization: Bearer KEY' 'http://127.0.0.1:8080/v1/events?limit=1000' > feed.json
///
///   salvage export-trace --feed feed.json
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["url", "feed"])))]
pub struct ExportTraceArgs {
    /// The service's base URL, e.g. http://127.0.0.1:8080 (its /v1/events is read).
    #[arg(long, value_name = "URL", requires = "api_key")]
    pub url: Option<String>,
    /// The service's API key, sent as `Authorization: Bearer KEY`.
    #[arg(
        long,
        value_name = "KEY",
        env = "SALVAGE_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Read a saved feed instead of a service: pages as GET /v1/events answers them
    /// ({"events": [...], "next_after": N}, one after the other), a JSON array of feed events,
    /// or JSON Lines of feed events.
    #[arg(long, value_name = "FILE", conflicts_with = "url")]
    pub feed: Option<PathBuf>,
    /// Only the events after this feed position (0: the whole feed). A trace that starts after
    /// 0 only replays on its own for the orders and subscriptions created within it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub after: i64,
    /// Events asked for per page (1..=1000).
    #[arg(
        long,
        value_name = "M",
        default_value_t = 1000,
        value_parser = clap::value_parser!(i64).range(1..=1000)
    )]
    pub page_size: i64,
    /// End the trace with an `advance_to` at this time (RFC 3339, e.g. the time of the export),
    /// so that the replay runs the timers due by then as the service did; by default the trace
    /// ends at the feed's last event.
    #[arg(long, value_name = "TIME")]
    pub until: Option<DateTime<Utc>>,
    /// Write the trace to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: ExportTraceArgs) -> anyhow::Result<ExitCode> {
    if args.after < 0 {
        bail!("--after must not be negative");
    }
    let mut exporter = FeedExporter::new();
    match (&args.url, &args.feed) {
        (Some(url), _) => {
            let key = args
                .api_key
                .as_deref()
                .context("--api-key (or SALVAGE_API_KEY) is required with --url")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(fetch(url, key, args.after, args.page_size, &mut exporter))?;
        }
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the feed {}", file.display()))?;
            let events =
                feed_export::parse_feed(&text).with_context(|| format!("{}", file.display()))?;
            for e in events.iter().filter(|e| e.position > args.after) {
                exporter
                    .push(e)
                    .with_context(|| format!("{}", file.display()))?;
            }
        }
        (None, None) => bail!("give --url (with --api-key) or --feed"),
    }
    let last_position = exporter.last_position();
    let (lines, counts) = exporter.finish_until(args.until)?;
    let text = feed_export::to_jsonl(&lines).context("cannot write the trace")?;
    match &args.out {
        Some(file) => std::fs::write(file, &text)
            .with_context(|| format!("cannot write {}", file.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write the trace to stdout")?;
        }
    }
    eprintln!("{}", summary(&counts, args.after, last_position, &args.out));
    Ok(ExitCode::SUCCESS)
}

fn summary(counts: &ExportCounts, after: i64, last: Option<i64>, out: &Option<PathBuf>) -> String {
    let span = match last {
        Some(last) => format!("positions {}..={last}", after + 1),
        None => format!("nothing after position {after}"),
    };
    let to = out
        .as_ref()
        .map(|f| format!(" to {}", f.display()))
        .unwrap_or_default();
    format!(
        "exported {} feed event(s) ({span}): {} trace line(s){to}; {} derived event(s) left to \
         the replay",
        counts.events, counts.lines, counts.derived
    )
}

/// The message of the service's error body (`{"error": {"code", "message"}}`), else the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str()?,
                e.get("message")?.as_str()?
            ))
        })
        .unwrap_or_else(|| body.chars().take(500).collect())
}

/// Reads the feed after `after`, page by page until a page comes back empty.
async fn fetch(
    url: &str,
    key: &str,
    mut after: i64,
    page_size: i64,
    exporter: &mut FeedExporter,
) -> anyhow::Result<()> {
    let base = url.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")?;
    loop {
        let page_url = format!("{base}/v1/events?after={after}&limit={page_size}");
        let response = client
            .get(&page_url)
            .bearer_auth(key)
            .send()
            .await
            .with_context(|| format!("GET {page_url}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("GET {page_url}: cannot read the answer"))?;
        if !status.is_success() {
            bail!("GET {page_url}: {status}: {}", error_message(&body));
        }
        let page: FeedPage = serde_json::from_str(&body)
            .with_context(|| format!("GET {page_url}: not a feed page"))?;
        if page.events.is_empty() {
            return Ok(());
        }
        for e in &page.events {
            exporter.push(e)?;
        }
        if page.next_after <= after {
            bail!(
                "GET {page_url}: next_after {} does not move past {after}",
                page.next_after
            );
        }
        after = page.next_after;
    }
}
