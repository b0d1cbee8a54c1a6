//! The event store contract, one trait per concern, and the stores that meet it.
//!
//! A store is four capabilities:
//!
//! - [`EventStore`]: append to a stream with an expected version, read a stream;
//! - [`GlobalLog`]: read every stream in one total order, filtered, and follow it live;
//! - [`SnapshotStore`]: keep the latest snapshot of an aggregate;
//! - [`CheckpointStore`]: keep how far each projection got.
//!
//! [`Store`] is all four; the [`Engine`](crate::Engine) takes any `Store`.
//!
//! # The contract a store must meet
//!
//! - Versions in a stream start at 1 and are contiguous. An append names the
//!   version it expects the stream to be at ([`ExpectedVersion`]); if the stream
//!   is elsewhere, nothing is written and [`StoreError::Conflict`] says both.
//! - All events of one append become visible together, or none do.
//! - Positions in the global log start at 1 and strictly increase in the order
//!   readers see them. A reader that has seen position `p` will never later be
//!   shown an event below `p`: a store whose positions can commit out of order
//!   (a database sequence) must hold back events until every lower position is
//!   settled, so a tail never skips one.
//! - [`GlobalLog::watch_head`] publishes the highest position a reader may read;
//!   it only moves forward.
//! - Payloads and metadata come back as the JSON values written (a store may
//!   normalise whitespace and key order, as PostgreSQL's `jsonb` does).
//!
//! The `tests` package runs one conformance suite against every store.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod decode;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod read_ahead;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt::Debug;
use std::sync::Arc;

use tokio::sync::watch;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStats, PostgresStore};
pub(crate) use read_ahead::ReadAhead;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStats, SqliteStore, Synchronous};

use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::{NewEvent, RecordedEvent, StreamId, Timestamp};

/// The version an append expects the stream to be at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version.
    Any,
    /// Append only if the stream is exactly at this version (0: it does not exist).
    Exact(u64),
}

/// Where an append's events went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream version after the append (the last event's version).
    pub version: u64,
    /// The global position of the first event appended.
    pub first_position: u64,
    /// The global position of the last event appended.
    pub last_position: u64,
}

/// Appends to and reads single streams.
pub trait EventStore: Send + Sync + Debug + 'static {
    /// Appends `events` to `stream` if it is at `expected`, atomically.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the stream is at another version,
    /// [`StoreError::InvalidAppend`] for an empty batch, or a backend failure.
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendOutcome, StoreError>>;

    /// [`append`](Self::append) without waiting, for a store that never
    /// needs to (the in-memory store): `Some` with what `append` would have
    /// answered, the events taken out of `events` (its capacity stays, for
    /// the caller to reuse); `None`, the default, when the store cannot,
    /// leaving `events` as they were. The engine tries it before `append`,
    /// which saves it a boxed future per command.
    ///
    /// # Examples
    ///
    /// ```
    /// use cqrs_core::store::{EventStore, ExpectedVersion};
    /// use cqrs_core::{MemoryStore, NewEvent, StreamId};
    ///
    /// let store = MemoryStore::new();
    /// let stream = StreamId::new("account", "a-1");
    /// let mut events = vec![NewEvent::new("opened", b"{}".to_vec())];
    /// let outcome = store.append_now(&stream, ExpectedVersion::Exact(0), &mut events);
    /// assert_eq!(outcome.unwrap().unwrap().version, 1);
    /// assert!(events.is_empty());
    /// ```
    fn append_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &mut Vec<NewEvent>,
    ) -> Option<Result<AppendOutcome, StoreError>> {
        let _ = (stream, expected, events);
        None
    }

    /// The events of `stream` with version `>= from_version`, in order.
    ///
    /// # Errors
    ///
    /// A backend failure. A stream that does not exist is empty, not an error.
    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
    ) -> BoxFuture<'a, Result<Vec<Arc<RecordedEvent>>, StoreError>>;
}

/// Which events of the global log a reader wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only these event names (empty: all).
    pub events: Vec<String>,
    /// Only streams of these aggregates (empty: all).
    pub aggregates: Vec<String>,
}

impl LogFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only events with these names.
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self {
            events: names.into_iter().map(Into::into).collect(),
            aggregates: Vec::new(),
        }
    }

    /// Also restrict to streams of these aggregates.
    #[must_use]
    pub fn aggregates<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.aggregates = names.into_iter().map(Into::into).collect();
        self
    }

    /// Whether a record passes the filter.
    pub fn matches(&self, record: &RecordedEvent) -> bool {
        (self.events.is_empty() || self.events.iter().any(|e| *e == record.event_name))
            && (self.aggregates.is_empty()
                || self
                    .aggregates
                    .iter()
                    .any(|a| *a == record.stream.aggregate))
    }
}

/// A page of the global log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogSlice {
    /// The matching events, by increasing position.
    pub events: Vec<Arc<RecordedEvent>>,
    /// Every matching event with a position up to and including this one is in
    /// `events`; a reader continues after it. At least the `after` it was asked for.
    pub through: u64,
}

