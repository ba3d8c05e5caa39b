//! The port through which the engine performs effects (FlexFactor calls, charges, CRM
//! notifications). The service implements it over HTTP; tests implement it with counters.

use async_trait::async_trait;
use chrono::Duration;
use salvage_domain::order::Order;
use salvage_domain::process_manager::{Effect, FollowUp};

/// What became of an effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectOutcome {
    /// Performed; the commands it calls for (for example FlexFactor's answer to record) are
    /// executed before the effect is marked done.
    Done(Vec<FollowUp>),
    /// Not performed now (an endpoint down, a 5xx): try again after `after`.
    Retry { after: Duration, reason: String },
    /// Can never be performed (a permanent refusal): kept as failed for operators.
    Failed(String),
}

/// Performs effects. `key` is the effect's stable outbox key: an idempotency key that is the
/// same on every retry, after a crash too. `attempt` counts the tries of this key (1 the first
/// time).
#[async_trait]
pub trait EffectHandler: Send + Sync {
    async fn perform(&self, key: &str, attempt: i64, effect: &Effect) -> EffectOutcome;

    /// [`perform`](Self::perform) for an effect of `order`, given as its caller has just
    /// committed it (an effect run within the request that caused it): a handler may use it
    /// instead of reading the order again. By default it is not used.
    async fn perform_knowing(
        &self,
        key: &str,
        attempt: i64,
        effect: &Effect,
        order: &Order,
    ) -> EffectOutcome {
        let _ = order;
        self.perform(key, attempt, effect).await
    }
}
