//! The SQLite store: an embedded, durable event store in one file.
//!
//! The design (schema, group commit, durability) is documented on [`SqliteStore`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::decode::{EventRow, Spent, decode_metadata};
use super::{
    AppendOutcome, CheckpointStore, DocumentChange, EventStore, ExpectedVersion, GlobalLog,
    LogFilter, LogSlice, SavedReadModel, Snapshot, SnapshotStore,
};
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::{NewEvent, RecordedEvent, StreamId, Timestamp};

/// How hard SQLite works to keep a committed transaction through a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=FULL`: every commit is synced to disk before the append
    /// returns. The default: an acknowledged event is never lost.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the WAL is synced at checkpoints only. Survives a
    /// crash of the process; a power loss may drop the last commits (never
    /// corrupts the file).
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Settings of a [`SqliteStore`].
///
/// # Examples
///
/// ```
/// use cqrs_core::store::{SqliteOptions, Synchronous};
/// let options = SqliteOptions::new().synchronous(Synchronous::Normal).max_group(64);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    synchronous: Synchronous,
    max_group: usize,
    idle_readers: usize,
}

impl SqliteOptions {
    /// The defaults: `synchronous=FULL`, groups of up to 256 writes, up to 4
    /// idle read connections kept.
    pub fn new() -> Self {
        Self {
            synchronous: Synchronous::Full,
            max_group: 256,
            idle_readers: 4,
        }
    }

    /// Sets the durability level (see [`Synchronous`]).
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// The most writes committed in one transaction (at least 1; 1 turns
    /// group commit off).
    #[must_use]
    pub fn max_group(mut self, max_group: usize) -> Self {
        self.max_group = max_group.max(1);
        self
    }

