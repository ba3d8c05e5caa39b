//! The fake's clock: the wall clock or a driven (manual) one, both movable forward on demand.
//! Every time the fake records, compares or sends comes from here (domain [`Clock`]).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use salvage_domain::{Clock, ManualClock, SystemClock};

use super::error::FakeError;

/// How the fake tells time.
#[derive(Debug, Clone)]
pub enum ClockMode {
    /// The wall clock (plus whatever [`advance`](crate::fake_flexfactor::RunningFake::advance)
    /// added).
    Real,
    /// A manual clock starting at `start`; it moves only when advanced.
    Driven {
        /// The first `now`.
        start: DateTime<Utc>,
    },
    /// A manual clock shared with the caller (for example with the client and the webhook
    /// verifier of a test); advancing either moves both.
    Shared(Arc<ManualClock>),
}

impl ClockMode {
    /// A driven clock starting at an RFC 3339 time (e.g. `2026-03-01T12:00:00Z`).
    pub fn driven_from_rfc3339(text: &str) -> Result<ClockMode, FakeError> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| ClockMode::Driven {
                start: t.with_timezone(&Utc),
            })
            .map_err(|e| FakeError::Clock(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}

/// The clock in force.
#[derive(Debug)]
pub(crate) enum FakeClock {
    Real { offset: Mutex<Duration> },
    Manual(Arc<ManualClock>),
}

impl FakeClock {
    pub(crate) fn new(mode: &ClockMode) -> Self {
        match mode {
            ClockMode::Real => FakeClock::Real {
                offset: Mutex::new(Duration::zero()),
            },
            ClockMode::Driven { start } => FakeClock::Manual(Arc::new(ManualClock::new(*start))),
            ClockMode::Shared(clock) => FakeClock::Manual(clock.clone()),
        }
    }

    /// Moves the clock forward by `by` (a negative duration is ignored: time never runs back).
    pub(crate) fn advance(&self, by: Duration) {
        if by <= Duration::zero() {
            return;
        }
        match self {
            FakeClock::Real { offset } => {
                let mut offset = offset.lock().unwrap_or_else(|p| p.into_inner());
                *offset += by;
            }
            FakeClock::Manual(clock) => clock.advance(by),
        }
    }

    /// True when the clock only moves when advanced.
    pub(crate) fn is_driven(&self) -> bool {
        matches!(self, FakeClock::Manual(_))
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        match self {
            FakeClock::Real { offset } => {
                let offset = *offset.lock().unwrap_or_else(|p| p.into_inner());
                SystemClock.now() + offset
            }
            FakeClock::Manual(clock) => clock.now(),
        }
    }
}
