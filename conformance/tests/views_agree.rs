//! The read side agrees with the history. Every scenario of the suite runs in-process (SQLite,
//! the in-process store), and after each one, with the projections caught up, every order and
//! every subscription of its world's store (listed from the ordered log) has a view whose
//! `state` equals the aggregate folded from its events and whose `last_sequence` is its last
//! event's. The HTTP GETs answer from these views.
//!
//! Setup checks (`start_service`) are not inspected: their service is gone when they end, and
//! it never held an event. A view still behind its history (the background worker commits
//! events of its own) is given a few more catch-ups before it counts as wrong; a view at the
//! history's last sequence with another state is wrong at once.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::rc::Rc;

use cqrs_es::{Aggregate, EventEnvelope};
use salvage_conformance::runner::{run_in_process_with, AfterScenario};
use salvage_conformance::target::Env;
use salvage_conformance::{report, Suite, SCENARIO_DIR};
use salvage_domain::order::Order;
use salvage_domain::subscription::Subscription;
use salvage_gateway::store::{event_log, projection, Store};

/// Catch-ups a view behind its history is given before it counts as wrong.
const TRIES: usize = 5;

/// How one aggregate's view compares with its history.
enum Verdict {
    Agrees,
    /// Behind the history (or missing): it may catch up.
    Behind(String),
    /// Wrong whatever comes next.
    Wrong(String),
}

/// The aggregate folded from its events, one by one, and the last event's sequence.
fn fold<A: Aggregate>(events: Vec<EventEnvelope<A>>) -> (A, Option<i64>) {
    let mut state = A::default();
    let mut last = None;
    for e in events {
        last = Some(e.sequence as i64);
        state.apply(e.payload);
    }
    (state, last)
}

/// The verdict on the view (`state`, `last_sequence`) of aggregate `kind` `id`, read before its
/// events.
fn judge<A: PartialEq + Debug>(
    kind: &str,
    id: &str,
    view: Option<(A, i64)>,
    folded: A,
    last: Option<i64>,
) -> Verdict {
    let Some(last) = last else {
        return Verdict::Wrong(format!(
            "{kind} {id}: in the ordered log, but it has no events"
        ));
    };
    let Some((state, seq)) = view else {
        return Verdict::Behind(format!(
            "{kind} {id}: no view, though its history is at sequence {last}"
        ));
    };
    if seq < last {
        return Verdict::Behind(format!(
            "{kind} {id}: the view is at sequence {seq}, its history at {last}"
        ));
    }
    if seq > last {
        return Verdict::Wrong(format!(
            "{kind} {id}: the view is at sequence {seq}, past its history's last event ({last})"
        ));
    }
    if state != folded {
        return Verdict::Wrong(format!(
            "{kind} {id}: at sequence {seq}, the view's state differs from the folded history\n  \
             view:   {state:?}\n  folded: {folded:?}"
        ));
    }
    Verdict::Agrees
}

async fn check_order(store: &Store, id: &str) -> Result<Verdict, String> {
    let view = projection::order(&store.backend, id)
        .await
        .map_err(|e| format!("order {id}: reading its view: {e}"))?;
    let events = store
        .orders
        .load_events(id)
        .await
        .map_err(|e| format!("order {id}: reading its events: {e}"))?;
    let (folded, last) = fold(events);
    Ok(judge(
        "order",
        id,
        view.map(|v| (v.state, v.last_sequence)),
        folded,
        last,
    ))
}

async fn check_subscription(store: &Store, id: &str) -> Result<Verdict, String> {
    let view = projection::subscription(&store.backend, id)
        .await
        .map_err(|e| format!("subscription {id}: reading its view: {e}"))?;
    let events = store
        .subscriptions
        .load_events(id)
        .await
        .map_err(|e| format!("subscription {id}: reading its events: {e}"))?;
    let (folded, last) = fold(events);
    Ok(judge(
        "subscription",
        id,
        view.map(|v| (v.state, v.last_sequence)),
        folded,
        last,
    ))
}

