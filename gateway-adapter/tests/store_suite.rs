//! One store test-suite, run against SQLite and against PostgreSQL (the PostgreSQL half fails
//! when PostgreSQL cannot be reached). Each test gets its own database file or schema.

#[macro_use]
mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::Duration;
use cqrs_es::{AggregateError, EventStore};
use salvage_domain::order::{FlexFactorResult, Order, OrderCommand, ResultSource};
use salvage_domain::process_manager::Effect;
use salvage_domain::subscription::SubscriptionCommand;
use salvage_domain::{
    DeclineFacts, DeclineType, DomainServices, EffectiveDecline, ManualClock, OrderId,
    SubscriptionId,
};
use salvage_gateway::engine::webhook_intake::{Intake, IntakeError};
use salvage_gateway::engine::{
    dispatch_batch, dispatch_checkpoint, EffectHandler, Engine, EngineConfig, PumpStats,
};
use salvage_gateway::flexfactor::{parse_delivery, VerifiedDelivery};
use salvage_gateway::store::memory::MemoryBackend;
use salvage_gateway::store::webhook_book::{self, Delivery, UnmatchedDelivery};
use salvage_gateway::store::{
    checkpointed, event_log, migrations, outbox, projection, read_model, Backend, ExecuteError,
    Store,
};
use support::*;

both_stores!(
    threads = 4;
    migrations_are_versioned_and_idempotent,
    commands_commit_and_the_log_orders_every_event,
    optimistic_concurrency_conflicts_are_retried_without_losing_events,
    stale_commit_is_refused,
    concurrent_writers_never_make_a_reader_skip_an_event,
    projections_catch_up_and_rebuild_to_the_same_state,
    dispatcher_drives_each_effect_once_even_when_redriven,
    scheduler_runs_due_work_only_when_due_and_survives_restart,
    two_processes_never_run_the_same_outbox_row,
    webhook_bookkeeping_deduplicates_and_keeps_unknown_deliveries,
    guarded_commits_store_events_and_writes_together_or_not_at_all,
    upgrading_the_log_keeps_every_position,
    concurrent_batches_commit_each_entry_once,
    checkpoints_apart_meet_again,
    one_batch_for_both_writes_what_each_writes_alone,
    the_read_side_answers_from_the_views_caught_up_with_later_events,
    w2_o7_w4_the_intake_stores_each_delivery_once_with_its_nonce,
    w3_a_batch_commits_every_accepted_command_together_or_nothing,
    a_state_cached_by_one_process_never_hides_what_another_committed,
);

/// Each process keeps the states it last committed and decides on them without reading
/// (store/state_cache.rs). Another process committing since makes the guess stale: a command
/// decided on it conflicts and is decided again on the stored state (alone and in a batch), and
/// a command the stale state would refuse is accepted as the stored state accepts it.
async fn a_state_cached_by_one_process_never_hides_what_another_committed(place: Place) {
    use salvage_gateway::engine::webhook_intake::for_order;
    use salvage_gateway::store::{BatchCommand, BatchError, BatchOutcome};
    let clock = Arc::new(ManualClock::new(t0()));
    let a = engine(
        Arc::new(place.open().await),
        clock.clone(),
        Arc::new(CountingHandler::default()),
    );
    let b = engine(
        Arc::new(place.open().await),
        clock,
        Arc::new(CountingHandler::default()),
    );
    let sequences = |events: Vec<cqrs_es::EventEnvelope<Order>>| -> Vec<usize> {
        events.iter().map(|e| e.sequence).collect()
    };
    // Alone: A caches o-1, B commits to it, A's next command lands after B's event.
    a.order(&"o-1".into(), sale("o-1", true)).await.unwrap();
    let placed = a.store.orders.load_events("o-1").await.unwrap().len();
    b.order(&"o-1".into(), ignored_result()).await.unwrap();
    let third = a.order(&"o-1".into(), ignored_result()).await.unwrap();
    assert_eq!(sequences(third), vec![placed + 2]);
    let all = sequences(a.store.orders.load_events("o-1").await.unwrap());
    assert_eq!(all, (1..=placed + 2).collect::<Vec<_>>());

    // A refusal is the stored state's: A caches o-2 declined; B reruns it on FlexFactor; the
    // answer A then records is for a submission its cached state has never heard of (which
    // that state refuses).
    a.order(&"o-2".into(), sale("o-2", false)).await.unwrap();
    b.order(
        &"o-2".into(),
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    )
    .await
    .unwrap();
    let (rerun, _) = b.store.orders.load("o-2").await.unwrap();
    let attempt = rerun.salvage.as_ref().map(|s| s.attempt).unwrap();
    a.order(
        &"o-2".into(),
        OrderCommand::RecordFlexFactorAnswer {
            attempt,
            answer: salvage_domain::ports::EvaluateAnswer::Approved {
                flexfactor_order_id: None,
                confirmation_id: Some("C-2".into()),
            },
        },
    )
    .await
    .unwrap();
    let now = t0().timestamp_millis();
    let (order, _) = b.store.orders.load("o-2").await.unwrap();
    assert!(
        order.is_paid()
            && order.salvage.as_ref().map(|s| s.state)
                == Some(salvage_domain::order::SalvageState::Succeeded),
        "the result is applied to the salvage B started: {order:?}"
    );

    // In a batch: A caches o-3, B commits to it; A's batch conflicts and writes nothing, and
    // the same batch again is decided on the stored state and commits.
    a.order(&"o-3".into(), sale("o-3", false)).await.unwrap();
    a.order(
        &"o-3".into(),
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    )
    .await
    .unwrap();
    b.order(&"o-3".into(), ignored_result()).await.unwrap();
    let stored = a.store.orders.load_events("o-3").await.unwrap().len();
    let batch = || {
        let f = for_order(&delivery("order.completed", "o-3", "n-3"), now).unwrap();
        vec![BatchCommand {
            id: f.order_id,
            command: f.command,
            writes: f.writes,
        }]
    };
    let stale = a.store.orders.execute_batch(batch(), &a.services).await;
    assert!(
        matches!(stale, Err(BatchError::Commit(_))),
        "decided on the stale state: {stale:?}"
    );
    assert_eq!(
        a.store.orders.load_events("o-3").await.unwrap().len(),
        stored
    );
    let outcomes = a
        .store
        .orders
        .execute_batch(batch(), &a.services)
        .await
        .unwrap();
    assert!(matches!(&outcomes[0], BatchOutcome::Committed(ev) if ev[0].sequence == stored + 1));
    let all = sequences(a.store.orders.load_events("o-3").await.unwrap());
    assert_eq!(all, (1..=all.len()).collect::<Vec<_>>());
    place.cleanup().await;
}

