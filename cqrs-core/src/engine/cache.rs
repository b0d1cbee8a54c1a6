//! Loaded aggregates kept between commands, one lock per stream.
//!
//! The per-stream lock also serializes commands on one stream inside this
//! process, so they never conflict with each other; conflicts then only come
//! from other processes writing to the same store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// An aggregate's state at a stream version.
#[derive(Debug)]
pub(crate) struct Loaded<A> {
    pub(crate) state: A,
    pub(crate) version: u64,
}

/// What one stream's lock guards: its loaded state, when known.
pub(crate) type Slot<A> = Arc<tokio::sync::Mutex<Option<Loaded<A>>>>;

/// Hashed with foldhash, randomly seeded per map: a stream id is hashed on
/// every command, and SipHash cost more than the rest of the lookup.
type Slots<A> = HashMap<String, Slot<A>, foldhash::fast::RandomState>;

#[derive(Debug)]
pub(crate) struct AggregateCache<A> {
    slots: Mutex<Slots<A>>,
    capacity: usize,
}

impl<A> AggregateCache<A> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(Slots::default()),
            capacity,
        }
    }

    /// Whether states are kept after a command.
    pub(crate) fn keeps_state(&self) -> bool {
        self.capacity > 0
    }

    /// The slot of stream `id`, created empty if absent.
    pub(crate) fn slot(&self, id: &str) -> Slot<A> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(id) {
            return Arc::clone(slot);
        }
        if slots.len() >= self.capacity.max(1) {
            evict(&mut slots, self.capacity);
        }
        let slot = Slot::default();
        slots.insert(id.to_owned(), Arc::clone(&slot));
        slot
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
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
