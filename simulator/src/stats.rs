//! How sure a figure is: the mean of a figure over independent runs (seeds) and its 95%
//! confidence interval from Student's t distribution, and the same for the paired differences
//! between two variants run on the same seeds.
//!
//! Only arithmetic and a square root (correctly rounded in IEEE 754) are used, and the t
//! quantiles come from a table: the same values give the same bytes on every platform.

use serde::Serialize;

/// The confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// Student's t 0.975 quantiles for 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
    2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687,
    2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/// Beyond 30 degrees of freedom: (df, quantile), interpolated linearly in 1/df; the normal
/// quantile at infinity.
const T_975_TAIL: [(f64, f64); 4] = [
    (30.0, 2.0423),
    (40.0, 2.0211),
    (60.0, 2.0003),
    (120.0, 1.9799),
];
const Z_975: f64 = 1.9600;

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom (df ≥ 1).
pub fn t_quantile(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T_975[df - 1],
        _ => {
            let x = 1.0 / df as f64;
            for w in T_975_TAIL.windows(2) {
                let ((d0, q0), (d1, q1)) = (w[0], w[1]);
                if (df as f64) <= d1 {
                    let (x0, x1) = (1.0 / d0, 1.0 / d1);
                    return q0 + (q1 - q0) * (x - x0) / (x1 - x0);
                }
            }
            let (d, q) = T_975_TAIL[T_975_TAIL.len() - 1];
            let x0 = 1.0 / d;
            Z_975 + (q - Z_975) * x / x0
        }
    }
}

/// The mean of a sample and its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// How many values (runs).
    pub n: usize,
    pub mean: f64,
    /// The sample standard deviation (n - 1 in the denominator); `None` with one value.
    pub std_dev: Option<f64>,
    /// Half the interval's width: mean ± half_width; `None` with one value.
    pub half_width: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

impl Interval {
    /// The t interval of `values`' mean. Values are added in their order (the bytes of the
    /// result do not depend on anything else).
    pub fn of(values: &[f64]) -> Interval {
        let n = values.len();
        if n == 0 {
            return Interval {
                n,
                mean: 0.0,
                std_dev: None,
                half_width: None,
                low: None,
                high: None,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Interval {
                n,
                mean: round(mean),
                std_dev: None,
                half_width: None,
                low: None,
                high: None,
            };
        }
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let half = t_quantile(n - 1) * sd / (n as f64).sqrt();
        Interval {
            n,
            mean: round(mean),
            std_dev: Some(round(sd)),
            half_width: Some(round(half)),
            low: Some(round(mean - half)),
            high: Some(round(mean + half)),
        }
    }

    /// Whether `x` lies within the interval (never with one value).
    pub fn covers(&self, x: f64) -> bool {
        match (self.low, self.high) {
            (Some(lo), Some(hi)) => lo <= x && x <= hi,
            _ => false,
        }
    }
}

/// What the interval of a difference says, in words a report can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The interval lies above 0: the variant gives more, beyond the noise of the seeds.
    Higher,
    /// The interval lies below 0.
    Lower,
    /// The interval holds 0: these seeds cannot tell the two apart.
    WithinNoise,
    /// The same value on every seed (a difference of exactly 0, or one that never varies).
    Same,
    /// One seed: no interval.
    Unknown,
}

impl Verdict {
    pub fn of(d: &Interval) -> Verdict {
        match (d.low, d.high, d.std_dev) {
            (_, _, Some(sd)) if sd == 0.0 && d.mean == 0.0 => Verdict::Same,
            (Some(lo), _, _) if lo > 0.0 => Verdict::Higher,
            (_, Some(hi), _) if hi < 0.0 => Verdict::Lower,
            (Some(_), Some(_), _) => Verdict::WithinNoise,
            _ => Verdict::Unknown,
        }
    }

    /// The verdict in words.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Higher => "higher, beyond the noise",
            Verdict::Lower => "lower, beyond the noise",
            Verdict::WithinNoise => "within noise: these seeds cannot tell them apart",
            Verdict::Same => "the same on every seed",
            Verdict::Unknown => "one seed: no interval (use --seeds 2 or more)",
        }
    }
}

/// The paired difference `b - a`, seed by seed, and its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    #[serde(flatten)]
    pub interval: Interval,
    pub verdict: Verdict,
}

impl Difference {
    /// `b[i] - a[i]` for every seed `i` (the two slices have one value per seed, same order).
    pub fn paired(a: &[f64], b: &[f64]) -> Difference {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
        let interval = Interval::of(&d);
        Difference {
            interval,
            verdict: Verdict::of(&interval),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_its_tail_decrease_to_the_normal_quantile() {
        let mut last = f64::INFINITY;
        for df in 1..1000 {
            let q = t_quantile(df);
            assert!(q <= last && q > Z_975, "df {df}: {q}");
            last = q;
        }
        assert!((t_quantile(60) - 2.0003).abs() < 1e-9);
        assert!((t_quantile(100_000) - Z_975).abs() < 1e-3);
    }

    #[test]
    fn an_interval_of_known_values() {
        let i = Interval::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(i.mean, 3.0);
        // sd = sqrt(2.5), half = 2.7764 * sd / sqrt(5)
        let half = 2.7764 * 2.5f64.sqrt() / 5f64.sqrt();
        assert!((i.half_width.unwrap() - half).abs() < 1e-4);
        assert!(i.covers(3.0) && i.covers(1.1) && !i.covers(0.9));
        let one = Interval::of(&[7.0]);
        assert_eq!(one.mean, 7.0);
        assert!(one.low.is_none() && !one.covers(7.0));
    }

    #[test]
    fn paired_differences_and_their_verdicts() {
        let a = [10.0, 20.0, 30.0, 40.0];
        let higher = Difference::paired(&a, &[12.0, 21.0, 33.0, 42.0]);
        assert_eq!(higher.verdict, Verdict::Higher);
        // Large spread across seeds, small and inconsistent paired differences.
        let noisy = Difference::paired(&a, &[11.0, 19.0, 31.0, 39.0]);
        assert_eq!(noisy.verdict, Verdict::WithinNoise);
        assert_eq!(Difference::paired(&a, &a).verdict, Verdict::Same);
        assert_eq!(
            Difference::paired(&a, &[9.0, 18.0, 27.0, 38.0]).verdict,
            Verdict::Lower
        );
        assert_eq!(Difference::paired(&[1.0], &[2.0]).verdict, Verdict::Unknown);
    }
}
