//! Our side of every sample, and the raw database baselines: what this
//! binary does when started as `cqrs-bench __run <task> ..` by the runner.

use std::sync::Arc;
use std::time::Instant;

use cqrs_core::prelude::*;
use cqrs_core::store::{
    EventStore, ExpectedVersion, PostgresOptions, PostgresStore, Snapshot, SnapshotStore,
    SqliteStore,
};
use cqrs_core::{NewEvent, StreamId, Timestamp};
use cqrs_examples::bank::{
    Account, AccountEvent, AccountOpened, AllAccounts, Balances, BankServices, Deposit,
    MoneyDeposited, MoneyWithdrawn, OpenAccount, Withdraw,
};
use tokio_postgres::NoTls;

use crate::growth;
use crate::runner::Failure;
use crate::script::{self, Step};

/// What a sample reports.
pub(crate) type Report = Vec<(&'static str, f64)>;

/// Runs the task `args` names and returns what to report.
pub(crate) async fn run(args: &[String]) -> Result<Report, Failure> {
    let number = |i: usize| -> Result<usize, Failure> {
        let arg = args
            .get(i)
            .ok_or_else(|| Failure("missing argument".into()))?;
        arg.parse()
            .map_err(|_| Failure(format!("`{arg}` is not a number")))
    };
    let text = |i: usize| -> Result<&str, Failure> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| Failure("missing argument".into()))
    };
    match text(0)? {
        "mem-cmds" => {
            let engine = engine(MemoryStore::new(), 10_000).await?;
            commands(&engine, number(1)?, number(2)?, number(3)?).await
        }
        "mem-growth" => growth::memory(text(1)?, number(2)? as u64).await,
        "pg-cmds" => {
            let store = postgres(text(1)?, text(2)?).await?;
            let engine = engine(store.clone(), 10_000).await?;
            let mut report = commands(&engine, number(3)?, number(4)?, number(5)?).await?;
            let stats = store.stats();
            report.push(("transactions", stats.transactions as f64));
            report.push(("appends", stats.appends as f64));
            Ok(report)
        }
        "pg-growth" => {
            let store = postgres(text(1)?, text(2)?).await?;
            let growth = Growth {
                connection: text(1)?,
                schema: text(2)?,
                mode: text(3)?,
                size: number(4)?,
                aggregates: number(5)?,
                at_least: number(6)?,
                total: number(7)?,
            };
            pg_growth(store, growth).await
        }
        "pg-raw-insert" => {
            pg_raw_insert(text(1)?, text(2)?, number(3)?, number(4)?, number(5)?, 1).await
        }
        "pg-raw-batch" => {
            pg_raw_insert(text(1)?, text(2)?, number(3)?, number(4)?, 1, number(5)?).await
        }
        "sqlite-cmds" => {
            let store = SqliteStore::open(text(1)?)?;
            let engine = engine(store, 10_000).await?;
            commands(&engine, number(2)?, number(3)?, number(4)?).await
        }
        "sqlite-raw-insert" => sqlite_raw_insert(text(1)?, number(2)?, number(3)?),
        "catchup-fill" => catchup_fill(text(1)?, text(2)?, number(3)?).await,
        "catchup-replay" => catchup_replay(text(1)?, text(2)?).await,
        "catchup-scan" => catchup_scan(text(1)?, text(2)?).await,
        "catchup-read" => catchup_read(text(1)?, text(2)?).await,
        "reads-catchup" => crate::reads::catch_up(text(1)?, text(2)?, text(3)?).await,
        "pg-cmds-placed" => {
            let engine = crate::reads::placed_engine(text(1)?, text(2)?, text(6)?).await?;
            commands(&engine, number(3)?, number(4)?, number(5)?).await
        }
        task if task.starts_with("nats-") => crate::nats::run(args.to_vec()).await,
        other => Err(Failure(format!("unknown task `{other}`"))),
    }
}

/// A write-only engine on `store` for the bank domain.
async fn engine<S: cqrs_core::store::Store>(store: S, cache: usize) -> Result<Engine, Failure> {
    Ok(Engine::builder()
        .store(store)
        .services(BankServices::default())
        .cache_capacity(cache)
        .without_projections()
        .build()
        .await?)
}

/// `target` is `<connection string>|<schema>` for PostgreSQL.
async fn postgres(connection: &str, schema: &str) -> Result<PostgresStore, Failure> {
    Ok(PostgresStore::connect(connection, PostgresOptions::new().schema(schema)).await?)
}