/// The group commit's store half: commands on several orders decided on one fold and committed
/// in one transaction; a refused command writes nothing of its own; a failed guard or another
/// writer first undoes the whole batch.
async fn w3_a_batch_commits_every_accepted_command_together_or_nothing(place: Place) {
    use salvage_gateway::engine::webhook_intake::for_order;
    use salvage_gateway::store::{BatchCommand, BatchError, BatchOutcome};
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let e = engine(store.clone(), clock, Arc::new(CountingHandler::default()));
    for id in ["b-1", "b-2", "b-3"] {
        e.order(&id.into(), sale(id, false)).await.unwrap();
        e.order(
            &id.into(),
            OrderCommand::RequestRerun {
                gateway: "flexfactor".into(),
            },
        )
        .await
        .unwrap();
    }
    let now = t0().timestamp_millis();
    let command = |order: &str, nonce: &str| {
        let f = for_order(&delivery("order.completed", order, nonce), now).unwrap();
        BatchCommand {
            id: f.order_id,
            command: f.command,
            writes: f.writes,
        }
    };
    let count = |id: &'static str| {
        let store = store.clone();
        async move { store.orders.load_events(id).await.unwrap().len() }
    };
    let before = (count("b-1").await, count("b-2").await, count("b-3").await);
    // Two commands on one order are kept apart by the caller: refused as a whole.
    let same = store
        .orders
        .execute_batch(
            vec![command("b-1", "x-1"), command("b-1", "x-2")],
            &e.services,
        )
        .await;
    assert!(
        matches!(same, Err(BatchError::SameAggregate(_))),
        "{same:?}"
    );
    // A nonce already seen makes its guard fail: nothing of the batch is written.
    assert_eq!(
        e.take_delivery(&delivery("order.completed", "b-3", "seen"), b"{}")
            .await
            .unwrap(),
        Intake::Applied
    );
    let b3 = count("b-3").await;
    let replayed = store
        .orders
        .execute_batch(
            vec![command("b-1", "x-3"), command("b-2", "seen")],
            &e.services,
        )
        .await;
    assert!(
        matches!(replayed, Err(BatchError::Commit(_))),
        "{replayed:?}"
    );
    assert_eq!(
        (count("b-1").await, count("b-2").await),
        (before.0, before.1)
    );
    // (remember_nonce stores a nonce and says whether it was new.)
    assert!(webhook_book::remember_nonce(&store.backend, "x-3", now)
        .await
        .unwrap());
    // A redelivery of a recorded delivery (fresh nonce) fails its record's guard: again nothing
    // of the batch is written, its nonce neither.
    let recorded = store
        .orders
        .execute_batch(
            vec![command("b-1", "x-4"), command("b-3", "y-3")],
            &e.services,
        )
        .await;
    assert!(
        matches!(recorded, Err(BatchError::Commit(_))),
        "{recorded:?}"
    );
    assert_eq!(count("b-1").await, before.0);
    // Accepted commands commit together; one the order refuses (never placed) writes nothing,
    // its nonce neither.
    let outcomes = store
        .orders
        .execute_batch(
            vec![
                command("b-1", "y-1"),
                command("b-none", "y-4"),
                command("b-2", "y-2"),
            ],
            &e.services,
        )
        .await
        .unwrap();
    assert!(matches!(outcomes[0], BatchOutcome::Committed(ref ev) if !ev.is_empty()));
    assert!(
        matches!(outcomes[1], BatchOutcome::Refused(_)),
        "{:?}",
        outcomes[1]
    );
    assert!(matches!(outcomes[2], BatchOutcome::Committed(ref ev) if !ev.is_empty()));
    assert!(count("b-1").await > before.0);
    assert!(count("b-2").await > before.1);
    assert_eq!(count("b-3").await, b3);
    assert!(!webhook_book::remember_nonce(&store.backend, "y-1", now)
        .await
        .unwrap());
    for fresh in ["x-4", "y-3", "y-4"] {
        assert!(webhook_book::remember_nonce(&store.backend, fresh, now)
            .await
            .unwrap());
    }
    assert_eq!(count("b-none").await, 0);
    // The log takes the batch's events like any others.
    e.pump().await.unwrap();
    assert!(read_model::order(&store, "b-2").await.unwrap().is_some());
    place.cleanup().await;
}

async fn the_read_side_answers_from_the_views_caught_up_with_later_events(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let e = engine(store.clone(), clock, Arc::new(CountingHandler::default()));
    assert!(read_model::order(&store, "o-1").await.unwrap().is_none());
    e.order(&"o-1".into(), sale("o-1", false)).await.unwrap();
    e.order(&"o-2".into(), subscribing_sale("o-2"))
        .await
        .unwrap();
    e.pump().await.unwrap();
    let read = read_model::order(&store, "o-1").await.unwrap().unwrap();
    assert_eq!(read.from_view, read.history.len(), "all from the view");
    assert_eq!(read.state, store.orders.load("o-1").await.unwrap().0);
    // Committed after the last projection: applied on top of the view.
    e.order(
        &"o-1".into(),
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    )
    .await
    .unwrap();
    let read = read_model::order(&store, "o-1").await.unwrap().unwrap();
    assert!(read.from_view < read.history.len(), "the later events too");
    assert_eq!(read.state, store.orders.load("o-1").await.unwrap().0);
    // No view at all (emptied): folded from the history.
    projection::reset(&store.backend).await.unwrap();
    let read = read_model::order(&store, "o-1").await.unwrap().unwrap();
    assert_eq!(read.from_view, 0);
    assert_eq!(read.state, store.orders.load("o-1").await.unwrap().0);
    let sub = read_model::subscription(&store, "o-2-serum-monthly")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sub.state,
        store
            .subscriptions
            .load("o-2-serum-monthly")
            .await
            .unwrap()
            .0
    );
}

fn delivery(event: &str, order: &str, nonce: &str) -> VerifiedDelivery {
    let body = format!(
        r#"{{"Event":"{event}","TimeStamp":"2026-03-20T17:16:40Z","ExternalOrderId":"{order}","OrderId":"ff-{order}","ConfirmationId":"X1","IsResent":false}}"#
    );
    VerifiedDelivery {
        nonce: nonce.into(),
        date: t0(),
        host: "salvage.example.com".into(),
        body_signature_verified: false,
        outcome: parse_delivery(body.as_bytes()).unwrap(),
    }
}

