//! Orders in salvage: every order that was declined, filtered by outcome, route, gateway and
//! date, searched by order id, subscription id or customer e-mail, sorted by time or amount,
//! paginated by keyset (the cost is the page's however deep), and exported as CSV.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, TimeZone, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, card, dash, money, outcome_label, relative, time_el, Section};
use super::session::{self, encode};
use super::PageError;
use crate::service::state::AppState;
use crate::store::console::{self as reads, Cursor, OrderFilter, OrderRow, Sort};
use crate::store::console_view::{Outcome, ROUTES};

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;
/// Rows per read of the CSV export.
const CSV_CHUNK: i64 = 1_000;

/// The page's query string.
#[derive(Debug, Default, Deserialize)]
pub struct OrdersQuery {
    pub outcome: Option<String>,
    pub route: Option<String>,
    pub gateway: Option<String>,
    /// `YYYY-MM-DD` (UTC), placed on or after.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (UTC), placed on or before.
    pub to: Option<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
    pub after: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn day_ms(s: &str) -> Option<i64> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?)
            .timestamp_millis(),
    )
}

impl OrdersQuery {
    /// The filter, or what in the query is not understood.
    pub fn filter(&self) -> Result<OrderFilter, Vec<String>> {
        let mut problems = Vec::new();
        let outcome = match non_empty(&self.outcome) {
            None => None,
            Some(o) => Outcome::parse(o).or_else(|| {
                problems.push(format!("unknown outcome {o:?}"));
                None
            }),
        };
        let route = match non_empty(&self.route) {
            None => None,
            Some(r) if ROUTES.contains(&r) => Some(r.to_string()),
            Some(r) => {
                problems.push(format!("unknown route {r:?}"));
                None
            }
        };
        let mut date = |s: &Option<String>, name: &str, plus_day: bool| match non_empty(s) {
            None => None,
            Some(d) => match day_ms(d) {
                Some(ms) => Some(if plus_day { ms + 86_400_000 } else { ms }),
                None => {
                    problems.push(format!("{name} {d:?} is not a date (YYYY-MM-DD)"));
                    None
                }
            },
        };
        let from_ms = date(&self.from, "from", false);
        let to_ms = date(&self.to, "to", true);
        let sort = match non_empty(&self.sort) {
            None => Sort::default(),
            Some(s) => Sort::parse(s).unwrap_or_else(|| {
                problems.push(format!("unknown sort {s:?}"));
                Sort::default()
            }),
        };
        if problems.is_empty() {
            Ok(OrderFilter {
                outcome,
                route,
                gateway: non_empty(&self.gateway).map(str::to_string),
                from_ms,
                to_ms,
                search: non_empty(&self.q).map(str::to_string),
                sort,
            })
        } else {
            Err(problems)
        }
    }

    /// The query string of this filter (without the cursor), `&`-joined, encoded.
    fn filter_query(&self, sort: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("outcome", &self.outcome),
            ("route", &self.route),
            ("gateway", &self.gateway),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ] {
            if let Some(v) = non_empty(v) {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        if let Some(s) = sort.or(non_empty(&self.sort)) {
            parts.push(format!("sort={}", encode(s)));
        }
        parts.join("&")
    }
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(&str, &str)]) -> Markup {
    html! {
        label {
            (label)
            select name=(name) {
                @for (value, text) in options {
                    @if Some(*value) == current || (value.is_empty() && current.is_none()) {
                        option value=(value) selected { (text) }
                    } @else {
                        option value=(value) { (text) }
                    }
                }
            }
        }
    }
}

fn filters(q: &OrdersQuery, gateways: &[String]) -> Markup {
    let mut outcomes: Vec<(&str, &str)> = vec![("", "Any")];
    outcomes.extend(
        Outcome::ALL
            .iter()
            .map(|o| (o.as_str(), outcome_label(o.as_str()))),
    );
    let mut routes: Vec<(&str, &str)> = vec![("", "Any")];
    routes.extend(
        ROUTES
            .iter()
            .map(|r| (*r, if *r == "none" { "not sent" } else { *r })),
    );
    let mut gws: Vec<(&str, &str)> = vec![("", "Any")];
    gws.extend(gateways.iter().map(|g| (g.as_str(), g.as_str())));
    let sorts = [
        ("newest", "Newest first"),
        ("oldest", "Oldest first"),
        ("amount_desc", "Amount, high to low"),
        ("amount_asc", "Amount, low to high"),
    ];
    html! {
        form class="filters" method="get" action="/console/orders" role="search" {
            label { "Order, subscription or e-mail"
                input type="search" name="q" value=(non_empty(&q.q).unwrap_or("")) size="28";
            }
            (select("outcome", "Outcome", non_empty(&q.outcome), &outcomes))
            (select("route", "Route", non_empty(&q.route), &routes))
            (select("gateway", "Gateway", non_empty(&q.gateway), &gws))
            label { "Placed from" input type="date" name="from" value=(non_empty(&q.from).unwrap_or("")); }
            label { "to" input type="date" name="to" value=(non_empty(&q.to).unwrap_or("")); }
            (select("sort", "Sort", non_empty(&q.sort), &sorts))
            button type="submit" { "Apply" }
            a href="/console/orders" { "Clear" }
        }
    }
}

