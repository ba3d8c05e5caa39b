//! The statistical model of FlexFactor. A cascade (customer-initiated) is answered at once:
//! approved or declined (C5). A rerun or a recycle hand-over (merchant-initiated) is answered
//! SUBMITTED; FlexFactor then recovers it with the route's (or slot's) probability after a delay
//! drawn from the configured day weights, or reports it expired at its expiry. A delay past the
//! expiry is an expiry: `expiry_days` (S2) cuts off the late recoveries.

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, RngExt};
use salvage_domain::routing::RecycleSlot;

use crate::scenario::FlexFactorModelSpec;

/// Which probability an asynchronous submission gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncKind {
    Rerun,
    Recycle(RecycleSlot),
}

/// What FlexFactor will report about an asynchronous submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncResult {
    Completed { at: DateTime<Utc> },
    Expired { at: DateTime<Utc> },
}

impl AsyncResult {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            AsyncResult::Completed { at } | AsyncResult::Expired { at } => *at,
        }
    }
}

/// The fate of one asynchronous submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncOutcome {
    pub result: AsyncResult,
    /// The result's webhook never arrives; only reconciliation (O8) learns it.
    pub webhook_lost: bool,
}

/// FlexFactor's answers.
#[derive(Debug, Clone)]
pub struct FlexFactorModel {
    spec: FlexFactorModelSpec,
    cumulative_days: Vec<u64>,
}

impl FlexFactorModel {
    pub fn new(spec: &FlexFactorModelSpec) -> FlexFactorModel {
        let mut total = 0;
        let cumulative_days = spec
            .delay_day_weights
            .iter()
            .map(|w| {
                total += u64::from(*w);
                total
            })
            .collect();
        FlexFactorModel {
            spec: spec.clone(),
            cumulative_days,
        }
    }

    /// C5: whether a cascade submission is approved at once; `approval_factor` multiplies the
    /// probability (see [`crate::gateway_model::ChargedCard`]).
    pub fn cascade_approves<R: Rng + ?Sized>(&self, approval_factor: f64, rng: &mut R) -> bool {
        rng.random_bool((self.spec.cascade_approval * approval_factor).clamp(0.0, 1.0))
    }

    /// The probability that an asynchronous submission is recovered within 21 days.
    pub fn recovery(&self, kind: AsyncKind) -> f64 {
        match kind {
            AsyncKind::Rerun => self.spec.rerun_recovery,
            AsyncKind::Recycle(RecycleSlot::Attempts4To6) => {
                self.spec.recycle_recovery.attempts_4_to_6
            }
            AsyncKind::Recycle(RecycleSlot::Attempts7To9) => {
                self.spec.recycle_recovery.attempts_7_to_9
            }
            AsyncKind::Recycle(RecycleSlot::Final) => self.spec.recycle_recovery.final_attempt,
        }
    }

    /// Draws the fate of a submission made at `submitted_at` that expires at `expires_at`;
    /// `approval_factor` multiplies the recovery probability. Every draw is made whatever the
    /// outcome, in a fixed order, so that variants differing only in the expiry see the same
    /// recovery and delay.
    pub fn asynchronous<R: Rng + ?Sized>(
        &self,
        kind: AsyncKind,
        submitted_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        approval_factor: f64,
        rng: &mut R,
    ) -> AsyncOutcome {
        let recovered = rng.random_bool((self.recovery(kind) * approval_factor).clamp(0.0, 1.0));
        let total = self.cumulative_days.last().copied().unwrap_or(0).max(1);
        let pick = rng.random_range(0..total);
        let day = self.cumulative_days.partition_point(|c| *c <= pick) as i64;
        let second = rng.random_range(0..86_400i64);
        let webhook_lost = rng.random_bool(self.spec.lost_webhook_share);
        let at = submitted_at + Duration::seconds(day * 86_400 + second);
        let result = if recovered && at < expires_at {
            AsyncResult::Completed { at }
        } else {
            AsyncResult::Expired { at: expires_at }
        };
        AsyncOutcome {
            result,
            webhook_lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Site};
    use chrono::TimeZone;

    /// S2: the same draws with a shorter expiry only turn late recoveries into expiries.
    #[test]
    fn s2_a_shorter_expiry_cuts_off_late_recoveries_only() {
        let model = FlexFactorModel::new(&FlexFactorModelSpec::default());
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let (mut long, mut short) = (0, 0);
        for i in 0..5_000 {
            let draw = |days| {
                model.asynchronous(
                    AsyncKind::Rerun,
                    t0,
                    t0 + Duration::days(days),
                    1.0,
                    &mut stream(
                        1,
                        i,
                        Site::FlexFactor {
                            order: 0,
                            attempt: 1,
                        },
                    ),
                )
            };
            let (a, b) = (draw(21), draw(7));
            match (a.result, b.result) {
                (AsyncResult::Completed { at: x }, AsyncResult::Completed { at: y }) => {
                    assert_eq!(x, y);
                    assert!(x < t0 + Duration::days(7));
                    long += 1;
                    short += 1;
                }
                (AsyncResult::Completed { at }, AsyncResult::Expired { at: e }) => {
                    assert!(at >= t0 + Duration::days(7));
                    assert_eq!(e, t0 + Duration::days(7));
                    long += 1;
                }
                (AsyncResult::Expired { .. }, AsyncResult::Expired { .. }) => {}
                other => panic!("a shorter expiry recovered more: {other:?}"),
            }
            assert_eq!(a.webhook_lost, b.webhook_lost);
        }
        let rate = f64::from(long) / 5_000.0;
        assert!((rate - 0.35).abs() < 0.03, "{rate}");
        assert!(short < long);
    }
}