async fn w2_o7_w4_the_intake_stores_each_delivery_once_with_its_nonce(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let e = engine(store.clone(), clock, Arc::new(CountingHandler::default()));
    e.order(&"o-1".into(), sale("o-1", false)).await.unwrap();
    e.order(
        &"o-1".into(),
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    )
    .await
    .unwrap();
    e.pump().await.unwrap();
    let completed = delivery("order.completed", "o-1", "n-1");
    assert_eq!(
        e.take_delivery(&completed, b"{}").await.unwrap(),
        Intake::Applied
    );
    let events = store.orders.load_events("o-1").await.unwrap().len();
    // W2: the same nonce again is refused, whatever the delivery.
    assert!(matches!(
        e.take_delivery(&completed, b"{}").await,
        Err(IntakeError::Replayed)
    ));
    assert!(matches!(
        e.take_delivery(&delivery("order.expired", "o-9", "n-1"), b"{}")
            .await,
        Err(IntakeError::Replayed)
    ));
    // O7: the same delivery under a fresh nonce is a duplicate: nothing applied again, and its
    // nonce is kept (a replay of it is refused too).
    let again = delivery("order.completed", "o-1", "n-2");
    assert_eq!(
        e.take_delivery(&again, b"{}").await.unwrap(),
        Intake::Duplicate
    );
    assert!(matches!(
        e.take_delivery(&again, b"{}").await,
        Err(IntakeError::Replayed)
    ));
    assert_eq!(store.orders.load_events("o-1").await.unwrap().len(), events);
    // W4: a verified delivery for an order Salvage does not know is kept.
    let unknown = delivery("order.completed", "o-unknown", "n-3");
    assert_eq!(
        e.take_delivery(&unknown, b"{\"x\":1}").await.unwrap(),
        Intake::Unmatched
    );
    let parked = webhook_book::unmatched(&store.backend).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].order_id.as_deref(), Some("o-unknown"));
    assert_eq!(parked[0].body, "{\"x\":1}");
}

async fn migrations_are_versioned_and_idempotent(place: Place) {
    let store = place.open().await;
    assert_eq!(
        migrations::current_version(&store.backend).await.unwrap(),
        migrations::latest_version()
    );
    // Opening again applies nothing and keeps the data.
    let _again = place.open().await;
    assert!(migrations::migrate(&store.backend)
        .await
        .unwrap()
        .is_empty());
    store.ready().await.unwrap();
}

async fn commands_commit_and_the_log_orders_every_event(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let e = engine(store.clone(), clock, Arc::new(CountingHandler::default()));
    let placed = e.order(&"o-1".into(), sale("o-1", false)).await.unwrap();
    assert_eq!(
        placed.len(),
        3,
        "OrderPlaced, AttemptDeclined, CascadeSkipped"
    );
    assert_eq!(
        placed.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    e.order(&"o-2".into(), sale("o-2", true)).await.unwrap();
    e.order(
        &"o-1".into(),
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    )
    .await
    .unwrap();
    let (order, n) = store.orders.load("o-1").await.unwrap();
    assert_eq!(n, 4);
    assert!(order.salvage_open());
    let log = event_log::read_after(&store.backend, 0, 100).await.unwrap();
    assert_eq!(log.len(), 3 + 3 + 1);
    assert!(log
        .windows(2)
        .all(|w| w[0].event.position < w[1].event.position));
    assert_eq!(log.last().unwrap().event.event_type, "SalvageSubmitted");
    // Pagination.
    let first = event_log::read_after(&store.backend, 0, 2).await.unwrap();
    let rest = event_log::read_after(&store.backend, first[1].event.position, 100)
        .await
        .unwrap();
    assert_eq!(first.len() + rest.len(), log.len());
    assert_eq!(
        event_log::head(&store.backend).await.unwrap(),
        log.last().unwrap().event.position
    );
}

fn ignored_result() -> OrderCommand {
    OrderCommand::ApplyFlexFactorResult {
        result: FlexFactorResult::Refunded,
        source: ResultSource::StatusPoll,
    }
}

async fn optimistic_concurrency_conflicts_are_retried_without_losing_events(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let e = Arc::new(engine(
        store.clone(),
        clock,
        Arc::new(CountingHandler::default()),
    ));
    e.order(&"o-1".into(), sale("o-1", true)).await.unwrap();
    // 16 concurrent commands on one aggregate, each always adding one event.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            e.order(&"o-1".into(), ignored_result()).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(events) => {
                assert_eq!(events.len(), 1);
                ok += 1;
            }
            Err(ExecuteError::Conflict(n)) => panic!("gave up after {n} conflicts"),
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(ok, 16);
    let events = store.orders.load_events("o-1").await.unwrap();
    let seqs: BTreeSet<usize> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(events.len(), 3 + 16);
    assert_eq!(seqs.len(), events.len(), "no sequence used twice");
}

async fn stale_commit_is_refused(place: Place) {
    let store = place.open().await;
    let clock = Arc::new(ManualClock::new(t0()));
    let services = services_with(clock);
    store
        .orders
        .execute("o-1", sale("o-1", true), &services, HashMap::new())
        .await
        .unwrap();
    // Two writers load the same version; the second commit must be refused.
    let (a, _) = store.orders.load("o-1").await.unwrap();
    let events_a = a.decide(ignored_result(), &services).unwrap();
    let first = store
        .orders
        .execute("o-1", ignored_result(), &services, HashMap::new())
        .await;
    assert!(first.is_ok());
    // Commit events decided on the stale state through the raw cqrs-es store API.
    let stale = match &store.orders {
        salvage_gateway::store::AggregateStore::Sqlite(s, ..) => {
            let ctx = s.load_aggregate("o-1").await.unwrap();
            // Simulate staleness: commit twice with the same context.
            let _ = s.commit(events_a.clone(), ctx, HashMap::new()).await;
            let ctx2 = stale_context(s).await;
            s.commit(events_a, ctx2, HashMap::new()).await
        }
        salvage_gateway::store::AggregateStore::Postgres(s, ..) => {
            let ctx = s.load_aggregate("o-1").await.unwrap();
            let _ = s.commit(events_a.clone(), ctx, HashMap::new()).await;
            let ctx2 = stale_context(s).await;
            s.commit(events_a, ctx2, HashMap::new()).await
        }
        salvage_gateway::store::AggregateStore::Memory(_) => unreachable!(),
    };
    assert!(
        matches!(stale, Err(AggregateError::AggregateConflict)),
        "{stale:?}"
    );
}

