//! The read side as the API and the console read it: an aggregate's state from its view
//! ([`super::projection`]), with the events committed since the view was last projected applied
//! on top (a read right after a write shows the write, however far the projector is behind),
//! and its history as stored. Nothing is folded from the start unless the aggregate has no view
//! yet.

use cqrs_es::{Aggregate, EventEnvelope};
use salvage_domain::order::Order;
use salvage_domain::subscription::Subscription;

use super::{projection, AggregateStore, Store, StoreError};

/// An aggregate as read: its current state and its whole history.
#[derive(Debug, Clone)]
pub struct Read<A: Aggregate> {
    pub state: A,
    pub history: Vec<EventEnvelope<A>>,
    /// How many of the history's events the view already held (the rest were applied here).
    pub from_view: usize,
}

/// Order `id` as read (`None` when it has no event).
pub async fn order(store: &Store, id: &str) -> Result<Option<Read<Order>>, StoreError> {
    let view = projection::order(&store.backend, id)
        .await?
        .map(|v| (v.state, v.last_sequence));
    read(&store.orders, id, view).await
}

/// Subscription `id` as read (`None` when it has no event).
pub async fn subscription(
    store: &Store,
    id: &str,
) -> Result<Option<Read<Subscription>>, StoreError> {
    let view = projection::subscription(&store.backend, id)
        .await?
        .map(|v| (v.state, v.last_sequence));
    read(&store.subscriptions, id, view).await
}

async fn read<A>(
    events: &AggregateStore<A>,
    id: &str,
    view: Option<(A, i64)>,
) -> Result<Option<Read<A>>, StoreError>
where
    A: Aggregate + Clone,
    A::Command: Clone + Send + Sync,
    A::Services: Sync,
{
    let history = events
        .load_events(id)
        .await
        .map_err(|e| StoreError::Events(e.to_string()))?;
    if history.is_empty() {
        return Ok(None);
    }
    // A view ahead of the history cannot be (the log is written with the events): ignore it.
    let (mut state, from_view) = match view {
        Some((state, seq)) if usize::try_from(seq).is_ok_and(|s| s <= history.len()) => {
            (state, usize::try_from(seq).unwrap_or(0))
        }
        _ => (A::default(), 0),
    };
    for e in history.iter().filter(|e| e.sequence > from_view) {
        state.apply(e.payload.clone());
    }
    Ok(Some(Read {
        state,
        history,
        from_view,
    }))
}