    /// How many idle read connections are kept open for reuse.
    #[must_use]
    pub fn idle_readers(mut self, idle_readers: usize) -> Self {
        self.idle_readers = idle_readers;
        self
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters of the writer thread, to see group commit at work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SqliteStats {
    /// Write transactions committed.
    pub transactions: u64,
    /// Writes (appends, snapshots, checkpoints, read-model commits and
    /// resets) committed by them.
    pub writes: u64,
}

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
/// Another process may open the same file (SQLite locks it), but the live head
/// follows the appends made through this store only: events written by another
/// process are read by every read, and announced by `watch_head` at this
/// store's next append.
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

/// A write request for the writer thread.
enum Job {
    Append {
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    Snapshot {
        stream: StreamId,
        snapshot: Snapshot,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Checkpoint {
        name: String,
        position: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A read model's document changes and its checkpoint, both or neither.
    CommitReadModel {
        name: String,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Deletes a read model's documents and checkpoint.
    ResetReadModel {
        name: String,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
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

/// The migrations, in order; each runs once, recorded in `schema_version`.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE events (
        position         INTEGER PRIMARY KEY,
        stream_aggregate TEXT NOT NULL,
        stream_id        TEXT NOT NULL,
        version          INTEGER NOT NULL,
        event_id         TEXT NOT NULL UNIQUE,
        event_name       TEXT NOT NULL,
        schema_version   INTEGER NOT NULL,
        payload          TEXT NOT NULL,
        metadata         TEXT NOT NULL,
        timestamp_us     INTEGER NOT NULL,
        UNIQUE (stream_aggregate, stream_id, version)
    );
    CREATE INDEX events_by_name ON events (event_name, position);
    CREATE INDEX events_by_aggregate ON events (stream_aggregate, position);
    CREATE TABLE snapshots (
        stream_aggregate TEXT NOT NULL,
        stream_id        TEXT NOT NULL,
        version          INTEGER NOT NULL,
        state            BLOB NOT NULL,
        taken_at_us      INTEGER NOT NULL,
        PRIMARY KEY (stream_aggregate, stream_id)
    ) WITHOUT ROWID;
    CREATE TABLE checkpoints (
        name     TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    ) WITHOUT ROWID;",
    ),
    (
        2,
        "CREATE TABLE documents (
        projection TEXT NOT NULL,
        collection TEXT NOT NULL,
        key        TEXT NOT NULL,
        body       TEXT NOT NULL CHECK (json_valid(body)),
        PRIMARY KEY (projection, collection, key)
    ) WITHOUT ROWID;",
    ),
];

/// The columns of an event row, in the order `event_row` reads them (a
/// macro, so statements can be built with `concat!`).
macro_rules! event_columns {
    () => {
        "position, stream_aggregate, stream_id, version, event_id, \
         event_name, schema_version, payload, metadata, timestamp_us"
    };
}

const EVENT_COLUMNS: &str = event_columns!();

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
        configure(&conn, options.synchronous)?;
        migrate(&mut conn)?;
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
        configure(&conn, options.synchronous)?;
        migrate(&mut conn)?;
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

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| backend(format!("cannot open SQLite file {}", path.display()), e))?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
        .map_err(|e| backend("cannot configure a SQLite read connection", e))?;
    Ok(conn)
}

fn configure(conn: &Connection, synchronous: Synchronous) -> Result<(), StoreError> {
    // `journal_mode` answers with the mode in force ("memory" in memory).
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(|e| backend("cannot switch SQLite to WAL mode", e))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000;",
        synchronous.pragma()
    ))
    .map_err(|e| backend("cannot configure the SQLite connection", e))
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let fail = |e| backend("cannot migrate the SQLite schema", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY,
            applied_at_us INTEGER NOT NULL
        )",
    )
    .map_err(fail)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > latest {
        return Err(StoreError::Backend {
            message: format!(
                "the SQLite database has schema version {current}, newer than version {latest} this build knows"
            ),
            source: None,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at_us) VALUES (?1, ?2)",
            params![version, Timestamp::now().as_micros()],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// The writer thread's state.
struct Writer {
    conn: Arc<Mutex<Connection>>,
    jobs: mpsc::Receiver<Job>,
    head: Arc<watch::Sender<u64>>,
    stats: Arc<Counters>,
    max_group: usize,
}

/// What one job did inside the group transaction, answered after commit.
enum Done {
    Append(Result<AppendOutcome, StoreError>),
    Unit(Result<(), StoreError>),
}

impl Writer {
    /// Commits waiting jobs in groups until every store clone is dropped.
    fn run(mut self) {
        while let Some(first) = self.jobs.blocking_recv() {
            let mut group = vec![first];
            while group.len() < self.max_group {
                match self.jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&self, group: Vec<Job>) {
        let conn = lock(&self.conn);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let message = format!("cannot start a SQLite write transaction: {e}");
            for job in group {
                let done = Done::failed(&job, &message);
                job.answer(done);
            }
            return;
        }
        let mut done = Vec::with_capacity(group.len());
        let mut aborted = None;
        for job in &group {
            if aborted.is_some() {
                done.push(Done::failed(job, "the write transaction was aborted"));
                continue;
            }
            done.push(run_in_savepoint(&conn, job));
            // Some errors (I/O, disk full) make SQLite roll back the whole
            // transaction; what ran before is gone, what follows must not run
            // outside a transaction.
            if conn.is_autocommit() {
                aborted = Some(String::from("SQLite rolled back the write transaction"));
            }
        }
        let committed = match aborted {
            Some(reason) => Err(reason),
            None => conn
                .execute_batch("COMMIT")
                .map_err(|e| format!("cannot commit the SQLite write transaction: {e}")),
        };
        if let Err(reason) = committed {
            if !conn.is_autocommit() {
                // Best effort: the connection is unusable if this fails too.
                let _ = conn.execute_batch("ROLLBACK");
            }
            for (job, done) in group.into_iter().zip(done) {
                let done = if done.is_ok() {
                    Done::failed(&job, &reason)
                } else {
                    done
                };
                job.answer(done);
            }
            return;
        }
        drop(conn);
        let writes = done.iter().filter(|d| d.is_ok()).count() as u64;
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        self.stats.writes.fetch_add(writes, Ordering::Relaxed);
        let head = done
            .iter()
            .filter_map(|d| match d {
                Done::Append(Ok(outcome)) => Some(outcome.last_position),
                _ => None,
            })
            .max();
        if let Some(head) = head {
            self.head.send_if_modified(|h| {
                let moved = head > *h;
                if moved {
                    *h = head;
                }
                moved
            });
        }
        for (job, done) in group.into_iter().zip(done) {
            job.answer(done);
        }
    }
}

impl Done {
    fn is_ok(&self) -> bool {
        match self {
            Self::Append(r) => r.is_ok(),
            Self::Unit(r) => r.is_ok(),
        }
    }

    fn failed(job: &Job, reason: &str) -> Self {
        let error = || StoreError::Backend {
            message: reason.to_owned(),
            source: None,
        };
        match job {
            Job::Append { .. } => Self::Append(Err(error())),
            Job::Snapshot { .. }
            | Job::Checkpoint { .. }
            | Job::CommitReadModel { .. }
            | Job::ResetReadModel { .. } => Self::Unit(Err(error())),
        }
    }
}

impl Job {
    fn answer(self, done: Done) {
        // A caller that stopped waiting no longer needs the answer.
        match (self, done) {
            (Job::Append { reply, .. }, Done::Append(r)) => {
                let _ = reply.send(r);
            }
            (
                Job::Snapshot { reply, .. }
                | Job::Checkpoint { reply, .. }
                | Job::CommitReadModel { reply, .. }
                | Job::ResetReadModel { reply, .. },
                Done::Unit(r),
            ) => {
                let _ = reply.send(r);
            }
            _ => unreachable!("each job is answered with its own kind of result"),
        }
    }
}

/// Runs one job in a savepoint, so its failure undoes it alone.
fn run_in_savepoint(conn: &Connection, job: &Job) -> Done {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        return Done::failed(job, &format!("cannot open a SQLite savepoint: {e}"));
    }
    let done = match job {
        Job::Append {
            stream,
            expected,
            events,
            ..
        } => Done::Append(append_rows(conn, stream, *expected, events)),
        Job::Snapshot {
            stream, snapshot, ..
        } => Done::Unit(save_snapshot_row(conn, stream, snapshot)),
        Job::Checkpoint { name, position, .. } => {
            Done::Unit(save_checkpoint_row(conn, name, *position))
        }
        Job::CommitReadModel {
            name,
            changes,
            checkpoint,
            ..
        } => Done::Unit(commit_read_model_rows(conn, name, changes, *checkpoint)),
        Job::ResetReadModel { name, .. } => Done::Unit(reset_read_model_rows(conn, name)),
    };
    let end = if done.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch(end)
    {
        return Done::failed(job, &format!("cannot close a SQLite savepoint: {e}"));
    }
    done
}

fn append_rows(
    conn: &Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendOutcome, StoreError> {
    let fail = |e| backend(format!("cannot append to stream {stream}"), e);
    let current: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(version), 0) FROM events
             WHERE stream_aggregate = ?1 AND stream_id = ?2",
        )
        .and_then(|mut s| s.query_row(params![stream.aggregate, stream.id], |r| r.get(0)))
        .map_err(fail)?;
    let current = to_u64(current);
    if let ExpectedVersion::Exact(expected) = expected
        && expected != current
    {
        return Err(StoreError::Conflict {
            stream: stream.clone(),
            expected,
            actual: current,
        });
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (stream_aggregate, stream_id, version, event_id, event_name,
                                 schema_version, payload, metadata, timestamp_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(fail)?;
    let mut version = current;
    let mut first_position = 0;
    let mut last_position = 0;
    for event in events {
        version += 1;
        let metadata = serde_json::to_string(&event.metadata).map_err(|e| {
            backend(
                format!("cannot encode the metadata of an event of {stream}"),
                e,
            )
        })?;
        insert
            .execute(params![
                stream.aggregate,
                stream.id,
                to_i64(version),
                event.event_id.hyphenated().to_string(),
                event.event_name,
                event.schema_version,
                Payload(&event.payload),
                metadata,
                event.timestamp.as_micros(),
            ])
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::InvalidAppend {
                    stream: stream.clone(),
                    reason: format!(
                        "event id {} is already stored ({e})",
                        event.event_id.hyphenated()
                    ),
                },
                _ => fail(e),
            })?;
        last_position = to_u64(conn.last_insert_rowid());
        if first_position == 0 {
            first_position = last_position;
        }
    }
    Ok(AppendOutcome {
        version,
        first_position,
        last_position,
    })
}

fn save_snapshot_row(
    conn: &Connection,
    stream: &StreamId,
    snapshot: &Snapshot,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO snapshots (stream_aggregate, stream_id, version, state, taken_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (stream_aggregate, stream_id) DO UPDATE
         SET version = excluded.version, state = excluded.state, taken_at_us = excluded.taken_at_us
         WHERE excluded.version > snapshots.version",
    )
    .and_then(|mut s| {
        s.execute(params![
            stream.aggregate,
            stream.id,
            to_i64(snapshot.version),
            snapshot.state,
            snapshot.taken_at.as_micros(),
        ])
    })
    .map(drop)
    .map_err(|e| backend(format!("cannot save the snapshot of {stream}"), e))
}

fn save_checkpoint_row(conn: &Connection, name: &str, position: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (name, position) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    )
    .and_then(|mut s| s.execute(params![name, to_i64(position)]))
    .map(drop)
    .map_err(|e| backend(format!("cannot save the checkpoint of `{name}`"), e))
}