fn row(o: &OrderRow, now: chrono::DateTime<Utc>) -> Markup {
    html! {
        tr data-order=(o.order_id) {
            td { a href={ "/console/orders/" (encode(&o.order_id)) } { (o.order_id) } }
            td { @if let Some(t) = o.placed_at { (time_el(t)) } @else { (dash()) } }
            td {
                (o.customer_name.as_deref().unwrap_or(""))
                @if let Some(e) = &o.customer_email { br; span class="muted" { (e) } }
            }
            td class="num" {
                @match (o.amount_minor, &o.currency) {
                    (Some(m), Some(c)) => { (money(m, c)) }
                    _ => { (dash()) }
                }
            }
            td class="hide-narrow" { (o.gateway.as_deref().unwrap_or("")) }
            td {
                @if o.route == "none" { span class="muted" { "not sent" } } @else { (o.route) }
                @if !o.slot.is_empty() { " " span class="muted" { "(" (o.slot) ")" } }
            }
            td { (layout::badge(&o.outcome, outcome_label(&o.outcome))) }
            td {
                @if let (Some(e), "pending") = (o.expires_at, o.outcome.as_str()) {
                    (time_el(e)) br; span class="muted" { (relative(e, now)) }
                } @else { (dash()) }
            }
            td class="hide-narrow" { (card(o.card_bin.as_deref(), o.card_last4.as_deref())) }
            td class="hide-narrow" {
                @if let Some(s) = &o.subscription_id {
                    a href={ "/console/subscriptions/" (encode(s)) } { (s) }
                }
            }
        }
    }
}

