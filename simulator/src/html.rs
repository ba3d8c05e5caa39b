//! `report.html`: one self-contained page (inline CSS, inline SVG charts drawn with plotters'
//! SVG backend, no scripts, no external files, no system fonts: text is SVG `<text>` in the
//! viewer's sans-serif).

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::error::ReportError;
use crate::report::{usd, Report, RouteReport, SweepReport, BLOCKED_ATTEMPTS, NETWORK_RULES};
use crate::tally::{ROUTES, SLOTS};

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}\
th{background:#f3f3f3}h2{margin-top:2em}figure{margin:1em 0}\
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:12px}\
.note{color:#555;font-size:13px}";

fn esc(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn chart_error(chart: &'static str) -> impl Fn(String) -> ReportError {
    move |message| ReportError::Chart { chart, message }
}

fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

/// Cumulative series in major units.
fn cumulative(daily: &[i64], scale: f64) -> Vec<f64> {
    let mut sum = 0i64;
    daily
        .iter()
        .map(|d| {
            sum += d;
            sum as f64 / scale
        })
        .collect()
}

fn line_chart(
    name: &'static str,
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<f64>)],
) -> Result<String, ReportError> {
    let err = chart_error(name);
    let days = series
        .iter()
        .map(|(_, s)| s.len())
        .max()
        .unwrap_or(1)
        .max(2)
        - 1;
    let max_y = series
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.08;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..days as f64, 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("day of the simulation")
            .y_desc(y_desc)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (i, (label, s)) in series.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(
                    s.iter().enumerate().map(|(d, v)| (d as f64, *v)),
                    c.stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// Stacked bars: one bar per variant, one layer per part.
fn stacked_bars(
    name: &'static str,
    title: &str,
    y_desc: &str,
    variants: &[String],
    parts: &[&str],
    values: &[Vec<f64>],
) -> Result<String, ReportError> {
    let err = chart_error(name);
    let n = variants.len().max(1);
    let max_y = values
        .iter()
        .map(|v| v.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d((0..n.max(2) - 1).into_segmented(), 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_desc)
            .x_labels(n)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => variants.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (p, part) in parts.iter().enumerate() {
            let c = color(p);
            let bars = values.iter().enumerate().map(|(i, v)| {
                let base: f64 = v.iter().take(p).sum();
                let top = base + v.get(p).copied().unwrap_or(0.0);
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), base),
                        (SegmentValue::Exact(i + 1), top),
                    ],
                    c.filled(),
                );
                bar.set_margin(0, 0, 30, 30);
                bar
            });
            chart
                .draw_series(bars)
                .map_err(|e| err(e.to_string()))?
                .label(*part)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

fn route_rows(
    out: &mut String,
    report: &Report,
    title: &str,
    pick: &dyn Fn(usize) -> Vec<(&'static str, RouteReport)>,
) {
    let _ = write!(
        out,
        "<h3>{}</h3><table><tr><th>variant</th><th>{}</th><th>submitted</th><th>recovered</th><th>rate</th><th>recovered revenue</th><th>failed</th><th>pending at horizon</th><th>hours to recovery p50 / p90</th><th>chargebacks</th><th>refunds</th></tr>",
        esc(title),
        if title.contains("slot") { "slot" } else { "route" }
    );
    for (i, v) in report.variants.iter().enumerate() {
        for (name, r) in pick(i) {
            let failed: u64 = r.counts.failed.values().sum();
            let t = &r.hours_to_recovery;
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
                esc(&v.name),
                name,
                r.counts.submitted,
                r.counts.recovered,
                r.recovery_rate.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "-".into()),
                esc(&report.money(r.counts.recovered_minor)),
                failed,
                r.counts.pending_at_horizon,
                t.p50.map(|h| h.to_string()).unwrap_or_else(|| "-".into()),
                t.p90.map(|h| h.to_string()).unwrap_or_else(|| "-".into()),
                r.counts.chargebacks,
                r.counts.refunds,
            );
        }
    }
    out.push_str("</table>");
}

