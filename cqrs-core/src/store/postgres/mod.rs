//! The PostgreSQL store: for production, and for many processes on one database.
//!
//! The design (schema, no skipped events, group commit, live tail) is documented
//! on [`PostgresStore`].

mod listener;
mod log;
mod schema;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::tokio_postgres::{self, NoTls, Row};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use self::schema::{SchemaName, Sql};
use self::writer::{AppendJob, Writer};
use super::decode::{EventRow, corrupt_row, decode_metadata, schema_version, stream_version};
use super::inline::InlineSet;
use super::{
    AppendOutcome, CheckpointStore, DocumentChange, EventStore, ExpectedVersion, Fence, GlobalLog,
    KeptAppend, LeaseGrant, LogFilter, LogSlice, SavedReadModel, Snapshot, SnapshotStore,
    append_key,
};
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::{NewEvent, RecordedEvent, StreamId, Timestamp};

/// Settings of a [`PostgresStore`].
///
/// # Examples
///
/// ```
/// use cqrs_core::store::PostgresOptions;
/// use std::time::Duration;
/// let options = PostgresOptions::new()
///     .schema("billing_events")
///     .max_connections(16)
///     .head_poll_interval(Duration::from_secs(2));
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    schema: String,
    max_connections: usize,
    max_group: usize,
    head_poll_interval: Duration,
    connect_timeout: Duration,
    acquire_timeout: Duration,
}

impl PostgresOptions {
    /// The defaults: schema `cqrs`, 8 pooled connections, groups of up to 256
    /// appends, a head poll every second, 5 s to connect, 30 s to wait for a
    /// pooled connection.
    pub fn new() -> Self {
        Self {
            schema: String::from("cqrs"),
            max_connections: 8,
            max_group: 256,
            head_poll_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
        }
    }

    /// The schema holding the store's tables (checked at connect against
    /// `^[a-z_][a-z0-9_]{0,62}$`).
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most pooled connections (at least 1), besides the one that listens
    /// for new events.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// The most appends committed in one transaction (at least 1; 1 turns
    /// group commit off).
    #[must_use]
    pub fn max_group(mut self, max: usize) -> Self {
        self.max_group = max.max(1);
        self
    }

    /// How often the head is read even without notifications (the safety net).
    #[must_use]
    pub fn head_poll_interval(mut self, every: Duration) -> Self {
        self.head_poll_interval = every.max(Duration::from_millis(10));
        self
    }

    /// How long to wait for a new connection, unless the connection string
    /// sets `connect_timeout`.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a call waits for a pooled connection when all are busy.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters of the writer task, to see group commit at work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostgresStats {
    /// Append transactions committed.
    pub transactions: u64,
    /// Appends committed by them.
    pub appends: u64,
}

