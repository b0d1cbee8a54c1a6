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
//! - An append whose events carry an idempotency key records it in the same
//!   transaction, once per stream: a second append with that key on that
//!   stream writes nothing ([`StoreError::DuplicateKey`]); see
//!   [`EventStore`]'s *Idempotency keys*.
//!
//! The `tests` package runs one conformance suite against every store.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod decode;
pub mod inline;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStats, PostgresStore};
#[cfg(feature = "postgres")]
pub(crate) use postgres::{classify, describe as describe_pg};
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

/// The append that recorded an idempotency key: what
/// [`EventStore::find_key`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptAppend {
    /// Where that append's events went.
    pub outcome: AppendOutcome,
    /// How many events it appended.
    pub events: u64,
}

/// The longest idempotency key, in bytes: a key comes from outside (an
/// HTTP header) and is stored with every event of its command.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

/// Refuses an idempotency key that is empty, longer than
/// [`MAX_IDEMPOTENCY_KEY`] bytes, or holds a control character: checked by
/// the engine before any I/O and by every store before it writes.
pub(crate) fn check_key(stream: &StreamId, key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        String::from("the idempotency key is empty")
    } else if key.len() > MAX_IDEMPOTENCY_KEY {
        format!(
            "the idempotency key is {} bytes long, over the limit of {MAX_IDEMPOTENCY_KEY}",
            key.len()
        )
    } else if key.chars().any(char::is_control) {
        String::from("the idempotency key holds a control character")
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidAppend {
        stream: stream.clone(),
        reason,
    })
}

/// The idempotency key all of `events` carry, if any: what a store records
/// with the append. The engine gives every event of a command the same
/// metadata; a batch whose events disagree is refused, as is a key that
/// breaks the rule of [`check_key`].
pub(crate) fn append_key<'e>(
    stream: &StreamId,
    events: &'e [NewEvent],
) -> Result<Option<&'e str>, StoreError> {
    let key = events
        .first()
        .and_then(|e| e.metadata.idempotency_key.as_deref());
    if events
        .iter()
        .any(|e| e.metadata.idempotency_key.as_deref() != key)
    {
        return Err(StoreError::InvalidAppend {
            stream: stream.clone(),
            reason: String::from("the events of one append carry different idempotency keys"),
        });
    }
    if let Some(key) = key {
        check_key(stream, key)?;
    }
    Ok(key)
}

/// Appends to and reads single streams.
///
/// # Idempotency keys
///
/// When the events of an append carry an idempotency key in their
/// metadata ([`Metadata::idempotency_key`](crate::Metadata::idempotency_key)),
/// the store records the key with the append, in the same transaction, at
/// most once per stream: a later append with the same key on the same
/// stream writes nothing and fails with [`StoreError::DuplicateKey`].
/// [`find_key`](Self::find_key) tells where the recorded append went.
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

    /// Whether [`append_inline`](Self::append_inline) works on this store.
    fn supports_inline(&self) -> bool {
        false
    }

    /// [`append`](Self::append), committing the `inline` projections'
    /// changes in the same transaction (see [`inline`]).
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append); an event an inline projection cannot
    /// project fails the append, nothing of it stored. The default (for a
    /// store that cannot) refuses every call.
    fn append_inline<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        inline: &'a inline::InlineSet,
    ) -> BoxFuture<'a, Result<AppendOutcome, StoreError>> {
        let _ = (expected, events, inline);
        Box::pin(std::future::ready(Err(StoreError::Refused {
            message: format!(
                "cannot append to stream {stream} with inline projections: this store does not run them"
            ),
            source: None,
        })))
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

    /// The append of `stream` that recorded idempotency key `key`, if any.
    ///
    /// The default reads the whole stream and looks for the events that
    /// carry the key; the stores of this crate keep the keys in a table of
    /// their own and look them up by index.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn find_key<'a>(
        &'a self,
        stream: &'a StreamId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeptAppend>, StoreError>> {
        Box::pin(async move {
            let events = self.read_stream(stream, 1).await?;
            let mut kept: Option<KeptAppend> = None;
            for e in events
                .iter()
                .filter(|e| e.metadata.idempotency_key.as_deref() == Some(key))
            {
                let entry = kept.get_or_insert(KeptAppend {
                    outcome: AppendOutcome {
                        version: e.version,
                        first_position: e.position,
                        last_position: e.position,
                    },
                    events: 0,
                });
                entry.outcome.version = e.version;
                entry.outcome.last_position = e.position;
                entry.events += 1;
            }
            Ok(kept)
        })
    }
}

