//! Read models in SQL tables of the projection's own, written by handlers
//! that receive the read database's transaction, committed with the
//! checkpoint.
//!
//! A projection marked `#[projection(.., tables = sqlite)]` (or
//! `postgres`) keeps no state in memory: for each event it consumes, its
//! [`ProjectSqlite`] (or [`ProjectPostgres`]) impl writes the rows it wants,
//! inside the transaction that also moves the projection's checkpoint, in
//! the projection's read store. A crash between two commits rolls the
//! batch back, tables and checkpoint together; the batch is then read
//! again, so every event counts exactly once in the tables, as with
//! documents. The tables are what other tools query with plain SQL.
//!
//! The projection declares its tables' migrations ([`SqliteTables::MIGRATIONS`]):
//! statements run once each, in order, before it projects anything,
//! recorded under its name in `read_model_migrations`. A read database
//! whose recorded migrations for it are more than the code knows (written
//! by a newer build) is refused, naming the projection. A rebuild runs its
//! [`reset`](SqliteTables::reset), which says how its state goes (`DELETE`
//! or `DROP` and recreate), then replays the log.
//!
//! On PostgreSQL the transaction's `search_path` starts with the store's
//! schema, so unqualified table names in the migrations and the handlers
//! are the store's.
//!
//! Fields of the projection struct are not its read model: the runner
//! keeps one value to project with and another to answer queries with, and
//! a batch whose commit failed is projected again on the same value.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::runner::{
    ProjectionHost, RunningProjection, Skipped, log_filter, skips, unknown_in_stream,
};
use super::{Envelope, Projection};
use crate::error::{DecodeError, StoreError};
use crate::event::Event;
use crate::record::RecordedEvent;
use crate::store::{CheckpointStore, Fence, LogSlice};
use crate::subscription::RunState;
use crate::subscription::lease::{LeaseKeeper, holder_id};
use crate::subscription::runner::{Failure, Handler, Progress, Runner};

/// Why one event could not be written to a projection's tables.
#[derive(Debug)]
#[non_exhaustive]
pub enum RowsError {
    /// The event does not decode.
    Decode(DecodeError),
    /// The handler's SQL failed on SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(rusqlite::Error),
    /// The handler's SQL failed on PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(tokio_postgres::Error),
}

impl std::fmt::Display for RowsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Decode(e) => e.fmt(f),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(e) => write!(f, "its SQL failed: {e}"),
            #[cfg(feature = "postgres")]
            Self::Postgres(e) => write!(f, "its SQL failed: {}", crate::store::describe_pg(e)),
        }
    }
}

impl std::error::Error for RowsError {}

impl From<DecodeError> for RowsError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

// ---- SQLite -----------------------------------------------------------------

