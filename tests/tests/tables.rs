//! Read models in SQL tables of the projection's own: rows written by
//! handlers inside the transaction that moves the checkpoint, in a read
//! store of their own (events in PostgreSQL, tables in SQLite, and the
//! reverse), queried with plain SQL; rebuilt by the projection's own
//! reset; refused when the tables were migrated by a newer build.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::prelude::*;
use cqrs_core::projection::{
    PostgresTables, ProjectPostgres, ProjectSqlite, SqliteReader, SqliteTables,
};
use cqrs_core::rusqlite::{self, params};
use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use cqrs_core::{Placement, Registry, RunState, replay, tokio_postgres};
use cqrs_examples::bank::*;
use cqrs_tests::pg::{TestPostgres, unique_schema};

const PATIENCE: Duration = Duration::from_secs(30);

// ---- the projection, in SQLite tables ----------------------------------------

/// Balances as rows of a table `balance_rows` (account, balance, movements).
#[derive(Projection, Default)]
#[projection(
    name = "balance_rows",
    events(AccountOpened, MoneyDeposited, MoneyWithdrawn, TransferSent, TransferReceived),
    tables = sqlite
)]
struct BalanceRows {
    tables: Option<SqliteReader>,
}

impl BalanceRows {
    fn add(db: &rusqlite::Connection, account: &str, delta: i64) -> rusqlite::Result<()> {
        db.execute(
            "INSERT INTO balance_rows (account, balance, movements) VALUES (?1, ?2, 1)
             ON CONFLICT (account) DO UPDATE
             SET balance = balance + excluded.balance, movements = movements + 1",
            params![account, delta],
        )
        .map(drop)
    }
}

impl SqliteTables for BalanceRows {
    const MIGRATIONS: &'static [&'static str] = &[
        "CREATE TABLE balance_rows (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
        "ALTER TABLE balance_rows ADD COLUMN movements INTEGER NOT NULL DEFAULT 0",
    ];

    fn reset(db: &rusqlite::Connection) -> rusqlite::Result<()> {
        db.execute_batch("DELETE FROM balance_rows")
    }

    fn attach(&mut self, tables: SqliteReader) {
        self.tables = Some(tables);
    }
}

impl ProjectSqlite<AccountOpened> for BalanceRows {
    fn project(
        &mut self,
        e: &Envelope<AccountOpened>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        Self::add(db, e.aggregate_id(), 0)
    }
}
impl ProjectSqlite<MoneyDeposited> for BalanceRows {
    fn project(
        &mut self,
        e: &Envelope<MoneyDeposited>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        Self::add(db, e.aggregate_id(), e.amount as i64)
    }
}
impl ProjectSqlite<MoneyWithdrawn> for BalanceRows {
    fn project(
        &mut self,
        e: &Envelope<MoneyWithdrawn>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        Self::add(db, e.aggregate_id(), -(e.amount as i64))
    }
}
impl ProjectSqlite<TransferSent> for BalanceRows {
    fn project(
        &mut self,
        e: &Envelope<TransferSent>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        Self::add(db, e.aggregate_id(), -(e.amount as i64))
    }
}
impl ProjectSqlite<TransferReceived> for BalanceRows {
    fn project(
        &mut self,
        e: &Envelope<TransferReceived>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        Self::add(db, e.aggregate_id(), e.amount as i64)
    }
}

/// One account's balance, read from the table.
#[derive(Query, Deserialize, Debug)]
#[query(projection = BalanceRows, output = Option<i64>)]
struct RowBalance {
    account: String,
}

impl Answer<RowBalance> for BalanceRows {
    fn answer(&self, q: &RowBalance) -> Option<i64> {
        let tables = self.tables.as_ref()?;
        tables
            .read(|db| {
                db.query_row(
                    "SELECT balance FROM balance_rows WHERE account = ?1",
                    [&q.account],
                    |r| r.get(0),
                )
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
            })
            .ok()
            .flatten()
    }
}

// ---- the same, in PostgreSQL tables ---------------------------------------------

#[derive(Projection, Default)]
#[projection(
    name = "balance_table",
    events(AccountOpened, MoneyDeposited, MoneyWithdrawn, TransferSent, TransferReceived),
    tables = postgres
)]
struct BalanceTable;