/// `GET /console/orders`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<OrdersQuery>,
) -> Result<Response, PageError> {
    let session = match session::require(&state, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let csrf = session.csrf(state.console.key());
    // A sale's first attempt is on a regular gateway (S3, S8): the setup names them all.
    let gateways: Vec<String> = state
        .setup
        .gateways
        .iter()
        .filter_map(|g| g.as_regular())
        .map(|g| g.id.to_string())
        .collect();
    let filter = match q.filter() {
        Ok(f) => f,
        Err(problems) => {
            let body = html! {
                h1 { "Orders in salvage" }
                (filters(&q, &gateways))
                div class="notice error" role="alert" {
                    "The filter was not understood: "
                    @for p in &problems { (p) "; " }
                    "fix it and apply again."
                }
            };
            return Ok((
                StatusCode::BAD_REQUEST,
                layout::page("Orders", Section::Orders, &session, &csrf, body),
            )
                .into_response());
        }
    };
    let after = non_empty(&q.after).and_then(Cursor::decode);
    let (rows, more) =
        reads::orders_page(&state.store.backend, &filter, after.as_ref(), PAGE_SIZE).await?;
    let now = state.clock.now();
    let base = q.filter_query(None);
    let sort_link = |s: Sort| format!("/console/orders?{}", q.filter_query(Some(s.as_str())));
    let placed_sort = if filter.sort == Sort::Newest {
        Sort::Oldest
    } else {
        Sort::Newest
    };
    let amount_sort = if filter.sort == Sort::AmountHigh {
        Sort::AmountLow
    } else {
        Sort::AmountHigh
    };
    let body = html! {
        h1 { "Orders in salvage" }
        (filters(&q, &gateways))
        p class="hint" {
            "Every order that was declined, where its salvage stands now. "
            a href={ "/console/orders.csv?" (base) } download="salvage-orders.csv" { "Export these orders as CSV" }
        }
        div class="scroll" {
            table id="orders" {
                thead { tr {
                    th scope="col" { "Order" }
                    th scope="col" aria-sort=(match filter.sort { Sort::Newest => "descending", Sort::Oldest => "ascending", _ => "none" }) {
                        a href=(sort_link(placed_sort)) { "Placed" }
                    }
                    th scope="col" { "Customer" }
                    th scope="col" class="num" aria-sort=(match filter.sort { Sort::AmountHigh => "descending", Sort::AmountLow => "ascending", _ => "none" }) {
                        a href=(sort_link(amount_sort)) { "Amount" }
                    }
                    th scope="col" class="hide-narrow" { "Gateway" }
                    th scope="col" { "Route" }
                    th scope="col" { "Outcome" }
                    th scope="col" { "Expires" }
                    th scope="col" class="hide-narrow" { "Card" }
                    th scope="col" class="hide-narrow" { "Subscription" }
                } }
                tbody {
                    @for o in &rows { (row(o, now)) }
                }
            }
        }
        @if rows.is_empty() {
            p class="muted" { "No order matches." }
        }
        nav class="pager" aria-label="Pages" {
            @if after.is_some() {
                a href={ "/console/orders?" (base) } { "\u{2190} First page" }
            }
            @if more {
                @if let Some(last) = rows.last() {
                    a href={ "/console/orders?" (base) (if base.is_empty() { "" } else { "&" }) "after=" (encode(&last.cursor(filter.sort).encode())) } rel="next" { "Next page \u{2192}" }
                }
            }
        }
    };
    Ok(layout::page("Orders", Section::Orders, &session, &csrf, body).into_response())
}

/// One CSV field: quoted when it must be, and a text that a spreadsheet would read as a
/// formula (`=`, `+`, `-`, `@`, tab, CR) prefixed with `'`.
pub fn csv_field(s: &str, text: bool) -> String {
    let s = if text && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The CSV header.
pub const CSV_HEADER: &str = "order_id,order_type,status,placed_at,declined_at,customer_name,customer_email,subscription_id,gateway,amount_minor,amount,currency,route,slot,outcome,expires_at,card_bin,card_last4\r\n";

fn iso(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// One order as a CSV line.
pub fn csv_line(o: &OrderRow) -> String {
    let t = |s: Option<&str>| csv_field(s.unwrap_or(""), true);
    let amount = match (o.amount_minor, &o.currency) {
        (Some(m), Some(c)) => crate::service::summary::decimal(m, c),
        _ => String::new(),
    };
    [
        t(Some(&o.order_id)),
        t(Some(&o.order_type)),
        t(Some(&o.status)),
        iso(o.placed_at),
        iso(o.declined_at),
        t(o.customer_name.as_deref()),
        t(o.customer_email.as_deref()),
        t(o.subscription_id.as_deref()),
        t(o.gateway.as_deref()),
        o.amount_minor.map(|m| m.to_string()).unwrap_or_default(),
        amount,
        t(o.currency.as_deref()),
        t(Some(&o.route)),
        t(Some(&o.slot)),
        t(Some(&o.outcome)),
        iso(o.expires_at),
        t(o.card_bin.as_deref()),
        t(o.card_last4.as_deref()),
    ]
    .join(",")
        + "\r\n"
}

/// `GET /console/orders.csv`: every order the filter shows (all pages), streamed.
pub async fn csv(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<OrdersQuery>,
) -> Response {
    if let Err(r) = session::require(&state, &headers, &uri) {
        return r.into_response();
    }
    let filter = match q.filter() {
        Ok(f) => f,
        Err(problems) => {
            return (StatusCode::BAD_REQUEST, problems.join("; ")).into_response();
        }
    };
    struct Cur {
        state: Arc<AppState>,
        filter: OrderFilter,
        after: Option<Cursor>,
        header: bool,
        done: bool,
    }
    let start = Cur {
        state: state.clone(),
        filter,
        after: None,
        header: false,
        done: false,
    };
    let stream = futures::stream::unfold(start, |mut c| async move {
        if !c.header {
            c.header = true;
            return Some((Ok::<_, std::io::Error>(CSV_HEADER.to_string()), c));
        }
        if c.done {
            return None;
        }
        match reads::orders_page(
            &c.state.store.backend,
            &c.filter,
            c.after.as_ref(),
            CSV_CHUNK,
        )
        .await
        {
            Ok((rows, more)) => {
                c.done = !more;
                c.after = rows.last().map(|r| r.cursor(c.filter.sort));
                let text: String = rows.iter().map(csv_line).collect();
                Some((Ok(text), c))
            }
            Err(e) => {
                tracing::warn!(error = %e, "CSV export stopped: the store failed");
                c.done = true;
                Some((Err(std::io::Error::other(e.to_string())), c))
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"salvage-orders.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain", true), "plain");
        assert_eq!(csv_field("a,b", true), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)", true), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-5", false), "-5");
    }

    #[test]
    fn a_bad_filter_says_what_is_wrong() {
        let q = OrdersQuery {
            outcome: Some("won".into()),
            from: Some("yesterday".into()),
            ..OrdersQuery::default()
        };
        let problems = q.filter().err().unwrap_or_default();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn dates_cover_whole_days() {
        let q = OrdersQuery {
            from: Some("2026-12-01".into()),
            to: Some("2026-12-01".into()),
            ..OrdersQuery::default()
        };
        let f = q.filter().unwrap_or_default();
        assert_eq!(f.to_ms.zip(f.from_ms).map(|(t, f)| t - f), Some(86_400_000));
    }
}
