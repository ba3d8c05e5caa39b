//! A follow-up of the process manager as the outbox holds it (its stable key, its kind, its due
//! time), what a refusal of one means, and the one runner that executes a follow-up: a command
//! with its outbox row settled in the same transaction, or an effect's outcome settled on its
//! row. The background scheduler ([`Engine::run_due`]) and the request path
//! ([`Engine::drive_order`]) both run follow-ups through it, so a follow-up means the same,
//! and is settled the same, whichever path gets to it first.

use std::collections::HashMap;

use salvage_domain::order::{Order, OrderError};
use salvage_domain::process_manager::FollowUp;
use salvage_domain::subscription::SubscriptionError;
use salvage_domain::OrderId;
use tracing::{debug, warn};

use super::{EffectOutcome, Engine, EngineError};
use crate::store::guarded_commit::{self, CommitError, Write};
use crate::store::{outbox, Committed, ExecuteError, StoreError};

/// The outbox key of follow-up `index` of event `sequence` of an aggregate: stable, so that the
/// dispatcher, a request and a retry after a crash all name the same row (and the same
/// idempotency key of an effect).
pub fn key(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: impl std::fmt::Display,
    index: usize,
) -> String {
    format!("{aggregate_type}:{aggregate_id}:{sequence}:{index}")
}

/// The outbox kind of a follow-up: `order` or `subscription` (a command), `effect`, or `timer`.
pub fn kind(f: &FollowUp) -> &'static str {
    match f {
        FollowUp::Order { .. } => "order",
        FollowUp::Subscription { .. } => "subscription",
        FollowUp::Effect(_) => "effect",
        FollowUp::At { .. } => "timer",
    }
}

/// When a follow-up falls due (milliseconds; `at` when it is not a timer), and what then runs:
/// a timer's row holds what it runs, due at the timer's time.
pub fn due(f: FollowUp, at: i64) -> (i64, FollowUp) {
    match f {
        FollowUp::At { at, then } => (at.timestamp_millis(), *then),
        other => (at, other),
    }
}

/// An order command's refusal that means the command is done already (a row run twice, an
/// answer after the step moved on): its row is done. Any other refusal fails the row.
fn order_already_done(e: &OrderError) -> bool {
    matches!(
        e,
        OrderError::UnexpectedCascadeStep(_) | OrderError::UnexpectedSubmission(_)
    )
}

/// [`order_already_done`] for a subscription command.
fn subscription_already_done(e: &SubscriptionError) -> bool {
    matches!(
        e,
        SubscriptionError::AlreadyExists(_)
            | SubscriptionError::NotAwaiting(_)
            | SubscriptionError::UnexpectedAttempt { .. }
    )
}

/// Where a follow-up's outbox row stands when it is run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Row<'a> {
    /// Not written yet (a request runs the follow-up before the dispatcher writes it): the row
    /// is inserted settled with the command; refused when it exists by then.
    New {
        kind: &'static str,
        payload: &'a str,
    },
    /// Claimed by this worker: the row is updated settled.
    Claimed,
}

impl Row<'_> {
    fn done(&self, key: &str, now: i64) -> Write {
        match self {
            Row::New { kind, payload } => outbox::done_write(key, kind, payload, now),
            Row::Claimed => outbox::complete_write(key, now),
        }
    }

    fn failed(&self, key: &str, now: i64, error: &str) -> Write {
        match self {
            Row::New { kind, payload } => outbox::failed_write(key, kind, payload, now, error),
            Row::Claimed => outbox::fail_write(key, now, error),
        }
    }
}

/// What running a follow-up command came to.
pub(crate) enum Ran {
    /// Committed, its row done in the same transaction. The events are given when the command
    /// was on the order being driven (to drive them in turn).
    Committed(Option<Box<Committed<Order>>>),
    /// Refused; its row is settled (done when the refusal means "done already", failed with
    /// the refusal otherwise).
    Settled,
    /// Another worker holds its row: nothing was done here.
    HeldElsewhere,
}