/// An event store in a PostgreSQL schema.
///
/// # Schema
///
/// Everything lives in one schema (`cqrs` by default, see
/// [`PostgresOptions::schema`]), created at connect by versioned migrations
/// recorded in `<schema>.schema_migrations`. The migrations run in one
/// transaction under an advisory lock, so processes starting together migrate
/// once; an up-to-date schema is left untouched.
///
/// ```sql
/// events (
///     position         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- a sequence
///     stream_aggregate text NOT NULL,
///     stream_id        text NOT NULL,
///     version          bigint NOT NULL,
///     event_id         uuid NOT NULL UNIQUE,
///     event_name       text NOT NULL,
///     schema_version   integer NOT NULL,
///     payload          jsonb NOT NULL,
///     metadata         jsonb NOT NULL,
///     timestamp_us     bigint NOT NULL,   -- microseconds since the Unix epoch, exact
///     UNIQUE (stream_aggregate, stream_id, version)  -- also the index for stream reads
/// )
/// INDEX events_by_name      (event_name, position)        -- the global log by event name
/// INDEX events_by_aggregate (stream_aggregate, position)  -- the global log by aggregate
/// snapshots   (stream_aggregate, stream_id, version, state bytea, taken_at_us)
/// checkpoints (name PRIMARY KEY, position)
/// documents (                          -- durable read models
///     projection text NOT NULL,
///     collection text NOT NULL,
///     key        text NOT NULL,
///     body       jsonb NOT NULL,
///     PRIMARY KEY (projection, collection, key)
/// )
/// function append_group(..)   -- the append path, below
/// ```
///
/// Payloads, metadata and document bodies are `jsonb`, so events and read
/// models can be queried and indexed with SQL
/// (`SELECT payload->>'amount' FROM cqrs.events WHERE event_name = 'account.deposited'`,
/// a GIN index for containment queries). `jsonb` stores the value, not the
/// text: keys come back in its own order and whitespace is normalised, which
/// serde decodes to the same event. Payloads must therefore be UTF-8 JSON, and
/// `jsonb` cannot hold the character U+0000 in a string: an append or a
/// document containing one is refused with [`StoreError::InvalidAppend`] (or a
/// failed commit), and nothing of it is saved.
///
/// The schema name is the only text spliced into SQL: it is checked against
/// `^[a-z_][a-z0-9_]{0,62}$` and always double-quoted. Every value travels as
/// a parameter of a prepared statement.
///
/// # No skipped events
///
/// A sequence hands out positions when rows are inserted, but rows become
/// visible when their transaction commits; two writers can commit out of
/// order, and a reader that has read up to position 12 would never look back
/// for a late 11. This store **serializes appends**: every append statement
/// takes `pg_advisory_xact_lock(<key of the schema>)` before it allocates any
/// position. That lock is released only at the end of the commit, after the
/// transaction has become visible to new snapshots. So the next writer
/// allocates its positions only once every lower position is visible: at any
/// moment the visible positions are a prefix of the positions that will ever
/// commit (rolled-back ones leave gaps, never late arrivals). A read of the
/// log takes its head and its page in one statement (one snapshot), and
/// reports `through` no further than that head.
///
/// Anything else that inserts into `events` must take the same lock, in the
/// same transaction and before its insert:
/// `SELECT pg_advisory_xact_lock(<key>)` with the key
/// [`PostgresStore::append_lock_key`] returns.
///
/// # Read models
///
/// A read-model commit is one prepared statement: the upserts, the deletes
/// (all documents travel as arrays) and the checkpoint are one implicit
/// transaction and one round trip. If PostgreSQL refuses any part (a body
/// that is not JSON), nothing of it is saved. A load is one statement too,
/// so the checkpoint and the documents come from one snapshot; a reset
/// deletes both in one statement.
///
/// # Group commit
///
/// Serializing appends would cost a lock wait and a commit per append; the
/// store instead runs one writer task that takes every append waiting (up to
/// [`PostgresOptions::max_group`]) and commits them in **one call** of the
/// `append_group` function: one round trip, one transaction, one lock, one
/// WAL flush. Each append keeps its own optimistic version check inside the
/// function, so a conflicting append fails alone while the others commit. If
/// a statement error aborts the group (a payload that is not JSON, a
/// duplicate event id), each append is retried alone so only the faulty one
/// fails. Cheaper forms with the same lock, checks and results serve the
/// usual cases: a group whose appends carry one event each (one command,
/// one event) is one plain `INSERT` statement, and so is a lone one-event
/// append; a lone append of several events calls `append_one`.
///
/// # Live tail
///
/// Every append sends `NOTIFY <schema>, '<new head>'` in its transaction; a
/// dedicated connection LISTENs and feeds [`GlobalLog::watch_head`], so every
/// process following the schema wakes on every commit, without polling.
/// The same connection also reads the head every
/// [`PostgresOptions::head_poll_interval`] as a safety net (a notification
/// can be missed while it reconnects), and reconnects with backoff when it
/// drops. Appends made through this store also publish their head directly.
///
/// The listening connection is opened by the first call of `watch_head` (a
/// projection, a tail, [`Engine::projection_status`](crate::Engine::projection_status)), not by
/// `connect`: a process that only writes never hears the notifications of
/// its own commits, which would cost it a wake-up per append.
///
/// # Connections and failures
///
/// Reads and the writer use a `deadpool-postgres` pool with
/// `RecyclingMethod::Fast`: a returned connection is reused unless it is
/// closed, with no health-check query on the hot path. When the server is
/// down, every call fails promptly with [`StoreError::Backend`] saying so;
/// closed connections are dropped from the pool and new ones are made when the
/// server is back. An append answers `Ok` only after its commit succeeded; an
/// append whose connection failed mid-way reports that its outcome is unknown
/// (re-read the stream before retrying).
///
/// # Clones
///
/// Clones share the pool, the writer task and the listener; they stop when
/// the last clone is dropped.
///
/// # Examples
///
/// ```no_run
/// use cqrs_core::store::{PostgresOptions, PostgresStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cqrs_core::StoreError> {
/// let store = PostgresStore::connect(
///     "host=/var/run/postgresql user=app dbname=app",
///     PostgresOptions::new().schema("events"),
/// )
/// .await?;
/// # let _ = store;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    schema: SchemaName,
    pool: Pool,
    sql: Sql,
    jobs: mpsc::Sender<AppendJob>,
    head: Arc<watch::Sender<u64>>,
    /// Why the listener cannot reach the server, while it cannot.
    unavailable: Arc<watch::Sender<Option<String>>>,
    stats: Arc<Counters>,
    /// What the listener needs, kept until `watch_head` first starts it.
    listen: Listen,
    listener: OnceLock<JoinHandle<()>>,
}

