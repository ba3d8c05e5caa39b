//! The report of a run: per variant, what was recovered (orders and money, by FlexFactor route
//! and recycle slot, and by regular gateways), how long recoveries took, what failed, chargebacks
//! and refunds, the CRM notifications, an audit of the money against the orders' final states,
//! and the invariants watched during the run. Serialized as `report.json`: the same scenario and
//! seed give the same bytes (ordered maps, integer money, no wall-clock time).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use salvage_domain::{Currency, Money};
use serde::Serialize;

use crate::error::ReportError;
use crate::scenario::{
    AfterSaleSpec, CrmPolicy, FlexFactorModelSpec, GatewayModelSpec, PopulationSpec, Scenario,
};
use crate::tally::{
    AfterSaleTally, CascadeTally, Counts, Hist, InvariantTally, Merge, RecycleTally, RerunTally,
    RouteTally, SaleTally, SubscriptionTally, Tally, ROUTES, SLOTS,
};
use crate::variant::VariantSpec;

/// The report's format name; bumped when a field changes meaning.
pub const FORMAT: &str = "salvage-sim/report/v1";

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub scenario: ScenarioEcho,
    /// The currency of every amount (`*_minor` fields are integer minor units of it).
    pub currency: Currency,
    pub variants: Vec<VariantReport>,
    /// Each variant against the first one.
    pub comparison: Vec<Comparison>,
}

/// The scenario's parameters as run (after command-line overrides).
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioEcho {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub horizon_days: u32,
    pub start: String,
    /// The base setup's file as written in the scenario, or "(inline)".
    pub setup: String,
    pub population: PopulationSpec,
    pub gateways: GatewayModelSpec,
    pub flexfactor: FlexFactorModelSpec,
    pub crm: CrmPolicy,
    pub after_sale: AfterSaleSpec,
}

/// Durations in hours.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimeStats {
    pub count: u64,
    pub mean: Option<f64>,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
}

impl TimeStats {
    fn of(h: &Hist) -> TimeStats {
        TimeStats {
            count: h.count,
            mean: h.mean_hours().map(round),
            p50: h.percentile_hours(500),
            p90: h.percentile_hours(900),
        }
    }
}

/// One FlexFactor route (or slot): counts, rate and times.
#[derive(Debug, Clone, Serialize)]
pub struct RouteReport {
    #[serde(flatten)]
    pub counts: RouteTally,
    /// recovered / submitted.
    pub recovery_rate: Option<f64>,
    /// recovered_minor / submitted_minor.
    pub revenue_recovery_rate: Option<f64>,
    /// From the order's first decline to the recovery.
    pub hours_to_recovery: TimeStats,
    /// From the submission to FlexFactor to the recovery.
    pub hours_from_submission: TimeStats,
}

impl RouteReport {
    fn of(t: &RouteTally) -> RouteReport {
        RouteReport {
            counts: t.clone(),
            recovery_rate: ratio(t.recovered as i64, t.submitted as i64),
            revenue_recovery_rate: ratio(t.recovered_minor, t.submitted_minor),
            hours_to_recovery: TimeStats::of(&t.from_decline),
            hours_from_submission: TimeStats::of(&t.from_submission),
        }
    }
}

/// FlexFactor's part.
#[derive(Debug, Clone, Serialize)]
pub struct FlexFactorReport {
    pub total: RouteReport,
    /// cascade, rerun, recycle.
    pub by_route: BTreeMap<&'static str, RouteReport>,
    /// Recycle hand-overs by slot: 4-6, 7-9, final.
    pub by_slot: BTreeMap<&'static str, RouteReport>,
}

/// The headline figures of a variant.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Declined orders paid in the end, by FlexFactor or a regular gateway (cascade step,
    /// recycle re-attempt).
    pub recovered_orders: u64,
    pub recovered_minor: i64,
    pub flexfactor_recovered_orders: u64,
    pub flexfactor_recovered_minor: i64,
    pub gateway_recovered_orders: u64,
    pub gateway_recovered_minor: i64,
    /// Declined amounts: first attempts of new sales, rebills and trial completions.
    pub declined_minor: i64,
    pub recycle_failed: u64,
    pub chargebacks: u64,
    pub refunds: u64,
    pub active_subscriptions_at_horizon: u64,
    /// Money taken, before chargebacks and refunds.
    pub collected_minor: i64,
    /// Median hours from the first decline to an asynchronous FlexFactor recovery (reruns and
    /// recycle hand-overs; cascades recover at once).
    pub async_median_hours_to_recovery: Option<u64>,
}

/// Money checked against the orders' final states.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// Recovered by FlexFactor, summed from the SalvageSucceeded events.
    pub recovered_minor_from_events: i64,
    /// Salvaged, summed from the final states of the orders (salvage succeeded).
    pub salvaged_minor_from_states: i64,
    pub recovered_orders_from_events: u64,
    pub salvaged_orders_from_states: u64,
    /// Both sums agree, and no route recovered more than it submitted.
    pub balanced: bool,
}

