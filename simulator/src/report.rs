//! The report of a run: per variant, what was recovered (orders and money, by FlexFactor route
//! and recycle slot, and by regular gateways), how long recoveries took, what failed, chargebacks
//! and refunds, the attempts the card-network rules stopped and the fees that spared (estimates),
//! the CRM notifications, an audit of the money against the orders' final states, and the
//! invariants watched during the run. Serialized as `report.json`: the same scenario and
//! seed give the same bytes (ordered maps, integer money, no wall-clock time).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use salvage_domain::{Currency, Money};
use serde::Serialize;

use crate::error::ReportError;
use crate::scenario::{
    AfterSaleSpec, CrmPolicy, FlexFactorModelSpec, GatewayModelSpec, PopulationSpec, Scenario,
};
use crate::stats::Interval;
use crate::tally::{
    AfterSaleTally, CascadeTally, Counts, ForbiddenAttempts, Hist, InvariantTally, Merge,
    NetworkTally, RecycleTally, RerunTally, RouteTally, SaleTally, SubscriptionTally, Tally,
    ROUTES, SLOTS,
};
use crate::uncertainty::{self, Uncertainty};
use crate::variant::VariantSpec;

/// The report's format name; bumped when a field changes meaning.
pub const FORMAT: &str = "salvage-sim/report/v2";

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub scenario: ScenarioEcho,
    /// The currency of every amount (`*_minor` fields are integer minor units of it).
    pub currency: Currency,
    /// Every variant's figures over all the seeds together (sums: `customers` is the
    /// population times the seeds).
    pub variants: Vec<VariantReport>,
    /// Each variant against the first one, over all the seeds together.
    pub comparison: Vec<Comparison>,
    /// Per run (one seed): each headline figure's mean and 95% interval, and each variant's
    /// paired difference against the first.
    pub uncertainty: Uncertainty,
    /// Each sweep: recovered revenue per run, with its interval, against the parameter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<SweepReport>,
}

/// One value of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// The value as written in the scenario.
    pub value: String,
    pub variant: String,
    /// Per run: mean and 95% interval.
    pub recovered_minor: Interval,
    pub flexfactor_recovered_minor: Interval,
    pub recovered_orders: Interval,
}

/// A sweep's results.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub parameter: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub description: String,
    pub points: Vec<SweepPoint>,
}