/// The listener's start-up parameters, and the runtime `connect` ran on.
struct Listen {
    config: tokio_postgres::Config,
    poll: Duration,
    runtime: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    transactions: AtomicU64,
    appends: AtomicU64,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema.as_str())
            .field("head", &*self.inner.head.borrow())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database `config` names (a libpq-style
    /// `key=value` string or a `postgresql://` URL; TLS is not supported),
    /// migrates the schema, and starts the writer (the listener starts with
    /// the first `watch_head`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for an invalid connection string or schema
    /// name, an unreachable server, or a failed migration.
    pub async fn connect(config: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let schema = SchemaName::parse(&options.schema)?;
        let mut pg: tokio_postgres::Config = config.parse().map_err(|e| StoreError::Backend {
            message: format!("invalid PostgreSQL connection string: {e}"),
            source: Some(Box::new(e)),
        })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(options.connect_timeout);
        }
        let manager = Manager::from_config(
            plan_once_per_session(pg.clone()),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Backend {
                message: format!("cannot build the PostgreSQL connection pool: {e}"),
                source: Some(Box::new(e)),
            })?;

        let mut client = acquire(&pool).await?;
        schema::migrate(&mut client, &schema).await?;
        let sql = Sql::new(&schema);
        let position: i64 = client
            .query_one(&sql.head, &[])
            .await
            .map_err(|e| pg_error("cannot read the head position", e))?
            .get(0);
        drop(client);

        let head = Arc::new(watch::Sender::new(to_u64(position)));
        let stats = Arc::new(Counters::default());
        let (jobs, receiver) = mpsc::channel(options.max_group.max(16) * 4);
        let writer = Writer {
            pool: pool.clone(),
            group_sql: sql.append_group.clone(),
            one_sql: sql.append_one.clone(),
            lone_sql: sql.append_lone.clone(),
            lone_group_sql: sql.append_lone_group.clone(),
            inline_sql: writer::InlineSql {
                read_range: sql.read_range.clone(),
                load_read_model: sql.load_read_model.clone(),
                commit_read_model: sql.commit_inline_read_model.clone(),
            },
            lock_key: append_lock_key(&schema),
            channel: schema.as_str().to_owned(),
            jobs: receiver,
            head: Arc::clone(&head),
            stats: Arc::clone(&stats),
            max_group: options.max_group,
        };
        tokio::spawn(writer.run());
        let listen = Listen {
            config: pg,
            poll: options.head_poll_interval,
            runtime: tokio::runtime::Handle::current(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                schema,
                pool,
                sql,
                jobs,
                head,
                unavailable: Arc::new(watch::Sender::new(None)),
                stats,
                listen,
                listener: OnceLock::new(),
            }),
        })
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        self.inner.schema.as_str()
    }

    /// The key of the advisory lock appends take (see "No skipped events"
    /// above): a program that inserts into this schema's `events` table
    /// itself must take `pg_advisory_xact_lock(key)` in its transaction
    /// before inserting, or readers may skip its rows. The key depends only
    /// on the schema name, so it is the same in every process.
    ///
    /// ```no_run
    /// # use cqrs_core::store::{PostgresOptions, PostgresStore};
    /// # async fn f(store: PostgresStore) {
    /// let sql = format!("SELECT pg_advisory_xact_lock({})", store.append_lock_key());
    /// # }
    /// ```
    pub fn append_lock_key(&self) -> i64 {
        append_lock_key(&self.inner.schema)
    }

    /// How many append transactions the writer committed, and how many
    /// appends they carried: `appends / transactions` is the average group.
    pub fn stats(&self) -> PostgresStats {
        PostgresStats {
            transactions: self.inner.stats.transactions.load(Ordering::Relaxed),
            appends: self.inner.stats.appends.load(Ordering::Relaxed),
        }
    }

    async fn client(&self) -> Result<Object, StoreError> {
        acquire(&self.inner.pool).await
    }

    /// A pooled connection, for a read model's own transaction or query.
    pub(crate) async fn connection(&self) -> Result<Object, StoreError> {
        self.client().await
    }

    /// Hands an append to the writer task and waits for its outcome.
    async fn submit(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        inline: Option<InlineSet>,
    ) -> Result<AppendOutcome, StoreError> {
        stream.check()?;
        validate(stream, &events)?;
        append_key(stream, &events)?;
        let (reply, answer) = oneshot::channel();
        let job = AppendJob {
            stream: stream.clone(),
            expected,
            events,
            inline,
            reply,
        };
        let gone = || StoreError::Backend {
            message: String::from("the PostgreSQL writer task stopped"),
            source: None,
        };
        self.inner.jobs.send(job).await.map_err(|_| gone())?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// The schema, quoted for SQL text.
    pub(crate) fn quoted_schema(&self) -> String {
        self.inner.schema.to_string()
    }
}

