//! Running an order's own follow-ups at once, inside the request that caused them: a cascade's
//! charges and FlexFactor call (C6: the answer carries the final status), a rerun's submission,
//! and the commands they lead to. Each follow-up runs under the very outbox key the dispatcher
//! would give it, so it runs once whichever path gets there first; what is not run here (timers,
//! notifications, other effects) is left to the dispatcher.
//!
//! Few commits: a command run here commits, in its own transaction, the claims of the effects
//! its events call for (see [`Engine::order_inline`]); an effect's outcome commits with the
//! command it leads to, which marks the effect's row done; a follow-up command leaves its row
//! done in its own transaction. A cascade to FlexFactor is two commits: the order with the claim
//! of its submission, then FlexFactor's answer with the submission done.

use std::collections::HashMap;

use cqrs_es::EventEnvelope;
use salvage_domain::order::{Order, OrderCommand, OrderError};
use salvage_domain::ports::ChargePurpose;
use salvage_domain::process_manager::{on_order_event, Effect, FollowUp};
use salvage_domain::OrderId;

use super::follow_up::{self, EffectSettled, Ran, Row};
use super::{Engine, EngineError};
use crate::store::guarded_commit::Write;
use crate::store::{outbox, Committed, ExecuteError};

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

/// A follow-up to run here, under its outbox key, with its payload as the outbox stores it.
struct Inline {
    key: String,
    payload: String,
    follow: FollowUp,
}

/// An order's events to drive, and whether the effects they call for were claimed with them.
pub struct ToDrive {
    pub(crate) committed: Committed<Order>,
    effects_claimed: bool,
}

impl ToDrive {
    /// Events committed by [`Engine::order_inline`]: their effects are claimed.
    pub fn claimed(committed: Committed<Order>) -> ToDrive {
        ToDrive {
            committed,
            effects_claimed: true,
        }
    }

    /// Nothing committed here (a concurrent identical request did it): only wait for the order
    /// to come to rest.
    pub fn nothing() -> ToDrive {
        ToDrive {
            committed: Committed {
                before: Order::default(),
                events: Vec::new(),
            },
            effects_claimed: false,
        }
    }
}

/// What [`Engine::drive_order`] did.
pub struct Driven {
    /// The order as the last command committed here left it, with that command's last
    /// sequence (`None` when nothing was committed here).
    pub last: Option<(Order, usize)>,
    /// The keys of the follow-ups another worker holds.
    pub held_elsewhere: Vec<String>,
    /// The events committed on the order here, in order.
    pub committed: Vec<EventEnvelope<Order>>,
}

impl Driven {
    /// The order and its whole history, when the events committed here are all of it.
    fn whole(self) -> Option<(Order, Vec<EventEnvelope<Order>>)> {
        let (order, last) = self.last?;
        let contiguous = self
            .committed
            .iter()
            .enumerate()
            .all(|(i, e)| e.sequence == i + 1);
        (contiguous && self.committed.len() == last).then_some((order, self.committed))
    }
}

