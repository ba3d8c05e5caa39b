//! The intervals mean what they say: a 95% interval covers the true value about 95% of the
//! time, on draws from known distributions and on a simulated figure whose expectation is
//! known; several seeds give paired differences; the report says when a difference is noise.

mod common;

use common::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use salvage_sim::stats::{t_quantile, Interval, Verdict};
use salvage_sim::{Engine, Report, RunOptions};

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// The share of `reps` samples of `n` draws whose interval covers `truth`, with intervals of
/// half width `quantile(n) * sd / sqrt(n)`.
fn coverage(
    n: usize,
    reps: usize,
    truth: f64,
    draw: &mut dyn FnMut() -> f64,
    interval: &dyn Fn(&[f64]) -> (f64, f64),
) -> f64 {
    let mut covered = 0;
    for _ in 0..reps {
        let sample: Vec<f64> = (0..n).map(|_| draw()).collect();
        let (lo, hi) = interval(&sample);
        if lo <= truth && truth <= hi {
            covered += 1;
        }
    }
    covered as f64 / reps as f64
}

fn library(sample: &[f64]) -> (f64, f64) {
    let i = Interval::of(sample);
    (i.low.unwrap_or(f64::NAN), i.high.unwrap_or(f64::NAN))
}

/// The normal approximation (1.96 whatever the sample size): too narrow for a handful of seeds.
fn z_interval(sample: &[f64]) -> (f64, f64) {
    let n = sample.len() as f64;
    let mean = sample.iter().sum::<f64>() / n;
    let sd = (sample.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let half = 1.96 * sd / n.sqrt();
    (mean - half, mean + half)
}

/// 4,000 samples: the coverage's standard error is about 0.0035, so ±0.015 is over 4 of them.
const REPS: usize = 4_000;
const TOLERANCE: f64 = 0.015;

#[test]
fn the_interval_covers_a_known_mean_95_percent_of_the_time() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for n in [3, 5, 8, 20] {
        // Normal draws, mean 1000, sd 50: the t interval is exact.
        let c = coverage(
            n,
            REPS,
            1000.0,
            &mut || 1000.0 + 50.0 * normal(&mut rng),
            &library,
        );
        assert!((c - 0.95).abs() < TOLERANCE, "normal, n = {n}: {c}");
    }
    // Counts, as the simulator's figures are: binomial(200, 0.3), mean 60.
    let c = coverage(
        5,
        REPS,
        60.0,
        &mut || (0..200).filter(|_| rng.random_bool(0.3)).count() as f64,
        &library,
    );
    assert!((c - 0.95).abs() < TOLERANCE, "binomial: {c}");
}

/// The test above can fail: the normal approximation's interval, too narrow with 5 seeds,
/// covers about 88% of the time, outside the tolerance.
#[test]
fn a_too_narrow_interval_fails_the_coverage_check() {
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    let c = coverage(
        5,
        REPS,
        1000.0,
        &mut || 1000.0 + 50.0 * normal(&mut rng),
        &z_interval,
    );
    assert!((c - 0.95).abs() > TOLERANCE, "{c}");
    assert!(t_quantile(4) > 2.7, "the t quantile, not 1.96");
}

const ONE_OFF: &str = r#"
name = "one-off sales"
seed = 1
horizon_days = 5
setup = { path = "setup.toml" }

[population]
customers = 50
arrival_days = 1
products = [{ campaign = "skincare", product = "cleanser" }]

[gateways]
new_sale_approval = 0.6
"#;

/// A simulated figure with a known expectation: the declined amount of one-off sales is the
/// customers times the price times the decline rate. Its interval over 5 seeds covers that
/// about 95% of the time (300 groups of 5 seeds; the standard error is about 0.013).
#[test]
fn a_simulated_figure_s_interval_covers_its_expectation() {
    let scenario = scenario(ONE_OFF);
    let price = scenario.products[0].price_minor as f64;
    let truth = 50.0 * price * (1.0 - 0.6);
    let groups = 300u64;
    let seeds: Vec<u64> = (0..groups * 5).map(|s| 1000 + s).collect();
    let runs = Engine::new(&scenario).run_seeds(
        &seeds,
        &RunOptions {
            threads: 2,
            progress: None,
        },
    );
    let mut covered = 0;
    for g in 0..groups as usize {
        let report =
            Report::build_seeds(&scenario, &seeds[g * 5..g * 5 + 5], &runs[g * 5..g * 5 + 5]);
        let f = report.uncertainty.figure(0, "declined_minor").unwrap();
        assert_eq!(f.per_seed.len(), 5);
        if f.interval.covers(truth) {
            covered += 1;
        }
    }
    let rate = covered as f64 / groups as f64;
    assert!((rate - 0.95).abs() < 0.04, "{rate}");
}

#[test]
fn seeds_are_paired_and_the_report_says_when_a_difference_is_noise() {
    let s = scenario(&format!(
        "{ONE_OFF}\n[[variants]]\nname = \"a\"\n\n[[variants]]\nname = \"b\"\nrerun_share = 0.0\n\n[[variants]]\nname = \"c\"\nexpiry_days = 21\n"
    ));
    let seeds = [5, 6, 7, 8];
    let runs = Engine::new(&s).run_seeds(
        &seeds,
        &RunOptions {
            threads: 2,
            progress: None,
        },
    );
    let report = Report::build_seeds(&s, &seeds, &runs);
    assert_sound(&report);
    // Each seed's run is the run of that seed alone.
    for (i, seed) in seeds.iter().enumerate() {
        let mut alone = s.clone();
        alone.spec.seed = *seed;
        let single = run(&alone, 1);
        assert_eq!(
            single
                .uncertainty
                .figure(0, "declined_minor")
                .unwrap()
                .per_seed,
            vec![
                report
                    .uncertainty
                    .figure(0, "declined_minor")
                    .unwrap()
                    .per_seed[i]
            ]
        );
    }
    // The same traffic in every variant: the first attempts are the same on every seed.
    let d = report.uncertainty.difference(1, "declined_minor").unwrap();
    assert_eq!(d.verdict, Verdict::Same);
    let table = report.summary_table();
    assert!(table.contains("4 seeds: 5 to 8"), "{table}");
    assert!(
        table.contains("Totals over the 4 seeds (200 customers in all)"),
        "{table}"
    );
    assert!(table.contains(" ± "), "{table}");
    let html = salvage_sim::html::render(&report).unwrap();
    assert!(html.contains("How sure"), "the HTML says it too");
    // Pooled totals: the detailed sections add the seeds up.
    assert_eq!(report.variants[0].customers, 200);
}