/// Daily series, index = day since the start.
#[derive(Debug, Clone, Serialize)]
pub struct Daily {
    /// FlexFactor-recovered money per day, by route.
    pub flexfactor_recovered_minor: BTreeMap<&'static str, Vec<i64>>,
    /// Money recovered by regular gateways per day.
    pub gateway_recovered_minor: Vec<i64>,
}

/// Everything about one variant.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    pub name: String,
    pub description: String,
    /// What the variant changes in the base setup and policy.
    pub changes: VariantSpec,
    pub crm: CrmPolicy,
    pub summary: Summary,
    pub flexfactor: FlexFactorReport,
    pub customers: u64,
    pub new_sales: SaleTally,
    pub cascade: CascadeTally,
    pub reruns: RerunTally,
    pub recycle: RecycleTally,
    pub subscriptions: SubscriptionTally,
    pub after_sale: AfterSaleTally,
    pub reconciled_by_poll: u64,
    pub results_ignored: Counts,
    pub notifications: Counts,
    pub refused_commands: Counts,
    pub orders_at_horizon: BTreeMap<&'static str, Counts>,
    pub audit: Audit,
    pub invariants: InvariantTally,
    pub daily: Daily,
}

/// A variant against the first one.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub variant: String,
    pub against: String,
    pub recovered_orders: i64,
    pub recovered_minor: i64,
    pub flexfactor_recovered_minor: i64,
    pub recycle_failed: i64,
    pub chargebacks: i64,
    pub active_subscriptions_at_horizon: i64,
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| round(a as f64 / b as f64))
}

fn series(v: &[i64], len: usize) -> Vec<i64> {
    let mut s = v.to_vec();
    s.resize(len, 0);
    s
}

