//! The overview's chart, drawn on the server as inline SVG (no chart library, nothing fetched):
//! the recovery rate (recovered of sent) per period as a line over the volume sent as bars.
//! Colours are SVG presentation attributes, so the strict CSP (no inline styles) holds.

use maud::{html, Markup};

/// One period of the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub label: String,
    pub sent: i64,
    pub recovered: i64,
}

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

fn rate(p: &Point) -> Option<f64> {
    (p.sent > 0).then(|| p.recovered as f64 / p.sent as f64)
}

/// The chart of `points` (oldest first), titled `title`.
pub fn recovery(title: &str, points: &[Point]) -> Markup {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = points.len().max(1) as f64;
    let step = plot_w / n;
    let max_sent = points.iter().map(|p| p.sent).max().unwrap_or(0).max(1) as f64;
    let x = |i: usize| LEFT + step * (i as f64 + 0.5);
    let y_rate = |r: f64| TOP + plot_h * (1.0 - r.clamp(0.0, 1.0));
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| rate(p).map(|r| format!("{:.1},{:.1}", x(i), y_rate(r))))
        .collect();
    let label_every = (points.len() / 6).max(1);
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-labelledby="chart-title chart-desc" {
            title id="chart-title" { (title) }
            desc id="chart-desc" { "Bars: orders sent to FlexFactor per period (right axis). Line: the share of them recovered (left axis, 0 to 100%)." }
            @for pct in [0.0_f64, 0.25, 0.5, 0.75, 1.0] {
                line x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y_rate(pct))) y2=(format!("{:.1}", y_rate(pct))) stroke="#d5d9de" stroke-width="1" {}
                text x=(LEFT - 6.0) y=(format!("{:.1}", y_rate(pct) + 4.0)) text-anchor="end" font-size="11" fill="#4d5560" { (format!("{:.0}%", pct * 100.0)) }
            }
            text x=(W - RIGHT + 6.0) y=(TOP + 8.0) font-size="11" fill="#4d5560" { (max_sent as i64) }
            text x=(W - RIGHT + 6.0) y=(TOP + plot_h) font-size="11" fill="#4d5560" { "0" }
            @for (i, p) in points.iter().enumerate() {
                @let h = plot_h * p.sent as f64 / max_sent;
                rect x=(format!("{:.1}", x(i) - step * 0.35)) y=(format!("{:.1}", TOP + plot_h - h)) width=(format!("{:.1}", step * 0.7)) height=(format!("{:.1}", h)) fill="#c9dcf7" {
                    title { (p.label) ": " (p.sent) " sent, " (p.recovered) " recovered" }
                }
                @if i % label_every == 0 || i + 1 == points.len() {
                    text x=(format!("{:.1}", x(i))) y=(H - 8.0) text-anchor="middle" font-size="11" fill="#4d5560" { (p.label) }
                }
            }
            @if line.len() > 1 {
                polyline points=(line.join(" ")) fill="none" stroke="#0b57d0" stroke-width="2" {}
            }
            @for (i, p) in points.iter().enumerate() {
                @if let Some(r) = rate(p) {
                    circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y_rate(r))) r="3" fill="#0b57d0" {
                        title { (p.label) ": " (format!("{:.1}%", r * 100.0)) " recovered" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_svg_with_one_point_per_period_that_sent_something() {
        let points = vec![
            Point {
                label: "a".into(),
                sent: 10,
                recovered: 5,
            },
            Point {
                label: "b".into(),
                sent: 0,
                recovered: 0,
            },
            Point {
                label: "<c>".into(),
                sent: 4,
                recovered: 4,
            },
        ];
        let svg = recovery("Recovery", &points).into_string();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("&lt;c&gt;"), "labels are escaped");
        assert!(
            !svg.contains("style="),
            "no inline styles (the CSP forbids them)"
        );
    }
}
