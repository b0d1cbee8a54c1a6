//! The engine fed bad data and faults, on SQLite and PostgreSQL: stored
//! rows broken column by column, event names no code knows, a read model
//! whose checkpoint is ahead of the log, a database written by a newer
//! build, an unreachable server, and appends made by another process.
//!
//! Each fault is a typed error naming where it is, a projection that stops
//! with that reason (waiting queries fail at once), and a projection that
//! can be restarted or rebuilt once the data is fixed. What may pass (a
//! lost connection) is retried and shown as such.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::prelude::*;
use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use cqrs_core::{DecodeErrorKind, Error, RunState, StoreError, replay};
use cqrs_examples::bank::*;
use cqrs_tests::pg::{TestPostgres, unique_schema};

const PATIENCE: Duration = Duration::from_secs(20);

async fn engine(store: Arc<dyn Store>) -> Engine {
    Engine::builder()
        .shared_store(store)
        .services(BankServices::default())
        .build()
        .await
        .unwrap()
}

/// Where the events are, to break them with SQL.
enum Db {
    Sqlite(PathBuf),
    Postgres { config: String, schema: String },
}

impl Db {
    async fn store(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(path) => Arc::new(SqliteStore::open(path).unwrap()),
            Db::Postgres { config, schema } => Arc::new(
                PostgresStore::connect(config, PostgresOptions::new().schema(schema.as_str()))
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Runs `sql` ({s} standing for the PostgreSQL schema).
    async fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Db::Postgres { config, schema } => {
                let (client, connection) = tokio_postgres::connect(config, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client
                    .batch_execute(&sql.replace("{s}", &format!("\"{schema}\"")))
                    .await
                    .unwrap();
            }
        }
    }

    fn events_table(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "events",
            Db::Postgres { .. } => "{s}.events",
        }
    }
}

async fn postgres_db(test: &str) -> Option<Db> {
    let server = tokio::task::spawn_blocking(TestPostgres::shared)
        .await
        .unwrap()?;
    let db = Db::Postgres {
        config: server.connection_string(),
        schema: unique_schema(test),
    };
    drop(db.store().await);
    Some(db)
}

fn sqlite_db(dir: &Path) -> Db {
    Db::Sqlite(dir.join("events.db"))
}

/// Opens a1 and deposits three times; returns the position of a1's
/// version 2 (its first deposit).
async fn history(store: &Arc<dyn Store>) -> u64 {
    // Written without projections: the read model must still read the row.
    let engine = Engine::builder()
        .shared_store(Arc::clone(store))
        .services(BankServices::default())
        .without_projections()
        .build()
        .await
        .unwrap();
    engine
        .execute(OpenAccount {
            account: "a1".into(),
            owner: "Ada".into(),
        })
        .await
        .unwrap();
    let first = engine
        .execute(Deposit {
            account: "a1".into(),
            amount: 10,
        })
        .await
        .unwrap();
    for _ in 0..2 {
        engine
            .execute(Deposit {
                account: "a1".into(),
                amount: 10,
            })
            .await
            .unwrap();
    }
    engine.stop().await;
    first.position.unwrap()
}

/// Waits for the balances projection to be in a state `pick` accepts.
async fn wait_state(
    engine: &Engine,
    pick: impl Fn(&RunState) -> bool,
) -> cqrs_core::ProjectionStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = engine.projection_status("balances").unwrap();
        if pick(&status.state) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "never reached the state: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One broken column of a1's version 2, and how the row must be named.
