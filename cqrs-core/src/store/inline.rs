//! Inline projections as a store sees them: read models whose changes
//! commit inside the transaction of each append.
//!
//! A store that supports them ([`EventStore::supports_inline`](super::EventStore::supports_inline))
//! does, in the transaction of an append and after inserting its events:
//!
//! 1. lock each projection's [`Gate`] (held until the transaction ended),
//!    and reload its saved read model first if the gate says so;
//! 2. read the events after the gate's position, through the last one
//!    appended, with the projection's filter: the new events, and any an
//!    other process appended since (appends are serialized, so this is
//!    exact);
//! 3. [`fold`](InlineProjection::fold) them, and write the document
//!    changes the gate holds and the fold returned, with the checkpoint
//!    at the last position, through the same checks as
//!    [`CheckpointStore::commit_read_model`](super::CheckpointStore::commit_read_model);
//! 4. after the commit, move the gate to that position
//!    ([`Gate::committed`]); if anything failed, mark it for a reload
//!    ([`Gate::invalidate`]): what was folded is not what is saved.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use super::{DocumentChange, LogFilter, SavedReadModel};
use crate::record::RecordedEvent;

/// What a store knows of an inline projection's state while it holds the
/// projection's lock.
#[derive(Debug, Default)]
pub struct Gate {
    /// The position its state includes (`None`: reload it before folding).
    position: Option<u64>,
    /// Document changes folded but not yet written (from events this
    /// process read but did not append), by collection and key.
    pending: BTreeMap<(String, String), Option<Vec<u8>>>,
}

impl Gate {
    /// The position the state includes, `None` when it must be reloaded.
    pub fn position(&self) -> Option<u64> {
        self.position
    }

    /// Keeps changes to write with the next commit.
    pub(crate) fn keep(&mut self, changes: Vec<DocumentChange>, through: u64) {
        for change in changes {
            self.pending
                .insert((change.collection, change.key), change.body);
        }
        self.position = Some(through);
    }

    /// The changes kept so far followed by `more`, the last change of each
    /// document winning: what a commit writes.
    pub fn changes(&self, more: Vec<DocumentChange>) -> Vec<DocumentChange> {
        let mut all = self.pending.clone();
        for change in more {
            all.insert((change.collection, change.key), change.body);
        }
        all.into_iter()
            .map(|((collection, key), body)| DocumentChange {
                collection,
                key,
                body,
            })
            .collect()
    }

    /// The transaction committed through `position`: the state is saved.
    pub fn committed(&mut self, position: u64) {
        self.position = Some(position);
        self.pending.clear();
    }

    /// The state is not what is saved: reload before the next fold.
    pub fn invalidate(&mut self) {
        self.position = None;
        self.pending.clear();
    }

    /// The state was reloaded at `position`.
    pub fn reloaded(&mut self, position: u64) {
        self.position = Some(position);
        self.pending.clear();
    }
}

/// A projection committed inline: what a store calls inside an append's
/// transaction (see the [module documentation](self)).
pub trait InlineProjection: Send + Sync + Debug + 'static {
    /// The projection name (its read model's and checkpoint's).
    fn name(&self) -> &'static str;

    /// Which events it reads.
    fn filter(&self) -> &LogFilter;

    /// Whether it has documents to write (else only its memory changes).
    fn durable(&self) -> bool;

    /// Its lock: held by a store from before it reads the events to fold
    /// until its transaction ended. Queries of the projection take it too,
    /// so they never see a fold whose transaction may still fail.
    fn gate(&self) -> &Arc<tokio::sync::Mutex<Gate>>;

    /// Replaces the state by `saved` (the read model in the store, read in
    /// the transaction); `None` for one that is not durable (empty state).
    ///
    /// # Errors
    ///
    /// A saved document that does not decode.
    fn reload(&self, saved: Option<SavedReadModel>) -> Result<(), String>;

    /// Folds events (in order, all after the gate's position) into the
    /// state; returns the documents they changed.
    ///
    /// # Errors
    ///
    /// An event that cannot be projected: the append fails, nothing of it
    /// is stored.
    fn fold(&self, events: &[Arc<RecordedEvent>]) -> Result<Vec<DocumentChange>, String>;

    /// The store committed through `position` (for status and waiting
    /// queries).
    fn published(&self, position: u64);
}

/// The inline projections of an engine, handed to every append.
pub type InlineSet = Arc<[Arc<dyn InlineProjection>]>;

/// Locks the gates of `inline`, in the set's order (every append of an
/// engine passes the same set, so no two appends wait on each other's).
pub(crate) async fn lock_gates(inline: &InlineSet) -> Vec<tokio::sync::MutexGuard<'_, Gate>> {
    let mut gates = Vec::with_capacity(inline.len());
    for projection in inline.iter() {
        gates.push(projection.gate().lock().await);
    }
    gates
}

/// [`lock_gates`] for a thread outside the async runtime (a store's
/// writer thread).
#[cfg(feature = "sqlite")]
pub(crate) fn lock_gates_blocking(inline: &InlineSet) -> Vec<tokio::sync::MutexGuard<'_, Gate>> {
    inline
        .iter()
        .map(|projection| projection.gate().blocking_lock())
        .collect()
}