/// A projection whose read model is SQL tables of its own in a SQLite
/// read store (`#[projection(.., tables = sqlite)]`).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use cqrs_core::prelude::*;
/// use cqrs_core::projection::{ProjectSqlite, SqliteTables};
/// use cqrs_core::rusqlite::{self, params};
/// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// # pub struct Deposited { pub amount: u64 }
///
/// #[derive(Projection, Default)]
/// #[projection(name = "balance_rows", events(Deposited), tables = sqlite)]
/// pub struct BalanceRows;
///
/// impl SqliteTables for BalanceRows {
///     const MIGRATIONS: &'static [&'static str] = &[
///         "CREATE TABLE balance_rows (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
///     ];
///     fn reset(db: &rusqlite::Connection) -> rusqlite::Result<()> {
///         db.execute_batch("DELETE FROM balance_rows")
///     }
/// }
///
/// impl ProjectSqlite<Deposited> for BalanceRows {
///     fn project(&mut self, e: &Envelope<Deposited>, db: &rusqlite::Connection) -> rusqlite::Result<()> {
///         db.execute(
///             "INSERT INTO balance_rows VALUES (?1, ?2)
///              ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance",
///             params![e.aggregate_id(), e.amount as i64],
///         )?;
///         Ok(())
///     }
/// }
/// # }
/// ```
#[cfg(feature = "sqlite")]
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` keeps its read model in SQLite tables but does not say which",
    label = "missing `impl SqliteTables for {Self}`",
    note = "add `impl SqliteTables for {Self} {{ const MIGRATIONS: &'static [&'static str] = &[..]; fn reset(db: &rusqlite::Connection) -> rusqlite::Result<()> {{ .. }} }}`"
)]
pub trait SqliteTables: Projection {
    /// The statements that create and change its tables, in order: each
    /// runs once (all of one in a transaction), recorded under the
    /// projection's name. Append new ones; never edit one that ran.
    const MIGRATIONS: &'static [&'static str];

    /// Empties its tables for a rebuild (`DELETE FROM ..`, or `DROP TABLE`
    /// and `CREATE TABLE` again); runs in the rebuild's transaction.
    ///
    /// # Errors
    ///
    /// When the SQL fails: the rebuild is not started.
    fn reset(db: &rusqlite::Connection) -> rusqlite::Result<()>;

    /// Receives a handle to read its tables, once, on the value that
    /// answers queries: keep it to answer [`Answer`](crate::Answer) impls
    /// from the tables.
    fn attach(&mut self, tables: SqliteReader) {
        let _ = tables;
    }
}

/// Writes event `E` into the projection's SQLite tables, inside the
/// transaction that commits with its checkpoint. Do not `COMMIT` or
/// `ROLLBACK` there: return the error instead, and the batch rolls back.
#[cfg(feature = "sqlite")]
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` lists event `{E}` but does not write it to its tables",
    label = "missing `impl ProjectSqlite<{E}> for {Self}`",
    note = "add `impl ProjectSqlite<{E}> for {Self} {{ fn project(&mut self, event: &Envelope<{E}>, db: &rusqlite::Connection) -> rusqlite::Result<()> {{ .. }} }}`"
)]
pub trait ProjectSqlite<E: Event> {
    /// Writes the rows for one event.
    ///
    /// # Errors
    ///
    /// The SQL's: the batch rolls back and the projection stops with it
    /// (or retries, when the database was only busy).
    fn project(&mut self, event: &Envelope<E>, db: &rusqlite::Connection) -> rusqlite::Result<()>;
}

/// Reads a projection's SQLite tables, for queries (see [`SqliteTables::attach`]).
#[cfg(feature = "sqlite")]
#[derive(Clone, Debug)]
pub struct SqliteReader {
    store: crate::store::SqliteStore,
}

#[cfg(feature = "sqlite")]
impl SqliteReader {
    /// Runs `read` on a read connection of the read store, here and now
    /// (it blocks while it reads, as SQLite reads are quick).
    ///
    /// # Errors
    ///
    /// The read's error, or no connection to be had.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.store.read_now(|conn| {
            read(conn).map_err(|e| StoreError::Backend {
                message: String::from("a read of a projection's tables failed"),
                source: Some(Box::new(e)),
            })
        })
    }
}

// ---- PostgreSQL -------------------------------------------------------------

/// A projection whose read model is SQL tables of its own in a PostgreSQL
/// read store (`#[projection(.., tables = postgres)]`). As
/// [`SqliteTables`], with async handlers ([`ProjectPostgres`]).
#[cfg(feature = "postgres")]
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` keeps its read model in PostgreSQL tables but does not say which",
    label = "missing `impl PostgresTables for {Self}`",
    note = "add `impl PostgresTables for {Self} {{ const MIGRATIONS: &'static [&'static str] = &[..]; async fn reset(tx: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {{ .. }} }}`"
)]
pub trait PostgresTables: Projection {
    /// As [`SqliteTables::MIGRATIONS`].
    const MIGRATIONS: &'static [&'static str];

    /// As [`SqliteTables::reset`].
    fn reset(
        tx: &tokio_postgres::Transaction<'_>,
    ) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send;
}

/// Writes event `E` into the projection's PostgreSQL tables, inside the
/// transaction that commits with its checkpoint.
#[cfg(feature = "postgres")]
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` lists event `{E}` but does not write it to its tables",
    label = "missing `impl ProjectPostgres<{E}> for {Self}`",
    note = "add `impl ProjectPostgres<{E}> for {Self} {{ async fn project(&mut self, event: &Envelope<{E}>, tx: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {{ .. }} }}`"
)]
pub trait ProjectPostgres<E: Event> {
    /// Writes the rows for one event.
    ///
    /// # Errors
    ///
    /// As [`ProjectSqlite::project`].
    fn project(
        &mut self,
        event: &Envelope<E>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send;
}

// ---- what the derive generates ----------------------------------------------

/// Decodes a recorded event and writes it with [`ProjectSqlite`]
/// (generated by `tables = sqlite`).
#[cfg(feature = "sqlite")]
#[doc(hidden)]
pub trait SqliteRows: Projection {
    /// Writes `record`, one of the projection's events.
    ///
    /// # Errors
    ///
    /// A payload that does not decode, or the handler's SQL failing.
    fn write_rows(
        &mut self,
        record: &Arc<RecordedEvent>,
        db: &rusqlite::Connection,
    ) -> Result<(), RowsError>;
}

/// Decodes a recorded event and writes it with [`ProjectPostgres`]
/// (generated by `tables = postgres`).
#[cfg(feature = "postgres")]
#[doc(hidden)]
pub trait PostgresRows: Projection {
    /// Writes `record`, one of the projection's events.
    fn write_rows<'a>(
        &'a mut self,
        record: &'a Arc<RecordedEvent>,
        tx: &'a tokio_postgres::Transaction<'_>,
    ) -> crate::BoxFuture<'a, Result<(), RowsError>>;
}