impl Report {
    /// Builds the report of a run: `tallies` holds one tally per variant, in scenario order.
    pub fn build(scenario: &Scenario, tallies: &[Tally]) -> Report {
        let spec = &scenario.spec;
        let days = spec.horizon_days as usize + 1;
        let variants: Vec<VariantReport> = scenario
            .variants
            .iter()
            .zip(tallies)
            .map(|(v, t)| {
                let mut total = RouteTally::default();
                for r in &t.routes {
                    total.merge(r);
                }
                let by_route = ROUTES
                    .iter()
                    .zip(&t.routes)
                    .map(|(n, r)| (*n, RouteReport::of(r)))
                    .collect();
                let by_slot = SLOTS
                    .iter()
                    .zip(&t.slots)
                    .map(|(n, r)| (*n, RouteReport::of(r)))
                    .collect();
                let gateway_orders =
                    t.cascade.approved_by_regular_gateway + t.recycle.recovered_by_gateway;
                let gateway_minor = t.cascade.approved_by_regular_gateway_minor
                    + t.recycle.recovered_by_gateway_minor;
                let within_submissions =
                    t.routes.iter().chain(&t.slots).all(|r| {
                        r.recovered <= r.submitted && r.recovered_minor <= r.submitted_minor
                    });
                let audit = Audit {
                    recovered_minor_from_events: total.recovered_minor,
                    salvaged_minor_from_states: total.audit_salvaged_minor,
                    recovered_orders_from_events: total.recovered,
                    salvaged_orders_from_states: total.audit_salvaged,
                    balanced: within_submissions
                        && total.recovered_minor == total.audit_salvaged_minor
                        && total.recovered == total.audit_salvaged,
                };
                let summary = Summary {
                    recovered_orders: total.recovered + gateway_orders,
                    recovered_minor: total.recovered_minor + gateway_minor,
                    flexfactor_recovered_orders: total.recovered,
                    flexfactor_recovered_minor: total.recovered_minor,
                    gateway_recovered_orders: gateway_orders,
                    gateway_recovered_minor: gateway_minor,
                    declined_minor: t.new_sales.declined_minor + t.subscriptions.declined_minor,
                    recycle_failed: t.recycle.failed.values().sum(),
                    chargebacks: t.after_sale.chargebacks_recorded,
                    refunds: t.after_sale.refunds,
                    active_subscriptions_at_horizon: t
                        .subscriptions
                        .status_at_horizon
                        .get("active")
                        .copied()
                        .unwrap_or(0),
                    collected_minor: t.collected_minor,
                    async_median_hours_to_recovery: {
                        let mut h = t.routes[1].from_decline.clone();
                        h.merge(&t.routes[2].from_decline);
                        h.percentile_hours(500)
                    },
                };
                VariantReport {
                    name: v.spec.name.clone(),
                    description: v.spec.description.clone(),
                    changes: v.spec.clone(),
                    crm: v.crm.clone(),
                    summary,
                    flexfactor: FlexFactorReport {
                        total: RouteReport::of(&total),
                        by_route,
                        by_slot,
                    },
                    customers: t.customers,
                    new_sales: t.new_sales.clone(),
                    cascade: t.cascade.clone(),
                    reruns: t.reruns.clone(),
                    recycle: t.recycle.clone(),
                    subscriptions: t.subscriptions.clone(),
                    after_sale: t.after_sale.clone(),
                    reconciled_by_poll: t.reconciled_by_poll,
                    results_ignored: t.results_ignored.clone(),
                    notifications: t.notifications.clone(),
                    refused_commands: t.refused.clone(),
                    orders_at_horizon: t.orders_at_horizon.clone(),
                    audit,
                    invariants: t.invariants.clone(),
                    daily: Daily {
                        flexfactor_recovered_minor: ROUTES
                            .iter()
                            .zip(&t.daily_flexfactor_minor)
                            .map(|(n, s)| (*n, series(s, days)))
                            .collect(),
                        gateway_recovered_minor: series(&t.daily_gateway_minor, days),
                    },
                }
            })
            .collect();
        let comparison = match variants.first() {
            Some(first) => variants
                .iter()
                .skip(1)
                .map(|v| {
                    let (a, b) = (&v.summary, &first.summary);
                    Comparison {
                        variant: v.name.clone(),
                        against: first.name.clone(),
                        recovered_orders: a.recovered_orders as i64 - b.recovered_orders as i64,
                        recovered_minor: a.recovered_minor - b.recovered_minor,
                        flexfactor_recovered_minor: a.flexfactor_recovered_minor
                            - b.flexfactor_recovered_minor,
                        recycle_failed: a.recycle_failed as i64 - b.recycle_failed as i64,
                        chargebacks: a.chargebacks as i64 - b.chargebacks as i64,
                        active_subscriptions_at_horizon: a.active_subscriptions_at_horizon as i64
                            - b.active_subscriptions_at_horizon as i64,
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        Report {
            format: FORMAT,
            scenario: ScenarioEcho {
                name: spec.name.clone(),
                description: spec.description.clone(),
                seed: spec.seed,
                horizon_days: spec.horizon_days,
                start: scenario.start.to_rfc3339(),
                setup: spec
                    .setup
                    .path
                    .clone()
                    .unwrap_or_else(|| "(inline)".to_string()),
                population: spec.population.clone(),
                gateways: spec.gateways.clone(),
                flexfactor: spec.flexfactor.clone(),
                crm: spec.crm.clone(),
                after_sale: spec.after_sale.clone(),
            },
            currency: scenario.currency,
            variants,
            comparison,
        }
    }

    /// `report.json`: pretty JSON, ending with a newline.
    pub fn to_json(&self) -> Result<String, ReportError> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }

    /// An amount of the report's currency, for people ("1234.56 USD").
    pub fn money(&self, minor: i64) -> String {
        Money {
            amount_minor: minor,
            currency: self.currency,
        }
        .to_string()
    }

    /// The comparison as a text table, for a terminal.
    pub fn summary_table(&self) -> String {
        let headers = [
            "variant",
            "recovered",
            "recovered revenue",
            "FlexFactor",
            "cascade",
            "rerun",
            "recycle",
            "slot 4-6",
            "slot 7-9",
            "final",
            "p50 h",
            "recycle failed",
            "chargebacks",
            "active subs",
        ];
        let mut rows: Vec<Vec<String>> = vec![headers.iter().map(|h| h.to_string()).collect()];
        for v in &self.variants {
            let s = &v.summary;
            let ff = &v.flexfactor;
            let rec = |m: &BTreeMap<&'static str, RouteReport>, k: &str| {
                m.get(k)
                    .map(|r| format!("{}/{}", r.counts.recovered, r.counts.submitted))
                    .unwrap_or_default()
            };
            rows.push(vec![
                v.name.clone(),
                s.recovered_orders.to_string(),
                self.money(s.recovered_minor),
                self.money(s.flexfactor_recovered_minor),
                rec(&ff.by_route, "cascade"),
                rec(&ff.by_route, "rerun"),
                rec(&ff.by_route, "recycle"),
                rec(&ff.by_slot, "4-6"),
                rec(&ff.by_slot, "7-9"),
                rec(&ff.by_slot, "final"),
                s.async_median_hours_to_recovery
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "-".into()),
                s.recycle_failed.to_string(),
                s.chargebacks.to_string(),
                s.active_subscriptions_at_horizon.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..headers.len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for (n, row) in rows.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    if i == 0 {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
            if n == 0 {
                let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
                let _ = writeln!(out, "{}", "-".repeat(total));
            }
        }
        let _ = writeln!(
            out,
            "FlexFactor columns: recovered/submitted. Money in {}; p50 h: median hours from decline to recovery by a rerun or hand-over.",
            self.currency
        );
        out
    }
}