async fn add_pg(
    tx: &tokio_postgres::Transaction<'_>,
    account: &str,
    delta: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO balance_table (account, balance, movements) VALUES ($1, $2, 1)
         ON CONFLICT (account) DO UPDATE
         SET balance = balance_table.balance + excluded.balance,
             movements = balance_table.movements + 1",
        &[&account, &delta],
    )
    .await
    .map(drop)
}

impl PostgresTables for BalanceTable {
    const MIGRATIONS: &'static [&'static str] = &[
        "CREATE TABLE balance_table (account text PRIMARY KEY, balance bigint NOT NULL)",
        "ALTER TABLE balance_table ADD COLUMN movements bigint NOT NULL DEFAULT 0",
    ];

    async fn reset(tx: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        tx.batch_execute("TRUNCATE balance_table").await
    }
}

impl ProjectPostgres<AccountOpened> for BalanceTable {
    async fn project(
        &mut self,
        e: &Envelope<AccountOpened>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), 0).await
    }
}
impl ProjectPostgres<MoneyDeposited> for BalanceTable {
    async fn project(
        &mut self,
        e: &Envelope<MoneyDeposited>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), e.amount as i64).await
    }
}
impl ProjectPostgres<MoneyWithdrawn> for BalanceTable {
    async fn project(
        &mut self,
        e: &Envelope<MoneyWithdrawn>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), -(e.amount as i64)).await
    }
}
impl ProjectPostgres<TransferSent> for BalanceTable {
    async fn project(
        &mut self,
        e: &Envelope<TransferSent>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), -(e.amount as i64)).await
    }
}
impl ProjectPostgres<TransferReceived> for BalanceTable {
    async fn project(
        &mut self,
        e: &Envelope<TransferReceived>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        add_pg(tx, e.aggregate_id(), e.amount as i64).await
    }
}

// ---- the tests ------------------------------------------------------------------

fn registry() -> Registry {
    Registry::from_inventory()
}

async fn pg_store(test: &str) -> Option<PostgresStore> {
    let server = tokio::task::spawn_blocking(TestPostgres::shared)
        .await
        .unwrap()?;
    Some(
        PostgresStore::connect(
            &server.connection_string(),
            PostgresOptions::new().schema(unique_schema(test)),
        )
        .await
        .unwrap(),
    )
}

/// Some bank history: accounts, deposits, withdrawals, transfers.
async fn history(engine: &Engine, accounts: usize, rounds: usize) -> Receipt {
    let mut last = None;
    for a in 0..accounts {
        last = Some(
            engine
                .execute(OpenAccount {
                    account: format!("acc-{a}"),
                    owner: format!("owner {a}"),
                })
                .await
                .unwrap(),
        );
    }
    for r in 0..rounds {
        let a = r % accounts;
        let b = (r * 7 + 3) % accounts;
        last = Some(
            engine
                .execute(Deposit {
                    account: format!("acc-{a}"),
                    amount: 100 + r as u64,
                })
                .await
                .unwrap(),
        );
        let _ = engine
            .execute(Withdraw {
                account: format!("acc-{b}"),
                amount: 7,
            })
            .await;
        if a != b {
            let transfer = format!("t-{r}");
            if engine
                .execute(SendTransfer {
                    from: format!("acc-{a}"),
                    to: format!("acc-{b}"),
                    transfer: transfer.clone(),
                    amount: 3,
                })
                .await
                .is_ok()
            {
                last = Some(
                    engine
                        .execute(ReceiveTransfer {
                            to: format!("acc-{b}"),
                            from: format!("acc-{a}"),
                            transfer,
                            amount: 3,
                        })
                        .await
                        .unwrap(),
                );
            }
        }
    }
    last.unwrap()
}

/// The balances a replay of the documents projection gives, as rows.
async fn expected_rows(store: &dyn Store) -> BTreeMap<String, (i64, i64)> {
    let replayed = replay::<Balances>(store).await.unwrap();
    replayed
        .answer(&AllAccounts)
        .into_iter()
        .map(|(id, a)| (id, (a.balance as i64, a.movements as i64)))
        .collect()
}