/// Decodes `record` as `E` and writes it (what generated code calls).
#[cfg(feature = "sqlite")]
#[doc(hidden)]
pub fn write_sqlite<P: ProjectSqlite<E>, E: Event>(
    projection: &mut P,
    record: &Arc<RecordedEvent>,
    db: &rusqlite::Connection,
) -> Result<(), RowsError> {
    let envelope = Envelope::<E>::decode(record)?;
    projection.project(&envelope, db).map_err(RowsError::Sqlite)
}

/// Decodes `record` as `E` and writes it (what generated code calls).
#[cfg(feature = "postgres")]
#[doc(hidden)]
pub fn write_postgres<'a, P: ProjectPostgres<E> + Send, E: Event>(
    projection: &'a mut P,
    record: &'a Arc<RecordedEvent>,
    tx: &'a tokio_postgres::Transaction<'_>,
) -> crate::BoxFuture<'a, Result<(), RowsError>> {
    Box::pin(async move {
        let envelope = Envelope::<E>::decode(record)?;
        projection
            .project(&envelope, tx)
            .await
            .map_err(RowsError::Postgres)
    })
}

// ---- the runner ---------------------------------------------------------------

/// The tables' backend, as the handler needs it.
trait Backend<P>: Send + Sync + 'static {
    /// Runs the missing migrations; refuses a database with more than the
    /// code knows.
    fn migrate(&self) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Writes `events` and moves the checkpoint, in one transaction.
    fn commit(
        &self,
        state: &Arc<std::sync::Mutex<P>>,
        events: Vec<Arc<RecordedEvent>>,
        through: u64,
        fence: Option<Fence>,
    ) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Empties the tables and forgets the checkpoint.
    fn reset(&self, fence: Option<Fence>) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// The handler: buffers each batch and writes it in the read store's
/// transaction when it commits.
struct TablesHandler<P, B> {
    state: Arc<std::sync::Mutex<P>>,
    read: Arc<dyn CheckpointStore>,
    backend: B,
    known: Option<Arc<HashSet<&'static str>>>,
    skipped: Arc<Skipped>,
    /// The events taken in since the last commit.
    pending: Vec<Arc<RecordedEvent>>,
}

impl<P: Projection, B: Backend<P>> Handler for TablesHandler<P, B> {
    fn needs_lease(&self) -> bool {
        true
    }

    fn follows_in_standby(&self) -> bool {
        // The tables are the state: nothing to keep in memory meanwhile.
        false
    }

    async fn restore(&mut self) -> Result<u64, Failure> {
        self.pending.clear();
        self.backend.migrate().await?;
        let saved = self
            .read
            .load_checkpoint(P::NAME)
            .await
            .map_err(|e| Failure::from_store(&e, 0))?;
        Ok(saved.unwrap_or(0))
    }

    async fn apply(&mut self, from: u64, slice: &LogSlice) -> Result<(), Failure> {
        let mut done = from;
        for record in &slice.events {
            // What this build does not know is refused (or skipped) here,
            // before the batch's transaction; a payload that does not decode
            // fails the commit.
            let consumed = P::consumes(&record.event_name);
            let unknown = if consumed {
                newer_than_known::<P>(record)
            } else {
                unknown_in_stream(record, self.known.as_deref())
            };
            match unknown {
                Some(e) if !skips::<P>(&e, &self.skipped) => {
                    return Err(Failure::Permanent {
                        position: done,
                        reason: e.to_string(),
                    });
                }
                None if consumed => self.pending.push(Arc::clone(record)),
                _ => {}
            }
            done = record.position;
        }
        Ok(())
    }