/// What settling an effect's outcome came to.
pub(crate) enum EffectSettled {
    /// Performed, with nothing to record: the caller marks the row done (alone or with others).
    Performed,
    /// Performed; the commands it called for ran (each with the row done in its transaction).
    /// The events committed on the order being driven, in order.
    Recorded(Vec<Committed<Order>>),
    /// Not performed now: due again later.
    Rescheduled,
    /// Can never be performed: failed, kept for operators.
    Failed,
}

/// A command's refusal, or the error that stops the runner (the store failing, or writers that
/// kept conflicting): the row then stays as it is and its lease runs out, so it runs again.
enum Outcome {
    Refused { reason: String, already_done: bool },
    Held,
}

fn sort_order_error(e: ExecuteError<OrderError>) -> Result<Outcome, EngineError> {
    match e {
        ExecuteError::Refused(r) => Ok(Outcome::Refused {
            already_done: order_already_done(&r),
            reason: r.to_string(),
        }),
        ExecuteError::Guard(_) => Ok(Outcome::Held),
        ExecuteError::Conflict(_) | ExecuteError::Store(_) => {
            Err(EngineError::Store(StoreError::Corrupt(e.to_string())))
        }
    }
}

fn sort_subscription_error(e: ExecuteError<SubscriptionError>) -> Result<Outcome, EngineError> {
    match e {
        ExecuteError::Refused(r) => Ok(Outcome::Refused {
            already_done: subscription_already_done(&r),
            reason: r.to_string(),
        }),
        ExecuteError::Guard(_) => Ok(Outcome::Held),
        ExecuteError::Conflict(_) | ExecuteError::Store(_) => {
            Err(EngineError::Store(StoreError::Corrupt(e.to_string())))
        }
    }
}

impl Engine {
    pub(crate) fn now_ms(&self) -> i64 {
        self.services.clock.now().timestamp_millis()
    }

    /// The runner of a follow-up command: runs `f` (under outbox key `key`) with its row
    /// settled in the same transaction. `driving` is the order a request is driving, with its
    /// state as last committed: a command on it claims the effects its events call for in its
    /// transaction (see [`Engine::order_inline`]) and its events are returned.
    pub(crate) async fn run_follow_up(
        &self,
        key: &str,
        f: FollowUp,
        row: Row<'_>,
        driving: Option<(&OrderId, Option<(Order, usize)>)>,
    ) -> Result<Ran, EngineError> {
        let done = row.done(key, self.now_ms());
        let rows = std::slice::from_ref(&done);
        let outcome = match f {
            FollowUp::Order { order_id, command } => match driving {
                Some((driven, known)) if driven == &order_id => {
                    match self
                        .order_inline(&order_id, command, HashMap::new(), rows, known)
                        .await
                    {
                        Ok(c) => return Ok(Ran::Committed(Some(Box::new(c.committed)))),
                        Err(e) => sort_order_error(e)?,
                    }
                }
                _ => match self
                    .store
                    .orders
                    .execute_with(
                        order_id.as_str(),
                        command,
                        &self.services,
                        HashMap::new(),
                        rows,
                    )
                    .await
                {
                    Ok(_) => return Ok(Ran::Committed(None)),
                    Err(e) => sort_order_error(e)?,
                },
            },
            FollowUp::Subscription {
                subscription_id,
                command,
            } => {
                let done = match self.subscription_services(&subscription_id, &command).await {
                    Ok(services) => {
                        self.store
                            .subscriptions
                            .execute_with(
                                subscription_id.as_str(),
                                command,
                                &services,
                                HashMap::new(),
                                rows,
                            )
                            .await
                    }
                    Err(e) => Err(ExecuteError::Store(e.to_string())),
                };
                match done {
                    Ok(c) => {
                        self.count_subscription_blocks(c.iter().map(|e| &e.payload));
                        return Ok(Ran::Committed(None));
                    }
                    Err(e) => sort_subscription_error(e)?,
                }
            }
            // A timer's row holds what it runs (see `due`); a nested timer runs at once.
            FollowUp::At { then, .. } => {
                return Box::pin(self.run_follow_up(key, *then, row, driving)).await
            }
            FollowUp::Effect(_) => Outcome::Refused {
                reason: "an effect cannot be run as a command".into(),
                already_done: false,
            },
        };
        let (reason, already_done) = match outcome {
            Outcome::Held => return Ok(Ran::HeldElsewhere),
            Outcome::Refused {
                reason,
                already_done,
            } => (reason, already_done),
        };
        let settle = if already_done {
            debug!(key, refusal = %reason, "follow-up command done already");
            done
        } else {
            warn!(key, refusal = %reason, "follow-up command refused; its outbox row fails");
            row.failed(key, self.now_ms(), &reason)
        };
        match guarded_commit::commit(&self.store.backend, &[], std::slice::from_ref(&settle)).await
        {
            Ok(()) => Ok(Ran::Settled),
            Err(CommitError::Guard(_) | CommitError::Conflict) => Ok(Ran::HeldElsewhere),
            Err(CommitError::Store(e)) => Err(e.into()),
        }
    }

