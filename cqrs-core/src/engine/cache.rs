//! Loaded aggregates kept between commands, one lock per stream.
//!
//! The per-stream lock also serializes commands on one stream inside this
//! process, so they never conflict with each other; conflicts then only come
//! from other processes writing to the same store.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

/// An aggregate's state at a stream version.
#[derive(Debug)]
pub(crate) struct Loaded<A> {
    pub(crate) state: A,
    pub(crate) version: u64,
    /// The stream's snapshot was taken by another shape of the state, at
    /// this very version (so it could not be replaced yet): the next
    /// append takes a new one.
    pub(crate) stale_snapshot: bool,
}

/// What one stream's lock guards: its loaded state, when known.
pub(crate) type Slot<A> = Arc<tokio::sync::Mutex<Option<Loaded<A>>>>;

/// Hashed with foldhash, randomly seeded per map: a stream id is hashed on
/// every command, and SipHash cost more than the rest of the lookup.
type Slots<A> = HashMap<String, Slot<A>, foldhash::fast::RandomState>;

/// Stream locks are spread over this many maps, each behind its own mutex:
/// concurrent commands on different streams rarely wait for one another.
const SHARDS: usize = 8;

#[derive(Debug)]
pub(crate) struct AggregateCache<A> {
    shards: Box<[Mutex<Slots<A>>]>,
    /// Picks a stream's shard.
    spread: foldhash::fast::RandomState,
    /// States kept in all, and per shard.
    capacity: usize,
    per_shard: usize,
}

impl<A> AggregateCache<A> {
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = capacity.clamp(1, SHARDS);
        Self {
            shards: (0..shards).map(|_| Mutex::new(Slots::default())).collect(),
            spread: foldhash::fast::RandomState::default(),
            capacity,
            per_shard: (capacity / shards).max(1),
        }
    }

    /// Whether states are kept after a command.
    pub(crate) fn keeps_state(&self) -> bool {
        self.capacity > 0
    }

    /// The slot of stream `id`, created empty if absent.
    pub(crate) fn slot(&self, id: &str) -> Slot<A> {
        let shard = (self.spread.hash_one(id) % self.shards.len() as u64) as usize;
        let mut slots = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(id) {
            return Arc::clone(slot);
        }
        if slots.len() >= self.per_shard {
            evict(&mut slots, self.per_shard);
        }
        let slot = Slot::default();
        slots.insert(id.to_owned(), Arc::clone(&slot));
        slot
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// Drops about a tenth of the idle slots (no command holds them), so the
/// cost of eviction is paid once per many inserts.
fn evict<A>(slots: &mut Slots<A>, capacity: usize) {
    let target = capacity - capacity / 10;
    let mut excess = slots.len().saturating_sub(target).max(1);
    slots.retain(|_, slot| {
        if excess > 0 && Arc::strong_count(slot) == 1 {
            excess -= 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_idle_slots_past_capacity() {
        let cache = AggregateCache::<u32>::new(10);
        let held = cache.slot("held");
        for i in 0..100 {
            let _ = cache.slot(&i.to_string());
        }
        assert!(cache.len() <= 10, "cache grew to {}", cache.len());
        // A slot in use is never evicted: the same lock comes back.
        assert!(Arc::ptr_eq(&held, &cache.slot("held")));
    }

    #[test]
    fn same_stream_same_slot() {
        let cache = AggregateCache::<u32>::new(10);
        assert!(Arc::ptr_eq(&cache.slot("a"), &cache.slot("a")));
        assert!(!Arc::ptr_eq(&cache.slot("a"), &cache.slot("b")));
    }
}
