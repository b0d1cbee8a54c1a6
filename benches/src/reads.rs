//! Our side of the read-side figures: a projection catching up into a read
//! model in another database (documents, or SQL tables of its own), and
//! commands with the balances projection inline against async.
//!
//! The table projections live here, not in the bank example, so that only
//! the engines that ask for them run them (every other engine of the bench
//! is write-only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::prelude::*;
use cqrs_core::projection::{PostgresTables, ProjectPostgres, ProjectSqlite, SqliteTables};
use cqrs_core::rusqlite::{self, params};
use cqrs_core::store::{CheckpointStore, PostgresOptions, PostgresStore, SqliteStore, Store};
use cqrs_core::{Placement, RunState, tokio_postgres};
use cqrs_examples::bank::{
    AccountOpened, BankServices, MoneyDeposited, MoneyWithdrawn, TransferReceived, TransferSent,
};

use crate::child::Report;
use crate::runner::Failure;

/// Balances as rows of `bench_rows`, in SQLite.
#[derive(Projection, Default)]
#[projection(
    name = "bench_rows_sqlite",
    events(AccountOpened, MoneyDeposited, MoneyWithdrawn, TransferSent, TransferReceived),
    tables = sqlite
)]
pub(crate) struct RowsSqlite;

fn add(db: &rusqlite::Connection, account: &str, delta: i64) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO bench_rows (account, balance) VALUES (?1, ?2)
         ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance",
    )?
    .execute(params![account, delta])
    .map(drop)
}

fn amount(cents: u64) -> i64 {
    i64::try_from(cents).unwrap_or(i64::MAX)
}

impl SqliteTables for RowsSqlite {
    const MIGRATIONS: &'static [&'static str] =
        &["CREATE TABLE bench_rows (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)"];

    fn reset(db: &rusqlite::Connection) -> rusqlite::Result<()> {
        db.execute_batch("DELETE FROM bench_rows")
    }
}

impl ProjectSqlite<AccountOpened> for RowsSqlite {
    fn project(
        &mut self,
        e: &Envelope<AccountOpened>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        add(db, e.aggregate_id(), 0)
    }
}
impl ProjectSqlite<MoneyDeposited> for RowsSqlite {
    fn project(
        &mut self,
        e: &Envelope<MoneyDeposited>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        add(db, e.aggregate_id(), amount(e.amount))
    }
}
impl ProjectSqlite<MoneyWithdrawn> for RowsSqlite {
    fn project(
        &mut self,
        e: &Envelope<MoneyWithdrawn>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        add(db, e.aggregate_id(), -amount(e.amount))
    }
}
impl ProjectSqlite<TransferSent> for RowsSqlite {
    fn project(
        &mut self,
        e: &Envelope<TransferSent>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        add(db, e.aggregate_id(), -amount(e.amount))
    }
}
impl ProjectSqlite<TransferReceived> for RowsSqlite {
    fn project(
        &mut self,
        e: &Envelope<TransferReceived>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        add(db, e.aggregate_id(), amount(e.amount))
    }
}

/// The same rows, in PostgreSQL.
#[derive(Projection, Default)]
#[projection(
    name = "bench_rows_pg",
    events(AccountOpened, MoneyDeposited, MoneyWithdrawn, TransferSent, TransferReceived),
    tables = postgres
)]
pub(crate) struct RowsPostgres;

async fn add_pg(
    tx: &tokio_postgres::Transaction<'_>,
    account: &str,
    delta: i64,
) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare(
            "INSERT INTO bench_rows (account, balance) VALUES ($1, $2)
             ON CONFLICT (account) DO UPDATE SET balance = bench_rows.balance + excluded.balance",
        )
        .await?;
    tx.execute(&statement, &[&account, &delta]).await.map(drop)
}

impl PostgresTables for RowsPostgres {
    const MIGRATIONS: &'static [&'static str] =
        &["CREATE TABLE bench_rows (account text PRIMARY KEY, balance bigint NOT NULL)"];

    async fn reset(tx: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        tx.batch_execute("TRUNCATE bench_rows").await
    }
}