impl Engine {
    /// The follow-ups of `events` (committed on top of `before`) that run in the request.
    fn inline_follow_ups(
        &self,
        order_id: &OrderId,
        before: &Order,
        events: &[EventEnvelope<Order>],
    ) -> Result<Vec<Inline>, EngineError> {
        let mut state = before.clone();
        let mut out = Vec::new();
        for env in events {
            cqrs_es::Aggregate::apply(&mut state, env.payload.clone());
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
                let key = follow_up::key("order", order_id.as_str(), env.sequence, i);
                let payload = serde_json::to_string(&f).map_err(|e| EngineError::BadRow {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
                out.push(Inline {
                    key,
                    payload,
                    follow: f,
                });
            }
        }
        Ok(out)
    }

    /// Executes an Order command whose events' inline effects (a cascade's charge, a FlexFactor
    /// submission) are claimed in the same transaction, with `writes` too; what it returns is
    /// for [`drive_order`](Self::drive_order). `known` is the order and its last sequence as
    /// the caller has just read them (`(Order::default(), 0)` when it found no order): the
    /// command is decided on it, which saves a read; if another writer committed since, the
    /// commit conflicts and the command is decided again on the order as stored.
    pub async fn order_inline(
        &self,
        id: &OrderId,
        command: OrderCommand,
        metadata: HashMap<String, String>,
        writes: &[Write],
        known: Option<(Order, usize)>,
    ) -> Result<ToDrive, ExecuteError<OrderError>> {
        let lease = self.config.lease.num_milliseconds();
        let claims = |before: &Order, events: &[EventEnvelope<Order>]| {
            let now = self.now_ms();
            match self.inline_follow_ups(id, before, events) {
                Ok(list) => list
                    .into_iter()
                    .filter(|f| matches!(f.follow, FollowUp::Effect(_)))
                    .map(|f| outbox::claim_write(&f.key, "effect", &f.payload, now, now + lease))
                    .collect(),
                // Unserializable follow-ups are left to the dispatcher, which reports them.
                Err(_) => Vec::new(),
            }
        };
        let services = self
            .order_services(id, &command, known.as_ref().map(|(o, _)| o))
            .await
            .map_err(|e| ExecuteError::Store(e.to_string()))?;
        let committed = self
            .store
            .orders
            .execute_deriving(
                id.as_str(),
                command,
                &services,
                metadata,
                writes,
                claims,
                known,
            )
            .await?;
        self.count_order_blocks(committed.events.iter().map(|e| &e.payload));
        Ok(ToDrive::claimed(committed))
    }

    /// Runs the follow-ups of `start` that belong in the request, and theirs in turn, each
    /// through the runner ([`super::follow_up`]) under the key the dispatcher would give it.
    pub async fn drive_order(
        &self,
        order_id: &OrderId,
        start: ToDrive,
    ) -> Result<Driven, EngineError> {
        let backend = &self.store.backend;
        let mut held_elsewhere = Vec::new();
        let last_of = |c: &Committed<Order>| c.events.last().map(|e| (c.after(), e.sequence));
        let mut last = last_of(&start.committed);
        let mut committed: Vec<EventEnvelope<Order>> = start.committed.events.clone();
        let mut round = vec![start];
        for _ in 0..MAX_ROUNDS {
            if round.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for drive in round {
                let c = &drive.committed;
                for f in self.inline_follow_ups(order_id, &c.before, &c.events)? {
                    let mut ran_here = Vec::new();
                    match &f.follow {
                        FollowUp::Effect(effect) => {
                            if !drive.effects_claimed {
                                let now = self.now_ms();
                                let lease = now + self.config.lease.num_milliseconds();
                                if !outbox::claim_key(
                                    backend, &f.key, "effect", &f.payload, now, lease,
                                )
                                .await?
                                {
                                    held_elsewhere.push(f.key);
                                    continue;
                                }
                            }
                            let outcome = match &last {
                                Some((order, _)) => {
                                    self.handler.perform_knowing(&f.key, 1, effect, order).await
                                }
                                None => self.handler.perform(&f.key, 1, effect).await,
                            };
                            let driving = Some((order_id, last.clone()));
                            match self.settle_effect(&f.key, outcome, driving).await? {
                                EffectSettled::Performed => {
                                    outbox::complete(backend, &f.key, self.now_ms()).await?;
                                }
                                EffectSettled::Recorded(c) => ran_here = c,
                                EffectSettled::Rescheduled | EffectSettled::Failed => {}
                            }
                        }
                        command => {
                            let kind = follow_up::kind(command);
                            let new = Row::New {
                                kind,
                                payload: &f.payload,
                            };
                            let driving = Some((order_id, last.clone()));
                            let mut ran = self
                                .run_follow_up(&f.key, command.clone(), new, driving)
                                .await?;
                            // The dispatcher wrote the row first: take it over unless another
                            // worker holds it.
                            if matches!(ran, Ran::HeldElsewhere) {
                                let now = self.now_ms();
                                let lease = now + self.config.lease.num_milliseconds();
                                if outbox::claim_key(backend, &f.key, kind, &f.payload, now, lease)
                                    .await?
                                {
                                    ran = self
                                        .run_follow_up(
                                            &f.key,
                                            command.clone(),
                                            Row::Claimed,
                                            Some((order_id, None)),
                                        )
                                        .await?;
                                }
                            }
                            match ran {
                                Ran::HeldElsewhere => held_elsewhere.push(f.key),
                                Ran::Committed(Some(c)) => ran_here.push(*c),
                                Ran::Committed(None) | Ran::Settled => {}
                            }
                        }
                    }
                    for c in ran_here {
                        last = last_of(&c).or(last);
                        committed.extend(c.events.iter().cloned());
                        next.push(ToDrive::claimed(c));
                    }
                }
            }
            round = next;
        }
        Ok(Driven {
            last,
            held_elsewhere,
            committed,
        })
    }
}

impl Engine {
    /// Drives `start` and then, unless the order is at rest, waits at most `deadline` while its
    /// cascade is unresolved or its FlexFactor submission has no answer yet (another worker may
    /// be running that step): C6, the answer carries the final status. New events found while
    /// waiting are driven too. Returns the order and its whole history when they are known
    /// without reading them again (`None`: read them).
    pub async fn drive_order_to_rest(
        &self,
        order_id: &OrderId,
        start: ToDrive,
        deadline: std::time::Duration,
    ) -> Result<Option<(Order, Vec<EventEnvelope<Order>>)>, EngineError> {
        let driven = self.drive_order(order_id, start).await?;
        if driven.held_elsewhere.is_empty() && driven.last.as_ref().is_some_and(|(o, _)| at_rest(o))
        {
            return Ok(driven.whole());
        }
        let mut waiting = driven.held_elsewhere;
        let mut seen = driven.last.map(|(_, seq)| seq);
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
            let seen_until = *seen.get_or_insert(events.last().map(|e| e.sequence).unwrap_or(0));
            let mut before = Order::default();
            let mut fresh = Vec::new();
            for e in &events {
                if e.sequence > seen_until {
                    fresh.push(e.clone());
                } else {
                    cqrs_es::Aggregate::apply(&mut before, e.payload.clone());
                }
            }
            if let Some(newest) = fresh.last() {
                seen = Some(newest.sequence);
                let driven = self
                    .drive_order(
                        order_id,
                        ToDrive {
                            committed: Committed {
                                before,
                                events: fresh,
                            },
                            effects_claimed: false,
                        },
                    )
                    .await?;
                waiting.extend(driven.held_elsewhere);
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
            if at_rest(&before) && waiting.is_empty() {
                return Ok(Some((before, events)));
            }
            if started.elapsed() > deadline {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
    }
}

/// No cascade step and no FlexFactor answer outstanding.
fn at_rest(order: &Order) -> bool {
    let cascading = order.cascade.as_ref().is_some_and(|c| !c.ended);
    let submitting = order
        .salvage
        .as_ref()
        .is_some_and(|s| s.state == salvage_domain::order::SalvageState::Submitted);
    !(cascading || submitting)
}