/// The ids of the orders and of the subscriptions in the ordered log.
async fn aggregate_ids(store: &Store) -> Result<(BTreeSet<String>, BTreeSet<String>), String> {
    let (mut orders, mut subscriptions) = (BTreeSet::new(), BTreeSet::new());
    let mut after = 0;
    loop {
        let page = event_log::read_after(&store.backend, after, 1000)
            .await
            .map_err(|e| format!("reading the ordered log: {e}"))?;
        let Some(last) = page.last() else {
            return Ok((orders, subscriptions));
        };
        after = last.event.position;
        for e in page {
            if e.event.aggregate_type == Order::TYPE {
                orders.insert(e.event.aggregate_id);
            } else if e.event.aggregate_type == Subscription::TYPE {
                subscriptions.insert(e.event.aggregate_id);
            }
        }
    }
}

/// One look at every aggregate of the store: the wrong ones, the ones behind, how many agreed.
async fn look(store: &Store) -> Result<(Vec<String>, Vec<String>, usize), String> {
    // The view counts before the log: a view made meanwhile has its events in the log by then.
    let (order_views, subscription_views, _) = projection::counts(&store.backend)
        .await
        .map_err(|e| format!("counting the views: {e}"))?;
    let (orders, subscriptions) = aggregate_ids(store).await?;
    let (mut wrong, mut behind, mut agreed) = (Vec::new(), Vec::new(), 0);
    for (kind, views, ids) in [
        ("order", order_views, orders.len()),
        ("subscription", subscription_views, subscriptions.len()),
    ] {
        if views > ids as i64 {
            wrong.push(format!(
                "{views} {kind} views, but only {ids} {kind}s in the ordered log"
            ));
        }
    }
    let mut verdicts = Vec::new();
    for id in &orders {
        verdicts.push(check_order(store, id).await?);
    }
    for id in &subscriptions {
        verdicts.push(check_subscription(store, id).await?);
    }
    for v in verdicts {
        match v {
            Verdict::Agrees => agreed += 1,
            Verdict::Behind(m) => behind.push(m),
            Verdict::Wrong(m) => wrong.push(m),
        }
    }
    Ok((wrong, behind, agreed))
}

/// The failures of the views of `env`'s store; `agreed` counts the aggregates that agreed.
async fn views_agree(env: &Env, agreed: &RefCell<usize>) -> Vec<String> {
    let Some(store) = env.store() else {
        return vec!["no store to read: not an in-process world".into()];
    };
    let mut behind = Vec::new();
    for _ in 0..TRIES {
        if let Err(e) = projection::catch_up(&store.backend).await {
            return vec![format!("catching the projections up: {e}")];
        }
        match look(store).await {
            Err(e) => return vec![e],
            Ok((wrong, _, _)) if !wrong.is_empty() => return wrong,
            Ok((_, b, n)) if b.is_empty() => {
                *agreed.borrow_mut() += n;
                return Vec::new();
            }
            Ok((_, b, _)) => behind = b,
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    behind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_every_scenario_the_views_equal_the_folded_histories() {
    let suite = match Suite::load_dir(std::path::Path::new(SCENARIO_DIR)) {
        Ok(s) => s,
        Err(e) => panic!("the scenario files do not load: {e}"),
    };
    let inspected: Rc<RefCell<Vec<String>>> = Rc::default();
    let agreed: Rc<RefCell<usize>> = Rc::default();
    let after: &AfterScenario<'_> = &|s, env| {
        inspected.borrow_mut().push(s.id.clone());
        let agreed = agreed.clone();
        Box::pin(async move { views_agree(env, &agreed).await })
    };
    let result = run_in_process_with(&suite, 4, Some(after)).await;
    let text = report::terminal(&result);
    println!("{text}");
    assert!(
        result.ok(),
        "scenarios failed, or their views disagree with their histories:\n{text}"
    );
    let expected: BTreeSet<&str> = suite
        .scenarios()
        .filter(|s| !s.is_setup_check())
        .map(|s| s.id.as_str())
        .collect();
    let inspected = inspected.borrow();
    let seen: BTreeSet<&str> = inspected.iter().map(String::as_str).collect();
    assert_eq!(
        seen, expected,
        "not every scenario run in a world was inspected"
    );
    let agreed = *agreed.borrow();
    assert!(agreed > 0, "no aggregate was compared with its view");
    println!(
        "{} scenarios inspected; {agreed} aggregate views agreed with their histories",
        seen.len()
    );
}
