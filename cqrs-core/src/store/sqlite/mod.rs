//! The SQLite store: an embedded, durable event store in one file.
//!
//! The design (schema, group commit, durability) is documented on [`SqliteStore`].

mod log;
mod options;
mod rows;
mod schema;
mod watcher;
mod writer;

use std::any::Any;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot, watch};

use self::log::Page;
pub use self::options::{SqliteOptions, SqliteStats, Synchronous};
use self::rows::{EVENT_COLUMNS, event_row};
use self::schema::migrate;
use self::writer::{Job, Work, Writer, check_utf8_bodies, find_key_row};
use super::decode::Spent;
use super::inline::InlineSet;
use super::{
    AppendOutcome, CheckpointStore, DocumentChange, EventStore, ExpectedVersion, Fence, GlobalLog,
    KeptAppend, LeaseGrant, LogFilter, LogSlice, SavedReadModel, Snapshot, SnapshotStore,
};
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::{NewEvent, RecordedEvent, StreamId, Timestamp};

/// An event store in a SQLite database file (or in memory).
///
/// # Schema
///
/// Created on open by versioned migrations recorded in a `schema_version`
/// table; opening an up-to-date file changes nothing, and a file written by a
/// newer build is refused rather than misread.
///
/// ```sql
/// events (
///     position         INTEGER PRIMARY KEY,       -- the global position
///     stream_aggregate TEXT NOT NULL,
///     stream_id        TEXT NOT NULL,
///     version          INTEGER NOT NULL,
///     event_id         TEXT NOT NULL UNIQUE,      -- hyphenated UUID
///     event_name       TEXT NOT NULL,
///     schema_version   INTEGER NOT NULL,
///     payload          TEXT NOT NULL,             -- the JSON text, byte for byte
///     metadata         TEXT NOT NULL,             -- Metadata as JSON
///     timestamp_us     INTEGER NOT NULL,          -- microseconds since the Unix epoch
///     UNIQUE (stream_aggregate, stream_id, version)   -- also the index for stream reads
/// )
/// INDEX events_by_name      (event_name, position)       -- the global log by event name
/// INDEX events_by_aggregate (stream_aggregate, position) -- the global log by aggregate
/// snapshots   (stream_aggregate, stream_id, version, state BLOB, taken_at_us)
/// checkpoints (name PRIMARY KEY, position)
/// documents (                                    -- durable read models
///     projection TEXT NOT NULL,
///     collection TEXT NOT NULL,
///     key        TEXT NOT NULL,
///     body       TEXT NOT NULL CHECK (json_valid(body)),   -- the JSON text, as written
///     PRIMARY KEY (projection, collection, key)
/// )
/// ```
///
/// A payload that is not UTF-8 is kept as a BLOB in the same column, so every
/// payload comes back exactly as written.
///
/// A document body must be JSON text: the `CHECK` refuses anything else, so
/// SQLite's JSON functions (`body ->> '$.balance'`) work on every row of a
/// read model.
///
/// # Writes: one writer thread, group commit
///
/// SQLite allows one writer at a time, and rusqlite blocks. Every write
/// (appends, snapshots, checkpoints, read models) goes to a dedicated writer thread over a
/// channel. The thread takes whatever requests are waiting (up to
/// [`SqliteOptions::max_group`]) and commits them in **one** transaction: each
/// append runs inside its own savepoint with its own optimistic version check,
/// so a conflicting append fails alone and the others commit. Under load many
/// concurrent commands share one commit, and so one `fsync`.
///
/// A read-model commit is one such job: its document upserts and deletes and
/// its checkpoint run in one savepoint of the group's transaction. If any of
/// its statements fails, the savepoint is rolled back and the commit reports
/// the error with nothing of it saved; if the group's `COMMIT` fails, nothing
/// of the group is saved and every job reports it. A crash before the commit
/// reaches the WAL leaves the previous documents and checkpoint, together.
///
/// Positions are the table's `INTEGER PRIMARY KEY`, allocated by the single
/// writer inside its write lock: they become visible in increasing order, so
/// a reader tailing `position > last` never skips one. After each commit the
/// writer publishes the new head to [`GlobalLog::watch_head`].
///
/// # Reads
///
/// Reads run on tokio's blocking pool, on their own connections: in WAL mode
/// readers never wait for the writer. An in-memory database lives in one
/// connection, which readers then share with the writer (behind a mutex).
///
/// # Durability
///
/// The file is in WAL mode with `synchronous=FULL` by default: when an append
/// returns `Ok`, its transaction is on disk and survives a power loss, not
/// only a crash of the process. Group commit keeps that affordable (one sync
/// per group, not per append). [`Synchronous::Normal`] trades the last
/// transactions before a power loss (never consistency, and nothing on a mere
/// process crash) for fewer syncs.
///
/// # Other processes
///
/// Other processes may open the same file and append to it: SQLite locks
/// the file for each write transaction, and positions are allocated inside
/// that lock (one more than the highest stored), so they stay without gaps
/// or duplicates across processes, and every append keeps its version
/// check. The live head ([`GlobalLog::watch_head`]) follows their appends
/// too: once anything watches it, a thread polls `PRAGMA data_version`
/// (which changes whenever another connection commits) every
/// [`SqliteOptions::poll_interval`] and republishes the head. A write that
/// finds the file locked by another process waits up to 5 s
/// (`busy_timeout`) before it fails.
///
/// # Clones
///
/// Clones share the same database and writer thread; the thread stops when
/// the last clone is dropped.
///
/// # Examples
///
/// ```
/// use cqrs_core::store::{EventStore, ExpectedVersion, SqliteStore};
/// use cqrs_core::{NewEvent, StreamId};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cqrs_core::StoreError> {
/// let store = SqliteStore::in_memory()?; // or SqliteStore::open("events.db")?
/// let stream = StreamId::new("account", "a-1");
/// let event = NewEvent::new("Opened", r#"{"owner":"Ada"}"#);
/// let outcome = store.append(&stream, ExpectedVersion::Exact(0), vec![event]).await?;
/// assert_eq!((outcome.version, outcome.last_position), (1, 1));
/// assert_eq!(store.read_stream(&stream, 1).await?[0].payload, br#"{"owner":"Ada"}"#);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// Where the database lives (`None`: in memory).
    path: Option<PathBuf>,
    jobs: mpsc::Sender<Job>,
    readers: Readers,
    head: Arc<watch::Sender<u64>>,
    /// Why the watcher cannot read the file, while it cannot.
    unavailable: Arc<watch::Sender<Option<String>>>,
    /// The watcher thread, started by the first `watch_head` on a file.
    watcher: OnceLock<()>,
    poll_interval: Duration,
    stats: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    transactions: AtomicU64,
    writes: AtomicU64,
}