fn sqlite_rows(path: &std::path::Path) -> BTreeMap<String, (i64, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT account, balance, movements FROM balance_rows ORDER BY account")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn pg_rows(store: &PostgresStore, table: &str) -> BTreeMap<String, (i64, i64)> {
    let (client, connection) = tokio_postgres::connect(&store_config(store), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query(
            &format!(
                "SELECT account, balance, movements FROM \"{}\".{table} ORDER BY account",
                store.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn store_config(_store: &PostgresStore) -> String {
    TestPostgres::shared().unwrap().connection_string()
}

/// Waits until projection `name` is live at the store's head.
async fn caught_up(engine: &Engine, store: &dyn Store, name: &str) {
    let head = store.head().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = engine.projection_status(name).unwrap();
        if status.position >= head && status.state == RunState::Live {
            return;
        }
        assert!(!matches!(status.state, RunState::Failed(_)), "{status:?}");
        assert!(
            Instant::now() < deadline,
            "{name} never caught up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_events_into_sqlite_tables_queried_with_plain_sql() {
    let Some(events) = pg_store("tables_into_sqlite").await else {
        return;
    };
    let events: Arc<dyn Store> = Arc::new(events);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reads.db");
    let engine = Engine::builder()
        .shared_store(Arc::clone(&events))
        .registry(registry())
        .services(BankServices::default())
        .projection_store("balance_rows", SqliteStore::open(&path).unwrap())
        .placement("balance_table", Placement::Remote)
        .build()
        .await
        .unwrap();
    let last = history(&engine, 5, 40).await;
    // Read-your-writes through the projection's own query.
    let balance = engine
        .query(RowBalance {
            account: String::from("acc-0"),
        })
        .after(&last)
        .await
        .unwrap();
    caught_up(&engine, &*events, "balance_rows").await;
    let rows = sqlite_rows(&path);
    assert_eq!(rows, expected_rows(&*events).await);
    assert_eq!(balance, Some(rows["acc-0"].0));
    // Nothing of the read model in the events' database.
    assert_eq!(events.load_checkpoint("balance_rows").await.unwrap(), None);

    // A rebuild runs the projection's reset, then replays.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE balance_rows SET balance = -1", [])
        .unwrap();
    drop(conn);
    let done = engine
        .rebuild("balance_rows")
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    assert!(done.done);
    assert_eq!(sqlite_rows(&path), expected_rows(&*events).await);
    engine.stop().await;

    // A build that knows fewer migrations than the tables had is refused.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO read_model_migrations VALUES ('balance_rows', 3, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let before = sqlite_rows(&path);
    let engine = Engine::builder()
        .shared_store(Arc::clone(&events))
        .registry(registry())
        .services(BankServices::default())
        .projection_store("balance_rows", SqliteStore::open(&path).unwrap())
        .placement("balance_table", Placement::Remote)
        .lease(cqrs_core::subscription::LeaseOptions::new().ttl(Duration::from_millis(300)))
        .build()
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let reason = loop {
        let status = engine.projection_status("balance_rows").unwrap();
        if let RunState::Failed(reason) = status.state {
            break reason;
        }
        assert!(Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains("newer build") && reason.contains("balance_rows"),
        "{reason}"
    );
    assert_eq!(sqlite_rows(&path), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_events_into_postgres_tables_queried_with_plain_sql() {
    let Some(reads) = pg_store("tables_into_pg").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let events: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("events.db")).unwrap());
    let engine = Engine::builder()
        .shared_store(Arc::clone(&events))
        .registry(registry())
        .services(BankServices::default())
        .projection_store("balance_table", reads.clone())
        .placement("balance_rows", Placement::Remote)
        .build()
        .await
        .unwrap();
    history(&engine, 5, 40).await;
    caught_up(&engine, &*events, "balance_table").await;
    assert_eq!(
        pg_rows(&reads, "balance_table").await,
        expected_rows(&*events).await
    );
    let done = engine
        .rebuild("balance_table")
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    assert!(done.done);
    assert_eq!(
        pg_rows(&reads, "balance_table").await,
        expected_rows(&*events).await
    );
    engine.stop().await;
}

/// A tables projection given a read store of the other kind fails at once,
/// saying which store it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_in_the_wrong_kind_of_store_are_refused() {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .registry(registry())
        .services(BankServices::default())
        .build()
        .await
        .unwrap();
    let status = engine.projection_status("balance_rows").unwrap();
    assert!(
        matches!(&status.state, RunState::Failed(reason) if reason.contains("SQLite")),
        "{status:?}"
    );
    let status = engine.projection_status("balance_table").unwrap();
    assert!(
        matches!(&status.state, RunState::Failed(reason) if reason.contains("PostgreSQL")),
        "{status:?}"
    );
}
