//! Running an order's own follow-ups at once, inside the request that caused them: a cascade's
//! charges and FlexFactor call (C6: the answer carries the final status), a rerun's submission,
//! and the commands they lead to. Each follow-up is claimed under the very outbox key the
//! dispatcher would give it, so it runs once whichever path gets there first; what is not run
//! here (timers, notifications, other effects) is left to the dispatcher.

use cqrs_es::{Aggregate, EventEnvelope};
use salvage_domain::order::Order;
use salvage_domain::ports::ChargePurpose;
use salvage_domain::process_manager::{on_order_event, Effect, FollowUp};
use salvage_domain::OrderId;

use super::{EffectOutcome, Engine, EngineError};
use crate::store::outbox;

/// At most this many rounds of follow-ups (a cascade is a handful).
const MAX_ROUNDS: usize = 32;

fn runs_inline(f: &FollowUp) -> bool {
    match f {
        FollowUp::Order { .. } | FollowUp::Subscription { .. } => true,
        FollowUp::Effect(Effect::SubmitToFlexFactor { .. })
        | FollowUp::Effect(Effect::Capture { .. }) => true,
        FollowUp::Effect(Effect::Charge(c)) => matches!(c.purpose, ChargePurpose::Cascade { .. }),
        _ => false,
    }
}

fn kind(f: &FollowUp) -> &'static str {
    match f {
        FollowUp::Order { .. } => "order",
        FollowUp::Subscription { .. } => "subscription",
        FollowUp::Effect(_) => "effect",
        FollowUp::At { .. } => "timer",
    }
}

impl Engine {
    /// Runs the follow-ups of `envelopes` (just committed on order `order_id`) that belong in
    /// the request, and theirs in turn. Returns the keys of those another worker holds.
    pub async fn drive_order(
        &self,
        order_id: &OrderId,
        mut envelopes: Vec<EventEnvelope<Order>>,
    ) -> Result<Vec<String>, EngineError> {
        let backend = &self.store.backend;
        let mut held_elsewhere = Vec::new();
        for _ in 0..MAX_ROUNDS {
            if envelopes.is_empty() {
                break;
            }
            let history = self
                .store
                .orders
                .load_events(order_id.as_str())
                .await
                .map_err(|e| EngineError::BadRow {
                    key: order_id.to_string(),
                    reason: e.to_string(),
                })?;
            let mut next = Vec::new();
            for env in &envelopes {
                let mut state = Order::default();
                for e in history.iter().take_while(|e| e.sequence <= env.sequence) {
                    state.apply(e.payload.clone());
                }
                let follow = on_order_event(
                    &self.services.setup,
                    order_id,
                    env.sequence,
                    &env.payload,
                    &state,
                );
                for (i, f) in follow.into_iter().enumerate() {
                    if !runs_inline(&f) {
                        continue;
                    }
                    let key = format!("order:{order_id}:{}:{i}", env.sequence);
                    let now = self.services.clock.now().timestamp_millis();
                    let payload = serde_json::to_string(&f).map_err(|e| EngineError::BadRow {
                        key: key.clone(),
                        reason: e.to_string(),
                    })?;
                    let lease = now + self.config.lease.num_milliseconds();
                    if !outbox::claim_key(backend, &key, kind(&f), &payload, now, lease).await? {
                        held_elsewhere.push(key);
                        continue;
                    }
                    match f {
                        FollowUp::Effect(effect) => {
                            match self.handler.perform(&key, 1, &effect).await {
                                EffectOutcome::Done(more) => {
                                    for cmd in more {
                                        next.extend(
                                            self.run_inline_command(&key, order_id, cmd).await,
                                        );
                                    }
                                    outbox::complete(backend, &key, self.now()).await?;
                                }
                                EffectOutcome::Retry { after, reason } => {
                                    let due = self.now() + after.num_milliseconds().max(1);
                                    outbox::reschedule(backend, &key, due, &reason).await?;
                                }
                                EffectOutcome::Failed(reason) => {
                                    outbox::fail(backend, &key, self.now(), &reason).await?;
                                }
                            }
                        }
                        cmd => {
                            next.extend(self.run_inline_command(&key, order_id, cmd).await);
                            outbox::complete(backend, &key, self.now()).await?;
                        }
                    }
                }
            }
            envelopes = next;
        }
        Ok(held_elsewhere)
    }

    fn now(&self) -> i64 {
        self.services.clock.now().timestamp_millis()
    }

    /// Runs a command; returns the events it committed on this order (to follow them too).
    async fn run_inline_command(
        &self,
        key: &str,
        order_id: &OrderId,
        f: FollowUp,
    ) -> Vec<EventEnvelope<Order>> {
        match f {
            FollowUp::Order {
                order_id: target,
                command,
            } if &target == order_id => match self.order(&target, command).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::debug!(key, error = %e, "inline order command refused");
                    Vec::new()
                }
            },
            other => {
                let _ = self.run_command(key, other).await;
                Vec::new()
            }
        }
    }
}

impl Engine {
    /// Drives `envelopes` and then waits, at most `deadline`, while the order's cascade is
    /// unresolved or its FlexFactor submission has no answer yet (another worker may be running
    /// that step): C6, the answer carries the final status. New events found while waiting are
    /// driven too.
    pub async fn drive_order_to_rest(
        &self,
        order_id: &OrderId,
        envelopes: Vec<EventEnvelope<Order>>,
        deadline: std::time::Duration,
    ) -> Result<(), EngineError> {
        let mut seen = envelopes.last().map(|e| e.sequence).unwrap_or(0);
        let mut waiting = self.drive_order(order_id, envelopes).await?;
        let started = std::time::Instant::now();
        loop {
            let events = self
                .store
                .orders
                .load_events(order_id.as_str())
                .await
                .map_err(|e| EngineError::BadRow {
                    key: order_id.to_string(),
                    reason: e.to_string(),
                })?;
            let mut order = Order::default();
            for e in &events {
                order.apply(e.payload.clone());
            }
            let fresh: Vec<_> = events.into_iter().filter(|e| e.sequence > seen).collect();
            if let Some(last) = fresh.last() {
                seen = last.sequence;
                waiting.extend(self.drive_order(order_id, fresh).await?);
                continue;
            }
            let mut still = Vec::new();
            for key in waiting {
                let state = outbox::row_state(&self.store.backend, &key).await?;
                if state.is_some_and(|(s, _, _)| s == "pending") {
                    still.push(key);
                }
            }
            waiting = still;
            let cascading = order.cascade.as_ref().is_some_and(|c| !c.ended);
            let submitting = order
                .salvage
                .as_ref()
                .is_some_and(|s| s.state == salvage_domain::order::SalvageState::Submitted);
            if !(cascading || submitting || !waiting.is_empty()) || started.elapsed() > deadline {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
    }
}