impl ProjectPostgres<AccountOpened> for RowsPostgres {
    async fn project(
        &mut self,
        e: &Envelope<AccountOpened>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), 0).await
    }
}
impl ProjectPostgres<MoneyDeposited> for RowsPostgres {
    async fn project(
        &mut self,
        e: &Envelope<MoneyDeposited>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), amount(e.amount)).await
    }
}
impl ProjectPostgres<MoneyWithdrawn> for RowsPostgres {
    async fn project(
        &mut self,
        e: &Envelope<MoneyWithdrawn>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), -amount(e.amount)).await
    }
}
impl ProjectPostgres<TransferSent> for RowsPostgres {
    async fn project(
        &mut self,
        e: &Envelope<TransferSent>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), -amount(e.amount)).await
    }
}
impl ProjectPostgres<TransferReceived> for RowsPostgres {
    async fn project(
        &mut self,
        e: &Envelope<TransferReceived>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), amount(e.amount)).await
    }
}

/// Every projection of the bench binary, and the one a sample runs.
const PROJECTIONS: [&str; 3] = ["balances", "bench_rows_sqlite", "bench_rows_pg"];

/// Catches up projection `projection` (`balances` in documents, or a table
/// projection) from the PostgreSQL event store at `events` into the read
/// store `read` (`pg`: the event store's database; `sqlite:<file>`: a
/// fresh SQLite file), timing from the engine's start until the
/// projection reached the head.
pub(crate) async fn catch_up(
    events: &str,
    read: &str,
    projection: &str,
) -> Result<Report, Failure> {
    let (connection, schema) = events
        .split_once('|')
        .ok_or_else(|| Failure("expected `<connection>|<schema>`".into()))?;
    let store: Arc<dyn Store> =
        Arc::new(PostgresStore::connect(connection, PostgresOptions::new().schema(schema)).await?);
    let read: Arc<dyn CheckpointStore> = match read.strip_prefix("sqlite:") {
        Some(file) => Arc::new(SqliteStore::open(file)?),
        None => store.clone(),
    };
    // Not timed: the read model of the previous sample goes.
    read.reset_read_model(projection, None).await?;
    if projection == "bench_rows_pg" {
        let client = crate::child::pg_connect(connection).await?;
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS \"{schema}\".bench_rows; DELETE FROM \"{schema}\".read_model_migrations"))
            .await?;
    }
    let head = store.head().await?;
    let started = Instant::now();
    let mut builder = Engine::builder()
        .shared_store(Arc::clone(&store))
        .shared_projection_store(projection, read)
        .services(BankServices::default())
        .projection_batch_size(4096);
    for other in PROJECTIONS.iter().filter(|p| **p != projection) {
        builder = builder.placement(other, Placement::Remote);
    }
    let engine = builder.build().await?;
    loop {
        let status = engine
            .projection_status(projection)
            .ok_or_else(|| Failure(format!("projection `{projection}` is not running")))?;
        if let RunState::Failed(reason) = &status.state {
            return Err(Failure(format!("`{projection}` failed: {reason}")));
        }
        if status.position >= head && status.state == RunState::Live {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Its lease given up: the next sample takes it at once.
    engine.stop().await;
    Ok(vec![("seconds", seconds), ("events", head as f64)])
}

/// The PostgreSQL commands of the `pg` figure with the balances projection
/// running `placement` (`inline` or `async`) in the engine.
pub(crate) async fn placed_engine(
    connection: &str,
    schema: &str,
    placement: &str,
) -> Result<Engine, Failure> {
    let placement = match placement {
        "inline" => Placement::Inline,
        "async" => Placement::Async,
        other => return Err(Failure(format!("unknown placement `{other}`"))),
    };
    let store = PostgresStore::connect(connection, PostgresOptions::new().schema(schema)).await?;
    let mut builder = Engine::builder()
        .store(store)
        .services(BankServices::default())
        .placement("balances", placement);
    for other in PROJECTIONS.iter().filter(|p| **p != "balances") {
        builder = builder.placement(other, Placement::Remote);
    }
    Ok(builder.build().await?)
}