async fn execute(engine: &Engine, account: String, step: Step) -> Result<bool, Failure> {
    let outcome = match step {
        Step::Open { owner } => engine.execute(OpenAccount { account, owner }).await,
        Step::Deposit(amount) => engine.execute(Deposit { account, amount }).await,
        Step::Withdraw(amount) => engine.execute(Withdraw { account, amount }).await,
    };
    match outcome {
        Ok(_) => Ok(true),
        Err(CommandError::Domain(_)) => Ok(false),
        Err(CommandError::Engine(e)) => Err(e.into()),
    }
}

/// Runs the script with `clients` concurrent tasks on distinct accounts.
async fn commands(
    engine: &Engine,
    accounts: usize,
    per_account: usize,
    clients: usize,
) -> Result<Report, Failure> {
    let rss_start = script::current_rss_kib();
    // Warm up as the other side does: one command per client on an account
    // of its own, so connection pools are filled before the clock starts.
    for client in 0..clients {
        let owner = String::from("warm");
        execute(engine, format!("warm-{client}"), Step::Open { owner }).await?;
    }
    let ids: Arc<Vec<String>> = Arc::new((0..accounts).map(script::account_id).collect());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let engine = engine.clone();
        let ids = Arc::clone(&ids);
        tasks.push(tokio::spawn(async move {
            let mut refused = 0usize;
            for (a, i) in script::order(client, clients, accounts, per_account) {
                if !execute(&engine, ids[a].clone(), script::step(a, i)).await? {
                    refused += 1;
                }
            }
            Ok::<_, Failure>(refused)
        }));
    }
    let mut refused = 0;
    for task in tasks {
        refused += task.await.map_err(|e| Failure(e.to_string()))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let commands = accounts * per_account;
    Ok(vec![
        ("seconds", seconds),
        ("commands", commands as f64),
        ("refused", refused as f64),
        ("events", (commands - refused) as f64),
        ("rss_start_kib", kib(rss_start)),
        ("rss_kib", kib(script::peak_rss_kib())),
    ])
}

fn kib(value: Option<u64>) -> f64 {
    value.map_or(f64::NAN, |k| k as f64)
}

/// A stored event as the engine writes it.
fn new_event<E: Event>(event: &E) -> Result<NewEvent, Failure> {
    Ok(NewEvent {
        schema_version: E::VERSION,
        metadata: Metadata::new().correlation_id(uuid::Uuid::new_v4()),
        ..NewEvent::new(E::NAME, serde_json::to_vec(event)?)
    })
}

/// One PostgreSQL growth sample.
struct Growth<'a> {
    connection: &'a str,
    schema: &'a str,
    /// `cached`: the engine has loaded each account before the clock starts;
    /// `snapshot`: no cache, every command loads the snapshot and what
    /// follows.
    mode: &'a str,
    /// Events per timed account.
    size: usize,
    /// Timed accounts.
    aggregates: usize,
    /// Commands to time at least.
    at_least: usize,
    /// Events in the table, filler streams included.
    total: usize,
}