async fn corrupt_row_is_a_typed_error(db: Db, column: &'static str, set: &str) {
    let store = db.store().await;
    let position = history(&store).await;
    db.execute(&format!(
        "UPDATE {} SET {set} WHERE position = {position}",
        db.events_table()
    ))
    .await;
    drop(store);
    let store = db.store().await;
    let located = |e: &StoreError| match e {
        StoreError::Corrupt {
            at, column: named, ..
        } => {
            at.position == position
                && *named == column
                && (column.starts_with("stream") || column == "version" || at.version == Some(2))
                && (column.starts_with("stream")
                    || at.stream.as_ref().is_some_and(|s| s.id == "a1"))
        }
        _ => false,
    };

    // A command on the stream: the typed error, naming the row (a row
    // whose stream columns are broken is in no stream a command reads).
    let engine = engine(Arc::clone(&store)).await;
    if !column.starts_with("stream") {
        let refused = engine
            .execute(Deposit {
                account: "a1".into(),
                amount: 1,
            })
            .await
            .unwrap_err();
        match &refused {
            CommandError::Engine(Error::Store(e)) if located(e) => {}
            other => panic!("{column}: expected a corrupt-row error at {position}, got {other}"),
        }
        assert!(
            refused
                .to_string()
                .contains(&format!("position {position}")),
            "{refused}"
        );
    }

    // The projection stops there, permanently, saying why.
    let status = wait_state(&engine, |s| {
        matches!(s, RunState::Failed(_)) || matches!(s, RunState::Retrying(_))
    })
    .await;
    let RunState::Failed(reason) = &status.state else {
        panic!("{column}: the projection retries a row that cannot decode: {status:?}");
    };
    assert!(reason.contains(column), "{reason}");
    assert!(reason.contains(&format!("position {position}")), "{reason}");

    // A query waiting for a later position fails at once.
    let later = engine
        .execute(OpenAccount {
            account: "b1".into(),
            owner: "Bob".into(),
        })
        .await
        .unwrap();
    let asked = Instant::now();
    let answer = engine
        .query(BalanceOf {
            account: "b1".into(),
        })
        .after(&later)
        .timeout(Duration::from_secs(10))
        .await;
    assert!(
        matches!(answer, Err(Error::ProjectionFailed { .. })),
        "{column}: {answer:?}"
    );
    assert!(asked.elapsed() < Duration::from_secs(2), "the query waited");

    // A replay names it too.
    match replay::<Balances>(&*store).await {
        Err(Error::Store(e)) if located(&e) => {}
        other => panic!("{column}: replay gave {:?}", other.map(|_| ())),
    }
    engine.stop().await;
}

macro_rules! corrupt_cases {
    ($($name:ident: $column:literal, $sqlite:literal, $postgres:expr;)*) => {
        mod sqlite_corrupt {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    corrupt_row_is_a_typed_error(sqlite_db(dir.path()), $column, $sqlite).await;
                }
            )*
        }
        mod postgres_corrupt {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let postgres: Option<&str> = $postgres;
                    let Some(set) = postgres else { return };
                    let Some(db) = postgres_db(stringify!($name)).await else { return };
                    corrupt_row_is_a_typed_error(db, $column, set).await;
                }
            )*
        }
    };
}

// PostgreSQL's column types keep most of these out (a uuid column holds
// only UUIDs, a CHECK keeps versions above 0): those cases are SQLite's.
corrupt_cases! {
    metadata_not_json: "metadata", "metadata = 'not json'", None;
    metadata_of_wrong_shape: "metadata", "metadata = '{\"actor\": 5}'",
        Some("metadata = '{\"actor\": 5}'::jsonb");
    metadata_an_array: "metadata", "metadata = '[1, 2]'", Some("metadata = '[1, 2]'::jsonb");
    event_id_not_a_uuid: "event_id", "event_id = 'not-a-uuid'", None;
    negative_schema_version: "schema_version", "schema_version = -1", Some("schema_version = -1");
    schema_version_zero: "schema_version", "schema_version = 0", Some("schema_version = 0");
    version_not_an_integer: "version", "version = 'two'", None;
    stream_id_a_blob: "stream_id", "stream_id = X'00ff'", None;
    timestamp_text: "timestamp_us", "timestamp_us = 'noon'", None;
}

