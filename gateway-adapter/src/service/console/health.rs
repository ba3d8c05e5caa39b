//! Health: the store in use, the background worker's lag (the ordered log's head against each
//! checkpoint), the outbox's backlog, and FlexFactor's calls (errors and latency since start).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{self, count, relative, time_el, Section};
use super::session;
use super::PageError;
use crate::service::state::AppState;
use crate::store::{console as reads, outbox};

/// `GET /console/health`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let session = match session::require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let csrf = session.csrf(state.console.key());
    let backend = &state.store.backend;
    let now = state.clock.now();
    let lag = reads::lag(backend).await?;
    let stats = outbox::stats(backend, now.timestamp_millis()).await?;
    let next_due = outbox::next_due(backend).await?;
    let calls = state.metrics.flexfactor_summary();
    let body = html! {
        h1 { "Health" }
        dl class="facts-grid" id="health" {
            dt { "Store" } dd data-figure="store" { (backend.name()) }
            dt { "Clock" } dd { (time_el(now.timestamp_millis())) }
            dt { "Version" } dd { (env!("CARGO_PKG_VERSION")) }
        }
        h2 { "Background worker" }
        p class="hint" { "The ordered log's head against each reader's checkpoint: how far behind each is, in events." }
        table id="lag" {
            thead { tr { th scope="col" { "Reader" } th scope="col" class="num" { "Position" } th scope="col" class="num" { "Behind" } } }
            tbody {
                tr { th scope="row" { "log head" } td class="num" { (count(lag.head)) } td class="num" { "" } }
                @for (name, pos) in &lag.checkpoints {
                    tr data-checkpoint=(name) {
                        th scope="row" { (name) }
                        td class="num" { (count(*pos)) }
                        td class="num" {
                            @let behind = (lag.head - pos).max(0);
                            @if behind == 0 { (layout::badge("ok", "caught up")) } @else { (layout::badge("warn", &count(behind))) }
                        }
                    }
                }
            }
        }
        h2 { "Outbox" }
        dl class="facts-grid" id="outbox-stats" {
            dt { "Pending" } dd { (count(stats.pending)) }
            dt { "Due now" } dd { (count(stats.due)) }
            dt { "Failed for good" } dd { (count(stats.failed)) " " a href="/console/outbox" { "see the outbox" } }
            dt { "Next due" } dd {
                @if let Some(t) = next_due { (time_el(t)) " (" (relative(t, now)) ")" } @else { "nothing pending" }
            }
        }
        h2 { "FlexFactor calls since start" }
        table id="flexfactor-calls" {
            thead { tr { th scope="col" { "Operation" } th scope="col" class="num" { "Calls" } th scope="col" class="num" { "Failed" } th scope="col" class="num" { "Mean latency" } } }
            tbody { @for c in &calls {
                tr data-operation=(c.operation) {
                    th scope="row" { (c.operation) }
                    td class="num" { (c.calls) }
                    td class="num" { @if c.errors > 0 { (layout::badge("bad", &c.errors.to_string())) } @else { "0" } }
                    td class="num" { @if c.calls > 0 { (format!("{:.0} ms", c.mean_seconds * 1000.0)) } @else { "" } }
                }
            } }
            caption { "Per process, since it started; the same counts are in /metrics (salvage_flexfactor_calls_total, salvage_flexfactor_call_duration_seconds)." }
        }
    };
    Ok(layout::page("Health", Section::Health, &session, &csrf, body).into_response())
}