    /// Settles what became of the effect under `key` (claimed by this worker): the commands
    /// its outcome calls for run through [`run_follow_up`](Self::run_follow_up) with the row
    /// done in their transaction; a retry reschedules the row; a failure fails it.
    pub(crate) async fn settle_effect(
        &self,
        key: &str,
        outcome: EffectOutcome,
        mut driving: Option<(&OrderId, Option<(Order, usize)>)>,
    ) -> Result<EffectSettled, EngineError> {
        let backend = &self.store.backend;
        match outcome {
            EffectOutcome::Done(more) if more.is_empty() => Ok(EffectSettled::Performed),
            EffectOutcome::Done(more) => {
                let mut settled = false;
                let mut committed = Vec::new();
                for f in more {
                    match self
                        .run_follow_up(key, f, Row::Claimed, driving.clone())
                        .await?
                    {
                        Ran::Committed(c) => {
                            settled = true;
                            if let (Some(c), Some((_, known))) = (c, driving.as_mut()) {
                                if let Some(last) = c.events.last() {
                                    *known = Some((c.after(), last.sequence));
                                }
                                committed.push(*c);
                            }
                        }
                        Ran::Settled => settled = true,
                        Ran::HeldElsewhere => {}
                    }
                }
                if !settled {
                    outbox::complete(backend, key, self.now_ms()).await?;
                }
                Ok(EffectSettled::Recorded(committed))
            }
            EffectOutcome::Retry { after, reason } => {
                debug!(key, %reason, "effect will be retried");
                let due = self.now_ms() + after.num_milliseconds().max(1);
                outbox::reschedule(backend, key, due, &reason).await?;
                Ok(EffectSettled::Rescheduled)
            }
            EffectOutcome::Failed(reason) => {
                warn!(key, %reason, "effect failed for good");
                outbox::fail(backend, key, self.now_ms(), &reason).await?;
                Ok(EffectSettled::Failed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salvage_domain::process_manager::Effect;

    #[test]
    fn a_follow_ups_key_names_its_event_and_place() {
        assert_eq!(key("order", "o-1", 3, 0), "order:o-1:3:0");
        assert_eq!(
            key("subscription", "s-1", 12_i64, 2),
            "subscription:s-1:12:2"
        );
    }

    #[test]
    fn a_timer_is_due_at_its_time_with_what_it_runs() {
        let then = FollowUp::Effect(Effect::ReconcileSalvage {
            order_id: "o-1".into(),
            attempt: 1,
        });
        let at = chrono::DateTime::from_timestamp_millis(5_000).unwrap_or_default();
        let timer = FollowUp::At {
            at,
            then: Box::new(then.clone()),
        };
        assert_eq!(kind(&timer), "timer");
        let (due_at, body) = due(timer, 1_000);
        assert_eq!(due_at, 5_000);
        assert_eq!(body, then);
        assert_eq!(kind(&body), "effect");
        assert_eq!(due(then.clone(), 1_000), (1_000, then));
    }
}