/// A projection that failed on a broken row is restarted once the row is
/// repaired, and rebuilt from zero, both from the failed state; an event
/// whose name no code knows fails it the same way (never skipped).
async fn failed_projection_recovers(db: Db) {
    let store = db.store().await;
    let position = history(&store).await;
    let table = db.events_table();
    db.execute(&format!(
        "UPDATE {table} SET event_name = 'account.mystery' WHERE position = {position}"
    ))
    .await;
    let engine = engine(Arc::clone(&store)).await;
    let status = wait_state(&engine, |s| matches!(s, RunState::Failed(_))).await;
    let RunState::Failed(reason) = &status.state else {
        unreachable!()
    };
    assert!(
        reason.contains("account.mystery") && reason.contains(&format!("position {position}")),
        "{reason}"
    );
    assert_eq!(
        status.position,
        position - 1,
        "it stopped before the unknown event"
    );
    match replay::<Balances>(&*store).await {
        Err(Error::Decode(e)) => {
            assert!(
                matches!(&e.kind, DecodeErrorKind::UnknownEvent { name, .. } if name == "account.mystery")
            );
            assert_eq!(e.at.as_ref().map(|at| at.position), Some(position));
        }
        other => panic!("replay skipped the unknown event: {:?}", other.map(|_| ())),
    }
    // Restarting without a fix fails again at the same place.
    engine.restart_projection("balances").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_state(&engine, |s| matches!(s, RunState::Failed(_))).await;

    // Repaired, a restart resumes from the saved checkpoint.
    db.execute(&format!(
        "UPDATE {table} SET event_name = 'account.deposited' WHERE position = {position}"
    ))
    .await;
    engine.restart_projection("balances").await.unwrap();
    let head = store.head().await.unwrap();
    let balance = engine
        .query(BalanceOf {
            account: "a1".into(),
        })
        .at_least(head)
        .await
        .unwrap();
    assert_eq!(balance, Some(30));

    // Broken again, failed again; a rebuild of the failed projection, once
    // repaired, replays from zero.
    db.execute(&format!(
        "UPDATE {table} SET event_name = 'account.mystery' WHERE position = {position}"
    ))
    .await;
    let rebuild = engine.rebuild("balances").await.unwrap();
    assert!(
        rebuild.finished().await.is_err(),
        "a rebuild over a broken row must fail"
    );
    wait_state(&engine, |s| matches!(s, RunState::Failed(_))).await;
    db.execute(&format!(
        "UPDATE {table} SET event_name = 'account.deposited' WHERE position = {position}"
    ))
    .await;
    let done = engine
        .rebuild("balances")
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    assert_eq!(done.position, head);
    let all = engine.query(AllAccounts).await.unwrap();
    let replayed = replay::<Balances>(&*store).await.unwrap();
    assert_eq!(all, replayed_accounts(&replayed));
    assert_eq!(all["a1"].balance, 30);
    engine.stop().await;
}