/// A tokio-postgres error as a store error: a lost connection may pass, a
/// statement the server refused (other than a serialization failure or a
/// deadlock, which a retry resolves) will not.
pub(crate) fn classify(context: impl fmt::Display, error: tokio_postgres::Error) -> StoreError {
    let retry = match error.code() {
        Some(code) => {
            *code == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                || *code == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                || code.code().starts_with("08")
                || code.code().starts_with("57")
        }
        None => true,
    };
    if retry {
        pg_error(context, error)
    } else {
        StoreError::Refused {
            message: format!("{context}: {}", describe(&error)),
            source: Some(Box::new(error)),
        }
    }
}

fn append_lock_key(schema: &SchemaName) -> i64 {
    schema.lock_key("cqrs.append")
}

/// `config` with `plan_cache_mode = force_generic_plan`: each statement of
/// the store is planned once per connection, never for the values of one
/// call. They are fixed shapes with one good plan each, and a custom plan is
/// worse than wasted planning time for the read of the log: on its first
/// five calls PostgreSQL would plan it for the actual positions, see most of
/// the table after `position > $1`, and collect and sort all of it (tens of
/// milliseconds) to return one page. A `plan_cache_mode` in the connection
/// string's own `options` still wins: it comes later.
fn plan_once_per_session(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    let ours = "-c plan_cache_mode=force_generic_plan";
    let options = match config.get_options() {
        Some(theirs) => format!("{ours} {theirs}"),
        None => String::from(ours),
    };
    config.options(options);
    config
}

/// A pooled connection, or a clear error saying why there is none.
async fn acquire(pool: &Pool) -> Result<Object, StoreError> {
    pool.get().await.map_err(|e| {
        let message = match &e {
            PoolError::Backend(e) => {
                format!("cannot connect to PostgreSQL: {}", describe(e))
            }
            PoolError::Timeout(_) => String::from(
                "timed out waiting for a PostgreSQL connection (the server is slow or unreachable)",
            ),
            other => format!("cannot get a PostgreSQL connection: {other}"),
        };
        StoreError::Backend {
            message,
            source: Some(Box::new(e)),
        }
    })
}

/// A tokio-postgres error with its causes: its own `Display` says only
/// "db error" or "error connecting to server".
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_closed() {
        text.push_str(" (the connection to PostgreSQL is closed)");
    }
    text
}

fn pg_error(context: impl fmt::Display, error: tokio_postgres::Error) -> StoreError {
    StoreError::Backend {
        message: format!("{context}: {}", describe(&error)),
        source: Some(Box::new(error)),
    }
}