/// A context loaded, then made stale by another commit.
async fn stale_context<S: EventStore<Order>>(s: &S) -> S::AC {
    let ctx = s.load_aggregate("o-1").await.unwrap();
    let other = s.load_aggregate("o-1").await.unwrap();
    let services = services_with(Arc::new(ManualClock::new(t0())));
    let mut probe = Order::default();
    for e in s.load_events("o-1").await.unwrap() {
        cqrs_es::Aggregate::apply(&mut probe, e.payload);
    }
    let events = probe.decide(ignored_result(), &services).unwrap();
    s.commit(events, other, HashMap::new()).await.unwrap();
    ctx
}

async fn concurrent_writers_never_make_a_reader_skip_an_event(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let e = Arc::new(engine(
        store.clone(),
        clock,
        Arc::new(CountingHandler::default()),
    ));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let e = e.clone();
            tokio::spawn(async move {
                for i in 0..15 {
                    let id = format!("w{w}-{i}");
                    e.order(&id.as_str().into(), sale(&id, true)).await.unwrap();
                }
            })
        })
        .collect();
    // A reader tails the log from its checkpoint while the writers commit.
    let reader_store = store.clone();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut checkpoint = 0;
        for _ in 0..2000 {
            let batch = event_log::read_after(&reader_store.backend, checkpoint, 7)
                .await
                .unwrap();
            for entry in &batch {
                seen.push((entry.event.aggregate_id.clone(), entry.event.sequence));
                checkpoint = entry.event.position;
            }
            if seen.len() >= 8 * 15 * 3 {
                break;
            }
            tokio::task::yield_now().await;
        }
        seen
    });
    for w in writers {
        w.await.unwrap();
    }
    let mut seen = reader.await.unwrap();
    // Whatever the reader could not see yet, it sees on the next read: nothing was skipped.
    let last = event_log::read_after(&store.backend, 0, 10_000)
        .await
        .unwrap();
    if seen.len() < last.len() {
        let checkpoint_pos = last[seen.len() - 1].event.position;
        for entry in event_log::read_after(&store.backend, checkpoint_pos, 10_000)
            .await
            .unwrap()
        {
            seen.push((entry.event.aggregate_id.clone(), entry.event.sequence));
        }
    }
    let all: Vec<_> = last
        .iter()
        .map(|e| (e.event.aggregate_id.clone(), e.event.sequence))
        .collect();
    assert_eq!(
        seen, all,
        "the tailing reader saw every event, in log order"
    );
    assert_eq!(all.len(), 8 * 15 * 3);
}

async fn projections_catch_up_and_rebuild_to_the_same_state(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let handler = Arc::new(CountingHandler::default());
    let e = engine(store.clone(), clock, handler);
    e.order(&"o-1".into(), sale("o-1", false)).await.unwrap();
    e.order(
        &"o-1".into(),
        OrderCommand::RequestRerun {
            gateway: "flexfactor".into(),
        },
    )
    .await
    .unwrap();
    e.order(&"o-2".into(), subscribing_sale("o-2"))
        .await
        .unwrap();
    e.pump().await.unwrap();
    let o1 = projection::order(&store.backend, "o-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o1.status, "salvage_pending");
    let pending = projection::pending_salvages(&store.backend).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].order_id, "o-1");
    assert_eq!(
        pending[0].flexfactor_order_id.as_deref(),
        Some("ff-o-1"),
        "the answer was recorded"
    );
    assert!(pending[0].expires_at.is_some());
    let sub = projection::subscription(&store.backend, "o-2-serum-monthly")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.status, "active");
    assert_eq!(sub.billing_gateway.as_deref(), Some("nmi-main"));
    let counts = projection::counts(&store.backend).await.unwrap();
    // The views equal the aggregates rebuilt from their events.
    let (o1_state, _) = store.orders.load("o-1").await.unwrap();
    assert_eq!(o1.state, o1_state);
    let replayed = projection::rebuild(&store.backend).await.unwrap();
    assert_eq!(
        replayed as i64,
        event_log::head(&store.backend).await.unwrap()
    );
    assert_eq!(projection::counts(&store.backend).await.unwrap(), counts);
    assert_eq!(
        projection::order(&store.backend, "o-1")
            .await
            .unwrap()
            .unwrap(),
        o1
    );
    assert_eq!(
        projection::subscription(&store.backend, "o-2-serum-monthly")
            .await
            .unwrap()
            .unwrap(),
        sub
    );
}

async fn dispatcher_drives_each_effect_once_even_when_redriven(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let handler = Arc::new(CountingHandler::default());
    let e = engine(store.clone(), clock.clone(), handler.clone());
    for i in 0..5 {
        let id = format!("o-{i}");
        e.order(&id.as_str().into(), sale(&id, true)).await.unwrap();
    }
    e.pump().await.unwrap();
    // Each approved sale asks for one CRM notification (order completed).
    assert_eq!(handler.distinct(), 5);
    assert_eq!(handler.max_per_key(), 1);
    // A crash between writing the outbox and saving the checkpoint re-reads the same events:
    // rewind the dispatcher and dispatch again.
    rewind_dispatcher(&store).await;
    assert_eq!(dispatch_checkpoint(&store.backend).await.unwrap(), 0);
    e.pump().await.unwrap();
    assert_eq!(
        handler.total(),
        5,
        "re-dispatched follow-ups are the same outbox rows"
    );
    let stats = outbox::stats(&store.backend, t0().timestamp_millis())
        .await
        .unwrap();
    assert_eq!(stats.done, 5);
    assert!(handler
        .effects
        .lock()
        .unwrap()
        .iter()
        .all(|(_, eff)| matches!(eff, Effect::NotifyCrm(_))));
}

