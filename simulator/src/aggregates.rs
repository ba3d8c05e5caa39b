//! The aggregates of one type a runtime holds, by id: a vector kept in the order of the ids,
//! which keeps its buffer when cleared. A runtime holds a customer's dozen or so orders and
//! one subscription at a time and then moves to the next customer: a map would allocate its
//! nodes (several kilobytes each, an order's state being large) anew for every customer.

use crate::store::Held;

/// Aggregates by id, iterated in the order of their ids.
#[derive(Debug)]
pub struct Aggregates<K, A> {
    entries: Vec<(K, Held<A>)>,
}

impl<K: Clone, A: Clone> Clone for Aggregates<K, A> {
    fn clone(&self) -> Self {
        Aggregates {
            entries: self.entries.clone(),
        }
    }

    /// Reuses this one's buffer.
    fn clone_from(&mut self, other: &Self) {
        self.entries.clone_from(&other.entries);
    }
}

impl<K, A> Default for Aggregates<K, A> {
    fn default() -> Self {
        Aggregates {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord + Clone, A: Default + Clone> Aggregates<K, A> {
    fn position(&self, id: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(id))
    }

    pub fn get(&self, id: &K) -> Option<&Held<A>> {
        let at = self.position(id).ok()?;
        self.entries.get(at).map(|(_, held)| held)
    }

    pub fn get_mut(&mut self, id: &K) -> Option<&mut Held<A>> {
        let at = self.position(id).ok()?;
        self.entries.get_mut(at).map(|(_, held)| held)
    }

    /// The aggregate `id`, a default one (sequence 0) added when there is none.
    pub fn get_or_default(&mut self, id: &K) -> &mut Held<A> {
        let at = match self.position(id) {
            Ok(at) => at,
            Err(at) => {
                self.entries.insert(at, (id.clone(), Held::default()));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// Sets the aggregate `id` (replacing the one there was).
    pub fn insert(&mut self, id: K, held: Held<A>) {
        match self.position(&id) {
            Ok(at) => self.entries[at].1 = held,
            Err(at) => self.entries.insert(at, (id, held)),
        }
    }

    pub fn remove(&mut self, id: &K) -> Option<Held<A>> {
        let at = self.position(id).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// Forgets every aggregate (the buffer stays for the next ones).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The aggregates with their ids, in the order of the ids.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Held<A>)> {
        self.entries.iter().map(|(k, held)| (k, held))
    }

    /// The aggregates in the order of their ids.
    pub fn values(&self) -> impl Iterator<Item = &Held<A>> {
        self.entries.iter().map(|(_, held)| held)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Whatever the order of insertions and removals, the same as a `BTreeMap`.
    #[test]
    fn reads_as_a_map_in_the_order_of_the_ids() {
        let mut map: BTreeMap<String, Held<u32>> = BTreeMap::new();
        let mut aggregates: Aggregates<String, u32> = Aggregates::default();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..2000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let id = format!("c{}-c{}", seed % 3, (seed >> 8) % 14);
            match (seed >> 20) % 5 {
                0 => {
                    assert_eq!(aggregates.remove(&id).is_some(), map.remove(&id).is_some());
                }
                1 => {
                    let held = Held {
                        state: step,
                        sequence: 1,
                    };
                    map.insert(id.clone(), held.clone());
                    aggregates.insert(id.clone(), held);
                }
                2 if step % 97 == 0 => {
                    map.clear();
                    aggregates.clear();
                }
                _ => {
                    let a = aggregates.get_or_default(&id);
                    a.sequence += 1;
                    let m = map.entry(id.clone()).or_default();
                    m.sequence += 1;
                }
            }
            let listed: Vec<(&String, usize)> =
                aggregates.iter().map(|(k, h)| (k, h.sequence)).collect();
            let expected: Vec<(&String, usize)> =
                map.iter().map(|(k, h)| (k, h.sequence)).collect();
            assert_eq!(listed, expected);
            assert_eq!(aggregates.len(), map.len());
            assert_eq!(
                aggregates.get(&id).map(|h| h.sequence),
                map.get(&id).map(|h| h.sequence)
            );
        }
    }
}
