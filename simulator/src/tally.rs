//! What the engine counts while it runs: integer counters, money in minor units and hour
//! histograms. Every tally merges by addition, so the shards of a run (customers, threads) can be
//! merged in any order and give the same totals: the report does not depend on the thread count.

use std::collections::BTreeMap;

use serde::Serialize;

/// Named counters (reasons, statuses, kinds), in name order.
pub type Counts = BTreeMap<&'static str, u64>;

/// Adds another shard's counts into this one.
pub trait Merge {
    fn merge(&mut self, other: &Self);
}

impl Merge for u64 {
    fn merge(&mut self, other: &Self) {
        *self += *other;
    }
}

impl Merge for i64 {
    fn merge(&mut self, other: &Self) {
        *self += *other;
    }
}

impl<K: Ord + Clone, V: Merge + Default> Merge for BTreeMap<K, V> {
    fn merge(&mut self, other: &Self) {
        for (k, v) in other {
            self.entry(k.clone()).or_default().merge(v);
        }
    }
}

impl<T: Merge + Default + Clone> Merge for Vec<T> {
    fn merge(&mut self, other: &Self) {
        if self.len() < other.len() {
            self.resize(other.len(), T::default());
        }
        for (a, b) in self.iter_mut().zip(other) {
            a.merge(b);
        }
    }
}

impl<T: Merge, const N: usize> Merge for [T; N] {
    fn merge(&mut self, other: &Self) {
        for (a, b) in self.iter_mut().zip(other) {
            a.merge(b);
        }
    }
}

/// Adds one to a named counter.
pub fn bump(counts: &mut Counts, key: &'static str) {
    *counts.entry(key).or_default() += 1;
}

/// The longest duration a histogram tells apart, in hours (90 days); longer ones share the
/// last bucket (the mean stays exact).
pub const HOURS_CAP: usize = 24 * 90;

/// Durations by the hour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hist {
    buckets: Vec<u64>,
    pub count: u64,
    pub sum_seconds: i64,
}

impl Hist {
    pub fn record(&mut self, seconds: i64) {
        let seconds = seconds.max(0);
        if self.buckets.is_empty() {
            self.buckets = vec![0; HOURS_CAP + 1];
        }
        let hour = ((seconds / 3600) as usize).min(HOURS_CAP);
        self.buckets[hour] += 1;
        self.count += 1;
        self.sum_seconds += seconds;
    }

    pub fn mean_hours(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_seconds as f64 / 3600.0 / self.count as f64)
    }

    /// The hour (whole hours since the start) by which `permille`/1000 of the durations ended.
    pub fn percentile_hours(&self, permille: u64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let need = (self.count * permille).div_ceil(1000).max(1);
        let mut seen = 0;
        for (hour, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= need {
                return Some(hour as u64);
            }
        }
        Some(HOURS_CAP as u64)
    }
}

impl Merge for Hist {
    fn merge(&mut self, other: &Self) {
        self.buckets.merge(&other.buckets);
        self.count += other.count;
        self.sum_seconds += other.sum_seconds;
    }
}