/// One command on each of `aggregates` accounts that have `size` events,
/// with the snapshot the engine would have taken (every 100 events).
async fn pg_growth(store: PostgresStore, growth: Growth<'_>) -> Result<Report, Failure> {
    let Growth {
        connection,
        schema,
        mode,
        size,
        aggregates,
        at_least,
        total,
    } = growth;
    let mut writes = tokio::task::JoinSet::new();
    for a in 0..aggregates {
        let store = store.clone();
        writes.spawn(async move {
            let stream = StreamId::new("account", script::account_id(a));
            let opened = AccountOpened {
                owner: format!("owner-{a:06}"),
            };
            let mut events = vec![new_event(&opened)?];
            let mut state = Account::default();
            state.apply_event(&AccountEvent::from(opened));
            let snapshot_at = size / 100 * 100;
            let mut snapshot = None;
            for version in 2..=size {
                let deposited = MoneyDeposited { amount: 1 };
                events.push(new_event(&deposited)?);
                state.apply_event(&AccountEvent::from(deposited));
                if version == snapshot_at {
                    snapshot = state.encode_snapshot().transpose()?;
                }
            }
            store
                .append(&stream, ExpectedVersion::Exact(0), events)
                .await?;
            if let Some(state) = snapshot {
                let snapshot = Snapshot {
                    version: snapshot_at as u64,
                    state,
                    taken_at: Timestamp::now(),
                };
                store.save_snapshot(&stream, snapshot).await?;
            }
            Ok::<_, Failure>(())
        });
    }
    while let Some(done) = writes.join_next().await {
        done.map_err(|e| Failure(e.to_string()))??;
    }
    let cache = if mode == "cached" { 10_000 } else { 0 };
    let engine = engine(store, cache).await?;
    // Settle what the preparation wrote, so neither its write-back nor an
    // autovacuum of the new rows runs during the timed commits (the other
    // side does the same).
    let client = pg_connect(connection).await?;
    // Other streams up to `total` events, so every stream length is timed
    // on a table (and indexes) of the same size.
    let filler = i64::try_from(total.saturating_sub(size * aggregates)).unwrap_or(0);
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".events (stream_aggregate, stream_id, version, \
                 event_id, event_name, schema_version, payload, metadata, timestamp_us) \
                 SELECT 'filler', 'filler-' || (g / 1000), g % 1000 + 1, gen_random_uuid(), \
                 'account.deposited', 1, '{{\"amount\":1}}', '{{}}', 0 \
                 FROM generate_series(0, $1::bigint - 1) g"
            ),
            &[&filler],
        )
        .await?;
    client
        .batch_execute(&format!("VACUUM ANALYZE \"{schema}\".events"))
        .await?;
    client.batch_execute("CHECKPOINT").await?;
    let deposit = |a: usize| Deposit {
        account: script::account_id(a),
        amount: 1,
    };
    // The first command opens the pool's connection; in `cached` mode the
    // first command on each account also loads it.
    engine
        .execute(OpenAccount {
            account: "warm-0".into(),
            owner: "warm".into(),
        })
        .await?;
    if mode == "cached" {
        for a in 0..aggregates {
            engine.execute(deposit(a)).await?;
        }
    }
    // Our commands cost one transaction each whatever the stream length:
    // time at least `at_least` of them (round after round over the
    // accounts) so the figure is not a handful of fsyncs.
    let rounds = at_least.div_ceil(aggregates);
    let started = Instant::now();
    for _ in 0..rounds {
        for a in 0..aggregates {
            engine.execute(deposit(a)).await?;
        }
    }
    Ok(vec![
        ("seconds", started.elapsed().as_secs_f64()),
        ("commands", (rounds * aggregates) as f64),
    ])
}

/// One row of the events table, as the engine would write it for a command
/// of the script.
struct Row {
    stream_id: String,
    version: i64,
    event_id: uuid::Uuid,
    event_name: &'static str,
    payload: String,
    metadata: String,
    timestamp_us: i64,
}

/// The rows the script writes for one client: one per command that is not
/// refused, in the client's order.
fn script_rows(
    client: usize,
    clients: usize,
    accounts: usize,
    per_account: usize,
) -> Result<Vec<Row>, Failure> {
    let mut versions = std::collections::HashMap::new();
    let mut rows = Vec::new();
    for (a, i) in script::order(client, clients, accounts, per_account) {
        let (event_name, payload) = match script::step(a, i) {
            Step::Open { owner } => (
                <AccountOpened as Event>::NAME,
                serde_json::to_string(&AccountOpened { owner })?,
            ),
            Step::Deposit(amount) => (
                <MoneyDeposited as Event>::NAME,
                serde_json::to_string(&MoneyDeposited { amount })?,
            ),
            Step::Withdraw(script::TOO_MUCH) => continue,
            Step::Withdraw(amount) => (
                <MoneyWithdrawn as Event>::NAME,
                serde_json::to_string(&MoneyWithdrawn { amount })?,
            ),
        };
        let version = versions.entry(a).or_insert(0i64);
        *version += 1;
        // Stamped and identified as the engine does, so the event-id index
        // grows the same way on both sides.
        let timestamp = Timestamp::now();
        rows.push(Row {
            stream_id: script::account_id(a),
            version: *version,
            event_id: timestamp.event_id(),
            event_name,
            payload,
            metadata: serde_json::to_string(&Metadata::new().correlation_id(uuid::Uuid::new_v4()))?,
            timestamp_us: timestamp.as_micros(),
        });
    }
    Ok(rows)
}

