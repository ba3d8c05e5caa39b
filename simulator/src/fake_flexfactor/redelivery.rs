//! When the fake sends an unacknowledged webhook again ([`RedeliveryPolicy`]).

use chrono::Duration;

/// When unacknowledged deliveries are sent again: `first_retry` after the first failure,
/// doubling up to `max_interval`, at most `max_attempts` sends in all. **[inference]**:
/// FlexFactor documents no redelivery schedule; `IsResent` shows that it redelivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeliveryPolicy {
    /// The wait after the first failed send.
    pub first_retry: Duration,
    /// The longest wait.
    pub max_interval: Duration,
    /// Sends before giving up.
    pub max_attempts: u32,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        RedeliveryPolicy {
            first_retry: Duration::seconds(60),
            max_interval: Duration::hours(1),
            max_attempts: 20,
        }
    }
}

impl RedeliveryPolicy {
    /// The wait after `failed_sends` failed sends (1 for the first).
    pub fn delay_after(&self, failed_sends: u32) -> Duration {
        let factor = 1i32
            .checked_shl(failed_sends.saturating_sub(1).min(30))
            .unwrap_or(i32::MAX);
        self.first_retry
            .checked_mul(factor)
            .unwrap_or(self.max_interval)
            .min(self.max_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_and_is_capped() {
        let p = RedeliveryPolicy::default();
        assert_eq!(p.delay_after(1), Duration::seconds(60));
        assert_eq!(p.delay_after(2), Duration::seconds(120));
        assert_eq!(p.delay_after(7), Duration::hours(1));
        assert_eq!(p.delay_after(40), Duration::hours(1));
    }
}