/// The card-network rules: attempts not made by rule, re-attempts moved, fees avoided; and in
/// a variant without the guard, the forbidden attempts it made and their fees.
fn network_section(out: &mut String, report: &Report, names: &[String]) -> Result<(), ReportError> {
    out.push_str("<h2>Card-network rules (N1-N5)</h2><p class=\"note\">With the guard on: attempts not made (<code>AttemptBlocked</code> on orders, <code>RecycleAttemptBlocked</code> on subscriptions), by rule, and recycle re-attempts moved to Mastercard's advised time (<code>RecycleAttemptDelayed</code>, N4: made later, not counted as blocked). With the guard off: the attempts made that the rules forbid, found by deciding each command again with the guard on. Fees are estimates in US dollars.</p>");
    out.push_str("<table><tr><th>variant</th><th>guard</th>");
    for r in NETWORK_RULES {
        let _ = write!(out, "<th>{r} blocked</th>");
    }
    out.push_str("<th>blocked in all</th><th>delayed (N4)</th><th>mean delay, hours</th><th>fees avoided</th><th>forbidden attempts made</th><th>made before the advised time (N4)</th><th>fees incurred</th></tr>");
    for v in &report.variants {
        let n = &v.network;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td>",
            esc(&v.name),
            if n.enabled { "on" } else { "off" }
        );
        for r in NETWORK_RULES {
            let _ = write!(out, "<td>{}</td>", n.blocked.by_rule[r]);
        }
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            n.blocked.total,
            n.delayed_n4,
            n.delayed_mean_hours
                .map(|h| format!("{h:.1}"))
                .unwrap_or_else(|| "-".into()),
            usd(n.blocked.fees.total_minor),
            n.unguarded.total,
            n.unguarded_early_n4,
            usd(n.unguarded.fees.total_minor),
        );
    }
    out.push_str("</table>");
    out.push_str("<h3>By the attempt and the rule</h3><table><tr><th>variant</th><th>attempt</th><th>guard</th>");
    for r in NETWORK_RULES {
        let _ = write!(out, "<th>{r}</th>");
    }
    out.push_str("</tr>");
    for v in &report.variants {
        let (what, forbidden) = if v.network.enabled {
            ("not made", &v.network.blocked)
        } else {
            ("made", &v.network.unguarded)
        };
        for kind in BLOCKED_ATTEMPTS {
            let counts = &forbidden.by_attempt[kind];
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{what}</td>",
                esc(&v.name),
                kind.replace('_', " ")
            );
            for r in NETWORK_RULES {
                let _ = write!(out, "<td>{}</td>", counts[r]);
            }
            out.push_str("</tr>");
        }
        let _ = write!(
            out,
            "<tr><td>{}</td><td>fees (regular gateways)</td><td>{}</td>",
            esc(&v.name),
            if v.network.enabled {
                "avoided"
            } else {
                "incurred"
            }
        );
        for r in NETWORK_RULES {
            let _ = write!(out, "<td>{}</td>", usd(forbidden.fees.by_rule_minor[r]));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    if let Some(v) = report.variants.first() {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(v.network.fee_basis));
    }
    let values: Vec<Vec<f64>> = report
        .variants
        .iter()
        .map(|v| {
            let mut row: Vec<f64> = NETWORK_RULES
                .iter()
                .map(|r| v.network.blocked.by_rule[r] as f64)
                .collect();
            row.push(v.network.delayed_n4 as f64);
            row
        })
        .collect();
    let mut parts: Vec<&str> = NETWORK_RULES.to_vec();
    parts.push("delayed (N4)");
    out.push_str("<figure>");
    out.push_str(&stacked_bars(
        "network_rules",
        "Attempts not made by rule, and re-attempts delayed",
        "attempts",
        names,
        &parts,
        &values,
    )?);
    out.push_str("</figure>");
    Ok(())
}