/// Which events of the global log a reader wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only these event names (empty: all).
    pub events: Vec<String>,
    /// Only streams of these aggregates (empty: all).
    pub aggregates: Vec<String>,
    /// Besides what the two lists select: every event in the streams of
    /// these aggregates whose name is none of these known names. A reader
    /// that wants a few of a stream's events still sees a name no code
    /// knows, and can refuse it instead of never reading it.
    pub unknown: Option<UnknownNames>,
}

/// The events a [`LogFilter`] selects for not having a known name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnknownNames {
    /// In the streams of these aggregates...
    pub aggregates: Vec<String>,
    /// ...every event whose name is not one of these.
    pub known: Vec<String>,
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
            ..Self::default()
        }
    }

    /// Also restrict to streams of these aggregates.
    #[must_use]
    pub fn aggregates<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.aggregates = names.into_iter().map(Into::into).collect();
        self
    }

    /// Also select every event of these aggregates' streams whose name is
    /// not in `known` (see [`LogFilter::unknown`]).
    ///
    /// ```
    /// use cqrs_core::store::LogFilter;
    /// # use cqrs_core::{RecordedEvent, StreamId, NewEvent};
    /// let filter = LogFilter::events(["opened"]).or_unknown_in(["account"], ["opened", "closed"]);
    /// assert!(filter.selects("account", "opened"));
    /// assert!(!filter.selects("account", "closed"));
    /// assert!(filter.selects("account", "renamed.by.hand"));
    /// assert!(!filter.selects("cart", "renamed.by.hand"));
    /// ```
    #[must_use]
    pub fn or_unknown_in<A, K, S, T>(mut self, aggregates: A, known: K) -> Self
    where
        A: IntoIterator<Item = S>,
        S: Into<String>,
        K: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.unknown = Some(UnknownNames {
            aggregates: aggregates.into_iter().map(Into::into).collect(),
            known: known.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Whether the filter selects an event of this aggregate and name.
    pub fn selects(&self, aggregate: &str, event: &str) -> bool {
        let listed = (self.events.is_empty() || self.events.iter().any(|e| e == event))
            && (self.aggregates.is_empty() || self.aggregates.iter().any(|a| a == aggregate));
        listed
            || self.unknown.as_ref().is_some_and(|u| {
                u.aggregates.iter().any(|a| a == aggregate) && !u.known.iter().any(|k| k == event)
            })
    }

    /// Whether a record passes the filter.
    pub fn matches(&self, record: &RecordedEvent) -> bool {
        self.selects(&record.stream.aggregate, &record.event_name)
    }

    /// Whether it selects every event.
    pub fn is_everything(&self) -> bool {
        self.events.is_empty() && self.aggregates.is_empty()
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
    /// [`Tail`](crate::subscription::Tail) and the projections' catch-up read through this.
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

    /// Whether the store can be reached, for readers that are idle: `Some`
    /// reason while the store that feeds [`watch_head`](Self::watch_head)
    /// cannot be reached (a lost connection), `None` while it can. The
    /// default, for stores that cannot become unreachable (in memory), is
    /// no watch at all.
    fn watch_unavailable(&self) -> Option<watch::Receiver<Option<String>>> {
        None
    }
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

/// The right to commit for one consumer name, as a lease granted it: every
/// commit carries it, and the store refuses a commit whose token is not the
/// lease's current one.
///
/// A lease is taken with [`CheckpointStore::acquire_lease`]; each new holder
/// gets a larger token, so a holder that lost its lease (paused past its
/// term, partitioned away) and then tries to commit is turned away instead
/// of writing over its successor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The consumer name (a projection's name, say) the lease is for.
    pub name: String,
    /// The fencing token: larger for every new holder.
    pub token: u64,
}

/// The answer to [`CheckpointStore::acquire_lease`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The asker holds the lease for the term it asked for; its commits
    /// carry this fence.
    Held(Fence),
    /// Another holder has the lease.
    Taken {
        /// Who holds it.
        holder: String,
        /// How long its term still runs (by the store's clock).
        expires_in: Duration,
    },
}

/// Keeps how far each projection got in the global log, and the documents of
/// durable read models, saved together; and the leases that let one process
/// at a time commit for a consumer name.
///
/// # Commits only move forward
///
/// [`commit_read_model`](Self::commit_read_model) refuses a checkpoint that is
/// not after the saved one ([`StoreError::CheckpointNotAfter`]) and a fence
/// that is not the lease's current token ([`StoreError::Fenced`]); either
/// way nothing of the commit is written. [`save_checkpoint`](Self::save_checkpoint)
/// is the deliberate exception (an operator moving a checkpoint by hand).
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

    /// Sets the position of `name`, whatever it was: for operators and
    /// tools. Consumers commit with
    /// [`commit_read_model`](Self::commit_read_model), which only moves
    /// forward.
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
    /// checkpoint to `checkpoint`, atomically: both or neither. With a
    /// `fence`, only while that fence is the lease's current one.
    ///
    /// # Errors
    ///
    /// [`StoreError::CheckpointNotAfter`] when `checkpoint` is not after the
    /// saved one, [`StoreError::Fenced`] when the lease moved on, or a
    /// backend failure; in every case nothing was saved.
    fn commit_read_model<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Deletes the documents and the checkpoint of projection `name`,
    /// atomically (with a `fence`, only while it is current).
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`], or a backend failure.
    fn reset_read_model<'a>(
        &'a self,
        name: &'a str,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes, or renews, the lease on `name` for `holder` for `ttl` from now
    /// (the store's clock): granted when it is free, expired, or already
    /// `holder`'s. A renewal by the same holder keeps its token; a new
    /// holder gets a larger one.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LeaseGrant, StoreError>>;

    /// Gives the lease up, if `fence` still holds it, so a standby can take
    /// it at once instead of waiting out the term.
    ///
    /// # Errors
    ///
    /// A backend failure.
    fn release_lease<'a>(&'a self, fence: &'a Fence) -> BoxFuture<'a, Result<(), StoreError>>;

    /// This store as a SQLite store, for read models in SQL tables of their
    /// own (`None`: it is not one).
    #[cfg(feature = "sqlite")]
    #[doc(hidden)]
    fn as_sqlite(&self) -> Option<&SqliteStore> {
        None
    }

    /// This store as a PostgreSQL store, for read models in SQL tables of
    /// their own (`None`: it is not one).
    #[cfg(feature = "postgres")]
    #[doc(hidden)]
    fn as_postgres(&self) -> Option<&PostgresStore> {
        None
    }
}

/// Refuses a checkpoint that is not after the saved one: what every store
/// checks inside its commit.
pub(crate) fn check_forward(
    name: &str,
    saved: Option<u64>,
    attempted: u64,
) -> Result<(), StoreError> {
    match saved {
        Some(saved) if attempted <= saved => Err(StoreError::CheckpointNotAfter {
            name: name.to_owned(),
            saved,
            attempted,
        }),
        _ => Ok(()),
    }
}

/// Everything the engine needs from a store.
pub trait Store: EventStore + GlobalLog + SnapshotStore + CheckpointStore {}

impl<T: EventStore + GlobalLog + SnapshotStore + CheckpointStore> Store for T {}
