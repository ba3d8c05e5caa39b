//! The Clock port: every time the domain records comes from here, so that tests and simulations
//! never read the wall clock nor sleep.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// The most days any setup value may push a date: beyond it dates are clamped (setups are
/// validated far below this; see `setup/validation.rs`).
pub const MAX_DAYS: i64 = 100_000;

/// `at` plus `days` days, never panicking: the days are clamped to `0..=MAX_DAYS` and an
/// overflow gives the latest representable time.
pub fn days_after(at: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    let d = Duration::try_days(days.clamp(0, MAX_DAYS)).unwrap_or(Duration::zero());
    at.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or backward with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn days_after_never_panics() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(days_after(t, 2), t + Duration::days(2));
        assert_eq!(days_after(t, -5), t);
        assert!(days_after(t, i64::MAX) > t);
        assert_eq!(
            days_after(DateTime::<Utc>::MAX_UTC, 1),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::days(3));
        assert_eq!(clock.now(), start + Duration::days(3));
    }
}
