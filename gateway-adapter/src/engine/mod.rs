//! The engine: commands on the aggregates through the store, and the three loops that follow
//! from the ordered log: the projector, the dispatcher (log → outbox, with a checkpoint) and the
//! scheduler (due outbox rows → commands and effects, leased so that several processes sharing
//! one PostgreSQL never run the same row at once).

mod card_services;
mod dispatcher;
mod effect_handler;
pub mod effects;
pub mod follow_up;
mod inline;
pub mod intake_queue;
mod network_metrics;
pub mod rebill;
pub mod webhook_intake;

pub use dispatcher::{
    checkpoint as dispatch_checkpoint, dispatch_batch, dispatch_batch_within, DISPATCH_CHECKPOINT,
};
pub use effect_handler::{EffectHandler, EffectOutcome};
pub use inline::{Driven, ToDrive};

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use cqrs_es::EventEnvelope;
use salvage_domain::order::{Order, OrderCommand, OrderError};
use salvage_domain::process_manager::FollowUp;
use salvage_domain::subscription::{Subscription, SubscriptionCommand, SubscriptionError};
use salvage_domain::{DomainServices, OrderId, SubscriptionId};

use follow_up::{EffectSettled, Row};

use crate::metrics::Metrics;
use crate::store::checkpointed::{self, Together};
use crate::store::{outbox, projection, ExecuteError, Store, StoreError};

/// Tuning of the engine's loops.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a claimed outbox row stays with its worker before another may take it.
    pub lease: Duration,
    /// Log entries per projector or dispatcher transaction.
    pub batch: i64,
    /// Outbox rows claimed at once.
    pub claim: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease: Duration::seconds(60),
            batch: 500,
            claim: 32,
        }
    }
}

/// At most this many performed effects are marked done in one statement. A crash before that
/// statement performs them again (under the same keys), so it is kept small.
const COMPLETE_TOGETHER: usize = 4;

/// What one `pump` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpStats {
    pub projected: usize,
    pub dispatched: usize,
    pub executed: usize,
}

impl PumpStats {
    pub fn is_idle(&self) -> bool {
        self.projected == 0 && self.dispatched == 0 && self.executed == 0
    }
}

/// Why the engine could not go on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("outbox row {key} is unreadable: {reason}")]
    BadRow { key: String, reason: String },
}

/// The engine over one store.
pub struct Engine {
    pub store: Arc<Store>,
    pub services: DomainServices,
    pub handler: Arc<dyn EffectHandler>,
    pub config: EngineConfig,
    /// Where the engine counts what it decides (N7); none in tools and tests.
    pub metrics: Option<Arc<Metrics>>,
    /// One round at a time in this process: a round claims rows, performs them and commits
    /// what they caused, and work that is halfway is visible in no table. A caller that pumps
    /// until idle (tests, sandboxes, tools) so waits for the background worker's round in
    /// flight instead of taking "nothing due" for "settled".
    rounds: tokio::sync::Mutex<()>,
}

impl Engine {
    pub fn new(
        store: Arc<Store>,
        services: DomainServices,
        handler: Arc<dyn EffectHandler>,
        config: EngineConfig,
    ) -> Engine {
        Engine {
            store,
            services,
            handler,
            config,
            metrics: None,
            rounds: tokio::sync::Mutex::new(()),
        }
    }