/// Applies `changes` to the documents of `name` in order, then sets its
/// checkpoint. Runs inside the job's savepoint: a failing statement (a body
/// the `json_valid` check refuses, an I/O error) rolls all of it back.
fn commit_read_model_rows(
    conn: &Connection,
    name: &str,
    changes: &[DocumentChange],
    checkpoint: u64,
) -> Result<(), StoreError> {
    let fail = |e| backend(format!("cannot commit the read model `{name}`"), e);
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO documents (projection, collection, key, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (projection, collection, key) DO UPDATE SET body = excluded.body",
        )
        .map_err(fail)?;
    let mut delete = conn
        .prepare_cached(
            "DELETE FROM documents WHERE projection = ?1 AND collection = ?2 AND key = ?3",
        )
        .map_err(fail)?;
    for change in changes {
        let DocumentChange {
            collection,
            key,
            body,
        } = change;
        match body {
            Some(body) => upsert.execute(params![name, collection, key, Payload(body)]),
            None => delete.execute(params![name, collection, key]),
        }
        .map_err(|e| {
            let what = format!("document `{collection}/{key}` of the read model `{name}`");
            match e.sqlite_error_code() {
                // The only constraint a write can break: `json_valid(body)`.
                Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    backend(format!("cannot save {what}: the body is not JSON text"), e)
                }
                _ => backend(format!("cannot save {what}"), e),
            }
        })?;
    }
    save_checkpoint_row(conn, name, checkpoint)
}

