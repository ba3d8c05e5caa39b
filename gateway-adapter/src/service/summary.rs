//! The salvage funnel over a window, as `GET /v1/salvage/summary` answers it and the console's
//! overview shows it: one computation from the hourly funnel (a projection), so both agree.
//!
//! The funnel is a cohort: the orders first declined within the window, each counted once
//! under its current salvage route and outcome.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use salvage_domain::Currency;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::store::console::{self as reads, FunnelRow, Grain};
use crate::store::StoreError;

/// The windows the funnel is read over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    #[default]
    Day,
    Week,
    Month,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Day, Window::Week, Window::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
        }
    }

    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }

    pub fn hours(self) -> i64 {
        match self {
            Window::Day => 24,
            Window::Week => 24 * 7,
            Window::Month => 24 * 30,
        }
    }

    /// How the window is read: by the hour (24 h), or by whole days (7 d, 30 d: a few hundred
    /// daily cells rather than thousands of hourly ones).
    pub fn grain(self) -> Grain {
        match self {
            Window::Day => Grain::Hour,
            Window::Week | Window::Month => Grain::Day,
        }
    }

    /// The first hour (hours since the epoch) of the window: the 24 hours ending in the hour of
    /// `now`, or the 7 or 30 days (UTC) ending on the day of `now`.
    pub fn since_hour(self, now: DateTime<Utc>) -> i64 {
        match self.grain() {
            Grain::Hour => now.timestamp().div_euclid(3600) - self.hours() + 1,
            Grain::Day => (now.timestamp().div_euclid(86_400) - self.hours() / 24 + 1) * 24,
        }
    }

    /// The first period of the window in its grain (an hour or a day since the epoch).
    pub fn since(self, now: DateTime<Utc>) -> i64 {
        match self.grain() {
            Grain::Hour => self.since_hour(now),
            Grain::Day => self.since_hour(now) / 24,
        }
    }
}

/// `?window=24h|7d|30d`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SummaryQuery {
    /// `24h` (default), `7d` or `30d`.
    pub window: Option<String>,
}

/// The funnel of one route (and recycle slot).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RouteSummary {
    /// `cascade`, `rerun` or `recycle`.
    pub route: String,
    /// For recycle: `4-6`, `7-9` or `final`; absent for the route's total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    pub sent: i64,
    pub recovered: i64,
    pub failed: i64,
    pub expired: i64,
    pub pending: i64,
}

impl RouteSummary {
    /// Recovered of sent, as a fraction (0 when nothing was sent).
    pub fn rate(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.recovered as f64 / self.sent as f64
        }
    }
}

/// Recovered revenue in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Revenue {
    pub currency: String,
    /// Integer minor units.
    pub amount_minor: i64,
    /// The same amount as a decimal string in the currency's units.
    pub amount: String,
}

/// The salvage funnel over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SummaryOut {
    pub window: String,
    /// The start of the window (an hour boundary).
    pub since: DateTime<Utc>,
    /// Orders first declined in the window.
    pub declines_seen: i64,
    /// Of them, never sent to FlexFactor.
    pub not_sent: i64,
    pub sent: i64,
    pub recovered: i64,
    pub failed: i64,
    pub expired: i64,
    pub pending: i64,
    /// `cascade`, `rerun`, `recycle`, then `recycle` by slot.
    pub by_route: Vec<RouteSummary>,
    pub recovered_revenue: Vec<Revenue>,
}

impl SummaryOut {
    /// Recovered of sent (0 when nothing was sent).
    pub fn rate(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.recovered as f64 / self.sent as f64
        }
    }
}

fn add(to: &mut RouteSummary, outcome: &str, n: i64) {
    match outcome {
        "recovered" => to.recovered += n,
        "failed" => to.failed += n,
        "expired" => to.expired += n,
        "pending" => to.pending += n,
        _ => return,
    }
    to.sent += n;
}

/// A decimal string of `minor` units of `currency` (`1234` USD: `12.34`).
pub fn decimal(minor: i64, currency: &str) -> String {
    let exp = Currency::new(currency)
        .map(|c| c.minor_exponent())
        .unwrap_or(2);
    if exp == 0 {
        return minor.to_string();
    }
    let scale = 10_i64.pow(exp);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale_u = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale_u,
        abs % scale_u,
        width = exp as usize
    )
}