/// The scenario's parameters as run (after command-line overrides).
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioEcho {
    pub name: String,
    pub description: String,
    /// The first seed; the run's seeds are in `uncertainty.seeds`.
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

impl Summary {
    /// The headline figures of a tally.
    pub fn of(t: &Tally) -> Summary {
        let mut total = RouteTally::default();
        for r in &t.routes {
            total.merge(r);
        }
        let gateway_orders = t.cascade.approved_by_regular_gateway + t.recycle.recovered_by_gateway;
        let gateway_minor =
            t.cascade.approved_by_regular_gateway_minor + t.recycle.recovered_by_gateway_minor;
        Summary {
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
        }
    }
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

/// The rules the report counts blocks by.
pub const NETWORK_RULES: [&str; 5] = ["N1", "N2", "N3", "N4", "N5"];

/// The kinds of attempt the network rules can stop, as the report names them.
pub const BLOCKED_ATTEMPTS: [&str; 5] = [
    "cascade_step",
    "cascade_flexfactor",
    "rerun",
    "recycle_reattempt",
    "recycle_handover",
];

/// How the fees are estimated, as the report says it.
pub const FEE_BASIS: &str = "Estimates from the published figures in decline-domain.md \u{a7}1.2-1.3 (acquirers' and processors' pages): Visa $0.10 per reattempt, domestic, for N1 and N2 blocks; Mastercard $0.03 per reattempt within 30 days of a MAC 03 or 21 decline (N3) and $0.50 per attempt past 35 in 30 days (N5). Only attempts on regular gateways are priced: whether FlexFactor's attempts are fined, and whose fee that would be, is not public (N9). N4 waits avoid no fee.";

/// Network fees of attempts the rules forbid (estimates, US cents; see `fee_basis`).
#[derive(Debug, Clone, Serialize)]
pub struct Fees {
    /// Always true: these are estimates.
    pub estimate: bool,
    /// The fees are published in US dollars, whatever the report's currency.
    pub currency: &'static str,
    pub by_rule_minor: BTreeMap<&'static str, i64>,
    pub total_minor: i64,
    /// N3 attempts after a MAC 01 or 99 only: no published fee.
    pub unpriced_n3: u64,
    /// Cascade steps, reruns and hand-overs to FlexFactor: not priced (N9).
    pub unpriced_flexfactor: u64,
}

/// Attempts the network rules forbid, by rule N1-N5.
#[derive(Debug, Clone, Serialize)]
pub struct Forbidden {
    pub by_rule: BTreeMap<&'static str, u64>,
    pub total: u64,
    /// On orders: cascade steps and reruns (`AttemptBlocked`).
    pub orders: BTreeMap<&'static str, u64>,
    /// On subscriptions: recycle re-attempts and hand-overs (`RecycleAttemptBlocked`).
    pub subscriptions: BTreeMap<&'static str, u64>,
    /// By kind of attempt (cascade_step, cascade_flexfactor, rerun, recycle_reattempt,
    /// recycle_handover), by rule.
    pub by_attempt: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    pub fees: Fees,
}

impl Forbidden {
    fn of(t: &ForbiddenAttempts) -> Forbidden {
        let by_rule = |c: &Counts| -> BTreeMap<&'static str, u64> {
            NETWORK_RULES
                .iter()
                .map(|r| (*r, c.get(r).copied().unwrap_or(0)))
                .collect()
        };
        let kinds = [
            &t.cascade_steps,
            &t.cascade_flexfactor,
            &t.reruns,
            &t.recycle_reattempts,
            &t.recycle_handovers,
        ];
        let by_attempt: BTreeMap<&'static str, BTreeMap<&'static str, u64>> = BLOCKED_ATTEMPTS
            .iter()
            .zip(kinds)
            .map(|(k, c)| (*k, by_rule(c)))
            .collect();
        let sum = |names: &[&str]| -> BTreeMap<&'static str, u64> {
            NETWORK_RULES
                .iter()
                .map(|r| (*r, names.iter().map(|k| by_attempt[k][r]).sum()))
                .collect()
        };
        let all = sum(&BLOCKED_ATTEMPTS);
        let fees: BTreeMap<&'static str, i64> = NETWORK_RULES
            .iter()
            .map(|r| (*r, t.fees_usd_minor.get(r).copied().unwrap_or(0)))
            .collect();
        Forbidden {
            total: all.values().sum(),
            by_rule: all,
            orders: sum(&BLOCKED_ATTEMPTS[..3]),
            subscriptions: sum(&BLOCKED_ATTEMPTS[3..]),
            fees: Fees {
                estimate: true,
                currency: "USD",
                total_minor: fees.values().sum(),
                by_rule_minor: fees,
                unpriced_n3: t.n3_unpriced,
                unpriced_flexfactor: [&t.cascade_flexfactor, &t.reruns, &t.recycle_handovers]
                    .iter()
                    .flat_map(|c| c.values())
                    .sum(),
            },
            by_attempt,
        }
    }
}

/// The card-network rules (N1-N5) in a variant.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkReport {
    /// The variant's `[network_rules] enabled`.
    pub enabled: bool,
    /// Guard on: the attempts not made (`AttemptBlocked`, `RecycleAttemptBlocked`); their fees
    /// were avoided.
    pub blocked: Forbidden,
    /// N4, guard on: recycle re-attempts moved to Mastercard's advised time
    /// (`RecycleAttemptDelayed`), counted apart: they are made, later.
    pub delayed_n4: u64,
    /// How long a delayed re-attempt was moved, on average.
    pub delayed_mean_hours: Option<f64>,
    /// Guard off: the attempts made that the rules forbid (each command that may attempt a
    /// card is decided a second time with the rules on, nothing of it kept); their fees were
    /// incurred.
    pub unguarded: Forbidden,
    /// N4, guard off: re-attempts made before Mastercard's advised time.
    pub unguarded_early_n4: u64,
    pub fee_basis: &'static str,
}