/// Deletes the documents and the checkpoint of `name`, in the job's savepoint.
fn reset_read_model_rows(conn: &Connection, name: &str) -> Result<(), StoreError> {
    let fail = |e| backend(format!("cannot reset the read model `{name}`"), e);
    for sql in [
        "DELETE FROM documents WHERE projection = ?1",
        "DELETE FROM checkpoints WHERE name = ?1",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([name]))
            .map_err(fail)?;
    }
    Ok(())
}

/// Refuses, before the writer, a document body that cannot be JSON text.
fn check_utf8_bodies(name: &str, changes: &[DocumentChange]) -> Result<(), StoreError> {
    for change in changes {
        if let Some(body) = &change.body
            && let Err(e) = std::str::from_utf8(body)
        {
            return Err(backend(
                format!(
                    "document `{}/{}` of the read model `{name}` is not UTF-8 JSON text",
                    change.collection, change.key
                ),
                e,
            ));
        }
    }
    Ok(())
}

/// A payload bound as TEXT when it is UTF-8 (JSON always is), else as a BLOB.
struct Payload<'a>(&'a [u8]);

impl ToSql for Payload<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match std::str::from_utf8(self.0) {
            Ok(_) => ValueRef::Text(self.0),
            Err(_) => ValueRef::Blob(self.0),
        }))
    }
}