pub(crate) async fn pg_connect(connection: &str) -> Result<tokio_postgres::Client, Failure> {
    let (client, connection) = tokio_postgres::connect(connection, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The raw baseline: the script's rows inserted into the same table (made by
/// the store's own migration) with tokio-postgres, `batch` rows per INSERT
/// and per transaction, by `clients` connections.
async fn pg_raw_insert(
    connection: &str,
    schema: &str,
    accounts: usize,
    per_account: usize,
    clients: usize,
    batch: usize,
) -> Result<Report, Failure> {
    drop(postgres(connection, schema).await?);
    let mut work = Vec::new();
    for client in 0..clients {
        let rows = script_rows(client, clients, accounts, per_account)?;
        work.push((pg_connect(connection).await?, rows));
    }
    let columns = "stream_aggregate, stream_id, version, event_id, event_name, \
                   schema_version, payload, metadata, timestamp_us";
    let values = |rows: usize| -> String {
        (0..rows)
            .map(|r| {
                let p = r * 9;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}::text::jsonb, ${}::text::jsonb, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = |rows: usize| {
        format!(
            "INSERT INTO \"{schema}\".events ({columns}) VALUES {}",
            values(rows)
        )
    };
    let events: usize = work.iter().map(|(_, rows)| rows.len()).sum();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, rows) in work {
        let full = client.prepare(&sql(batch)).await?;
        let tail_len = rows.len() % batch;
        let tail = if tail_len > 0 {
            Some(client.prepare(&sql(tail_len)).await?)
        } else {
            None
        };
        tasks.push(tokio::spawn(async move {
            for chunk in rows.chunks(batch) {
                let schema_version = 1i32;
                let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    Vec::with_capacity(chunk.len() * 9);
                for row in chunk {
                    params.extend_from_slice(&[
                        &"account",
                        &row.stream_id,
                        &row.version,
                        &row.event_id,
                        &row.event_name,
                        &schema_version,
                        &row.payload,
                        &row.metadata,
                        &row.timestamp_us,
                    ]);
                }
                let statement = if chunk.len() == batch {
                    &full
                } else {
                    tail.as_ref().unwrap_or(&full)
                };
                client.execute(statement, &params).await?;
            }
            Ok::<_, Failure>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| Failure(e.to_string()))??;
    }
    Ok(vec![
        ("seconds", started.elapsed().as_secs_f64()),
        ("events", events as f64),
    ])
}

/// The raw SQLite baseline: the script's rows inserted into the store's own
/// table, one row per transaction, on one connection with the store's
/// settings (WAL, `synchronous=FULL`).
fn sqlite_raw_insert(file: &str, accounts: usize, per_account: usize) -> Result<Report, Failure> {
    drop(SqliteStore::open(file)?);
    let rows = script_rows(0, 1, accounts, per_account)?;
    let conn = rusqlite::Connection::open(file)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")?;
    let mut insert = conn.prepare(
        "INSERT INTO events (stream_aggregate, stream_id, version, event_id, event_name, \
         schema_version, payload, metadata, timestamp_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    let started = Instant::now();
    for row in &rows {
        insert.execute(rusqlite::params![
            "account",
            row.stream_id,
            row.version,
            row.event_id.to_string(),
            row.event_name,
            1,
            row.payload,
            row.metadata,
            row.timestamp_us
        ])?;
    }
    Ok(vec![
        ("seconds", started.elapsed().as_secs_f64()),
        ("events", rows.len() as f64),
    ])
}

/// Opens the store `kind` names at `target` (a file, or
/// `<connection string>|<schema>`).
async fn open(kind: &str, target: &str) -> Result<Arc<dyn cqrs_core::store::Store>, Failure> {
    Ok(match kind {
        "sqlite" => Arc::new(SqliteStore::open(target)?),
        "pg" => {
            let (connection, schema) = target
                .split_once('|')
                .ok_or_else(|| Failure("expected `<connection>|<schema>`".into()))?;
            Arc::new(postgres(connection, schema).await?)
        }
        other => return Err(Failure(format!("unknown store `{other}`"))),
    })
}

/// Stores `events` bank events: accounts of 100 events each (opened, then
/// deposits and withdrawals), appended 100 at a time by 8 tasks.
async fn catchup_fill(kind: &str, target: &str, events: usize) -> Result<Report, Failure> {
    let store = open(kind, target).await?;
    let accounts = events.div_ceil(100);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..8 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            for a in script::accounts_of(client, 8, accounts) {
                let count = (events - a * 100).min(100);
                let mut batch = vec![new_event(&AccountOpened {
                    owner: format!("owner-{a:06}"),
                })?];
                for i in 1..count {
                    batch.push(if i.is_multiple_of(3) {
                        new_event(&MoneyWithdrawn { amount: 30 })?
                    } else {
                        new_event(&MoneyDeposited { amount: 100 })?
                    });
                }
                let stream = StreamId::new("account", script::account_id(a));
                store
                    .append(&stream, ExpectedVersion::Exact(0), batch)
                    .await?;
            }
            Ok::<_, Failure>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| Failure(e.to_string()))??;
    }
    Ok(vec![("events", events as f64)])
}

/// Replays the whole log into a fresh `Balances` projection.
async fn catchup_replay(kind: &str, target: &str) -> Result<Report, Failure> {
    let store = open(kind, target).await?;
    let started = Instant::now();
    let balances = cqrs_core::replay::<Balances>(store.as_ref()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let accounts = Answer::<AllAccounts>::answer(&balances, &AllAccounts).len();
    let events = store.head().await?;
    Ok(vec![
        ("seconds", seconds),
        ("events", events as f64),
        ("accounts", accounts as f64),
    ])
}

/// Reads the whole log through the store, projecting nothing: where a
/// replay's time goes (not a figure; `-v` diagnostics).
async fn catchup_read(kind: &str, target: &str) -> Result<Report, Failure> {
    let store = open(kind, target).await?;
    let filter = cqrs_core::store::LogFilter::events(
        <Balances as cqrs_core::Projection>::EVENTS.iter().copied(),
    );
    let started = Instant::now();
    let head = store.head().await?;
    let (mut after, mut events) = (0, 0usize);
    while after < head {
        let slice = store.read_log(after, &filter, 1024).await?;
        events += slice.events.len();
        if slice.through <= after {
            break;
        }
        after = slice.through;
    }
    Ok(vec![
        ("seconds", started.elapsed().as_secs_f64()),
        ("events", events as f64),
    ])
}

/// The raw baseline: one `SELECT` of every column of every row, in log
/// order, each row's columns read by the client.
async fn catchup_scan(kind: &str, target: &str) -> Result<Report, Failure> {
    let select = "SELECT position, stream_aggregate, stream_id, version, event_id, event_name, \
                  schema_version, payload, metadata, timestamp_us FROM {t} ORDER BY position";
    match kind {
        "sqlite" => {
            let conn = rusqlite::Connection::open(target)?;
            let started = Instant::now();
            let mut statement = conn.prepare(&select.replace("{t}", "events"))?;
            let mut rows = statement.query([])?;
            let (mut events, mut bytes) = (0u64, 0usize);
            while let Some(row) = rows.next()? {
                let id: String = row.get(2)?;
                let name: String = row.get(5)?;
                let payload: String = row.get(7)?;
                let metadata: String = row.get(8)?;
                bytes += id.len() + name.len() + payload.len() + metadata.len();
                events += 1;
            }
            let seconds = started.elapsed().as_secs_f64();
            Ok(vec![
                ("seconds", seconds),
                ("events", events as f64),
                ("bytes", bytes as f64),
            ])
        }
        "pg" => {
            let (connection, schema) = target
                .split_once('|')
                .ok_or_else(|| Failure("expected `<connection>|<schema>`".into()))?;
            let client = pg_connect(connection).await?;
            let sql = select
                .replace("{t}", &format!("\"{schema}\".events"))
                .replace("payload, metadata", "payload::text, metadata::text");
            let started = Instant::now();
            let rows = client.query(&sql, &[]).await?;
            let (mut events, mut bytes) = (0u64, 0usize);
            for row in &rows {
                let id: &str = row.get(2);
                let name: &str = row.get(5);
                let payload: &str = row.get(7);
                let metadata: &str = row.get(8);
                bytes += id.len() + name.len() + payload.len() + metadata.len();
                events += 1;
            }
            let seconds = started.elapsed().as_secs_f64();
            Ok(vec![
                ("seconds", seconds),
                ("events", events as f64),
                ("bytes", bytes as f64),
            ])
        }
        other => Err(Failure(format!("unknown store `{other}`"))),
    }
}