    /// The same engine counting its decisions in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Engine {
        self.metrics = Some(metrics);
        self
    }

    /// Executes an Order command; the committed events are returned.
    pub async fn order(
        &self,
        id: &OrderId,
        command: OrderCommand,
    ) -> Result<Vec<EventEnvelope<Order>>, ExecuteError<OrderError>> {
        let services = self
            .order_services(id, &command, None)
            .await
            .map_err(|e| ExecuteError::Store(e.to_string()))?;
        let committed = self
            .store
            .orders
            .execute(id.as_str(), command, &services, HashMap::new())
            .await?;
        self.count_order_blocks(committed.iter().map(|e| &e.payload));
        Ok(committed)
    }

    /// Executes an Order command with `writes` committed in the same transaction as its events
    /// (a webhook's nonce and delivery record); the committed events are returned.
    pub async fn order_with(
        &self,
        id: &OrderId,
        command: OrderCommand,
        writes: &[crate::store::guarded_commit::Write],
    ) -> Result<Vec<EventEnvelope<Order>>, ExecuteError<OrderError>> {
        self.store
            .orders
            .execute_with(id.as_str(), command, &self.services, HashMap::new(), writes)
            .await
    }

    /// Executes a Subscription command; the committed events are returned.
    pub async fn subscription(
        &self,
        id: &SubscriptionId,
        command: SubscriptionCommand,
    ) -> Result<Vec<EventEnvelope<Subscription>>, ExecuteError<SubscriptionError>> {
        let services = self
            .subscription_services(id, &command)
            .await
            .map_err(|e| ExecuteError::Store(e.to_string()))?;
        let committed = self
            .store
            .subscriptions
            .execute(id.as_str(), command, &services, HashMap::new())
            .await?;
        self.count_subscription_blocks(committed.iter().map(|e| &e.payload));
        Ok(committed)
    }

    /// Runs the projector, the dispatcher and the due outbox rows once each, every event
    /// committed before the call included.
    pub async fn pump_once(&self) -> Result<PumpStats, EngineError> {
        self.round(crate::store::event_log::SYNC_WAIT).await
    }

    /// [`pump_once`](Self::pump_once) for the background worker, which comes back anyway: it
    /// takes the events that already have log positions and never waits for more.
    pub async fn background_round(&self) -> Result<PumpStats, EngineError> {
        self.round(std::time::Duration::ZERO).await
    }

    async fn round(&self, wait: std::time::Duration) -> Result<PumpStats, EngineError> {
        let _one = self.rounds.lock().await;
        let (projected, dispatched) = self.project_and_dispatch(wait).await?;
        let executed = self.run_due().await?;
        Ok(PumpStats {
            projected,
            dispatched,
            executed,
        })
    }

    /// The projector's and the dispatcher's batches: one batch for both, read once and committed
    /// in one transaction, when their checkpoints are at the same position (as they are, round
    /// after round, once they have caught up); each its own otherwise. When they are apart by at
    /// most a batch, only the one behind runs, up to the other, so that they meet again: with
    /// events arriving all the time, two readers that each take what is there would otherwise
    /// stay apart, and every round would read the log twice.
    async fn project_and_dispatch(
        &self,
        wait: std::time::Duration,
    ) -> Result<(usize, usize), StoreError> {
        let backend = &self.store.backend;
        let names = [projection::CHECKPOINT, DISPATCH_CHECKPOINT];
        let batch = self.config.batch;
        let at = match checkpointed::read_together(backend, &names, batch, None, wait).await? {
            Together::CaughtUp => return Ok((0, 0)),
            Together::Batch(mut read) => {
                let writes =
                    dispatcher::outbox_and_view_writes(backend, &self.services, &mut read).await?;
                if checkpointed::commit_together(backend, &names, &read, writes).await? {
                    let n = read.entries.len();
                    return Ok((n, n));
                }
                // Another process moved a checkpoint: read each again.
                vec![None, None]
            }
            Together::Apart(at) => at,
        };
        // A checkpoint with no row yet is at 0 (its first read creates the row).
        let p = at.first().copied().flatten().unwrap_or(0);
        let d = at.get(1).copied().flatten().unwrap_or(0);
        // For each: `None`, it sits this round out; `Some(upto)`, it runs a batch (not past
        // `upto` when that is given).
        let (project_upto, dispatch_upto) = if p != d && (p - d).abs() <= batch {
            ((p < d).then_some(Some(d)), (d < p).then_some(Some(p)))
        } else {
            (Some(None), Some(None))
        };
        let projected = match project_upto {
            Some(upto) => projection::project_batch_within(backend, batch, upto, wait).await?,
            None => 0,
        };
        let dispatched = match dispatch_upto {
            Some(upto) => {
                dispatch_batch_within(&self.store, &self.services, batch, upto, wait).await?
            }
            None => 0,
        };
        Ok((projected, dispatched))
    }

    /// Whether a round filled a batch (so more may be waiting at once).
    pub fn saturated(&self, s: &PumpStats) -> bool {
        s.projected as i64 >= self.config.batch
            || s.dispatched as i64 >= self.config.batch
            || s.executed as i64 >= self.config.claim
    }

    /// Pumps until there is nothing left to do now; returns the totals.
    pub async fn pump(&self) -> Result<PumpStats, EngineError> {
        let mut total = PumpStats::default();
        loop {
            let s = self.pump_once().await?;
            if s.is_idle() {
                return Ok(total);
            }
            total.projected += s.projected;
            total.dispatched += s.dispatched;
            total.executed += s.executed;
        }
    }

    /// Claims the outbox rows due now and runs them; returns how many ran.
    pub async fn run_due(&self) -> Result<usize, EngineError> {
        let now = self.now_ms();
        let lease_until = now + self.config.lease.num_milliseconds();
        let items =
            outbox::claim_due(&self.store.backend, now, lease_until, self.config.claim).await?;
        let n = items.len();
        let mut performed = Vec::new();
        for item in items {
            if let Some(key) = self.run_item(item).await? {
                performed.push(key);
                if performed.len() >= COMPLETE_TOGETHER {
                    outbox::complete_many(&self.store.backend, &performed, self.now_ms()).await?;
                    performed.clear();
                }
            }
        }
        outbox::complete_many(&self.store.backend, &performed, self.now_ms()).await?;
        Ok(n)
    }

    /// Runs a claimed row through the runner ([`follow_up`]). Returns its key when it is an
    /// effect performed with nothing to record, whose row the caller marks done (with others:
    /// [`COMPLETE_TOGETHER`]); any other row is settled here.
    async fn run_item(&self, item: outbox::OutboxItem) -> Result<Option<String>, EngineError> {
        let follow: FollowUp = match serde_json::from_str(&item.payload) {
            Ok(f) => f,
            Err(e) => {
                outbox::fail(
                    &self.store.backend,
                    &item.key,
                    self.now_ms(),
                    &e.to_string(),
                )
                .await?;
                return Ok(None);
            }
        };
        match follow {
            FollowUp::Effect(effect) => {
                let outcome = self
                    .handler
                    .perform(&item.key, item.attempts, &effect)
                    .await;
                match self.settle_effect(&item.key, outcome, None).await? {
                    EffectSettled::Performed => Ok(Some(item.key)),
                    _ => Ok(None),
                }
            }
            command => {
                self.run_follow_up(&item.key, command, Row::Claimed, None)
                    .await?;
                Ok(None)
            }
        }
    }
}
