//! The report's uncertainty: each headline figure of each variant on every seed, its mean and
//! 95% interval over the seeds, and for each variant against the first the paired difference
//! (seed by seed: both variants saw the same traffic) with its interval and what it says in
//! words.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::Summary;
use crate::stats::{Difference, Interval, CONFIDENCE};

/// The figures given with an interval, in the order reports show them.
pub const FIGURES: [&str; 12] = [
    "recovered_minor",
    "recovered_orders",
    "flexfactor_recovered_minor",
    "gateway_recovered_minor",
    "collected_minor",
    "declined_minor",
    "recycle_failed",
    "chargebacks",
    "refunds",
    "active_subscriptions_at_horizon",
    "network_blocked",
    "network_fees_usd_minor",
];

/// The headline figures of one variant on one seed, by name (integers: counts and minor
/// units).
pub fn figures(summary: &Summary, network_blocked: u64, network_fees_usd_minor: i64) -> [i64; 12] {
    let s = summary;
    [
        s.recovered_minor,
        s.recovered_orders as i64,
        s.flexfactor_recovered_minor,
        s.gateway_recovered_minor,
        s.collected_minor,
        s.declined_minor,
        s.recycle_failed as i64,
        s.chargebacks as i64,
        s.refunds as i64,
        s.active_subscriptions_at_horizon as i64,
        network_blocked as i64,
        network_fees_usd_minor,
    ]
}

/// A figure over the seeds: its value on each, and the mean with its interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub per_seed: Vec<i64>,
    #[serde(flatten)]
    pub interval: Interval,
}

/// One variant's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantFigures {
    pub variant: String,
    pub figures: BTreeMap<&'static str, Figure>,
}

/// A variant against the first, figure by figure: the mean of the paired differences
/// (variant minus first), its interval, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantDifferences {
    pub variant: String,
    pub against: String,
    pub figures: BTreeMap<&'static str, Difference>,
}

/// Everything the report says about how sure its figures are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uncertainty {
    /// The seeds run, in order: each a whole independent run of the population.
    pub seeds: Vec<u64>,
    pub confidence: f64,
    /// The figures are per run: one seed's population.
    pub customers_per_run: u32,
    pub method: &'static str,
    pub variants: Vec<VariantFigures>,
    pub differences: Vec<VariantDifferences>,
}

/// How the intervals are made, as the report says it.
pub const METHOD: &str = "Each seed is an independent run of the whole population; every variant runs on the same seeds (paired: the same customers and draws). A figure's interval is the Student t 95% interval of its mean over the seeds; a difference's is that of the seed-by-seed differences against the first variant. A difference is within noise when its interval holds 0.";

impl Uncertainty {
    /// `values[seed][variant]`: each variant's figures on each seed.
    pub fn of(
        seeds: &[u64],
        customers_per_run: u32,
        names: &[String],
        values: &[Vec<[i64; 12]>],
    ) -> Uncertainty {
        let column = |v: usize, f: usize| -> Vec<i64> { values.iter().map(|s| s[v][f]).collect() };
        let as_f64 = |x: &[i64]| -> Vec<f64> { x.iter().map(|v| *v as f64).collect() };
        let variants = names
            .iter()
            .enumerate()
            .map(|(v, name)| VariantFigures {
                variant: name.clone(),
                figures: FIGURES
                    .iter()
                    .enumerate()
                    .map(|(f, key)| {
                        let per_seed = column(v, f);
                        let interval = Interval::of(&as_f64(&per_seed));
                        (*key, Figure { per_seed, interval })
                    })
                    .collect(),
            })
            .collect();
        let differences = match names.first() {
            Some(first) => names
                .iter()
                .enumerate()
                .skip(1)
                .map(|(v, name)| VariantDifferences {
                    variant: name.clone(),
                    against: first.clone(),
                    figures: FIGURES
                        .iter()
                        .enumerate()
                        .map(|(f, key)| {
                            let d =
                                Difference::paired(&as_f64(&column(0, f)), &as_f64(&column(v, f)));
                            (*key, d)
                        })
                        .collect(),
                })
                .collect(),
            None => Vec::new(),
        };
        Uncertainty {
            seeds: seeds.to_vec(),
            confidence: CONFIDENCE,
            customers_per_run,
            method: METHOD,
            variants,
            differences,
        }
    }

    /// The interval of `figure` of variant number `v`.
    pub fn figure(&self, v: usize, figure: &str) -> Option<&Figure> {
        self.variants.get(v)?.figures.get(figure)
    }

    /// The difference of `figure` of variant number `v` (≥ 1) against the first.
    pub fn difference(&self, v: usize, figure: &str) -> Option<&Difference> {
        self.differences.get(v.checked_sub(1)?)?.figures.get(figure)
    }
}

/// A difference in words, e.g. "-9941.77 USD ± 310.20: lower, beyond the noise".
pub fn difference_words(d: &Difference, amount: &dyn Fn(f64) -> String) -> String {
    let i = &d.interval;
    let value = match i.half_width {
        Some(h) => format!("{} ± {}", signed(amount(i.mean), i.mean), amount(h)),
        None => signed(amount(i.mean), i.mean),
    };
    format!("{value}: {}", d.verdict.words())
}

fn signed(s: String, x: f64) -> String {
    if x > 0.0 {
        format!("+{s}")
    } else {
        s
    }
}