/// Reads an event row laid out as `EVENT_COLUMNS`, borrowing its text.
fn event_row<'r>(row: &'r rusqlite::Row<'_>) -> rusqlite::Result<EventRow<'r>> {
    let conversion = |i, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
    };
    let text = |i| -> rusqlite::Result<&'r str> { Ok(row.get_ref(i)?.as_str()?) };
    // The id and the metadata are parsed from the bytes: their parsers
    // check what they read, no need to check the text as UTF-8 first.
    let bytes = |i| -> rusqlite::Result<&'r [u8]> { Ok(row.get_ref(i)?.as_bytes()?) };
    let event_id = Uuid::try_parse_ascii(bytes(4)?).map_err(|e| conversion(4, Box::new(e)))?;
    let payload = match row.get_ref(7)? {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
        other => {
            return Err(rusqlite::Error::InvalidColumnType(
                7,
                String::from("payload"),
                other.data_type(),
            ));
        }
    };
    let metadata = decode_metadata(bytes(8)?).map_err(|e| conversion(8, Box::new(e)))?;
    Ok(EventRow {
        position: to_u64(row.get(0)?),
        aggregate: text(1)?,
        stream_id: text(2)?,
        version: to_u64(row.get(3)?),
        event_id,
        event_name: text(5)?,
        schema_version: row.get(6)?,
        payload,
        metadata,
        timestamp: Timestamp(row.get(9)?),
    })
}

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecordedEvent> {
    event_row(row).map(|row| row.to_record())
}

/// Rows of the log after a position, up to a head, in order.
const LOG_ROWS: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events
     WHERE position > ?1 AND position <= ?2
     ORDER BY position
     LIMIT ?3"
);

/// The same, only the rows a filter selects (its lists as JSON arrays,
/// `NULL` for no condition).
const LOG_ROWS_SELECTED: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events
     WHERE position > ?1 AND position <= ?2
       AND (?3 IS NULL OR event_name IN (SELECT value FROM json_each(?3)))
       AND (?4 IS NULL OR stream_aggregate IN (SELECT value FROM json_each(?4)))
     ORDER BY position
     LIMIT ?5"
);

/// How many rows a filtered read checks itself before it decides whether
/// SQLite should check the rest.
const PROBE_ROWS: usize = 256;

/// A page of the log being read.
struct Page {
    records: Vec<Arc<RecordedEvent>>,
    spent: Spent,
    limit: usize,
}

/// How a scan of rows checked here ended.
enum Scan {
    /// The page is full, or every row up to the head was seen.
    Finished,
    /// Most rows are filtered out: the rest is better selected by SQLite.
    /// Every row up to this position was seen.
    Sparse(u64),
}

impl Page {
    /// Reads the events of `filter` in `(after, head]` until the page is full.
    ///
    /// A filter is checked in one of two ways. SQLite checks its lists
    /// against each row: cheap per row left out, but it costs about as much
    /// again per row kept as decoding the row's text does. So the rows are
    /// first checked here, where a row left out still costs its step but a
    /// row kept costs a comparison of its name; once a probe shows that most
    /// rows are left out, SQLite selects the rest of the page.
    fn read(
        &mut self,
        conn: &Connection,
        filter: &LogFilter,
        after: u64,
        head: u64,
    ) -> rusqlite::Result<()> {
        let everything = filter.events.is_empty() && filter.aggregates.is_empty();
        if everything {
            return self.read_rows(conn, after, head);
        }
        match self.read_rows_checking(conn, filter, after, head)? {
            Scan::Finished => Ok(()),
            Scan::Sparse(seen) => self.read_selected(conn, filter, seen, head),
        }
    }