/// A read model from the rows of `Sql::load_read_model`.
fn saved_read_model(rows: &[Row]) -> SavedReadModel {
    let mut saved = SavedReadModel {
        checkpoint: rows
            .first()
            .and_then(|row| row.get::<_, Option<i64>>(0))
            .map(to_u64),
        documents: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        if let Some(collection) = row.get::<_, Option<String>>(1) {
            let body: String = row.get(3);
            saved
                .documents
                .push((collection, row.get(2), body.into_bytes()));
        }
    }
    saved
}

/// Moves the head forward (never back).
fn publish(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|h| {
        let moved = position > *h;
        if moved {
            *h = position;
        }
        moved
    });
}

/// Positions and versions are stored as `bigint` and never negative.
fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Reads an event row laid out as `EVENT_COLUMNS`, starting at column `at`,
/// borrowing its text.
///
/// A column that does not hold what an event stores (metadata that is not
/// an event's, a schema version below 1) is [`StoreError::Corrupt`], naming
/// the row by the columns that do.
fn event_row(row: &Row, at: usize) -> Result<EventRow<'_>, StoreError> {
    let position = to_u64(
        row.try_get(at)
            .map_err(|e| pg_error("an event row without a position", e))?,
    );
    let aggregate = row.try_get::<_, &str>(at + 1);
    let stream_id = row.try_get::<_, &str>(at + 2);
    let version = row
        .try_get::<_, i64>(at + 3)
        .map_err(|e| e.to_string())
        .and_then(stream_version);
    let stream = match (&aggregate, &stream_id) {
        (Ok(aggregate), Ok(id)) => Some((*aggregate, *id)),
        _ => None,
    };
    let corrupt = |column, reason: String| {
        corrupt_row(position, stream, version.clone().ok(), column, reason)
    };
    let column = |column, e: tokio_postgres::Error| corrupt(column, format!("cannot be read: {e}"));
    let aggregate = aggregate.map_err(|e| column("stream_aggregate", e))?;
    let stream_id = stream_id.map_err(|e| column("stream_id", e))?;
    let version = version.clone().map_err(|r| corrupt("version", r))?;
    let event_id = row.try_get(at + 4).map_err(|e| column("event_id", e))?;
    let event_name = row.try_get(at + 5).map_err(|e| column("event_name", e))?;
    let schema_version = row
        .try_get::<_, i32>(at + 6)
        .map_err(|e| column("schema_version", e))
        .and_then(|v| schema_version(i64::from(v)).map_err(|r| corrupt("schema_version", r)))?;
    let payload: &str = row.try_get(at + 7).map_err(|e| column("payload", e))?;
    let metadata: &str = row.try_get(at + 8).map_err(|e| column("metadata", e))?;
    let metadata = decode_metadata(metadata.as_bytes())
        .map_err(|e| corrupt("metadata", format!("is not the metadata of an event: {e}")))?;
    let timestamp = row.try_get(at + 9).map_err(|e| column("timestamp_us", e))?;
    Ok(EventRow {
        position,
        aggregate,
        stream_id,
        version,
        event_id,
        event_name,
        schema_version,
        payload: payload.as_bytes(),
        metadata,
        timestamp: Timestamp(timestamp),
    })
}

/// Checks what the database cannot take before it reaches the writer.
fn validate(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    let invalid = |reason: String| {
        Err(StoreError::InvalidAppend {
            stream: stream.clone(),
            reason,
        })
    };
    if events.is_empty() {
        return invalid(String::from("no events to append"));
    }
    for event in events {
        if std::str::from_utf8(&event.payload).is_err() {
            return invalid(format!(
                "the payload of event `{}` is not UTF-8 JSON text",
                event.event_name
            ));
        }
        if i32::try_from(event.schema_version).is_err() {
            return invalid(format!(
                "event `{}` has schema version {}, above PostgreSQL's integer range",
                event.event_name, event.schema_version
            ));
        }
    }
    Ok(())
}