/// Where reads get a connection.
enum Readers {
    /// A file: read connections of their own, reused.
    Pool {
        path: PathBuf,
        idle: Mutex<Vec<Connection>>,
        keep: usize,
    },
    /// In memory: the writer's one connection.
    Writer(Arc<Mutex<Connection>>),
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field(
                "path",
                &self
                    .shared
                    .path
                    .as_deref()
                    .map_or_else(|| String::from(":memory:"), |p| p.display().to_string()),
            )
            .field("head", &*self.shared.head.borrow())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` with the
    /// default [`SqliteOptions`], and migrates its schema.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::new())
    }

    /// Opens the database file at `path` with `options`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the file cannot be opened or migrated.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path)
            .map_err(|e| backend(format!("cannot open SQLite file {}", path.display()), e))?;
        configure(&mut conn, options.synchronous)?;
        migrate(&mut conn, &format!("SQLite file {}", path.display()))?;
        let readers = Readers::Pool {
            path: path.clone(),
            idle: Mutex::new(Vec::new()),
            keep: options.idle_readers,
        };
        Self::start(Some(path), Arc::new(Mutex::new(conn)), readers, &options)
    }

    /// A private in-memory database: gone when the last clone is dropped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite cannot create it.
    pub fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteOptions::new();
        let mut conn = Connection::open_in_memory()
            .map_err(|e| backend("cannot open an in-memory SQLite database", e))?;
        configure(&mut conn, options.synchronous)?;
        migrate(&mut conn, "the in-memory SQLite database")?;
        let conn = Arc::new(Mutex::new(conn));
        let readers = Readers::Writer(Arc::clone(&conn));
        Self::start(None, conn, readers, &options)
    }

    fn start(
        path: Option<PathBuf>,
        conn: Arc<Mutex<Connection>>,
        readers: Readers,
        options: &SqliteOptions,
    ) -> Result<Self, StoreError> {
        let head = lock(&conn)
            .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| backend("cannot read the head position", e))?;
        let head = Arc::new(watch::Sender::new(to_u64(head)));
        let stats = Arc::new(Counters::default());
        let (jobs, rx) = mpsc::channel(options.max_group.max(16) * 4);
        let writer = Writer {
            conn,
            jobs: rx,
            head: Arc::clone(&head),
            stats: Arc::clone(&stats),
            max_group: options.max_group,
        };
        std::thread::Builder::new()
            .name(String::from("cqrs-sqlite-writer"))
            .spawn(move || writer.run())
            .map_err(|e| backend("cannot start the SQLite writer thread", e))?;
        Ok(Self {
            shared: Arc::new(Shared {
                path,
                jobs,
                readers,
                head,
                unavailable: Arc::new(watch::Sender::new(None)),
                watcher: OnceLock::new(),
                poll_interval: options.poll_interval,
                stats,
            }),
        })
    }

    /// How many transactions the writer committed, and how many writes they
    /// carried: `writes / transactions` is the average group size.
    pub fn stats(&self) -> SqliteStats {
        SqliteStats {
            transactions: self.shared.stats.transactions.load(Ordering::Relaxed),
            writes: self.shared.stats.writes.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` on the writer's connection, in a savepoint of a write
    /// transaction (committed with the others of its group): for read
    /// models kept in SQL tables of their own. An error from `work` rolls
    /// back what it did.
    pub(crate) async fn run_in_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let work: Work =
            Box::new(move |conn| work(conn).map(|t| Box::new(t) as Box<dyn Any + Send>));
        let done = self
            .write(|reply| Job::Run {
                work: Some(work),
                reply,
            })
            .await?;
        done.downcast::<T>()
            .map(|t| *t)
            .map_err(|_| backend_message("a read model's work answered another type"))
    }

    /// Checks `fence` and moves the checkpoint of `name` to `checkpoint`
    /// (refused unless after the saved one), on the writer's connection:
    /// what a read model's own transaction does before its writes.
    pub(crate) fn advance(
        conn: &rusqlite::Connection,
        name: &str,
        checkpoint: u64,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        writer::check_fence(conn, name, fence)?;
        writer::commit_read_model_rows(conn, name, &[], checkpoint)
    }

    /// Checks `fence` and deletes the checkpoint of `name`.
    pub(crate) fn forget_checkpoint(
        conn: &rusqlite::Connection,
        name: &str,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        writer::check_fence(conn, name, fence)?;
        conn.execute("DELETE FROM checkpoints WHERE name = ?1", [name])
            .map(drop)
            .map_err(|e| backend(format!("cannot reset the checkpoint of `{name}`"), e))
    }

    /// Runs `read` on a read connection, here and now (blocking): for a
    /// query answered from a read model's own tables.
    pub(crate) fn read_now<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.shared.readers.with(read)
    }

    /// Sends `job` to the writer thread and waits for its answer.
    async fn write<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        if self.shared.jobs.send(job(reply)).await.is_err() {
            return Err(writer_gone());
        }
        answer.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Runs `read` on a read connection, on tokio's blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.readers.with(read))
            .await
            .map_err(|e| backend("a SQLite read panicked", e))?
    }
}