/// Projector and dispatcher batches read and compute outside any transaction and commit with a
/// compare-and-set of their checkpoint: a batch read before another process committed the same
/// entries is refused whole, so several workers at once still apply each entry once.
async fn concurrent_batches_commit_each_entry_once(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let handler = Arc::new(CountingHandler::default());
    let e = Arc::new(engine(store.clone(), clock, handler.clone()));
    for i in 0..24 {
        let id = format!("o-{i}");
        let cmd = if i % 3 == 0 {
            subscribing_sale(&id)
        } else {
            sale(&id, i % 2 == 0)
        };
        e.order(&id.as_str().into(), cmd).await.unwrap();
    }
    // A stale batch: read, then another worker projects the same entries first.
    let stale = checkpointed::read(
        &store.backend,
        projection::CHECKPOINT,
        5,
        None,
        event_log::SYNC_WAIT,
    )
    .await
    .unwrap()
    .expect("entries to project");
    assert_eq!(stale.from, 0);
    assert_eq!(
        projection::project_batch(&store.backend, 5).await.unwrap(),
        5
    );
    assert!(
        !checkpointed::commit(&store.backend, projection::CHECKPOINT, &stale, Vec::new())
            .await
            .unwrap(),
        "the checkpoint moved: the stale batch is refused"
    );
    assert_eq!(projection::checkpoint(&store.backend).await.unwrap(), 5);

    // Three workers at once, in small batches, until the log is exhausted.
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (store, e) = (store.clone(), e.clone());
            tokio::spawn(async move {
                loop {
                    let p = projection::project_batch(&store.backend, 3).await.unwrap();
                    let d = salvage_gateway::engine::dispatch_batch(&store, &e.services, 3)
                        .await
                        .unwrap();
                    if p == 0 && d == 0 {
                        break;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let head = event_log::head(&store.backend).await.unwrap();
    assert_eq!(projection::checkpoint(&store.backend).await.unwrap(), head);
    assert_eq!(dispatch_checkpoint(&store.backend).await.unwrap(), head);
    // The views are what a single projector builds from scratch.
    let mut views = Vec::new();
    for i in 0..24 {
        let id = format!("o-{i}");
        let v = projection::order(&store.backend, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.state, store.orders.load(&id).await.unwrap().0, "{id}");
        views.push(v);
    }
    let counts = projection::counts(&store.backend).await.unwrap();
    projection::rebuild(&store.backend).await.unwrap();
    assert_eq!(projection::counts(&store.backend).await.unwrap(), counts);
    for v in views {
        assert_eq!(
            projection::order(&store.backend, &v.order_id)
                .await
                .unwrap(),
            Some(v)
        );
    }
    // Every follow-up is one outbox row, run once.
    e.pump().await.unwrap();
    assert_eq!(handler.max_per_key(), 1);
    let stats = outbox::stats(&store.backend, t0().timestamp_millis())
        .await
        .unwrap();
    assert_eq!((stats.due, stats.failed), (0, 0), "{stats:?}");
    assert!(stats.done as usize >= handler.distinct());
    assert!(handler.distinct() >= 12, "{}", handler.distinct());
}

/// When the projector and the dispatcher are apart by at most a batch, a round runs only the one
/// behind, up to the other; from then on one read serves both. Further apart, both run.
async fn checkpoints_apart_meet_again(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let config = EngineConfig {
        batch: 8,
        ..EngineConfig::default()
    };
    let e = Engine::new(
        store.clone(),
        services_with(clock),
        Arc::new(CountingHandler::default()),
        config,
    );
    let place_orders = |from: usize, to: usize| {
        let e = &e;
        async move {
            for i in from..to {
                let id = format!("o-{i}");
                e.order(&id.as_str().into(), sale(&id, false))
                    .await
                    .unwrap();
            }
        }
    };
    let at = |s: &PumpStats| (s.projected, s.dispatched);
    let checkpoints = || async {
        (
            projection::checkpoint(&store.backend).await.unwrap(),
            dispatch_checkpoint(&store.backend).await.unwrap(),
        )
    };
    place_orders(0, 4).await; // 12 entries
                              // The dispatcher runs 4 entries ahead: the projector alone catches up with it.
    assert_eq!(dispatch_batch(&store, &e.services, 4).await.unwrap(), 4);
    assert_eq!(checkpoints().await, (0, 4));
    assert_eq!(at(&e.pump_once().await.unwrap()), (4, 0));
    assert_eq!(checkpoints().await, (4, 4));
    // Together again: one batch for both.
    assert_eq!(at(&e.pump_once().await.unwrap()), (8, 8));
    assert_eq!(checkpoints().await, (12, 12));
    // The projector runs ahead: the dispatcher alone catches up with it.
    place_orders(4, 6).await; // entries 13-18
    assert_eq!(
        projection::project_batch(&store.backend, 5).await.unwrap(),
        5
    );
    assert_eq!(at(&e.pump_once().await.unwrap()), (0, 5));
    assert_eq!(at(&e.pump_once().await.unwrap()), (1, 1));
    assert_eq!(checkpoints().await, (18, 18));
    // Further apart than a batch: both run, each a batch.
    place_orders(6, 10).await; // entries 19-30
    assert_eq!(dispatch_batch(&store, &e.services, 10).await.unwrap(), 10);
    assert_eq!(at(&e.pump_once().await.unwrap()), (8, 2));
    assert_eq!(checkpoints().await, (26, 30));
    assert_eq!(at(&e.pump_once().await.unwrap()), (4, 0));
    assert_eq!(e.pump().await.unwrap().projected, 0);
    assert_eq!(checkpoints().await, (30, 30));
}

/// A round that serves the dispatcher and the projector together takes each aggregate's state
/// before the batch from its view (no history is read) and folds each event once: its outbox
/// rows and views are exactly those the two write on their own, folding history. A view that
/// is not where the batch starts is not trusted: that aggregate is folded from its history.
async fn one_batch_for_both_writes_what_each_writes_alone(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let e = engine(store.clone(), clock, Arc::new(CountingHandler::default()));
    let rerun = || OrderCommand::RequestRerun {
        gateway: "flexfactor".into(),
    };
    for i in 0..6 {
        let id = format!("o-{i}");
        let cmd = if i % 3 == 0 {
            subscribing_sale(&id)
        } else {
            sale(&id, false)
        };
        e.order(&id.as_str().into(), cmd).await.unwrap();
        // Rounds between commands: later batches start mid-history, from the views.
        e.pump_once().await.unwrap();
    }
    e.order(&"o-1".into(), rerun()).await.unwrap();
    // A view that is not where the batch starts (here: another order's state, at sequence 1):
    // the round must fold o-2's history instead.
    salvage_gateway::on_pool!(&store.backend, pool => {
        sqlx::query(
            "UPDATE salvage_order_view SET last_sequence = 1, \
             state = (SELECT state FROM salvage_order_view WHERE order_id = 'o-3') \
             WHERE order_id = 'o-2'",
        )
        .execute(pool)
        .await
        .unwrap();
    });
    e.order(&"o-2".into(), rerun()).await.unwrap();
    e.pump().await.unwrap();
    assert_eq!(
        projection::checkpoint(&store.backend).await.unwrap(),
        dispatch_checkpoint(&store.backend).await.unwrap(),
        "the rounds ran together"
    );
    let outbox_rows = || async {
        let rows: Vec<(String, String, String, i64, i64)> = salvage_gateway::on_pool!(&store.backend, pool => {
            sqlx::query_as(
                "SELECT key, kind, payload, due_at, source_position FROM salvage_outbox \
                 ORDER BY key",
            )
            .fetch_all(pool)
            .await
            .unwrap()
        });
        rows
    };
    let views = || async {
        let mut v = Vec::new();
        for i in 0..6 {
            v.push(
                projection::order(&store.backend, &format!("o-{i}"))
                    .await
                    .unwrap(),
            );
        }
        v
    };
    let (together_rows, together_views) = (outbox_rows().await, views().await);
    assert!(together_rows.len() >= 10, "{}", together_rows.len());
    for (i, v) in together_views.iter().enumerate() {
        let (state, n) = store.orders.load(&format!("o-{i}")).await.unwrap();
        let v = v.as_ref().expect("a view row");
        assert_eq!((&v.state, v.last_sequence), (&state, n as i64), "o-{i}");
    }
    // The subscriptions the subscribing sales created: their views equal them too.
    for id in ["o-0-serum-monthly", "o-3-serum-monthly"] {
        let v = projection::subscription(&store.backend, id)
            .await
            .unwrap()
            .expect("a subscription view");
        let (state, n) = store.subscriptions.load(id).await.unwrap();
        assert_eq!((&v.state, v.last_sequence), (&state, n as i64), "{id}");
    }
    // The same log, each on its own from the start, folding history.
    salvage_gateway::on_pool!(&store.backend, pool => {
        sqlx::query("DELETE FROM salvage_outbox").execute(pool).await.unwrap();
    });
    rewind_dispatcher(&store).await;
    projection::reset(&store.backend).await.unwrap();
    while projection::project_batch(&store.backend, 4).await.unwrap() > 0 {}
    while dispatch_batch(&store, &e.services, 4).await.unwrap() > 0 {}
    assert_eq!(outbox_rows().await, together_rows);
    assert_eq!(views().await, together_views);
}

async fn rewind_dispatcher(store: &Store) {
    salvage_gateway::on_pool!(&store.backend, pool => {
        sqlx::query("UPDATE salvage_checkpoints SET position = 0 WHERE name = 'dispatcher'")
            .execute(pool)
            .await
            .unwrap();
    });
}

fn soft(gateway: &str) -> (DeclineFacts, EffectiveDecline) {
    (
        DeclineFacts {
            gateway: gateway.into(),
            response_code: "05".into(),
            response_message: "Issuer unavailable".into(),
            processor_verdict: DeclineType::Soft,
            visa_category: None,
            mastercard_advice_code: None,
        },
        EffectiveDecline {
            decline_type: DeclineType::Soft,
            mapped_by: None,
            customer_message: None,
        },
    )
}

async fn scheduler_runs_due_work_only_when_due_and_survives_restart(place: Place) {
    let clock = Arc::new(ManualClock::new(t0()));
    let sub: SubscriptionId = "o-1-serum-monthly".into();
    {
        let store = Arc::new(place.open().await);
        let handler = Arc::new(CountingHandler::default());
        let e = engine(store.clone(), clock.clone(), handler.clone());
        e.order(&"o-1".into(), subscribing_sale("o-1"))
            .await
            .unwrap();
        e.pump().await.unwrap();
        let (facts, effective) = soft("nmi-main");
        e.subscription(
            &sub,
            SubscriptionCommand::RecordRebill {
                order_id: "r-1".into(),
                outcome: salvage_domain::subscription::RebillOutcome::Declined { facts, effective },
            },
        )
        .await
        .unwrap();
        e.pump().await.unwrap();
        let (s, _) = store.subscriptions.load(sub.as_str()).await.unwrap();
        assert_eq!(s.recycle.as_ref().map(|r| r.next_attempt), Some(1));
        assert_eq!(
            s.recycle.as_ref().and_then(|r| r.in_flight),
            None,
            "not due yet"
        );
        // The process stops here with the re-attempt due in one day.
    }
    // A new process on the same store, one day later.
    clock.advance(Duration::days(1));
    let store = Arc::new(place.open().await);
    let handler = Arc::new(CountingHandler::default());
    let e = engine(store.clone(), clock.clone(), handler.clone());
    e.pump().await.unwrap();
    let (s, _) = store.subscriptions.load(sub.as_str()).await.unwrap();
    assert_eq!(
        s.recycle.as_ref().and_then(|r| r.in_flight),
        Some(1),
        "the due re-attempt ran"
    );
    let charges: Vec<_> = handler
        .effects
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, eff)| matches!(eff, Effect::Charge(_)))
        .cloned()
        .collect();
    assert_eq!(charges.len(), 1);
    // The first bill is due in 30 days: not run yet.
    assert!(!handler
        .effects
        .lock()
        .unwrap()
        .iter()
        .any(|(_, eff)| matches!(eff, Effect::BillSubscription { .. })));
    clock.advance(Duration::days(30));
    e.pump().await.unwrap();
    assert!(handler
        .effects
        .lock()
        .unwrap()
        .iter()
        .any(|(_, eff)| matches!(eff, Effect::BillSubscription { .. })));
}

async fn two_processes_never_run_the_same_outbox_row(place: Place) {
    let clock = Arc::new(ManualClock::new(t0()));
    let store_a = Arc::new(place.open().await);
    let store_b = Arc::new(place.open().await);
    let handler = Arc::new(CountingHandler::default());
    let a = Arc::new(engine(store_a.clone(), clock.clone(), handler.clone()));
    let b = Arc::new(engine(store_b.clone(), clock.clone(), handler.clone()));
    for i in 0..60 {
        let id = format!("o-{i}");
        a.order(&id.as_str().into(), sale(&id, true)).await.unwrap();
    }
    let run = |e: Arc<Engine>| {
        tokio::spawn(async move {
            loop {
                let s = e.pump_once().await.unwrap();
                if s.is_idle() {
                    break;
                }
            }
        })
    };
    let (ra, rb) = (run(a.clone()), run(b.clone()));
    ra.await.unwrap();
    rb.await.unwrap();
    a.pump().await.unwrap();
    assert_eq!(handler.distinct(), 60);
    assert_eq!(handler.max_per_key(), 1, "no row ran twice");
}

async fn webhook_bookkeeping_deduplicates_and_keeps_unknown_deliveries(place: Place) {
    let store = place.open().await;
    let b = &store.backend;
    let now = t0().timestamp_millis();
    assert!(webhook_book::remember_nonce(b, "n-1", now).await.unwrap());
    assert!(
        !webhook_book::remember_nonce(b, "n-1", now + 5)
            .await
            .unwrap(),
        "W2: replayed nonce"
    );
    assert_eq!(webhook_book::prune_nonces(b, now + 1).await.unwrap(), 1);
    assert!(webhook_book::remember_nonce(b, "n-1", now + 10)
        .await
        .unwrap());
    let first = webhook_book::record_delivery(
        b,
        "order.completed:ff-1",
        "order.completed",
        Some("o-1"),
        Some("ff-1"),
        now,
        "applied",
    )
    .await
    .unwrap();
    let again = webhook_book::record_delivery(
        b,
        "order.completed:ff-1",
        "order.completed",
        Some("o-1"),
        Some("ff-1"),
        now,
        "applied",
    )
    .await
    .unwrap();
    assert_eq!((first, again), (Delivery::Fresh, Delivery::Duplicate), "O7");
    let d = UnmatchedDelivery {
        delivery_key: "order.completed:ff-9".into(),
        event: "order.completed".into(),
        order_id: Some("unknown-order".into()),
        flexfactor_order_id: Some("ff-9".into()),
        body: "{}".into(),
        received_at: now,
    };
    webhook_book::park_unmatched(b, &d).await.unwrap();
    webhook_book::park_unmatched(b, &d).await.unwrap();
    assert_eq!(
        webhook_book::unmatched(b).await.unwrap(),
        vec![d.clone()],
        "W4: kept once"
    );
    webhook_book::resolve_unmatched(b, &d.delivery_key, now)
        .await
        .unwrap();
    assert!(webhook_book::unmatched(b).await.unwrap().is_empty());
}

async fn guarded_commits_store_events_and_writes_together_or_not_at_all(place: Place) {
    let store = Arc::new(place.open().await);
    let clock = Arc::new(ManualClock::new(t0()));
    let e = Arc::new(engine(
        store.clone(),
        clock,
        Arc::new(CountingHandler::default()),
    ));
    let b = &store.backend;
    let now = t0().timestamp_millis();
    let rerun = || OrderCommand::RequestRerun {
        gateway: "flexfactor".into(),
    };
    e.order(&"o-1".into(), sale("o-1", false)).await.unwrap();
    // A commit of nothing (a command that decided no event, with no write) is no statement.
    salvage_gateway::store::guarded_commit::commit(b, &[], &[])
        .await
        .unwrap();
    // Events, nonce and record commit together, and the events are loaded and logged like any.
    let writes = [
        webhook_book::nonce_write("n-1", now),
        webhook_book::delivery_write("k-1", "order.completed", Some("o-1"), None, now, "applied"),
    ];
    let events = e.order_with(&"o-1".into(), rerun(), &writes).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].sequence, 4);
    let (order, n) = store.orders.load("o-1").await.unwrap();
    assert_eq!(n, 4);
    assert!(order.salvage_open());
    let log = event_log::read_after(b, 0, 100).await.unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log[3].event.event_type, "SalvageSubmitted");
    assert!(webhook_book::delivery_seen(b, "k-1").await.unwrap());
    assert!(
        !webhook_book::remember_nonce(b, "n-1", now).await.unwrap(),
        "the nonce was stored with the events"
    );
    // A replayed nonce refuses the whole transaction: no event, no record.
    e.order(&"o-2".into(), sale("o-2", false)).await.unwrap();
    let replay = [
        webhook_book::nonce_write("n-1", now),
        webhook_book::delivery_write("k-2", "order.completed", Some("o-2"), None, now, "applied"),
    ];
    let refused = e.order_with(&"o-2".into(), rerun(), &replay).await;
    assert!(
        matches!(
            refused,
            Err(ExecuteError::Guard(webhook_book::REPLAYED_NONCE))
        ),
        "{refused:?}"
    );
    assert_eq!(store.orders.load("o-2").await.unwrap().1, 3, "no event");
    assert!(!webhook_book::delivery_seen(b, "k-2").await.unwrap());
    assert_eq!(event_log::read_after(b, 0, 100).await.unwrap().len(), 7);
    // A delivery already recorded refuses too, and the nonce it carried is not kept.
    let duplicate = [
        webhook_book::nonce_write("n-3", now),
        webhook_book::delivery_write("k-1", "order.completed", Some("o-2"), None, now, "applied"),
    ];
    let refused = e.order_with(&"o-2".into(), rerun(), &duplicate).await;
    assert!(
        matches!(
            refused,
            Err(ExecuteError::Guard(webhook_book::DELIVERY_RECORDED))
        ),
        "{refused:?}"
    );
    assert!(webhook_book::remember_nonce(b, "n-3", now).await.unwrap());
    assert_eq!(store.orders.load("o-2").await.unwrap().1, 3, "no event");
    // Concurrent guarded commands on one order: optimistic concurrency, none lost.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let w = [webhook_book::nonce_write(&format!("c-{i}"), now)];
            e.order_with(&"o-3".into(), sale("o-3", false), &w).await
        }));
    }
    let mut placed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(events) if !events.is_empty() => placed += 1,
            Ok(_) => {}
            Err(ExecuteError::Refused(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(placed, 1, "one placement wins; the others see it placed");
    assert_eq!(store.orders.load("o-3").await.unwrap().1, 3);
}

/// A database at schema 5 (the log filled by the old trigger) upgraded to the current schema:
/// the logged events keep their positions and new events follow them.
async fn upgrading_the_log_keeps_every_position(place: Place) {
    let backend = match &place {
        Place::Sqlite(url) => Backend::connect(url, None).await.unwrap(),
        Place::Postgres(schema) => Backend::connect(&postgres_url(), Some(schema))
            .await
            .unwrap(),
    };
    migrations::migrate_up_to(&backend, 5).await.unwrap();
    // Two orders placed under schema 5 (through cqrs-es; the old trigger logs them). Code of
    // that schema's time read no card ledger (its views have no card column): the network
    // rules are off for it.
    let clock = Arc::new(ManualClock::new(t0()));
    let mut old_setup = setup();
    old_setup.network_rules = salvage_domain::network::NetworkRulesConfig::disabled();
    let e5 = Engine::new(
        Arc::new(Store::over(backend.clone())),
        DomainServices::new(Arc::new(old_setup), clock.clone()),
        Arc::new(CountingHandler::default()),
        EngineConfig::default(),
    );
    e5.order(&"o-1".into(), sale("o-1", false)).await.unwrap();
    e5.order(&"o-2".into(), sale("o-2", true)).await.unwrap();
    let before: Vec<(i64, String, i64)> = salvage_gateway::on_pool!(&backend, pool => {
        sqlx::query_as("SELECT position, aggregate_id, sequence FROM salvage_event_log ORDER BY position")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(before.len(), 6);
    // Upgrade, then write more.
    let store = Arc::new(place.open().await);
    let e = engine(store.clone(), clock, Arc::new(CountingHandler::default()));
    e.order(&"o-3".into(), sale("o-3", false)).await.unwrap();
    let log = event_log::read_after(&store.backend, 0, 100).await.unwrap();
    let kept: Vec<(i64, String, i64)> = log
        .iter()
        .take(6)
        .map(|l| {
            (
                l.event.position,
                l.event.aggregate_id.clone(),
                l.event.sequence,
            )
        })
        .collect();
    assert_eq!(kept, before, "positions given before the upgrade are kept");
    assert_eq!(log.len(), 9);
    assert!(log
        .windows(2)
        .all(|w| w[0].event.position < w[1].event.position));
    assert!(log[6..].iter().all(|l| l.event.aggregate_id == "o-3"));
    assert_eq!(
        event_log::head(&store.backend).await.unwrap(),
        log[8].event.position
    );
}

// ----------------------------------------------------------------- PostgreSQL connections

/// The pool does not ping a connection before every statement (one round trip each); so when the
/// server drops connections, a statement may fail on one of them, once: the pool then replaces
/// it and the next statement succeeds. A caller retries (a request is sent again, the worker's
/// next round reads again); nothing hangs and nothing is half-applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_replaces_connections_the_server_dropped() {
    let place = Place::new_postgres();
    let store = place.open().await;
    let Backend::Postgres(pool) = &store.backend else {
        unreachable!("a PostgreSQL place")
    };
    // Every connection the pool holds, and its server process.
    store.backend.ping().await.unwrap();
    let mut held = Vec::new();
    for _ in 0..pool.size() {
        held.push(pool.acquire().await.unwrap());
    }
    let mut pids = Vec::new();
    for conn in &mut held {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        pids.push(pid);
    }
    drop(held);
    assert!(!pids.is_empty());
    let admin = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
    terminate(&admin, &pids).await;
    // At most one failed statement per dropped connection, then the pool is whole again.
    let (mut failures, mut in_a_row) = (0, 0);
    while in_a_row < 2 * pids.len() + 5 {
        match store.backend.ping().await {
            Ok(()) => in_a_row += 1,
            Err(_) => {
                failures += 1;
                in_a_row = 0;
                assert!(
                    failures <= pids.len(),
                    "{failures} failures for {} dropped connections",
                    pids.len()
                );
            }
        }
    }
    admin.close().await;
    place.cleanup().await;
}

/// Has the server drop the connections of `pids`, and waits until it has let them go.
async fn terminate(admin: &sqlx::PgPool, pids: &[i32]) {
    for pid in pids {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(admin)
            .await
            .unwrap();
    }
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(pids)
                .fetch_one(admin)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
}

/// The group commit's committer keeps its connection from batch to batch (sqlx checks every
/// connection given back to its pool with a round trip). A kept connection stays kept through a
/// refusal (a guard, a conflict), is given back after a store error, and the next commit takes
/// another: a connection the server dropped fails one commit, which writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_the_server_dropped_fails_one_commit_then_is_replaced() {
    use salvage_gateway::store::guarded_commit::{commit_held, CommitError};
    use salvage_gateway::store::held_connection::HeldConnection;

    let place = Place::new_postgres();
    let store = place.open().await;
    let Backend::Postgres(pool) = &store.backend else {
        unreachable!("a PostgreSQL place")
    };
    let nonce = |n: &str| webhook_book::nonce_write(n, 1);
    let mut held = HeldConnection::default();
    commit_held(&store.backend, &mut held, &[], &[nonce("k-1")])
        .await
        .unwrap();
    assert!(held.holds());
    let first: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(held.get(pool).await.unwrap())
        .await
        .unwrap();
    // A refusal leaves the connection kept, and says which guard refused.
    let again = commit_held(
        &store.backend,
        &mut held,
        &[],
        &[nonce("k-2"), nonce("k-1")],
    )
    .await;
    assert!(
        matches!(again, Err(CommitError::Guard(r)) if r == webhook_book::REPLAYED_NONCE),
        "{again:?}"
    );
    assert!(held.holds());
    assert!(
        webhook_book::remember_nonce(&store.backend, "k-2", 1)
            .await
            .unwrap(),
        "the refused commit wrote nothing"
    );
    // The server drops the kept connection.
    let admin = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
    terminate(&admin, &[first]).await;
    let failed = commit_held(&store.backend, &mut held, &[], &[nonce("k-3")]).await;
    assert!(matches!(failed, Err(CommitError::Store(_))), "{failed:?}");
    assert!(!held.holds(), "given back after the store error");
    commit_held(&store.backend, &mut held, &[], &[nonce("k-3")])
        .await
        .unwrap();
    let second: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(held.get(pool).await.unwrap())
        .await
        .unwrap();
    assert_ne!(first, second);
    assert!(
        !webhook_book::remember_nonce(&store.backend, "k-3", 1)
            .await
            .unwrap(),
        "stored once, by the commit on the new connection"
    );
    admin.close().await;
    place.cleanup().await;
}

// ----------------------------------------------------------------- the in-memory store

#[tokio::test]
async fn memory_store_enforces_the_expected_sequence() {
    let mem = MemoryBackend::new();
    let store = mem.store::<Order>();
    let services = services_with(Arc::new(ManualClock::new(t0())));
    let ctx = store.load_aggregate("o-1").await.unwrap();
    let stale = store.load_aggregate("o-1").await.unwrap();
    let events = Order::default()
        .decide(sale("o-1", true), &services)
        .unwrap();
    let committed = store
        .commit(events.clone(), ctx, HashMap::new())
        .await
        .unwrap();
    assert_eq!(committed.len(), events.len());
    let refused = store.commit(events, stale, HashMap::new()).await;
    assert!(matches!(refused, Err(AggregateError::AggregateConflict)));
    let log = mem.read_log(0, 100);
    assert_eq!(log.len(), 3);
    assert_eq!(
        log.iter().map(|e| e.event.position).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[tokio::test]
async fn memory_store_retries_concurrent_commands() {
    let mem = MemoryBackend::new();
    let store = Arc::new(salvage_gateway::store::AggregateStore::Memory(
        mem.store::<Order>(),
    ));
    let services = services_with(Arc::new(ManualClock::new(t0())));
    store
        .execute("o-1", sale("o-1", true), &services, HashMap::new())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let services = services.clone();
        tasks.push(tokio::spawn(async move {
            store
                .execute("o-1", ignored_result(), &services, HashMap::new())
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.load_events("o-1").await.unwrap().len(), 3 + 8);
    let _: &dyn Fn() -> OrderId = &|| OrderId::new("x");
}

#[allow(dead_code)]
fn _assert_handler_object_safe(_: &dyn EffectHandler) {}