/// The global log: all streams in one total order.
pub trait GlobalLog: Send + Sync + Debug + 'static {
    /// Up to `limit` events matching `filter` with position `> after`.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn read_log<'a>(
        &'a self,
        after: u64,
        filter: &'a LogFilter,
        limit: usize,
    ) -> BoxFuture<'a, Result<LogSlice, StoreError>>;

    /// [`read_log`](Self::read_log), handing back `spent`: records of earlier
    /// pages the caller is done with. A store may refill those no one else
    /// holds (reusing their strings and buffers) instead of allocating new
    /// ones for every event; a record still shared elsewhere is only released.
    /// [`Tail`] and the projections' catch-up read through this.
    ///
    /// The default drops `spent` and calls `read_log`.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn read_log_recycling<'a>(
        &'a self,
        after: u64,
        filter: &'a LogFilter,
        limit: usize,
        spent: Vec<Arc<RecordedEvent>>,
    ) -> BoxFuture<'a, Result<LogSlice, StoreError>> {
        drop(spent);
        self.read_log(after, filter, limit)
    }

    /// The highest position a reader may read now (0: the log is empty).
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Follows [`head`](Self::head) live: changes whenever new events become
    /// readable.
    fn watch_head(&self) -> watch::Receiver<u64>;
}

/// The state of an aggregate at a version, serialized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream version the state includes.
    pub version: u64,
    /// The serialized state.
    pub state: Vec<u8>,
    /// When it was taken.
    pub taken_at: Timestamp,
}

/// Keeps the latest snapshot of each stream.
pub trait SnapshotStore: Send + Sync + Debug + 'static {
    /// The latest snapshot of `stream`, if any.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>>;

    /// Replaces the snapshot of `stream` if `snapshot` is newer.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn save_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        snapshot: Snapshot,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// A change to one document of a durable read model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentChange {
    /// The collection (the `#[document]` field's name).
    pub collection: String,
    /// The document key.
    pub key: String,
    /// The JSON document, `None` to delete it.
    pub body: Option<Vec<u8>>,
}

/// A durable read model as saved: its checkpoint and its documents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedReadModel {
    /// The position the documents include (`None`: never saved).
    pub checkpoint: Option<u64>,
    /// Every document: (collection, key, JSON body).
    pub documents: Vec<(String, String, Vec<u8>)>,
}

/// Keeps how far each projection got in the global log, and the documents of
/// durable read models, saved together.
pub trait CheckpointStore: Send + Sync + Debug + 'static {
    /// The saved position of projection `name` (`None`: never saved).
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn load_checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;

    /// Saves the position of projection `name`.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn save_checkpoint<'a>(
        &'a self,
        name: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The saved documents and checkpoint of projection `name`, read from one
    /// consistent state: never the documents of one commit with the
    /// checkpoint of another.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn load_read_model<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<SavedReadModel, StoreError>>;

    /// Applies `changes` to the documents of projection `name` and sets its
    /// checkpoint to `checkpoint`, atomically: both or neither.
    ///
    /// # Errors
    ///
    /// A backend failure; then nothing was saved.
    fn commit_read_model<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Deletes the documents and the checkpoint of projection `name`, atomically.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn reset_read_model<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Everything the engine needs from a store.
pub trait Store: EventStore + GlobalLog + SnapshotStore + CheckpointStore {}

impl<T: EventStore + GlobalLog + SnapshotStore + CheckpointStore> Store for T {}

/// How many reads of the log a catch-up keeps under way: the next page, and
/// a guess at the one after it (see [`ReadAhead`]): two pages read at once
/// while the caller projects a third.
pub(crate) const READS_AHEAD: usize = 2;

/// Follows the global log: catch-up first, then live, in batches.
///
/// While the caller works on one batch, the next ones are already being read
/// (when the log has more), and the records of batches handed back with
/// [`recycle`](Self::recycle) are reused for new ones.
///
/// # Examples
///
/// ```
/// # use cqrs_core::store::*;
/// # use std::sync::Arc;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cqrs_core::StoreError> {
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let mut tail = Tail::new(store, 0, LogFilter::all(), 256);
/// // `tail.next().await` waits until events exist after position 0.
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Tail {
    pages: ReadAhead<'static>,
    head: watch::Receiver<u64>,
}

impl Tail {
    /// Follows `store` from after position `after`.
    pub fn new(store: Arc<dyn Store>, after: u64, filter: LogFilter, batch: usize) -> Self {
        let head = store.watch_head();
        let filter = Arc::new(filter);
        // The reads own what they use, so one can run ahead of `next`.
        let pages = ReadAhead::with(after, batch, move |after, limit, spent| {
            let store = Arc::clone(&store);
            let filter = Arc::clone(&filter);
            Box::pin(async move { store.read_log_recycling(after, &filter, limit, spent).await })
        });
        Self { pages, head }
    }

    /// The position this tail has read through.
    pub fn position(&self) -> u64 {
        self.pages.position()
    }

    /// The next non-empty step: waits for new events when caught up. Returns a
    /// slice whose `through` moved, even if no event in it matched.
    ///
    /// # Errors
    ///
    /// A backend failure; the tail stays where it was and may be retried.
    pub async fn next(&mut self) -> Result<LogSlice, StoreError> {
        loop {
            let head = *self.head.borrow_and_update();
            let from = self.pages.position();
            if head > from {
                let slice = self.pages.next_page().await?;
                if slice.through > from {
                    let head = *self.head.borrow();
                    self.pages.read_ahead(READS_AHEAD, head).await;
                    return Ok(slice);
                }
            }
            if self.head.changed().await.is_err() {
                return Err(StoreError::Backend {
                    message: String::from("the store stopped publishing its head position"),
                    source: None,
                });
            }
        }
    }

    /// Hands back the events of a batch the caller is done with, so reading
    /// the next batches can reuse their memory.
    pub fn recycle(&mut self, events: Vec<Arc<RecordedEvent>>) {
        self.pages.recycle(events);
    }
}