    /// Every row, up to the page's limit.
    fn read_rows(&mut self, conn: &Connection, after: u64, head: u64) -> rusqlite::Result<()> {
        let mut statement = conn.prepare_cached(LOG_ROWS)?;
        let mut rows = statement.query(params![to_i64(after), to_i64(head), self.room()])?;
        while let Some(row) = rows.next()? {
            self.records.push(self.spent.record(event_row(row)?));
        }
        Ok(())
    }

    /// Every row, keeping those `filter` selects, until the page is full or
    /// the probe finds the filter sparse.
    fn read_rows_checking(
        &mut self,
        conn: &Connection,
        filter: &LogFilter,
        after: u64,
        head: u64,
    ) -> rusqlite::Result<Scan> {
        let mut statement = conn.prepare_cached(LOG_ROWS)?;
        // No limit: it counts rows kept, not rows seen.
        let mut rows = statement.query(params![to_i64(after), to_i64(head), -1])?;
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            seen += 1;
            if selects(filter, row)? {
                self.records.push(self.spent.record(event_row(row)?));
                if self.records.len() >= self.limit {
                    return Ok(Scan::Finished);
                }
            } else if seen >= PROBE_ROWS && self.records.len() * 2 < seen {
                return Ok(Scan::Sparse(to_u64(row.get(0)?)));
            }
        }
        Ok(Scan::Finished)
    }

    /// The rows `filter` selects, selected by SQLite, until the page is full.
    fn read_selected(
        &mut self,
        conn: &Connection,
        filter: &LogFilter,
        after: u64,
        head: u64,
    ) -> rusqlite::Result<()> {
        let mut statement = conn.prepare_cached(LOG_ROWS_SELECTED)?;
        let mut rows = statement.query(params![
            to_i64(after),
            to_i64(head),
            json_list(&filter.events),
            json_list(&filter.aggregates),
            self.room()
        ])?;
        while let Some(row) = rows.next()? {
            self.records.push(self.spent.record(event_row(row)?));
        }
        Ok(())
    }

    /// How many more events the page takes, as an SQL limit.
    fn room(&self) -> i64 {
        i64::try_from(self.limit.saturating_sub(self.records.len())).unwrap_or(i64::MAX)
    }
}

/// Whether `filter` selects the row: its name and aggregate compared as
/// SQLite's `IN` compares them (byte for byte).
fn selects(filter: &LogFilter, row: &rusqlite::Row<'_>) -> rusqlite::Result<bool> {
    let listed = |names: &[String], column| -> rusqlite::Result<bool> {
        if names.is_empty() {
            return Ok(true);
        }
        let value = row.get_ref(column)?.as_bytes()?;
        Ok(names.iter().any(|name| name.as_bytes() == value))
    };
    Ok(listed(&filter.events, 5)? && listed(&filter.aggregates, 1)?)
}

/// The filter's lists as JSON arrays for `json_each`, `NULL` when empty.
fn json_list(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| serde_json::Value::from(names.to_vec()).to_string())
}