impl NetworkReport {
    fn of(enabled: bool, t: &NetworkTally) -> NetworkReport {
        NetworkReport {
            enabled,
            blocked: Forbidden::of(&t.blocked),
            delayed_n4: t.delayed,
            delayed_mean_hours: (t.delayed > 0)
                .then(|| round(t.delayed_seconds as f64 / 3600.0 / t.delayed as f64)),
            unguarded: Forbidden::of(&t.unguarded),
            unguarded_early_n4: t.unguarded_early,
            fee_basis: FEE_BASIS,
        }
    }
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
    /// The card-network rules: attempts not made or moved, fees avoided (N1-N5, N7).
    pub network: NetworkReport,
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
    /// Attempts the network rules did not let be made.
    pub network_blocked: i64,
    /// Network fees incurred by attempts the rules forbid (estimates, US cents): a guard-off
    /// variant's against a guard-on one is what the guard saves.
    pub network_fees_usd_minor: i64,
}

/// Each sweep's points, from the variants' figures per run.
fn sweep_reports(scenario: &Scenario, u: &Uncertainty) -> Vec<SweepReport> {
    let interval = |v: usize, f: &str| {
        u.figure(v, f)
            .map(|x| x.interval)
            .unwrap_or_else(|| Interval::of(&[]))
    };
    scenario
        .sweeps
        .iter()
        .map(|s| SweepReport {
            parameter: s.parameter.clone(),
            profile: s.profile.as_ref().map(|p| p.as_str().to_string()),
            description: s.description.clone(),
            points: s
                .points
                .iter()
                .map(|(value, v)| SweepPoint {
                    value: value.clone(),
                    variant: scenario.variants[*v].spec.name.clone(),
                    recovered_minor: interval(*v, "recovered_minor"),
                    flexfactor_recovered_minor: interval(*v, "flexfactor_recovered_minor"),
                    recovered_orders: interval(*v, "recovered_orders"),
                })
                .collect(),
        })
        .collect()
}

