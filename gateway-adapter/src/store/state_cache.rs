//! The last committed state of recently used aggregates, so that a command on one of them is
//! decided without reading its events again (a webhook's result on an order the service has
//! just submitted, a follow-up on the order it follows).
//!
//! An entry is only a guess at the stored state, never trusted on its own:
//! - another process may have committed to the aggregate since: events decided on the stale
//!   entry then take sequence numbers already stored, the commit conflicts (the events' primary
//!   key), the entry is dropped and the command decided again on the state read from the store;
//! - a command the cached state refuses, or on which it decides nothing, is decided again on the
//!   stored state before that answer is given (a stale entry could refuse what the stored state
//!   accepts);
//! - a commit that failed for any other reason drops the entry (whether it was written is not
//!   known).
//!
//! Bounded: the least recently used entries are dropped beyond [`CAPACITY`].

use std::sync::Mutex;

use hashlink::LruCache;

/// Aggregates kept per type. An order's state is a few kilobytes, so this bounds the cache to
/// some tens of megabytes.
pub const CAPACITY: usize = 8_192;

/// Recently committed states of one aggregate type, by aggregate id, with their last sequence.
pub struct StateCache<A> {
    entries: Mutex<LruCache<String, (A, usize)>>,
}

impl<A: Clone> StateCache<A> {
    pub fn new(capacity: usize) -> Self {
        StateCache {
            entries: Mutex::new(LruCache::new(capacity.max(1))),
        }
    }

    /// A copy of the state last committed to `id` by this process, with its last sequence.
    pub fn get(&self, id: &str) -> Option<(A, usize)> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(id).cloned()
    }

    /// `id` is now `state`, at sequence `last`.
    pub fn put(&self, id: &str, state: A, last: usize) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(id.to_string(), (state, last));
    }

    /// Forgets `id` (a conflict, or a commit whose outcome is not known).
    pub fn forget(&self, id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(id);
    }

    /// How many aggregates are kept.
    pub fn len(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_state_and_forgets_on_request() {
        let cache = StateCache::new(4);
        assert!(cache.get("o-1").is_none());
        cache.put("o-1", "placed".to_string(), 1);
        cache.put("o-1", "submitted".to_string(), 3);
        assert_eq!(cache.get("o-1"), Some(("submitted".to_string(), 3)));
        cache.forget("o-1");
        assert!(cache.get("o-1").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn drops_the_least_recently_used_beyond_its_capacity() {
        let cache = StateCache::new(2);
        cache.put("a", 1, 1);
        cache.put("b", 2, 1);
        // "a" read: "b" is now the least recently used.
        assert!(cache.get("a").is_some());
        cache.put("c", 3, 1);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
    }
}