/// The summary of `rows` (the funnel summed over the window).
pub fn summarize(window: Window, since: DateTime<Utc>, rows: &[FunnelRow]) -> SummaryOut {
    let mut routes: Vec<RouteSummary> = ["cascade", "rerun", "recycle"]
        .into_iter()
        .map(|r| RouteSummary {
            route: r.into(),
            ..RouteSummary::default()
        })
        .chain(["4-6", "7-9", "final"].into_iter().map(|s| RouteSummary {
            route: "recycle".into(),
            slot: Some(s.into()),
            ..RouteSummary::default()
        }))
        .collect();
    let mut out = SummaryOut {
        window: window.as_str().into(),
        since,
        declines_seen: 0,
        not_sent: 0,
        sent: 0,
        recovered: 0,
        failed: 0,
        expired: 0,
        pending: 0,
        by_route: Vec::new(),
        recovered_revenue: Vec::new(),
    };
    let mut total = RouteSummary::default();
    let mut revenue: std::collections::BTreeMap<String, i64> = Default::default();
    for r in rows {
        out.declines_seen += r.orders;
        if r.outcome == "not_sent" {
            out.not_sent += r.orders;
            continue;
        }
        add(&mut total, &r.outcome, r.orders);
        for s in routes
            .iter_mut()
            .filter(|s| s.route == r.route && s.slot.as_deref().is_none_or(|slot| slot == r.slot))
        {
            add(s, &r.outcome, r.orders);
        }
        if r.outcome == "recovered" {
            *revenue.entry(r.currency.clone()).or_default() += r.amount_minor;
        }
    }
    out.sent = total.sent;
    out.recovered = total.recovered;
    out.failed = total.failed;
    out.expired = total.expired;
    out.pending = total.pending;
    out.by_route = routes;
    out.recovered_revenue = revenue
        .into_iter()
        .filter(|(_, m)| *m != 0)
        .map(|(currency, amount_minor)| Revenue {
            amount: decimal(amount_minor, &currency),
            currency,
            amount_minor,
        })
        .collect();
    out
}

/// The summary of `window` ending now (the state's clock), from the funnel projection.
pub async fn read(state: &AppState, window: Window) -> Result<SummaryOut, StoreError> {
    let now = state.clock.now();
    let since_hour = window.since_hour(now);
    let rows = reads::funnel(&state.store.backend, window.grain(), window.since(now)).await?;
    let since = DateTime::<Utc>::from_timestamp(since_hour * 3600, 0).unwrap_or(now);
    Ok(summarize(window, since, &rows))
}

/// The salvage funnel over a window: the orders first declined in it, by route and outcome,
/// and the revenue recovered (what the console's overview shows).
#[utoipa::path(get, path = "/v1/salvage/summary", params(SummaryQuery),
    responses((status = 200, body = SummaryOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_summary(
    State(state): State<Arc<AppState>>,
    Query(q): Query<SummaryQuery>,
) -> Result<Json<SummaryOut>, ApiError> {
    let window = match q.window.as_deref() {
        None => Window::default(),
        Some(w) => Window::parse(w).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("window {w:?}: give 24h, 7d or 30d"),
            )
        })?,
    };
    Ok(Json(read(&state, window).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(route: &str, slot: &str, currency: &str, outcome: &str, n: i64, m: i64) -> FunnelRow {
        FunnelRow {
            route: route.into(),
            slot: slot.into(),
            currency: currency.into(),
            outcome: outcome.into(),
            orders: n,
            amount_minor: m,
        }
    }

    #[test]
    fn the_funnel_adds_up_by_route_slot_and_currency() {
        let rows = vec![
            row("none", "", "USD", "not_sent", 5, 500),
            row("cascade", "", "USD", "recovered", 2, 2_000),
            row("cascade", "", "EUR", "recovered", 1, 999),
            row("rerun", "", "USD", "failed", 3, 300),
            row("recycle", "4-6", "USD", "pending", 4, 400),
            row("recycle", "final", "USD", "expired", 1, 100),
            row("recycle", "7-9", "USD", "recovered", 1, 1_050),
        ];
        let s = summarize(Window::Week, DateTime::<Utc>::UNIX_EPOCH, &rows);
        assert_eq!(s.declines_seen, 17);
        assert_eq!(s.not_sent, 5);
        assert_eq!(s.sent, 12);
        assert_eq!((s.recovered, s.failed, s.expired, s.pending), (4, 3, 1, 4));
        let get = |r: &str, slot: Option<&str>| {
            s.by_route
                .iter()
                .find(|x| x.route == r && x.slot.as_deref() == slot)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(get("cascade", None).recovered, 3);
        assert_eq!(get("recycle", None).sent, 6);
        assert_eq!(get("recycle", Some("4-6")).pending, 4);
        assert_eq!(get("recycle", Some("7-9")).recovered, 1);
        assert_eq!(
            s.recovered_revenue,
            vec![
                Revenue {
                    currency: "EUR".into(),
                    amount_minor: 999,
                    amount: "9.99".into()
                },
                Revenue {
                    currency: "USD".into(),
                    amount_minor: 3_050,
                    amount: "30.50".into()
                },
            ]
        );
    }

    #[test]
    fn decimals_follow_the_currency_exponent() {
        assert_eq!(decimal(1234, "USD"), "12.34");
        assert_eq!(decimal(5, "USD"), "0.05");
        assert_eq!(decimal(1234, "JPY"), "1234");
        assert_eq!(decimal(1234, "KWD"), "1.234");
        assert_eq!(decimal(-5, "USD"), "-0.05");
    }

    #[test]
    fn windows_end_in_the_current_hour() {
        let now = DateTime::<Utc>::from_timestamp(10 * 3600 + 59, 0).unwrap_or_default();
        assert_eq!(Window::Day.since_hour(now), 10 - 24 + 1);
        // 7 d: the 7 days ending today, from midnight (UTC).
        assert_eq!(Window::Week.since_hour(now), -6 * 24);
        assert_eq!(Window::Week.since(now), -6);
        assert_eq!(Window::parse("7d"), Some(Window::Week));
        assert_eq!(Window::parse("1y"), None);
    }
}