impl Readers {
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Self::Writer(conn) => read(&lock(conn)),
            Self::Pool { path, idle, keep } => {
                let conn = lock(idle).pop();
                let conn = match conn {
                    Some(conn) => conn,
                    None => open_reader(path)?,
                };
                let result = read(&conn);
                let mut idle = lock(idle);
                if idle.len() < *keep {
                    idle.push(conn);
                }
                result
            }
        }
    }
}

pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| backend(format!("cannot open SQLite file {}", path.display()), e))?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
        .map_err(|e| backend("cannot configure a SQLite read connection", e))?;
    Ok(conn)
}

fn configure(conn: &mut Connection, synchronous: Synchronous) -> Result<(), StoreError> {
    // First: two processes that open one new file at once (a writer and a
    // relay started together) meet while one of them switches it to WAL or
    // migrates it, and the other must wait, not fail with "database is
    // locked".
    conn.busy_handler(Some(wait_for_the_write_lock))
        .map_err(|e| backend("cannot configure the SQLite connection", e))?;
    switch_to_wal(conn)?;
    conn.execute_batch(&format!("PRAGMA synchronous = {};", synchronous.pragma()))
        .map_err(|e| backend("cannot configure the SQLite connection", e))
}

/// Switches the file to WAL, trying again while another connection holds a
/// lock on it. SQLite answers "database is locked" at once, without calling
/// the busy handler, when two connections that both read the file want to
/// change its journal mode: waiting there would deadlock, so one of them
/// must let go and start over.
fn switch_to_wal(conn: &Connection) -> Result<(), StoreError> {
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        // `journal_mode` answers with the mode in force ("memory" in memory).
        match conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            done => return done.map_err(|e| backend("cannot switch SQLite to WAL mode", e)),
        }
    }
}

