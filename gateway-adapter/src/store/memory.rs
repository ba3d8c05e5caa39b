//! An in-memory event store for tests. Unlike cqrs-es's `MemStore`, it enforces the expected
//! sequence: a commit made on a stale aggregate is refused with `AggregateConflict`, so
//! concurrency can be tested. It also keeps the ordered log of every commit.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use serde_json::Value;

use super::event_log::LogEntry;
use crate::feed::FeedEvent;

#[derive(Default)]
struct State {
    /// (aggregate type, id) → serialized events, in sequence order.
    streams: HashMap<(String, String), Vec<StoredEvent>>,
    log: Vec<LogEntry>,
}

#[derive(Clone)]
struct StoredEvent {
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: HashMap<String, String>,
}

/// The shared memory behind every aggregate's in-memory store.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// The store of one aggregate type over this memory.
    pub fn store<A: Aggregate>(&self) -> MemoryEventStore<A> {
        MemoryEventStore {
            backend: self.clone(),
            _a: PhantomData,
        }
    }

    /// Log entries after `position`, at most `limit`.
    pub fn read_log(&self, after: i64, limit: usize) -> Vec<LogEntry> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .log
            .iter()
            .filter(|e| e.event.position > after)
            .take(limit)
            .cloned()
            .collect()
    }
}

/// One aggregate type's in-memory store.
pub struct MemoryEventStore<A> {
    backend: MemoryBackend,
    _a: PhantomData<fn() -> A>,
}

/// The loaded aggregate and the sequence it was loaded at.
pub struct MemoryContext<A> {
    aggregate_id: String,
    aggregate: A,
    current_sequence: usize,
}

impl<A: Aggregate> AggregateContext<A> for MemoryContext<A> {
    fn aggregate(&mut self) -> &mut A {
        &mut self.aggregate
    }
}

impl<A: Aggregate> MemoryEventStore<A> {
    fn envelopes(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let state = self.backend.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(stream) = state
            .streams
            .get(&(A::TYPE.to_string(), aggregate_id.to_string()))
        else {
            return Ok(Vec::new());
        };
        stream
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let payload = serde_json::from_value(e.payload.clone())
                    .map_err(|err| AggregateError::DeserializationError(Box::new(err)))?;
                Ok(EventEnvelope {
                    aggregate_id: aggregate_id.to_string(),
                    sequence: i + 1,
                    payload,
                    metadata: e.metadata.clone(),
                })
            })
            .collect()
    }
}

impl<A: Aggregate> EventStore<A> for MemoryEventStore<A> {
    type AC = MemoryContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.envelopes(aggregate_id)
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<Self::AC, AggregateError<A::Error>> {
        let events = self.envelopes(aggregate_id)?;
        let mut aggregate = A::default();
        let current_sequence = events.len();
        for e in events {
            aggregate.apply(e.payload);
        }
        Ok(MemoryContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate,
            current_sequence,
        })
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        use cqrs_es::DomainEvent;
        let mut state = self.backend.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = (A::TYPE.to_string(), context.aggregate_id.clone());
        let stored = state.streams.get(&key).map(Vec::len).unwrap_or(0);
        if stored != context.current_sequence {
            return Err(AggregateError::AggregateConflict);
        }
        let mut envelopes = Vec::with_capacity(events.len());
        let mut new = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let sequence = stored + i + 1;
            let payload = serde_json::to_value(&event)
                .map_err(|err| AggregateError::UnexpectedError(Box::new(err)))?;
            new.push(StoredEvent {
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload,
                metadata: metadata.clone(),
            });
            envelopes.push(EventEnvelope {
                aggregate_id: context.aggregate_id.clone(),
                sequence,
                payload: event,
                metadata: metadata.clone(),
            });
        }
        let head = state.log.last().map(|e| e.event.position).unwrap_or(0);
        let mut log = Vec::with_capacity(new.len());
        for (i, e) in new.iter().enumerate() {
            let position = head + i as i64 + 1;
            log.push(LogEntry {
                event: FeedEvent {
                    position,
                    aggregate_type: A::TYPE.to_string(),
                    aggregate_id: context.aggregate_id.clone(),
                    sequence: (stored + i + 1) as i64,
                    event_type: e.event_type.clone(),
                    event_version: e.event_version.clone(),
                    payload: e.payload.clone(),
                },
                metadata: serde_json::to_value(&e.metadata).unwrap_or(Value::Null),
            });
        }
        state.streams.entry(key).or_default().extend(new);
        state.log.extend(log);
        Ok(envelopes)
    }
}