/// How sure the headline figures are: per run, each variant's mean ± the 95% interval, and
/// each variant against the first in words.
fn uncertainty_section(out: &mut String, report: &Report) {
    let u = &report.uncertainty;
    let _ = write!(
        out,
        "<h2>How sure</h2><p>Per run of {} customers, {}: the mean and its 95% interval.</p>",
        u.customers_per_run,
        esc(&report.seeds_words())
    );
    if u.seeds.len() < 2 {
        out.push_str("<p class=\"note\">One seed: no interval. Run with <code>--seeds N</code> (N of 2 or more) to know whether a difference is larger than the noise.</p>");
    }
    let shown = [
        ("recovered_minor", "recovered revenue"),
        ("recovered_orders", "recovered orders"),
        ("flexfactor_recovered_minor", "by FlexFactor"),
        ("gateway_recovered_minor", "by regular gateways"),
        ("recycle_failed", "recycle failed"),
        ("chargebacks", "chargebacks"),
        (
            "active_subscriptions_at_horizon",
            "active subscriptions at horizon",
        ),
    ];
    out.push_str("<table><tr><th>variant</th>");
    for (_, label) in shown {
        let _ = write!(out, "<th>{label}</th>");
    }
    out.push_str("</tr>");
    for (i, v) in report.variants.iter().enumerate() {
        let _ = write!(out, "<tr><td>{}</td>", esc(&v.name));
        for (key, _) in shown {
            let cell = u
                .figure(i, key)
                .map(|f| report.figure_interval(key, &f.interval))
                .unwrap_or_default();
            let _ = write!(out, "<td>{}</td>", esc(&cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    if let Some(first) = report.variants.first() {
        out.push_str("<ul>");
        for (i, v) in report.variants.iter().enumerate().skip(1) {
            let Some(d) = u.difference(i, "recovered_minor") else {
                continue;
            };
            let _ = write!(
                out,
                "<li><b>{}</b> against <b>{}</b>, recovered revenue: {}.</li>",
                esc(&v.name),
                esc(&first.name),
                esc(&sentence(report, d))
            );
        }
        out.push_str("</ul>");
    }
    let _ = write!(out, "<p class=\"note\">{}</p>", esc(u.method));
}

/// A difference in a sentence.
fn sentence(report: &Report, d: &crate::stats::Difference) -> String {
    use crate::stats::Verdict;
    let i = &d.interval;
    let amount = |x: f64| report.figure_value("recovered_minor", x.abs());
    let interval = match (i.low, i.high) {
        (Some(lo), Some(hi)) => format!(
            " (95% interval {} to {})",
            report.figure_value("recovered_minor", lo),
            report.figure_value("recovered_minor", hi)
        ),
        _ => String::new(),
    };
    match d.verdict {
        Verdict::Higher => format!(
            "{} more per run{interval}, a difference beyond the noise of the seeds",
            amount(i.mean)
        ),
        Verdict::Lower => format!(
            "{} less per run{interval}, a difference beyond the noise of the seeds",
            amount(i.mean)
        ),
        Verdict::WithinNoise => format!(
            "{} {} per run{interval}: within noise, these seeds cannot tell the two apart",
            amount(i.mean),
            if i.mean < 0.0 { "less" } else { "more" }
        ),
        Verdict::Same => "the same on every seed".to_string(),
        Verdict::Unknown => format!(
            "{} {} on the one seed run; no interval, so no telling whether it is more than noise",
            amount(i.mean),
            if i.mean < 0.0 { "less" } else { "more" }
        ),
    }
}

/// A sweep's chart: recovered revenue per run (the mean, and its 95% interval as a bar)
/// against the swept value, with FlexFactor's part.
fn sweep_chart(report: &Report, sweep: &SweepReport) -> Result<String, ReportError> {
    let err = chart_error("sweep");
    let scale = 10f64.powi(report.currency.minor_exponent() as i32);
    let n = sweep.points.len();
    let top = |i: &crate::stats::Interval| i.high.unwrap_or(i.mean);
    let max_y = sweep
        .points
        .iter()
        .map(|p| top(&p.recovered_minor) / scale)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.3;
    let labels: Vec<String> = sweep.points.iter().map(|p| p.value.clone()).collect();
    let title = format!("Recovered revenue per run against {}", sweep.parameter);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title.as_str(), ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(90)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(sweep.parameter.as_str())
            .y_desc(report.currency.as_str())
            .x_labels(n.max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (k, (name, pick)) in [
            (
                "recovered revenue",
                (|p: &crate::report::SweepPoint| p.recovered_minor)
                    as fn(&crate::report::SweepPoint) -> crate::stats::Interval,
            ),
            ("by FlexFactor", |p: &crate::report::SweepPoint| {
                p.flexfactor_recovered_minor
            }),
        ]
        .into_iter()
        .enumerate()
        {
            let c = color(k);
            chart
                .draw_series(LineSeries::new(
                    sweep
                        .points
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i as f64, pick(p).mean / scale)),
                    c.stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
            // The 95% interval of each point: a vertical bar with caps.
            for (i, p) in sweep.points.iter().enumerate() {
                let iv = pick(p);
                let (Some(lo), Some(hi)) = (iv.low, iv.high) else {
                    continue;
                };
                let x = i as f64;
                let (lo, hi) = (lo / scale, hi / scale);
                let cap = 0.08;
                chart
                    .draw_series(
                        [
                            vec![(x, lo), (x, hi)],
                            vec![(x - cap, lo), (x + cap, lo)],
                            vec![(x - cap, hi), (x + cap, hi)],
                        ]
                        .into_iter()
                        .map(|pts| PathElement::new(pts, c.stroke_width(2))),
                    )
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// Every sweep: its chart and its table.
fn sweeps_section(out: &mut String, report: &Report) -> Result<(), ReportError> {
    for sweep in &report.sweeps {
        let _ = write!(
            out,
            "<h2>Sweep over {}{}</h2><p>{}</p><figure>",
            esc(&sweep.parameter),
            sweep
                .profile
                .as_ref()
                .map(|p| format!(" (recycle profile <code>{}</code>)", esc(p)))
                .unwrap_or_default(),
            esc(&sweep.description)
        );
        out.push_str(&sweep_chart(report, sweep)?);
        out.push_str("</figure><table><tr><th>value</th><th>recovered revenue per run</th><th>by FlexFactor</th><th>recovered orders</th></tr>");
        for p in &sweep.points {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.value),
                esc(&report.figure_interval("recovered_minor", &p.recovered_minor)),
                esc(&report
                    .figure_interval("flexfactor_recovered_minor", &p.flexfactor_recovered_minor)),
                esc(&report.figure_interval("recovered_orders", &p.recovered_orders)),
            );
        }
        out.push_str("</table>");
        if let Some(best) = report.sweep_best(sweep) {
            let _ = write!(out, "<p>{}</p>", esc(&best));
        }
        out.push_str("<p class=\"note\">The bars are the 95% intervals of the mean per run over the seeds; every value ran on the same seeds.</p>");
    }
    Ok(())
}

/// The whole page.
pub fn render(report: &Report) -> Result<String, ReportError> {
    let scale = 10f64.powi(report.currency.minor_exponent() as i32);
    let cur = report.currency.as_str();
    let names: Vec<String> = report.variants.iter().map(|v| v.name.clone()).collect();

    let ff_over_time: Vec<(String, Vec<f64>)> = report
        .variants
        .iter()
        .map(|v| {
            let days = v.daily.gateway_recovered_minor.len();
            let mut total = vec![0i64; days];
            for s in v.daily.flexfactor_recovered_minor.values() {
                for (t, x) in total.iter_mut().zip(s) {
                    *t += x;
                }
            }
            (v.name.clone(), cumulative(&total, scale))
        })
        .collect();
    let all_over_time: Vec<(String, Vec<f64>)> = report
        .variants
        .iter()
        .map(|v| {
            let mut total = v.daily.gateway_recovered_minor.clone();
            for s in v.daily.flexfactor_recovered_minor.values() {
                for (t, x) in total.iter_mut().zip(s) {
                    *t += x;
                }
            }
            (v.name.clone(), cumulative(&total, scale))
        })
        .collect();
    let by_route: Vec<Vec<f64>> = report
        .variants
        .iter()
        .map(|v| {
            ROUTES
                .iter()
                .map(|r| {
                    v.flexfactor
                        .by_route
                        .get(r)
                        .map(|x| x.counts.recovered_minor as f64 / scale)
                        .unwrap_or(0.0)
                })
                .collect()
        })
        .collect();
    let by_slot: Vec<Vec<f64>> = report
        .variants
        .iter()
        .map(|v| {
            SLOTS
                .iter()
                .map(|r| {
                    v.flexfactor
                        .by_slot
                        .get(r)
                        .map(|x| x.counts.recovered_minor as f64 / scale)
                        .unwrap_or(0.0)
                })
                .collect()
        })
        .collect();

    let mut out = String::new();
    let s = &report.scenario;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Salvage simulation: {}</title><style>{STYLE}</style></head><body>",
        esc(&s.name)
    );
    let _ = write!(
        out,
        "<h1>Salvage simulation: {}</h1><p>{}</p><p class=\"note\">{}, {} customers per seed, {} days from {}, base setup <code>{}</code>. Amounts in {cur}. The same scenario and seeds give the same report.</p>",
        esc(&s.name),
        esc(&s.description),
        esc(&report.seeds_words()),
        s.population.customers,
        s.horizon_days,
        esc(&s.start),
        esc(&s.setup),
    );

    uncertainty_section(&mut out, report);
    sweeps_section(&mut out, report)?;

    let _ = write!(
        out,
        "<h2>Comparison</h2><p class=\"note\">{}</p><table>",
        if report.uncertainty.seeds.len() > 1 {
            format!(
                "Totals over the {} seeds ({} customers in all); the figures per run, with their intervals, are above.",
                report.uncertainty.seeds.len(),
                report.variants.first().map_or(0, |v| v.customers)
            )
        } else {
            "One seed: the figures of one run.".to_string()
        }
    );
    out.push_str("<tr><th>variant</th><th>recovered orders</th><th>recovered revenue</th><th>by FlexFactor</th><th>by regular gateways</th><th>declined amount</th><th>median hours to asynchronous FlexFactor recovery</th><th>recycle failed</th><th>chargebacks</th><th>refunds</th><th>active subscriptions at horizon</th></tr>");
    for v in &report.variants {
        let m = &v.summary;
        let _ = write!(
            out,
            "<tr><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&v.description),
            esc(&v.name),
            m.recovered_orders,
            esc(&report.money(m.recovered_minor)),
            esc(&report.money(m.flexfactor_recovered_minor)),
            esc(&report.money(m.gateway_recovered_minor)),
            esc(&report.money(m.declined_minor)),
            m.async_median_hours_to_recovery.map(|h| h.to_string()).unwrap_or_else(|| "-".into()),
            m.recycle_failed,
            m.chargebacks,
            m.refunds,
            m.active_subscriptions_at_horizon,
        );
    }
    out.push_str("</table>");

    out.push_str("<h2>Recovery over time</h2><figure>");
    out.push_str(&line_chart(
        "flexfactor_over_time",
        "Revenue recovered by FlexFactor (cumulative)",
        cur,
        &ff_over_time,
    )?);
    out.push_str("</figure><figure>");
    out.push_str(&line_chart(
        "all_over_time",
        "Revenue recovered by FlexFactor and regular gateways (cumulative)",
        cur,
        &all_over_time,
    )?);
    out.push_str("</figure>");

    out.push_str("<h2>By route and by recycle slot</h2><figure>");
    out.push_str(&stacked_bars(
        "by_route",
        "FlexFactor-recovered revenue by route",
        cur,
        &names,
        &ROUTES,
        &by_route,
    )?);
    out.push_str("</figure><figure>");
    out.push_str(&stacked_bars(
        "by_slot",
        "FlexFactor-recovered revenue by recycle slot",
        cur,
        &names,
        &SLOTS,
        &by_slot,
    )?);
    out.push_str("</figure>");

    route_rows(&mut out, report, "FlexFactor by route", &|i| {
        let v = &report.variants[i];
        ROUTES
            .iter()
            .filter_map(|r| v.flexfactor.by_route.get(r).map(|x| (*r, x.clone())))
            .collect()
    });
    route_rows(&mut out, report, "FlexFactor by recycle slot", &|i| {
        let v = &report.variants[i];
        SLOTS
            .iter()
            .filter_map(|r| v.flexfactor.by_slot.get(r).map(|x| (*r, x.clone())))
            .collect()
    });

    network_section(&mut out, report, &names)?;

    out.push_str("<h2>Variants</h2>");
    for v in &report.variants {
        let changes = serde_json::to_string_pretty(&v.changes)?;
        let _ = write!(
            out,
            "<h3>{}</h3><p>{}</p><pre>{}</pre><p class=\"note\">Audit: FlexFactor-recovered {} from events, {} salvaged in the orders' final states: {}. Invariants: {}.</p>",
            esc(&v.name),
            esc(&v.description),
            esc(&changes),
            esc(&report.money(v.audit.recovered_minor_from_events)),
            esc(&report.money(v.audit.salvaged_minor_from_states)),
            if v.audit.balanced { "balanced" } else { "NOT balanced" },
            esc(&serde_json::to_string(&v.invariants)?),
        );
    }
    let params = serde_json::to_string_pretty(&report.scenario)?;
    let _ = writeln!(
        out,
        "<h2>Scenario parameters</h2><pre>{}</pre><p class=\"note\">Every figure of this page is in <code>report.json</code> next to it.</p></body></html>",
        esc(&params)
    );
    Ok(out)
}