macro_rules! tally {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        pub struct $name { $( $(#[$fm])* pub $f: $t ),* }

        impl Merge for $name {
            fn merge(&mut self, other: &Self) {
                $( Merge::merge(&mut self.$f, &other.$f); )*
            }
        }
    };
}

tally! {
    /// New sales and their first attempt.
    pub struct SaleTally {
        pub placed: u64,
        pub placed_minor: i64,
        pub approved: u64,
        pub approved_minor: i64,
        /// Effective verdicts, after decline mapping (D2).
        pub declined_soft: u64,
        pub declined_hard: u64,
        pub declined_minor: i64,
        pub with_recurring_product: u64,
        pub with_trial_product: u64,
        pub on_single_transaction_campaign: u64,
        pub without_ip_address: u64,
    }
}

tally! {
    /// Cascades of soft-declined new sales (C1-C6).
    pub struct CascadeTally {
        pub started: u64,
        /// Why declined sales did not cascade (C3, C4, ...).
        pub skipped: Counts,
        /// Cascades won by a regular gateway (not FlexFactor).
        pub approved_by_regular_gateway: u64,
        pub approved_by_regular_gateway_minor: i64,
        pub ended_declined: u64,
        /// C5: cascades cancelled at FlexFactor because their answer could still charge.
        pub external_cancels: u64,
    }
}

tally! {
    /// The CRM's reruns on FlexFactor (R1-R5).
    pub struct RerunTally {
        pub requested_for_new_sales: u64,
        pub requested_for_trial_completions: u64,
        pub refused: u64,
    }
}

tally! {
    /// FlexFactor submissions of one route (cascade, rerun, recycle) or one recycle slot.
    pub struct RouteTally {
        pub submitted: u64,
        pub submitted_minor: i64,
        pub recovered: u64,
        pub recovered_minor: i64,
        /// Failures by reason (declined, expired, ...).
        pub failed: Counts,
        /// Still open when the horizon was reached.
        pub pending_at_horizon: u64,
        pub chargebacks: u64,
        pub refunds: u64,
        /// Audit, from the orders' final states: salvages that stand succeeded.
        #[serde(skip)]
        pub audit_salvaged: u64,
        #[serde(skip)]
        pub audit_salvaged_minor: i64,
        /// From the order's first decline to the recovery.
        #[serde(skip)]
        pub from_decline: Hist,
        /// From the submission to FlexFactor to the recovery.
        #[serde(skip)]
        pub from_submission: Hist,
    }
}

tally! {
    /// Recycle billing of soft-declined rebills (Y1-Y4).
    pub struct RecycleTally {
        pub started: u64,
        /// Re-attempts charged on the billing gateway.
        pub gateway_reattempts: u64,
        /// Y2: rebills paid by a re-attempt on the billing gateway.
        pub recovered_by_gateway: u64,
        pub recovered_by_gateway_minor: i64,
        /// Recycle Failed, by reason (D4, Y4, O5).
        pub failed: Counts,
    }
}

tally! {
    /// Subscriptions, rebills and trial completions.
    pub struct SubscriptionTally {
        pub created: u64,
        pub with_token: u64,
        /// O6: created by a FlexFactor salvage: billed with the card number, no CVV.
        pub with_card_number_without_cvv: u64,
        pub trials: u64,
        pub rebills: u64,
        pub rebills_minor: i64,
        pub rebills_approved: u64,
        pub rebills_declined_soft: u64,
        pub rebills_declined_hard: u64,
        pub trial_completions: u64,
        pub trial_completions_approved: u64,
        pub trial_completions_declined: u64,
        /// Declined rebills and trial completions.
        pub declined_minor: i64,
        /// Cycle advances by what paid them (rebill, recycle, flexfactor).
        pub advanced: Counts,
        pub cancelled: u64,
        pub status_at_horizon: Counts,
    }
}

tally! {
    /// Chargebacks and refunds of salvaged orders (K1-K3).
    pub struct AfterSaleTally {
        pub chargebacks_recorded: u64,
        pub chargebacks_recorded_minor: i64,
        /// K2: delivered while `include_chargebacks` is off.
        pub chargebacks_ignored: u64,
        pub refunds: u64,
        pub refunds_minor: i64,
    }
}

tally! {
    /// Breaches of the simulation's invariants, watched on every event (all should be 0).
    pub struct InvariantTally {
        /// A rebill both advanced its subscription and failed it.
        pub advanced_and_failed_same_cycle: u64,
        /// A rebill advanced its subscription twice (O4, O7).
        pub advanced_twice_same_cycle: u64,
        /// O3: a FlexFactor failure changed a trial completion's status.
        pub trial_status_changed_by_failure: u64,
        /// A salvage succeeded twice.
        pub recovered_twice: u64,
    }
}

tally! {
    /// Attempts on cards the card-network rules forbid (N1-N5), by kind of attempt, each by rule
    /// name, with the network fees they cost or spare (estimates, US cents; `network_fees.rs`).
    pub struct ForbiddenAttempts {
        /// Cascade steps on regular gateways.
        pub cascade_steps: Counts,
        /// Cascade steps to FlexFactor.
        pub cascade_flexfactor: Counts,
        /// Reruns on FlexFactor.
        pub reruns: Counts,
        /// Recycle re-attempts on the billing gateway.
        pub recycle_reattempts: Counts,
        /// Recycle hand-overs to FlexFactor.
        pub recycle_handovers: Counts,
        /// The fees of those on regular gateways, by rule.
        pub fees_usd_minor: BTreeMap<&'static str, i64>,
        /// N3 attempts after a MAC 01 or 99 only: no published fee, so not priced.
        pub n3_unpriced: u64,
    }
}

tally! {
    /// What the card-network rules did (guard on), or would have done (guard off).
    pub struct NetworkTally {
        /// Guard on: attempts recorded blocked, not made (`AttemptBlocked`,
        /// `RecycleAttemptBlocked`); their fees were avoided.
        pub blocked: ForbiddenAttempts,
        /// N4, guard on: recycle re-attempts moved to the advised time (`RecycleAttemptDelayed`).
        pub delayed: u64,
        /// How long the delayed re-attempts were moved, in total.
        pub delayed_seconds: i64,
        /// Guard off: attempts made that the rules forbid; their fees were incurred.
        pub unguarded: ForbiddenAttempts,
        /// N4, guard off: re-attempts made before Mastercard's advised time.
        pub unguarded_early: u64,
    }
}

tally! {
    /// Everything counted for one variant.
    pub struct Tally {
        pub customers: u64,
        pub new_sales: SaleTally,
        pub cascade: CascadeTally,
        pub reruns: RerunTally,
        /// FlexFactor by route: cascade, rerun, recycle.
        pub routes: [RouteTally; 3],
        /// FlexFactor recycle hand-overs by slot: 4-6, 7-9, final.
        pub slots: [RouteTally; 3],
        pub recycle: RecycleTally,
        pub subscriptions: SubscriptionTally,
        pub after_sale: AfterSaleTally,
        /// Money taken, by any gateway or FlexFactor, before chargebacks and refunds.
        pub collected_minor: i64,
        /// O8: results learnt by a status poll because their webhook never came.
        pub reconciled_by_poll: u64,
        /// O7, K2: results that changed nothing, by reason.
        pub results_ignored: Counts,
        /// What the CRM was told, by kind.
        pub notifications: Counts,
        /// Follow-up commands the aggregates refused, by error.
        pub refused: Counts,
        /// Order statuses when the horizon was reached, by order type.
        pub orders_at_horizon: BTreeMap<&'static str, Counts>,
        /// Attempts the card-network rules stopped or moved (N1-N5).
        pub network: NetworkTally,
        /// FlexFactor-recovered money by day since the start, per route.
        #[serde(skip)]
        pub daily_flexfactor_minor: [Vec<i64>; 3],
        /// Money recovered by regular gateways (cascade steps, recycle re-attempts) by day.
        #[serde(skip)]
        pub daily_gateway_minor: Vec<i64>,
        pub invariants: InvariantTally,
    }
}

/// The index of a route in [`Tally::routes`].
pub const ROUTES: [&str; 3] = ["cascade", "rerun", "recycle"];
/// The index of a slot in [`Tally::slots`].
pub const SLOTS: [&str; 3] = ["4-6", "7-9", "final"];

/// Adds `amount` on `day` of a daily series.
pub fn add_daily(series: &mut Vec<i64>, day: usize, amount: i64) {
    if series.len() <= day {
        series.resize(day + 1, 0);
    }
    series[day] += amount;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_merge_and_give_percentiles() {
        let mut a = Hist::default();
        let mut b = Hist::default();
        for h in 0..10 {
            a.record(h * 3600 + 5);
        }
        b.record(100 * 3600);
        a.merge(&b);
        assert_eq!(a.count, 11);
        assert_eq!(a.percentile_hours(500), Some(5));
        assert_eq!(a.percentile_hours(1000), Some(100));
        assert!(Hist::default().mean_hours().is_none());
    }

    #[test]
    fn tallies_merge_by_addition_in_any_order() {
        let mut x = Tally {
            customers: 2,
            ..Tally::default()
        };
        bump(&mut x.notifications, "order_completed");
        add_daily(&mut x.daily_gateway_minor, 3, 10);
        let mut y = Tally {
            customers: 5,
            ..Tally::default()
        };
        bump(&mut y.notifications, "order_completed");
        bump(&mut y.notifications, "chargeback");
        let mut xy = x.clone();
        xy.merge(&y);
        let mut yx = y.clone();
        yx.merge(&x);
        assert_eq!(xy, yx);
        assert_eq!(xy.customers, 7);
        assert_eq!(xy.notifications["order_completed"], 2);
    }
}