fn replayed_accounts(balances: &Balances) -> std::collections::BTreeMap<String, AccountSummary> {
    balances.answer(&AllAccounts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failed_projection_is_restarted_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    failed_projection_recovers(sqlite_db(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failed_projection_is_restarted_and_rebuilt() {
    let Some(db) = postgres_db("failed_projection").await else {
        return;
    };
    failed_projection_recovers(db).await;
}

/// A read model whose checkpoint is ahead of the event log (it belongs to
/// another store, or the log lost events): the projection fails naming
/// itself and both positions, and overwrites nothing.
async fn checkpoint_ahead_of_the_log(store: Arc<dyn Store>, read: Arc<dyn Store>) {
    read.commit_read_model(
        "balances",
        vec![cqrs_core::store::DocumentChange {
            collection: String::from("accounts"),
            key: String::from("ghost"),
            body: Some(br#"{"owner":"ghost","balance":7,"movements":1}"#.to_vec()),
        }],
        1_000,
        None,
    )
    .await
    .unwrap();
    let before = read.load_read_model("balances").await.unwrap();
    let engine = Engine::builder()
        .shared_store(Arc::clone(&store))
        .shared_read_store(read.clone())
        .services(BankServices::default())
        .build()
        .await
        .unwrap();
    let receipt = engine
        .execute(OpenAccount {
            account: "a1".into(),
            owner: "Ada".into(),
        })
        .await
        .unwrap();
    let status = wait_state(&engine, |s| matches!(s, RunState::Failed(_))).await;
    let RunState::Failed(reason) = &status.state else {
        unreachable!()
    };
    assert!(
        reason.contains("1000") && reason.contains("ahead of the log"),
        "{reason}"
    );
    let answer = engine
        .query(BalanceOf {
            account: "a1".into(),
        })
        .after(&receipt)
        .await;
    match answer {
        Err(Error::ProjectionFailed { projection, .. }) => assert_eq!(projection, "balances"),
        other => panic!("{other:?}"),
    }
    engine.stop().await;
    assert_eq!(read.load_read_model("balances").await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_model_ahead_of_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let events: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("e.db")).unwrap());
    let reads: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("r.db")).unwrap());
    checkpoint_ahead_of_the_log(events, reads).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_model_ahead_of_the_log_is_refused() {
    let (Some(events), Some(reads)) = (
        postgres_db("ahead_events").await,
        postgres_db("ahead_reads").await,
    ) else {
        return;
    };
    checkpoint_ahead_of_the_log(events.store().await, reads.store().await).await;
}

/// A database written by a newer build is refused on open with a typed
/// error, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schemas_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("INSERT INTO schema_version VALUES (99, 0)")
        .unwrap();
    drop(conn);
    // What the file holds, read through SQLite (its bytes move when a
    // closing connection checkpoints the WAL).
    let contents = || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT type || ' ' || name, coalesce(sql, '') FROM sqlite_master ORDER BY 1")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_version ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (rows, versions)
    };
    let before = contents();
    match SqliteStore::open(&path) {
        Err(StoreError::NewerSchema {
            database,
            found: 99,
            supported,
        }) => {
            assert!(
                database.contains("future.db") && supported < 99,
                "{database}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(contents() == before, "the file was changed");

    let Some(db) = postgres_db("newer_schema").await else {
        return;
    };
    db.execute("INSERT INTO {s}.schema_migrations (version) VALUES (99)")
        .await;
    let Db::Postgres { config, schema } = &db else {
        unreachable!()
    };
    match PostgresStore::connect(config, PostgresOptions::new().schema(schema.as_str())).await {
        Err(StoreError::NewerSchema {
            found: 99,
            database,
            ..
        }) => {
            assert!(database.contains(schema.as_str()), "{database}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// While PostgreSQL is down, projections say they are retrying and why,
/// not `live`; when it is back, they are live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_shows_as_retrying() {
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::start)
        .await
        .unwrap()
    else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(
            &server.connection_string(),
            PostgresOptions::new()
                .schema("down")
                .head_poll_interval(Duration::from_millis(100)),
        )
        .await
        .unwrap(),
    );
    let engine = engine(Arc::clone(&store)).await;
    let receipt = engine
        .execute(OpenAccount {
            account: "a1".into(),
            owner: "Ada".into(),
        })
        .await
        .unwrap();
    engine
        .query(BalanceOf {
            account: "a1".into(),
        })
        .after(&receipt)
        .await
        .unwrap();
    wait_state(&engine, |s| *s == RunState::Live).await;
    let server = Arc::new(server);
    let stopping = Arc::clone(&server);
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    let status = wait_state(&engine, |s| matches!(s, RunState::Retrying(_))).await;
    assert!(
        status.to_owned().state.to_string().contains("PostgreSQL"),
        "{status:?}"
    );
    let starting = Arc::clone(&server);
    tokio::task::spawn_blocking(move || starting.start_again())
        .await
        .unwrap();
    wait_state(&engine, |s| *s == RunState::Live).await;
    let receipt = engine
        .execute(Deposit {
            account: "a1".into(),
            amount: 5,
        })
        .await
        .unwrap();
    let balance = engine
        .query(BalanceOf {
            account: "a1".into(),
        })
        .after(&receipt)
        .await
        .unwrap();
    assert_eq!(balance, Some(5));
    engine.stop().await;
}

/// On SQLite, a projection's status reports the file's head, appends by
/// another process included, and catches up with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_status_head_includes_other_processes_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let here = engine(Arc::new(SqliteStore::open(&path).unwrap())).await;
    wait_state(&here, |s| *s == RunState::Live).await;
    // Another store on the file stands for another process: its writes
    // reach this one only through the file.
    let elsewhere = Engine::builder()
        .store(SqliteStore::open(&path).unwrap())
        .services(BankServices::default())
        .without_projections()
        .build()
        .await
        .unwrap();
    let receipt = elsewhere
        .execute(OpenAccount {
            account: "a1".into(),
            owner: "Ada".into(),
        })
        .await
        .unwrap();
    let position = receipt.position.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = here.projection_status("balances").unwrap();
        if status.head >= position && status.position >= position {
            assert_eq!(status.lag(), 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other process's append is not seen: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        here.query(BalanceOf {
            account: "a1".into()
        })
        .after(&receipt)
        .await
        .unwrap(),
        Some(0)
    );
}