impl EventStore for SqliteStore {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendOutcome, StoreError>> {
        Box::pin(async move {
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
                reply,
            })
            .await
        })
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
    ) -> BoxFuture<'a, Result<Vec<Arc<RecordedEvent>>, StoreError>> {
        let stream = stream.clone();
        Box::pin(self.read(move |conn| {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE stream_aggregate = ?1 AND stream_id = ?2 AND version >= ?3
                 ORDER BY version"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map(
                        params![stream.aggregate, stream.id, to_i64(from_version)],
                        record_from_row,
                    )?
                    .map(|r| r.map(Arc::new))
                    .collect()
                })
                .map_err(|e| backend(format!("cannot read stream {stream}"), e))
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
            page.read(conn, &filter, after, head).map_err(fail)?;
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
        self.shared.head.subscribe()
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
        Box::pin(self.read(move |conn| {
            // One statement, so one snapshot: the checkpoint and the
            // documents of the same commit, never half of a later one.
            let mut saved = SavedReadModel::default();
            conn.prepare_cached(
                "SELECT c.position, d.collection, d.key, d.body
                 FROM (SELECT ?1 AS name) AS p
                 LEFT JOIN checkpoints AS c ON c.name = p.name
                 LEFT JOIN documents AS d ON d.projection = p.name
                 ORDER BY d.collection, d.key",
            )
            .and_then(|mut s| {
                let mut rows = s.query([&name])?;
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
        }))
    }

    fn commit_read_model<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            check_utf8_bodies(name, &changes)?;
            self.write(|reply| Job::CommitReadModel {
                name: name.to_owned(),
                changes,
                checkpoint,
                reply,
            })
            .await
        })
    }

    fn reset_read_model<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write(move |reply| Job::ResetReadModel {
            name: name.to_owned(),
            reply,
        }))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The positions `filter` selects, read in pages of `limit` through
    /// `read_log`.
    async fn read_in_pages(store: &SqliteStore, filter: &LogFilter, limit: usize) -> Vec<u64> {
        let mut positions = Vec::new();
        let mut after = 0;
        loop {
            let slice = store.read_log(after, filter, limit).await.unwrap();
            assert!(slice.events.len() <= limit);
            if slice.through <= after {
                return positions;
            }
            positions.extend(slice.events.iter().map(|e| e.position));
            after = slice.through;
        }
    }

    /// Whether rows are checked here or selected by SQLite, and wherever a
    /// read switches from one to the other, a filtered read returns what the
    /// filter selects, each event once.
    #[tokio::test]
    async fn filtered_reads_switch_checks_without_skipping() {
        let store = SqliteStore::in_memory().unwrap();
        // Leading rows left out, a kept row right where a read decides to
        // let SQLite select, then dense and sparse stretches, and another
        // aggregate.
        let name = |i: usize| match i {
            0..PROBE_ROWS => "other",
            _ if i < 600 => ["kept", "other"][i % 2],
            _ if i < 1_400 => ["kept", "also", "other", "other", "other", "other"][i % 6],
            _ => ["kept", "kept", "other"][i % 3],
        };
        for chunk in 0..20 {
            let aggregate = if chunk % 4 == 3 { "cart" } else { "account" };
            let events = (chunk * 100..(chunk + 1) * 100)
                .map(|i| NewEvent {
                    timestamp: Timestamp(0),
                    ..NewEvent::new(name(i), "{}")
                })
                .collect();
            let stream = StreamId::new(aggregate, chunk.to_string());
            store
                .append(&stream, ExpectedVersion::Exact(0), events)
                .await
                .unwrap();
        }
        let all = read_in_pages(&store, &LogFilter::all(), 5_000).await;
        assert_eq!(all.len(), 2_000);
        let log = store.read_log(0, &LogFilter::all(), 5_000).await.unwrap();
        for filter in [
            LogFilter::events(["kept"]),
            LogFilter::events(["kept", "also"]),
            LogFilter::events(["kept"]).aggregates(["account"]),
            LogFilter::all().aggregates(["cart"]),
            LogFilter::events(["nothing"]),
        ] {
            let expected: Vec<u64> = log
                .events
                .iter()
                .filter(|e| filter.matches(e))
                .map(|e| e.position)
                .collect();
            for limit in [1, 7, 100, 300, 5_000] {
                let read = read_in_pages(&store, &filter, limit).await;
                assert_eq!(read, expected, "{filter:?}, pages of {limit}");
            }
        }
    }

    /// A database written before read models existed (schema version 1)
    /// gains the `documents` table on open, its data untouched.
    #[test]
    fn version_one_databases_are_migrated() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at_us INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1, 0);",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        save_checkpoint_row(&conn, "old", 7).unwrap();

        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_version ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, [1, 2]);
        let change = DocumentChange {
            collection: String::from("c"),
            key: String::from("k"),
            body: Some(b"{\"n\":1}".to_vec()),
        };
        commit_read_model_rows(&conn, "new", &[change], 3).unwrap();
        let position: i64 = conn
            .query_row(
                "SELECT position FROM checkpoints WHERE name = 'old'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(position, 7);
    }
}