/// The network fees a variant incurred (estimates, US cents).
fn network_fees(n: &NetworkReport) -> i64 {
    n.unguarded.fees.total_minor
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
    /// Builds the report of a run of the scenario's seed: `tallies` holds one tally per
    /// variant, in scenario order.
    pub fn build(scenario: &Scenario, tallies: &[Tally]) -> Report {
        Report::build_seeds(scenario, &[scenario.spec.seed], &[tallies.to_vec()])
    }

    /// Builds the report of a run of several seeds: `runs[i]` holds one tally per variant, in
    /// scenario order, for `seeds[i]`. The detailed sections add the seeds up; `uncertainty`
    /// gives the headline figures per run with their intervals.
    pub fn build_seeds(scenario: &Scenario, seeds: &[u64], runs: &[Vec<Tally>]) -> Report {
        let names: Vec<String> = scenario
            .variants
            .iter()
            .map(|v| v.spec.name.clone())
            .collect();
        let per_seed: Vec<Vec<[i64; 12]>> = runs
            .iter()
            .map(|run| {
                scenario
                    .variants
                    .iter()
                    .zip(run)
                    .map(|(v, t)| {
                        let n = NetworkReport::of(v.setup.network_rules.enabled, &t.network);
                        uncertainty::figures(&Summary::of(t), n.blocked.total, network_fees(&n))
                    })
                    .collect()
            })
            .collect();
        let mut tallies = vec![Tally::default(); scenario.variants.len()];
        for run in runs {
            for (t, r) in tallies.iter_mut().zip(run) {
                t.merge(r);
            }
        }
        let uncertainty =
            Uncertainty::of(seeds, scenario.spec.population.customers, &names, &per_seed);
        let tallies = &tallies[..];
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
                let summary = Summary::of(t);
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
                    network: NetworkReport::of(v.setup.network_rules.enabled, &t.network),
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
                        network_blocked: v.network.blocked.total as i64
                            - first.network.blocked.total as i64,
                        network_fees_usd_minor: network_fees(&v.network)
                            - network_fees(&first.network),
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
            sweeps: sweep_reports(scenario, &uncertainty),
            uncertainty,
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

    /// An amount in minor units that need not be whole (a mean), for people ("1234.56 USD").
    pub fn money_f(&self, minor: f64) -> String {
        let exp = self.currency.minor_exponent() as usize;
        let major = minor / 10f64.powi(exp as i32);
        format!("{major:.exp$} {}", self.currency)
    }

    /// A figure's value for people: money for `*_minor` figures, else a count.
    pub fn figure_value(&self, figure: &str, value: f64) -> String {
        if figure == "network_fees_usd_minor" {
            format!("USD {:.2}", value / 100.0)
        } else if figure.ends_with("_minor") {
            self.money_f(value)
        } else if value.fract() == 0.0 {
            format!("{value:.0}")
        } else {
            format!("{value:.1}")
        }
    }

    /// A figure's mean with its interval ("67833.91 USD ± 812.22 USD").
    pub fn figure_interval(&self, figure: &str, i: &crate::stats::Interval) -> String {
        match i.half_width {
            Some(h) => format!(
                "{} ± {}",
                self.figure_value(figure, i.mean),
                self.figure_value(figure, h)
            ),
            None => self.figure_value(figure, i.mean),
        }
    }

    /// A variant's difference against the first in words ("-9941.77 USD ± 310.20 USD: lower,
    /// beyond the noise"), or "" for the first variant.
    pub fn difference_words(&self, v: usize, figure: &str) -> String {
        self.uncertainty
            .difference(v, figure)
            .map(|d| uncertainty::difference_words(d, &|x| self.figure_value(figure, x)))
            .unwrap_or_default()
    }

    /// The seeds, said briefly ("seed 42", "5 seeds: 42 to 46", "3 seeds: 1, 7, 9").
    pub fn seeds_words(&self) -> String {
        let s = &self.uncertainty.seeds;
        match s.as_slice() {
            [] => "no seed".into(),
            [one] => format!("seed {one}"),
            [first, .., last] if s.windows(2).all(|w| w[1] == w[0].wrapping_add(1)) => {
                format!("{} seeds: {first} to {last}", s.len())
            }
            _ => format!(
                "{} seeds: {}",
                s.len(),
                s.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// How sure the headline figures are, as a text table: per run, the mean ± the 95%
    /// interval's half width, and each variant against the first in words.
    pub fn uncertainty_table(&self) -> String {
        let u = &self.uncertainty;
        let first = self.variants.first().map(|v| v.name.as_str()).unwrap_or("");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Per run of {} customers, {}: mean ± 95% interval{}",
            u.customers_per_run,
            self.seeds_words(),
            if u.seeds.len() < 2 {
                " (one seed: no interval; --seeds N runs N)"
            } else {
                ""
            }
        );
        let against = format!("recovered revenue vs {first}");
        let mut rows = vec![[
            "variant",
            "recovered revenue",
            "recovered orders",
            "FlexFactor revenue",
            &against,
        ]
        .map(String::from)
        .to_vec()];
        for (i, v) in self.variants.iter().enumerate() {
            let cell = |f: &str| {
                u.figure(i, f)
                    .map(|x| self.figure_interval(f, &x.interval))
                    .unwrap_or_default()
            };
            rows.push(vec![
                v.name.clone(),
                cell("recovered_minor"),
                cell("recovered_orders"),
                cell("flexfactor_recovered_minor"),
                self.difference_words(i, "recovered_minor"),
            ]);
        }
        out.push_str(&text_table(&rows));
        out
    }

    /// The comparison as a text table, for a terminal: how sure the headline figures are, then
    /// the totals over the seeds.
    pub fn summary_table(&self) -> String {
        let mut out = self.uncertainty_table();
        out.push('\n');
        if self.uncertainty.seeds.len() > 1 {
            let _ = writeln!(
                out,
                "Totals over the {} seeds ({} customers in all):",
                self.uncertainty.seeds.len(),
                self.variants.first().map_or(0, |v| v.customers)
            );
        }
        out.push_str(&self.totals_table());
        for sweep in &self.sweeps {
            out.push('\n');
            out.push_str(&self.sweep_table(sweep));
        }
        out
    }

    /// A sweep as a text table: recovered revenue per run against the parameter.
    pub fn sweep_table(&self, sweep: &SweepReport) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Sweep over {}{}: recovered revenue per run, mean ± 95% interval",
            sweep.parameter,
            sweep
                .profile
                .as_ref()
                .map(|p| format!(" (recycle profile {p})"))
                .unwrap_or_default()
        );
        let mut rows = vec![[
            "value",
            "recovered revenue",
            "by FlexFactor",
            "recovered orders",
        ]
        .map(String::from)
        .to_vec()];
        for p in &sweep.points {
            rows.push(vec![
                p.value.clone(),
                self.figure_interval("recovered_minor", &p.recovered_minor),
                self.figure_interval("flexfactor_recovered_minor", &p.flexfactor_recovered_minor),
                self.figure_interval("recovered_orders", &p.recovered_orders),
            ]);
        }
        out.push_str(&text_table(&rows));
        if let Some(best) = self.sweep_best(sweep) {
            let _ = writeln!(out, "{best}");
        }
        out
    }

    /// Which value of a sweep recovers the most, and whether that is beyond the noise: the
    /// paired difference (seed by seed) between it and every other value.
    pub fn sweep_best(&self, sweep: &SweepReport) -> Option<String> {
        let best = sweep
            .points
            .iter()
            .max_by(|a, b| a.recovered_minor.mean.total_cmp(&b.recovered_minor.mean))?;
        let per_seed = |variant: &str| -> Option<Vec<f64>> {
            let f = self
                .uncertainty
                .variants
                .iter()
                .find(|v| v.variant == variant)?
                .figures
                .get("recovered_minor")?;
            Some(f.per_seed.iter().map(|x| *x as f64).collect())
        };
        let top = per_seed(&best.variant)?;
        if top.len() < 2 {
            return Some(format!(
                "{} = {} recovers the most on this one seed; run --seeds 2 or more to know whether that is more than noise.",
                sweep.parameter, best.value
            ));
        }
        let close: Vec<&str> = sweep
            .points
            .iter()
            .filter(|p| p.value != best.value)
            .filter(|p| {
                per_seed(&p.variant).is_none_or(|other| {
                    crate::stats::Difference::paired(&other, &top).verdict
                        != crate::stats::Verdict::Higher
                })
            })
            .map(|p| p.value.as_str())
            .collect();
        Some(if close.is_empty() {
            format!(
                "{} = {} recovers the most, beyond the noise against every other value (paired differences).",
                sweep.parameter, best.value
            )
        } else {
            format!(
                "{} = {} recovers the most on these seeds, but not beyond the noise against {}.",
                sweep.parameter,
                best.value,
                close.join(", ")
            )
        })
    }

    /// The totals of every variant as a text table.
    pub fn totals_table(&self) -> String {
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
        let mut out = text_table(&rows);
        let _ = writeln!(
            out,
            "FlexFactor columns: recovered/submitted. Money in {}; p50 h: median hours from decline to recovery by a rerun or hand-over.",
            self.currency
        );
        out.push('\n');
        out.push_str(&self.network_table());
        out
    }

    /// The card-network rules per variant, as a text table.
    pub fn network_table(&self) -> String {
        let mut headers = vec!["network rules".to_string(), "guard".to_string()];
        headers.extend(NETWORK_RULES.iter().map(|r| r.to_string()));
        headers.extend(
            [
                "delayed (N4)",
                "fees avoided",
                "forbidden made",
                "fees incurred",
            ]
            .map(String::from),
        );
        let mut rows = vec![headers];
        for v in &self.variants {
            let n = &v.network;
            let mut row = vec![
                v.name.clone(),
                if n.enabled { "on" } else { "off" }.to_string(),
            ];
            row.extend(
                NETWORK_RULES
                    .iter()
                    .map(|r| n.blocked.by_rule[r].to_string()),
            );
            row.push(n.delayed_n4.to_string());
            row.push(usd(n.blocked.fees.total_minor));
            row.push(n.unguarded.total.to_string());
            row.push(usd(n.unguarded.fees.total_minor));
            rows.push(row);
        }
        let mut out = text_table(&rows);
        let _ = writeln!(
            out,
            "N1-N5: attempts not made (AttemptBlocked, RecycleAttemptBlocked); delayed: re-attempts moved to Mastercard's advised time. Forbidden made: attempts a guard-off variant made that the rules forbid. Fees in USD, estimates: Visa $0.10 per N1/N2 reattempt, Mastercard $0.03 per N3 reattempt after MAC 03/21, $0.50 per N5 attempt; attempts to FlexFactor not priced."
        );
        out
    }
}

/// US cents as dollars ("USD 1.20"): the network fees are published in dollars.
pub fn usd(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("USD {sign}{}.{:02}", c / 100, c % 100)
}

/// Rows as an aligned text table: the first row is the header, the first column left-aligned.
fn text_table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
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
            let total = widths.iter().sum::<usize>() + 2 * (widths.len().max(1) - 1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    out
}
