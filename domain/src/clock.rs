//! The Clock port: every time the domain records comes from here, so that tests and simulations
//! never read the wall clock nor sleep.

use std::sync::atomic::{fence, AtomicI64, AtomicU32, AtomicU64, Ordering};

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
///
/// Reading it takes no lock (a simulation reads it millions of times, and a mutex's two atomic
/// read-modify-writes were 4% of the engine): the time is kept as seconds and nanoseconds since
/// the epoch under a sequence number that a writer makes odd while it changes them; a reader
/// that saw it odd or changed reads again.
#[derive(Debug)]
pub struct ManualClock {
    /// Even: `secs` and `nanos` are the time; odd: a writer is changing them.
    seq: AtomicU64,
    secs: AtomicI64,
    /// Nanoseconds within the second (up to 1,999,999,999 in a leap second).
    nanos: AtomicU32,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            seq: AtomicU64::new(0),
            secs: AtomicI64::new(start.timestamp()),
            nanos: AtomicU32::new(start.timestamp_subsec_nanos()),
        }
    }

    /// Moves the clock forward (or backward with a negative duration).
    pub fn advance(&self, by: Duration) {
        self.write(|now| now + by);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        self.write(|_| to);
    }

    /// Sets the time to `change(now)`, writers one at a time.
    fn write(&self, change: impl FnOnce(DateTime<Utc>) -> DateTime<Utc>) {
        // Take the sequence from even to odd: the lock of writers, and readers' sign to wait.
        let mut seq = self.seq.load(Ordering::Relaxed);
        loop {
            if seq & 1 == 1 {
                std::hint::spin_loop();
                seq = self.seq.load(Ordering::Relaxed);
                continue;
            }
            match self
                .seq
                .compare_exchange_weak(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => seq = now,
            }
        }
        // The odd sequence is seen before the fields change.
        fence(Ordering::Release);
        let to = change(self.read_fields());
        self.secs.store(to.timestamp(), Ordering::Relaxed);
        self.nanos
            .store(to.timestamp_subsec_nanos(), Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// The time the fields hold (consistent only when the sequence is even and unchanged
    /// around the read, or under the writers' lock).
    fn read_fields(&self) -> DateTime<Utc> {
        let secs = self.secs.load(Ordering::Relaxed);
        let nanos = self.nanos.load(Ordering::Relaxed);
        // Every pair stored came from a `DateTime<Utc>`, so it converts back; the fallback is
        // never taken.
        DateTime::from_timestamp(secs, nanos).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let secs = self.secs.load(Ordering::Relaxed);
                let nanos = self.nanos.load(Ordering::Relaxed);
                // The fields are read before the sequence is read again.
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == before {
                    return DateTime::from_timestamp(secs, nanos)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                }
            }
            std::hint::spin_loop();
        }
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
        clock.advance(Duration::nanoseconds(-1));
        assert_eq!(
            clock.now(),
            start + Duration::days(3) - Duration::nanoseconds(1)
        );
    }

    /// Every time a clock can be set to reads back as it was set, to the nanosecond, the
    /// extremes and a leap second included.
    #[test]
    fn manual_clock_reads_what_it_was_set_to() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .map(|t| t.and_utc())
            .unwrap();
        let clock = ManualClock::new(DateTime::<Utc>::MIN_UTC);
        assert_eq!(clock.now(), DateTime::<Utc>::MIN_UTC);
        for t in [
            DateTime::<Utc>::MAX_UTC,
            DateTime::<Utc>::UNIX_EPOCH - Duration::nanoseconds(1),
            Utc.with_ymd_and_hms(2026, 12, 7, 6, 30, 0).unwrap() + Duration::nanoseconds(123),
            leap,
        ] {
            clock.set(t);
            assert_eq!(clock.now(), t);
        }
    }

    /// Readers on other threads never see a time that was not set (no torn reads).
    #[test]
    fn manual_clock_reads_are_never_torn() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(start);
        // Each time set has seconds and nanoseconds that agree: k seconds and k nanoseconds.
        let at = |k: i64| start + Duration::seconds(k) + Duration::nanoseconds(k);
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..100_000 {
                            let d = clock.now() - start;
                            let k = d.num_seconds();
                            assert_eq!(d, Duration::seconds(k) + Duration::nanoseconds(k));
                        }
                    })
                })
                .collect();
            for k in 0..100_000 {
                clock.set(at(k % 1_000));
            }
            for r in readers {
                r.join().unwrap();
            }
        });
    }
}