/// How the writer waits while another process holds the write lock: a try
/// every millisecond, for 5 s. SQLite's `busy_timeout` sleeps longer and
/// longer between tries, up to 100 ms, so a process that waits misses the
/// moments the other lets the lock go, and the other commits group after
/// group meanwhile: every command waiting here then meets a conflict, again
/// on each retry.
fn wait_for_the_write_lock(tries: i32) -> bool {
    std::thread::sleep(Duration::from_millis(1));
    tries < 5_000
}

impl EventStore for SqliteStore {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendOutcome, StoreError>> {
        Box::pin(async move {
            stream.check()?;
            if events.is_empty() {
                return Err(StoreError::InvalidAppend {
                    stream: stream.clone(),
                    reason: String::from("no events to append"),
                });
            }
            self.write(|reply| Job::Append {
                stream: stream.clone(),
                expected,
                events,
                inline: None,
                reply,
            })
            .await
        })
    }

    fn supports_inline(&self) -> bool {
        true
    }

    fn append_inline<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        inline: &'a InlineSet,
    ) -> BoxFuture<'a, Result<AppendOutcome, StoreError>> {
        Box::pin(async move {
            stream.check()?;
            if events.is_empty() {
                return Err(StoreError::InvalidAppend {
                    stream: stream.clone(),
                    reason: String::from("no events to append"),
                });
            }
            let outcome = self
                .write(|reply| Job::Append {
                    stream: stream.clone(),
                    expected,
                    events,
                    inline: Some(Arc::clone(inline)),
                    reply,
                })
                .await?;
            for projection in inline.iter() {
                projection.published(outcome.last_position);
            }
            Ok(outcome)
        })
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
    ) -> BoxFuture<'a, Result<Vec<Arc<RecordedEvent>>, StoreError>> {
        let stream = stream.clone();
        Box::pin(self.read(move |conn| {
            stream.check()?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE stream_aggregate = ?1 AND stream_id = ?2 AND version >= ?3
                 ORDER BY version"
            );
            let fail = |e| backend(format!("cannot read stream {stream}"), e);
            let mut statement = conn.prepare_cached(&sql).map_err(fail)?;
            let mut rows = statement
                .query(params![stream.aggregate, stream.id, to_i64(from_version)])
                .map_err(fail)?;
            let mut records = Vec::new();
            while let Some(row) = rows.next().map_err(fail)? {
                let row = event_row(row)
                    .map_err(|e| e.into_store(|| format!("cannot read stream {stream}")))?;
                records.push(Arc::new(row.into_record()));
            }
            Ok(records)
        }))
    }

    fn find_key<'a>(
        &'a self,
        stream: &'a StreamId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeptAppend>, StoreError>> {
        let (stream, key) = (stream.clone(), key.to_owned());
        Box::pin(self.read(move |conn| {
            stream.check()?;
            find_key_row(conn, &stream, &key)
        }))
    }
}