impl EventStore for PostgresStore {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendOutcome, StoreError>> {
        Box::pin(self.submit(stream, expected, events, None))
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
            let outcome = self
                .submit(stream, expected, events, Some(Arc::clone(inline)))
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
        Box::pin(async move {
            stream.check()?;
            let fail = |e| pg_error(format!("cannot read stream {stream}"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.read_stream)
                .await
                .map_err(fail)?;
            let rows = client
                .query(
                    &statement,
                    &[&stream.aggregate, &stream.id, &to_i64(from_version)],
                )
                .await
                .map_err(fail)?;
            rows.iter()
                .map(|row| event_row(row, 0).map(|row| Arc::new(row.into_record())))
                .collect()
        })
    }

    fn find_key<'a>(
        &'a self,
        stream: &'a StreamId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeptAppend>, StoreError>> {
        Box::pin(async move {
            stream.check()?;
            let fail = |e| pg_error(format!("cannot look up an idempotency key of {stream}"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.find_key)
                .await
                .map_err(fail)?;
            let row = client
                .query_opt(&statement, &[&stream.aggregate, &stream.id, &key])
                .await
                .map_err(fail)?;
            Ok(row.map(|row| KeptAppend {
                outcome: AppendOutcome {
                    version: to_u64(row.get(0)),
                    first_position: to_u64(row.get(1)),
                    last_position: to_u64(row.get(2)),
                },
                events: to_u64(row.get(3)),
            }))
        })
    }
}

impl GlobalLog for PostgresStore {
    fn read_log<'a>(
        &'a self,
        after: u64,
        filter: &'a LogFilter,
        limit: usize,
    ) -> BoxFuture<'a, Result<LogSlice, StoreError>> {
        Box::pin(self.spawn_read_page(after, filter, limit, Vec::new()))
    }

    fn read_log_recycling<'a>(
        &'a self,
        after: u64,
        filter: &'a LogFilter,
        limit: usize,
        spent: Vec<Arc<RecordedEvent>>,
    ) -> BoxFuture<'a, Result<LogSlice, StoreError>> {
        Box::pin(self.spawn_read_page(after, filter, limit, spent))
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error("cannot read the head position", e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.head)
                .await
                .map_err(fail)?;
            let position: i64 = client
                .query_one(&statement, &[])
                .await
                .map_err(fail)?
                .get(0);
            Ok(to_u64(position))
        })
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        let inner = &*self.inner;
        inner.listener.get_or_init(|| {
            inner.listen.runtime.spawn(listener::follow_head(
                inner.listen.config.clone(),
                inner.schema.as_str().to_owned(),
                inner.sql.head.clone(),
                Arc::clone(&inner.head),
                Arc::clone(&inner.unavailable),
                inner.listen.poll,
            ))
        });
        inner.head.subscribe()
    }

    fn watch_unavailable(&self) -> Option<watch::Receiver<Option<String>>> {
        Some(self.inner.unavailable.subscribe())
    }
}

impl SnapshotStore for PostgresStore {
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error(format!("cannot load the snapshot of {stream}"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.load_snapshot)
                .await
                .map_err(fail)?;
            let row = client
                .query_opt(&statement, &[&stream.aggregate, &stream.id])
                .await
                .map_err(fail)?;
            Ok(row.map(|row| Snapshot {
                version: to_u64(row.get(0)),
                state: row.get(1),
                taken_at: Timestamp(row.get(2)),
            }))
        })
    }

    fn save_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        snapshot: Snapshot,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error(format!("cannot save the snapshot of {stream}"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.save_snapshot)
                .await
                .map_err(fail)?;
            client
                .execute(
                    &statement,
                    &[
                        &stream.aggregate,
                        &stream.id,
                        &to_i64(snapshot.version),
                        &snapshot.state,
                        &snapshot.taken_at.as_micros(),
                    ],
                )
                .await
                .map_err(fail)?;
            Ok(())
        })
    }
}

impl CheckpointStore for PostgresStore {
    fn as_postgres(&self) -> Option<&PostgresStore> {
        Some(self)
    }

