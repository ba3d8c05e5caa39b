//! The overview: the salvage funnel of the last 24 h, 7 d or 30 d by route and recycle slot,
//! recovered revenue per currency, and the recovery rate over time. It reads the hourly funnel
//! (a few hundred rows whatever the number of orders).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::chart::{self, Point};
use super::layout::{self, count, money, percent, Section};
use super::{session, PageError};
use crate::service::state::AppState;
use crate::service::summary::{self, SummaryOut, SummaryQuery, Window};
use crate::store::console::{self as reads, Grain};

/// The chart's points over the window: hours for 24 h, days for 7 d and 30 d (every period
/// shown, those with no decline empty).
async fn points(state: &AppState, window: Window) -> Result<Vec<Point>, PageError> {
    let now = state.clock.now();
    let grain = window.grain();
    let rows = reads::recovery_by_period(&state.store.backend, grain, window.since(now)).await?;
    let bucket = if grain == Grain::Hour { 1 } else { 24 };
    let first = window.since(now);
    let last = now.timestamp().div_euclid(3600).div_euclid(bucket);
    Ok((first..=last)
        .map(|period| {
            let (sent, recovered) = rows
                .iter()
                .find(|(p, _, _)| *p == period)
                .map(|(_, s, r)| (*s, *r))
                .unwrap_or((0, 0));
            let at = DateTime::<Utc>::from_timestamp(period * bucket * 3600, 0).unwrap_or(now);
            Point {
                label: if bucket == 1 {
                    at.format("%H:00").to_string()
                } else {
                    at.format("%b %d").to_string()
                },
                sent,
                recovered,
            }
        })
        .collect())
}

fn tile(label: &str, value: String, sub: Option<String>, id: &str) -> Markup {
    html! {
        div class="card" {
            div class="label" { (label) }
            div class="value" data-figure=(id) { (value) }
            @if let Some(s) = sub { div class="sub" { (s) } }
        }
    }
}

/// The overview's body for `s` (also what the tests read).
pub fn body(s: &SummaryOut, points: &[Point]) -> Markup {
    let window = Window::parse(&s.window).unwrap_or_default();
    html! {
        h1 { "Overview" }
        nav class="tabs" aria-label="Window" {
            @for w in Window::ALL {
                @if w == window {
                    a href={ "/console/?window=" (w.as_str()) } aria-current="page" { "Last " (w.as_str()) }
                } @else {
                    a href={ "/console/?window=" (w.as_str()) } { "Last " (w.as_str()) }
                }
            }
        }
        p class="hint" { "Orders first declined since " (s.since.format("%Y-%m-%d %H:%M UTC")) ", each counted once where it stands now." }
        section aria-labelledby="funnel-h" {
            h2 id="funnel-h" { "Salvage funnel" }
            div class="cards" {
                (tile("Declines seen", count(s.declines_seen), None, "declines_seen"))
                (tile("Sent to FlexFactor", count(s.sent), Some(format!("{} not sent", count(s.not_sent))), "sent"))
                (tile("Recovered", count(s.recovered), Some(format!("{} of sent", percent(s.rate()))), "recovered"))
                (tile("Failed", count(s.failed), None, "failed"))
                (tile("Expired", count(s.expired), None, "expired"))
                (tile("Pending", count(s.pending), None, "pending"))
            }
            div class="scroll" {
                table id="by-route" {
                    caption { "By route; recycle also by the slot FlexFactor took the rebill in." }
                    thead { tr {
                        th scope="col" { "Route" }
                        th scope="col" class="num" { "Sent" }
                        th scope="col" class="num" { "Recovered" }
                        th scope="col" class="num" { "Failed" }
                        th scope="col" class="num" { "Expired" }
                        th scope="col" class="num" { "Pending" }
                        th scope="col" class="num" { "Recovery rate" }
                    } }
                    tbody {
                        @for r in &s.by_route {
                            tr data-route=(r.route) data-slot=(r.slot.as_deref().unwrap_or("")) {
                                th scope="row" {
                                    @match &r.slot {
                                        Some(slot) if slot == "final" => { "\u{2003}recycle, final attempt" }
                                        Some(slot) => { "\u{2003}recycle, attempts " (slot) }
                                        None => { (r.route) }
                                    }
                                }
                                td class="num" { (count(r.sent)) }
                                td class="num" { (count(r.recovered)) }
                                td class="num" { (count(r.failed)) }
                                td class="num" { (count(r.expired)) }
                                td class="num" { (count(r.pending)) }
                                td class="num" { (percent(r.rate())) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="revenue-h" {
            h2 id="revenue-h" { "Recovered revenue" }
            @if s.recovered_revenue.is_empty() {
                p class="muted" { "Nothing recovered in this window yet." }
            } @else {
                table id="revenue" {
                    thead { tr { th scope="col" { "Currency" } th scope="col" class="num" { "Recovered" } } }
                    tbody {
                        @for r in &s.recovered_revenue {
                            tr data-currency=(r.currency) {
                                th scope="row" { (r.currency) }
                                td class="num" data-minor=(r.amount_minor) { (money(r.amount_minor, &r.currency)) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="rate-h" {
            h2 id="rate-h" { "Recovery rate over time" }
            (chart::recovery("Recovery rate over time", points))
            p class="hint" { "By the period of the first decline. Recent periods still hold pending salvages, so their rate rises as FlexFactor answers." }
        }
    }
}

/// `GET /console/?window=24h|7d|30d`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<SummaryQuery>,
) -> Result<Response, PageError> {
    let session = match session::require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let window = q
        .window
        .as_deref()
        .and_then(Window::parse)
        .unwrap_or_default();
    let s = summary::read(&state, window).await?;
    let points = points(&state, window).await?;
    let csrf = session.csrf(state.console.key());
    Ok(layout::page(
        "Overview",
        Section::Overview,
        &session,
        &csrf,
        body(&s, &points),
    )
    .into_response())
}