impl GlobalLog for SqliteStore {
    fn read_log<'a>(
        &'a self,
        after: u64,
        filter: &'a LogFilter,
        limit: usize,
    ) -> BoxFuture<'a, Result<LogSlice, StoreError>> {
        self.read_log_recycling(after, filter, limit, Vec::new())
    }

    fn read_log_recycling<'a>(
        &'a self,
        after: u64,
        filter: &'a LogFilter,
        limit: usize,
        spent: Vec<Arc<RecordedEvent>>,
    ) -> BoxFuture<'a, Result<LogSlice, StoreError>> {
        let filter = filter.clone();
        let limit = limit.max(1);
        Box::pin(self.read(move |conn| {
            let fail = |e| backend(format!("cannot read the global log after {after}"), e);
            // The head first: every position up to it is committed (one
            // writer allocates positions in commit order), so reading up to
            // it, even in a later statement, sees no gap.
            let head = to_u64(
                conn.prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")
                    .and_then(|mut s| s.query_row([], |r| r.get(0)))
                    .map_err(fail)?,
            );
            let mut page = Page {
                records: Vec::with_capacity(limit.min(head.saturating_sub(after) as usize)),
                spent: Spent::new(spent),
                limit,
            };
            page.read(conn, &filter, after, head).map_err(|e| {
                e.into_store(|| format!("cannot read the global log after {after}"))
            })?;
            let through = if page.records.len() >= limit {
                page.records.last().map_or(after, |r| r.position)
            } else {
                head.max(after)
            };
            Ok(LogSlice {
                events: page.records,
                through,
            })
        }))
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.read(|conn| {
            conn.prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map(to_u64)
                .map_err(|e| backend("cannot read the head position", e))
        }))
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        let shared = &*self.shared;
        if let Some(path) = &shared.path {
            shared.watcher.get_or_init(|| {
                watcher::spawn(
                    path.clone(),
                    shared.poll_interval,
                    &shared.head,
                    &shared.unavailable,
                );
            });
        }
        shared.head.subscribe()
    }

    fn watch_unavailable(&self) -> Option<watch::Receiver<Option<String>>> {
        self.shared
            .path
            .is_some()
            .then(|| self.shared.unavailable.subscribe())
    }
}

impl SnapshotStore for SqliteStore {
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        let stream = stream.clone();
        Box::pin(self.read(move |conn| {
            conn.prepare_cached(
                "SELECT version, state, taken_at_us FROM snapshots
                 WHERE stream_aggregate = ?1 AND stream_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![stream.aggregate, stream.id], |r| {
                    Ok(Snapshot {
                        version: to_u64(r.get(0)?),
                        state: r.get(1)?,
                        taken_at: Timestamp(r.get(2)?),
                    })
                })
                .optional()
            })
            .map_err(|e| backend(format!("cannot load the snapshot of {stream}"), e))
        }))
    }

    fn save_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        snapshot: Snapshot,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write(move |reply| Job::Snapshot {
            stream: stream.clone(),
            snapshot,
            reply,
        }))
    }
}