    fn load_checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error(format!("cannot load the checkpoint of `{name}`"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.load_checkpoint)
                .await
                .map_err(fail)?;
            let row = client.query_opt(&statement, &[&name]).await.map_err(fail)?;
            Ok(row.map(|row| to_u64(row.get(0))))
        })
    }

    fn save_checkpoint<'a>(
        &'a self,
        name: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error(format!("cannot save the checkpoint of `{name}`"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.save_checkpoint)
                .await
                .map_err(fail)?;
            client
                .execute(&statement, &[&name, &to_i64(position)])
                .await
                .map_err(fail)?;
            Ok(())
        })
    }

    fn load_read_model<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<SavedReadModel, StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error(format!("cannot load the read model `{name}`"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.load_read_model)
                .await
                .map_err(fail)?;
            let rows = client.query(&statement, &[&name]).await.map_err(fail)?;
            Ok(saved_read_model(&rows))
        })
    }

    fn commit_read_model<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // The last change of each document wins, as if applied in order;
            // the statement must not touch a row twice.
            let mut last: BTreeMap<(&str, &str), Option<&str>> = BTreeMap::new();
            for change in &changes {
                let body = match &change.body {
                    Some(body) => Some(std::str::from_utf8(body).map_err(|e| {
                        StoreError::Backend {
                            message: format!(
                                "document `{}/{}` of the read model `{name}` is not UTF-8 JSON text",
                                change.collection, change.key
                            ),
                            source: Some(Box::new(e)),
                        }
                    })?),
                    None => None,
                };
                last.insert((&change.collection, &change.key), body);
            }
            let mut collections = Vec::with_capacity(last.len());
            let mut keys = Vec::with_capacity(last.len());
            let mut bodies = Vec::with_capacity(last.len());
            for ((collection, key), body) in last {
                collections.push(collection);
                keys.push(key);
                bodies.push(body);
            }
            let fail = |e| pg_error(format!("cannot commit the read model `{name}`"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.commit_read_model)
                .await
                .map_err(fail)?;
            let token = fence.map(|f| to_i64(f.token));
            let row = client
                .query_one(
                    &statement,
                    &[
                        &name,
                        &collections,
                        &keys,
                        &bodies,
                        &to_i64(checkpoint),
                        &token,
                    ],
                )
                .await
                .map_err(fail)?;
            let outcome: &str = row.get(0);
            match (outcome, fence) {
                ("ok", _) => Ok(()),
                ("fenced", Some(fence)) => Err(StoreError::Fenced {
                    name: name.to_owned(),
                    token: fence.token,
                    current: row.get::<_, Option<i64>>(2).map(to_u64),
                }),
                _ => Err(StoreError::CheckpointNotAfter {
                    name: name.to_owned(),
                    saved: row.get::<_, Option<i64>>(1).map_or(0, to_u64),
                    attempted: checkpoint,
                }),
            }
        })
    }

    fn reset_read_model<'a>(
        &'a self,
        name: &'a str,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error(format!("cannot reset the read model `{name}`"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.reset_read_model)
                .await
                .map_err(fail)?;
            let token = fence.map(|f| to_i64(f.token));
            let row = client
                .query_one(&statement, &[&name, &token])
                .await
                .map_err(fail)?;
            match (row.get::<_, &str>(0), fence) {
                ("fenced", Some(fence)) => Err(StoreError::Fenced {
                    name: name.to_owned(),
                    token: fence.token,
                    current: row.get::<_, Option<i64>>(1).map(to_u64),
                }),
                _ => Ok(()),
            }
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LeaseGrant, StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error(format!("cannot take the lease of `{name}`"), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.acquire_lease)
                .await
                .map_err(fail)?;
            let term = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
            let row = client
                .query_one(&statement, &[&name, &holder, &term])
                .await
                .map_err(fail)?;
            Ok(if row.get::<_, bool>(0) {
                LeaseGrant::Held(Fence {
                    name: name.to_owned(),
                    token: to_u64(row.get(2)),
                })
            } else {
                LeaseGrant::Taken {
                    holder: row.get(1),
                    expires_in: Duration::from_micros(to_u64(row.get(3))),
                }
            })
        })
    }

    fn release_lease<'a>(&'a self, fence: &'a Fence) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let fail = |e| pg_error(format!("cannot release the lease of `{}`", fence.name), e);
            let client = self.client().await?;
            let statement = client
                .prepare_cached(&self.inner.sql.release_lease)
                .await
                .map_err(fail)?;
            client
                .execute(&statement, &[&fence.name, &to_i64(fence.token)])
                .await
                .map_err(fail)?;
            Ok(())
        })
    }
}