    async fn commit(&mut self, through: u64, fence: Option<&Fence>) -> Result<(), Failure> {
        self.backend
            .commit(&self.state, self.pending.clone(), through, fence.cloned())
            .await?;
        self.pending.clear();
        Ok(())
    }

    fn landed(&mut self) {
        self.pending.clear();
    }

    fn discard(&mut self) {
        self.pending.clear();
    }

    async fn reset(&mut self, fence: Option<&Fence>) -> Result<(), Failure> {
        self.pending.clear();
        self.skipped.clear();
        self.backend.migrate().await?;
        self.backend.reset(fence.cloned()).await
    }

    fn batch_span(&self, from: u64, slice: &LogSlice) -> tracing::Span {
        tracing::info_span!(
            "projection_batch",
            projection = P::NAME,
            from,
            through = slice.through,
            events = slice.events.len(),
        )
    }

    async fn saved_checkpoint(&mut self) -> Result<Option<u64>, Failure> {
        self.read
            .load_checkpoint(P::NAME)
            .await
            .map_err(|e| Failure::from_store(&e, 0))
    }
}

/// Starts a projection kept in tables on `backend`; `answering` is the
/// value queries read.
fn start_tables<P: Projection, B: Backend<P>>(
    host: &ProjectionHost,
    backend: B,
    answering: P,
) -> RunningProjection {
    let state = Arc::new(RwLock::new(answering));
    let (progress_tx, progress) = watch::channel(Progress {
        position: 0,
        head: *host.source.watch_head().borrow(),
        state: RunState::Starting,
        last_error: None,
    });
    let (control, control_rx) = mpsc::channel(4);
    let (filter, known) = log_filter::<P>(&host.registry);
    let skipped = Arc::new(Skipped::default());
    let handler = TablesHandler::<P, B> {
        state: Arc::new(std::sync::Mutex::new(P::default())),
        read: Arc::clone(&host.read),
        backend,
        known,
        skipped: Arc::clone(&skipped),
        pending: Vec::new(),
    };
    let runner = Runner {
        name: P::NAME.to_owned(),
        source: Arc::clone(&host.source),
        filter,
        batch: host.batch_size,
        lease: Some(LeaseKeeper {
            store: Arc::clone(&host.read),
            name: P::NAME.to_owned(),
            holder: holder_id(),
            options: host.lease,
        }),
        backoff: host.backoff,
        progress: Arc::new(progress_tx),
        handler,
    };
    let span = tracing::info_span!("projection", projection = P::NAME);
    let task = tokio::spawn(
        runner
            .run(host.shutdown.clone(), control_rx)
            .instrument(span),
    );
    RunningProjection {
        name: P::NAME,
        state,
        durable: true,
        progress,
        control,
        gate: None,
        skipped,
        task: std::sync::Mutex::new(Some(task)),
    }
}

/// A projection whose read store is not the database its tables need:
/// it starts failed, saying so.
fn start_misplaced<P: Projection>(host: &ProjectionHost, needs: &str) -> RunningProjection {
    let reason = format!(
        "its read model is kept in {needs} tables, but its read store is not a {needs} store: \
         give it one with `EngineBuilder::projection_store` or `read_store`"
    );
    let (_, progress) = watch::channel(Progress {
        position: 0,
        head: *host.source.watch_head().borrow(),
        state: RunState::Failed(reason.clone()),
        last_error: Some(reason),
    });
    let (control, _) = mpsc::channel(1);
    RunningProjection {
        name: P::NAME,
        state: Arc::new(RwLock::new(P::default())),
        durable: true,
        progress,
        control,
        gate: None,
        skipped: Arc::default(),
        task: std::sync::Mutex::new(None),
    }
}

