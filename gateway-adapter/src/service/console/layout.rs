//! The console's page shell, its stylesheet, and how it writes money, counts and time.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::session::Session;
use crate::service::summary::decimal;

/// The stylesheet (`/console/static/console.css`): the only resource a page loads.
pub const STYLESHEET: &str = include_str!("console.css");

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Orders,
    Inbox,
    Outbox,
    Health,
}

const SECTIONS: [(Section, &str, &str); 5] = [
    (Section::Overview, "/console/", "Overview"),
    (Section::Orders, "/console/orders", "Orders"),
    (Section::Inbox, "/console/inbox", "Webhook inbox"),
    (Section::Outbox, "/console/outbox", "Outbox"),
    (Section::Health, "/console/health", "Health"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="same-origin";
            title { (title) " · Salvage" }
            link rel="stylesheet" href="/console/static/console.css";
        }
    }
}

/// A page of the signed-in console.
pub fn page(title: &str, section: Section, session: &Session, csrf: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console/" { "Salvage" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, href, label) in SECTIONS {
                                li {
                                    @if s == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div class="who" {
                        span class={ "role " (if session.can_change() { "operator" } else { "read-only" }) } {
                            (session.role.as_str())
                        }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" class="link" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A page outside the session (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body class="bare" { (body) }
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Minor units as the CRM shows money: `1,234.56 USD`.
pub fn money(minor: i64, currency: &str) -> String {
    let d = decimal(minor, currency);
    let (int, frac) = match d.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (d.clone(), None),
    };
    let neg = int.starts_with('-');
    let n: i64 = int.trim_start_matches('-').parse().unwrap_or(0);
    let mut s = count(n);
    if neg {
        s = format!("-{s}");
    }
    match frac {
        Some(f) => format!("{s}.{f} {currency}"),
        None => format!("{s} {currency}"),
    }
}

/// A fraction as a percentage with one decimal.
pub fn percent(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// Milliseconds since the epoch as `2026-12-07 14:05 UTC`.
pub fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

/// A `<time>` element for `ms`.
pub fn time_el(ms: i64) -> Markup {
    let iso = DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    html! { time datetime=(iso) { (time(ms)) } }
}

/// How long from `now` to `ms`, in words: `in 3 d 4 h`, `2 h 5 min ago`.
pub fn relative(ms: i64, now: DateTime<Utc>) -> String {
    let delta = ms - now.timestamp_millis();
    let d = delta.unsigned_abs() / 1000;
    let text = if d >= 86_400 {
        format!("{} d {} h", d / 86_400, (d % 86_400) / 3600)
    } else if d >= 3600 {
        format!("{} h {} min", d / 3600, (d % 3600) / 60)
    } else if d >= 60 {
        format!("{} min", d / 60)
    } else {
        format!("{d} s")
    };
    if delta >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A card as the console shows it: BIN and last four only.
pub fn card(bin: Option<&str>, last4: Option<&str>) -> String {
    match (bin, last4) {
        (Some(b), Some(l)) => format!("{b}\u{2022}\u{2022}\u{2022}\u{2022}{l}"),
        _ => String::new(),
    }
}

/// A label for an outcome.
pub fn outcome_label(o: &str) -> &'static str {
    match o {
        "not_sent" => "not sent",
        "pending" => "pending",
        "recovered" => "recovered",
        "failed" => "failed",
        "expired" => "expired",
        _ => "",
    }
}

/// A small badge.
pub fn badge(class: &str, text: &str) -> Markup {
    html! { span class={ "badge " (class) } { (text) } }
}

/// A non-breaking empty cell.
pub fn dash() -> Markup {
    PreEscaped("&ndash;".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_money_read_as_the_crm_writes_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(-1_234_567), "-1,234,567");
        assert_eq!(money(4_439_900, "USD"), "44,399.00 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(123_456, "JPY"), "123,456 JPY");
        assert_eq!(money(-150, "USD"), "-1.50 USD");
    }

    #[test]
    fn relative_times_say_which_way() {
        let now = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap_or_default();
        let ms = now.timestamp_millis();
        assert_eq!(
            relative(ms + 3 * 86_400_000 + 4 * 3_600_000, now),
            "in 3 d 4 h"
        );
        assert_eq!(relative(ms - 125 * 60_000, now), "2 h 5 min ago");
        assert_eq!(relative(ms + 30_000, now), "in 30 s");
    }
}