impl CheckpointStore for SqliteStore {
    fn as_sqlite(&self) -> Option<&SqliteStore> {
        Some(self)
    }

    fn load_checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        let name = name.to_owned();
        Box::pin(self.read(move |conn| {
            conn.prepare_cached("SELECT position FROM checkpoints WHERE name = ?1")
                .and_then(|mut s| s.query_row([&name], |r| r.get(0)).optional())
                .map(|p| p.map(to_u64))
                .map_err(|e| backend(format!("cannot load the checkpoint of `{name}`"), e))
        }))
    }

    fn save_checkpoint<'a>(
        &'a self,
        name: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write(move |reply| Job::Checkpoint {
            name: name.to_owned(),
            position,
            reply,
        }))
    }

    fn load_read_model<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<SavedReadModel, StoreError>> {
        let name = name.to_owned();
        Box::pin(self.read(move |conn| load_read_model_rows(conn, &name)))
    }

    fn commit_read_model<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            check_utf8_bodies(name, &changes)?;
            self.write(|reply| Job::CommitReadModel {
                name: name.to_owned(),
                changes,
                checkpoint,
                fence: fence.cloned(),
                reply,
            })
            .await
        })
    }

    fn reset_read_model<'a>(
        &'a self,
        name: &'a str,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write(move |reply| Job::ResetReadModel {
            name: name.to_owned(),
            fence: fence.cloned(),
            reply,
        }))
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LeaseGrant, StoreError>> {
        Box::pin(self.write(move |reply| Job::AcquireLease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl,
            reply,
        }))
    }

    fn release_lease<'a>(&'a self, fence: &'a Fence) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write(move |reply| Job::ReleaseLease {
            fence: fence.clone(),
            reply,
        }))
    }
}

/// The saved read model of `name`, read in one statement (one snapshot:
/// the checkpoint and the documents of the same commit).
pub(super) fn load_read_model_rows(
    conn: &rusqlite::Connection,
    name: &str,
) -> Result<SavedReadModel, StoreError> {
    let mut saved = SavedReadModel::default();
    conn.prepare_cached(
        "SELECT c.position, d.collection, d.key, d.body
         FROM (SELECT ?1 AS name) AS p
         LEFT JOIN checkpoints AS c ON c.name = p.name
         LEFT JOIN documents AS d ON d.projection = p.name
         ORDER BY d.collection, d.key",
    )
    .and_then(|mut s| {
        let mut rows = s.query([name])?;
        while let Some(row) = rows.next()? {
            saved.checkpoint = row.get::<_, Option<i64>>(0)?.map(to_u64);
            let Some(collection) = row.get::<_, Option<String>>(1)? else {
                continue;
            };
            let body = match row.get_ref(3)? {
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.to_vec(),
                other => {
                    return Err(rusqlite::Error::InvalidColumnType(
                        3,
                        String::from("body"),
                        other.data_type(),
                    ));
                }
            };
            saved.documents.push((collection, row.get(2)?, body));
        }
        Ok(())
    })
    .map_err(|e| backend(format!("cannot load the read model `{name}`"), e))?;
    Ok(saved)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves no Rust state half-written;
    // SQLite itself rolls back an unfinished transaction.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn backend(
    message: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Backend {
        message: message.into(),
        source: Some(Box::new(source)),
    }
}

fn backend_message(message: &str) -> StoreError {
    StoreError::Backend {
        message: message.to_owned(),
        source: None,
    }
}

fn writer_gone() -> StoreError {
    StoreError::Backend {
        message: String::from("the SQLite writer thread stopped"),
        source: None,
    }
}

/// SQLite integers are signed; positions and versions never reach 2^63.
fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