/// A consumed event of a schema version newer than `P` reads.
fn newer_than_known<P: Projection>(record: &RecordedEvent) -> Option<DecodeError> {
    let known = P::EVENT_DESCRIPTORS
        .iter()
        .find(|e| e.names().any(|name| name == &*record.event_name))?;
    (record.schema_version > known.version).then(|| {
        DecodeError::new(crate::error::DecodeErrorKind::NewerVersion {
            name: record.event_name.to_string(),
            found: record.schema_version,
            supported: known.version,
        })
        .at(record)
    })
}

/// The migrations of `name` recorded so far, checked against the code's.
fn check_recorded(name: &str, recorded: usize, known: usize) -> Result<(), Failure> {
    if recorded > known {
        return Err(Failure::Permanent {
            position: 0,
            reason: format!(
                "its tables have {recorded} migrations applied, more than the {known} this build \
                 knows: the read database was written by a newer build of `{name}`; nothing was changed"
            ),
        });
    }
    Ok(())
}

#[cfg(feature = "sqlite")]
mod sqlite_backend {
    use super::*;
    use crate::record::Timestamp;
    use crate::store::SqliteStore;

    pub(super) struct Sqlite<P> {
        pub(super) store: SqliteStore,
        pub(super) _projection: std::marker::PhantomData<fn() -> P>,
    }

    fn sql(context: String) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |e| {
            let busy = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            if busy {
                StoreError::Backend {
                    message: context,
                    source: Some(Box::new(e)),
                }
            } else {
                StoreError::Refused {
                    message: format!("{context}: {e}"),
                    source: Some(Box::new(e)),
                }
            }
        }
    }

    impl<P: SqliteTables + SqliteRows> Backend<P> for Sqlite<P> {
        async fn migrate(&self) -> Result<(), Failure> {
            let name = P::NAME;
            let done = self
                .store
                .run_in_writer(move |conn| {
                    let recorded: i64 = conn
                        .query_row(
                            "SELECT COUNT(*) FROM read_model_migrations WHERE projection = ?1",
                            [name],
                            |r| r.get(0),
                        )
                        .map_err(sql(format!("cannot read the migrations of `{name}`")))?;
                    let recorded = usize::try_from(recorded).unwrap_or(usize::MAX);
                    if recorded > P::MIGRATIONS.len() {
                        return Ok(Some(recorded));
                    }
                    for (i, statement) in P::MIGRATIONS.iter().enumerate().skip(recorded) {
                        conn.execute_batch(statement)
                            .map_err(sql(format!("migration {} of `{name}` failed", i + 1)))?;
                        conn.execute(
                            "INSERT INTO read_model_migrations VALUES (?1, ?2, ?3)",
                            rusqlite::params![
                                name,
                                i64::try_from(i + 1).unwrap_or(i64::MAX),
                                Timestamp::now().as_micros()
                            ],
                        )
                        .map_err(sql(format!(
                            "cannot record migration {} of `{name}`",
                            i + 1
                        )))?;
                    }
                    Ok(None)
                })
                .await
                .map_err(|e| Failure::from_store(&e, 0))?;
            match done {
                Some(recorded) => check_recorded(name, recorded, P::MIGRATIONS.len()),
                None => Ok(()),
            }
        }

        async fn commit(
            &self,
            state: &Arc<std::sync::Mutex<P>>,
            events: Vec<Arc<RecordedEvent>>,
            through: u64,
            fence: Option<Fence>,
        ) -> Result<(), Failure> {
            let state = Arc::clone(state);
            let failed_at = self
                .store
                .run_in_writer(move |conn| {
                    SqliteStore::advance(conn, P::NAME, through, fence.as_ref())?;
                    let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    for record in &events {
                        if let Err(e) = state.write_rows(record, conn) {
                            let busy = matches!(
                                &e,
                                RowsError::Sqlite(e) if matches!(
                                    e.sqlite_error_code(),
                                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                                )
                            );
                            let message = format!(
                                "projection `{}` could not write the event at position {}: {e}",
                                P::NAME, record.position
                            );
                            // Rolls the savepoint back: nothing of the batch stays.
                            return Err(if busy {
                                StoreError::Backend { message, source: Some(Box::new(e)) }
                            } else {
                                StoreError::Refused { message, source: Some(Box::new(e)) }
                            });
                        }
                    }
                    Ok(())
                })
                .await;
            failed_at.map_err(|e| Failure::from_store(&e, through))
        }

        async fn reset(&self, fence: Option<Fence>) -> Result<(), Failure> {
            self.store
                .run_in_writer(move |conn| {
                    SqliteStore::forget_checkpoint(conn, P::NAME, fence.as_ref())?;
                    P::reset(conn).map_err(sql(format!("the reset of `{}` failed", P::NAME)))
                })
                .await
                .map_err(|e| Failure::from_store(&e, 0))
        }
    }
}

/// Starts projection `P`, kept in SQLite tables (what `tables = sqlite`
/// registers).
#[cfg(feature = "sqlite")]
#[doc(hidden)]
pub fn start_sqlite_tables<P: SqliteTables + SqliteRows>(
    host: &ProjectionHost,
) -> RunningProjection {
    let Some(store) = host.read.as_sqlite().cloned() else {
        return start_misplaced::<P>(host, "SQLite");
    };
    let mut answering = P::default();
    answering.attach(SqliteReader {
        store: store.clone(),
    });
    let backend = sqlite_backend::Sqlite::<P> {
        store,
        _projection: std::marker::PhantomData,
    };
    start_tables::<P, _>(host, backend, answering)
}

#[cfg(feature = "postgres")]
mod postgres_backend {
    use super::*;
    use crate::store::{PostgresStore, classify};

    pub(super) struct Postgres<P> {
        pub(super) store: PostgresStore,
        pub(super) _projection: std::marker::PhantomData<fn() -> P>,
    }

    impl<P: PostgresTables + PostgresRows + Send> Backend<P> for Postgres<P> {
        async fn migrate(&self) -> Result<(), Failure> {
            let name = P::NAME;
            let s = self.store.quoted_schema();
            let fail = |context: String| move |e| Failure::from_store(&classify(context, e), 0);
            let mut client = self
                .store
                .connection()
                .await
                .map_err(|e| Failure::from_store(&e, 0))?;
            let tx = client
                .transaction()
                .await
                .map_err(fail(format!("cannot migrate the tables of `{name}`")))?;
            // One migrator at a time, per projection.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&format!("{s}.read_model.{name}")],
            )
            .await
            .map_err(fail(format!("cannot lock the migrations of `{name}`")))?;
            tx.batch_execute(&format!("SET LOCAL search_path TO {s}, public"))
                .await
                .map_err(fail(String::from("cannot set the search path")))?;
            let recorded: i64 = tx
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {s}.read_model_migrations WHERE projection = $1"
                    ),
                    &[&name],
                )
                .await
                .map_err(fail(format!("cannot read the migrations of `{name}`")))?
                .get(0);
            let recorded = usize::try_from(recorded).unwrap_or(usize::MAX);
            check_recorded(name, recorded, P::MIGRATIONS.len())?;
            for (i, statement) in P::MIGRATIONS.iter().enumerate().skip(recorded) {
                tx.batch_execute(statement)
                    .await
                    .map_err(fail(format!("migration {} of `{name}` failed", i + 1)))?;
                let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
                tx.execute(
                    &format!("INSERT INTO {s}.read_model_migrations (projection, version) VALUES ($1, $2)"),
                    &[&name, &version],
                )
                .await
                .map_err(fail(format!("cannot record migration {} of `{name}`", i + 1)))?;
            }
            tx.commit()
                .await
                .map_err(fail(format!("cannot commit the migrations of `{name}`")))
        }

        async fn commit(
            &self,
            state: &Arc<std::sync::Mutex<P>>,
            events: Vec<Arc<RecordedEvent>>,
            through: u64,
            fence: Option<Fence>,
        ) -> Result<(), Failure> {
            let name = P::NAME;
            let s = self.store.quoted_schema();
            let fail =
                |context: String| move |e| Failure::from_store(&classify(context, e), through);
            let mut client = self
                .store
                .connection()
                .await
                .map_err(|e| Failure::from_store(&e, through))?;
            let tx = client
                .transaction()
                .await
                .map_err(fail(format!("cannot begin the commit of `{name}`")))?;
            tx.batch_execute(&format!("SET LOCAL search_path TO {s}, public"))
                .await
                .map_err(fail(String::from("cannot set the search path")))?;
            // The fence and the forward-only checkpoint, as for documents
            // (no documents): this transaction holds the lease row shared
            // and the checkpoint row locked until it ends.
            let token = fence
                .as_ref()
                .map(|f| i64::try_from(f.token).unwrap_or(i64::MAX));
            let row = tx
                .query_one(
                    &format!(
                        "SELECT outcome, saved, current_token
                         FROM {s}.commit_read_model($1, '{{}}', '{{}}', '{{}}', $2, $3)"
                    ),
                    &[&name, &i64::try_from(through).unwrap_or(i64::MAX), &token],
                )
                .await
                .map_err(fail(format!("cannot commit the checkpoint of `{name}`")))?;
            match (row.get::<_, &str>(0), &fence) {
                ("ok", _) => {}
                ("fenced", Some(fence)) => {
                    let refused = StoreError::Fenced {
                        name: name.to_owned(),
                        token: fence.token,
                        current: row
                            .get::<_, Option<i64>>(2)
                            .and_then(|t| u64::try_from(t).ok()),
                    };
                    return Err(Failure::from_store(&refused, through));
                }
                _ => {
                    let refused = StoreError::CheckpointNotAfter {
                        name: name.to_owned(),
                        saved: row
                            .get::<_, Option<i64>>(1)
                            .and_then(|t| u64::try_from(t).ok())
                            .unwrap_or(0),
                        attempted: through,
                    };
                    return Err(Failure::from_store(&refused, through));
                }
            }
            // The handlers run one after another on one value: locked for
            // the whole batch, by this task only (no query reads it).
            let mut projection = std::mem::take(
                &mut *state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let mut written = Ok(());
            for record in &events {
                if let Err(e) = projection.write_rows(record, &tx).await {
                    written = Err((record.position, e));
                    break;
                }
            }
            *state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = projection;
            if let Err((position, e)) = written {
                let context =
                    format!("projection `{name}` could not write the event at position {position}");
                return Err(match e {
                    RowsError::Postgres(e) => Failure::from_store(&classify(context, e), position),
                    other => Failure::Permanent {
                        position,
                        reason: format!("{context}: {other}"),
                    },
                });
            }
            tx.commit()
                .await
                .map_err(fail(format!("cannot commit the tables of `{name}`")))
        }

        async fn reset(&self, fence: Option<Fence>) -> Result<(), Failure> {
            let name = P::NAME;
            let s = self.store.quoted_schema();
            let fail = |context: String| move |e| Failure::from_store(&classify(context, e), 0);
            let mut client = self
                .store
                .connection()
                .await
                .map_err(|e| Failure::from_store(&e, 0))?;
            let tx = client
                .transaction()
                .await
                .map_err(fail(format!("cannot begin the reset of `{name}`")))?;
            tx.batch_execute(&format!("SET LOCAL search_path TO {s}, public"))
                .await
                .map_err(fail(String::from("cannot set the search path")))?;
            let token = fence
                .as_ref()
                .map(|f| i64::try_from(f.token).unwrap_or(i64::MAX));
            let row = tx
                .query_one(
                    &format!("SELECT outcome, current_token FROM {s}.reset_read_model($1, $2)"),
                    &[&name, &token],
                )
                .await
                .map_err(fail(format!("cannot reset the checkpoint of `{name}`")))?;
            if let ("fenced", Some(fence)) = (row.get::<_, &str>(0), &fence) {
                let refused = StoreError::Fenced {
                    name: name.to_owned(),
                    token: fence.token,
                    current: row
                        .get::<_, Option<i64>>(1)
                        .and_then(|t| u64::try_from(t).ok()),
                };
                return Err(Failure::from_store(&refused, 0));
            }
            P::reset(&tx)
                .await
                .map_err(fail(format!("the reset of `{name}` failed")))?;
            tx.commit()
                .await
                .map_err(fail(format!("cannot commit the reset of `{name}`")))
        }
    }
}

/// Starts projection `P`, kept in PostgreSQL tables (what `tables =
/// postgres` registers).
#[cfg(feature = "postgres")]
#[doc(hidden)]
pub fn start_postgres_tables<P: PostgresTables + PostgresRows + Send>(
    host: &ProjectionHost,
) -> RunningProjection {
    let Some(store) = host.read.as_postgres().cloned() else {
        return start_misplaced::<P>(host, "PostgreSQL");
    };
    let backend = postgres_backend::Postgres::<P> {
        store,
        _projection: std::marker::PhantomData,
    };
    start_tables::<P, _>(host, backend, P::default())
}
