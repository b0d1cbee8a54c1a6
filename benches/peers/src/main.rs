//! The cqrs-es side of the cqrs benchmarks: runs one measurement of the bank
//! script on cqrs-es's `MemStore` or on postgres-es, and prints
//! `RESULT key=value ...` on stderr.
//!
//! `cqrs-bench` builds and starts this binary for every sample; it is not meant
//! to be run by hand. stdout is not used: cqrs-es's `MemStore` prints two
//! lines per command there, and `cqrs-bench` sends it to `/dev/null`.
//!
//! ```text
//! cqrs-bench-peers mem-cmds   ACCOUNTS COMMANDS CLIENTS
//! cqrs-bench-peers mem-growth SIZE AGGREGATES
//! cqrs-bench-peers pg-cmds    URL SCHEMA ACCOUNTS COMMANDS CLIENTS
//! cqrs-bench-peers pg-growth  URL SCHEMA SIZE AGGREGATES TOTAL
//! ```

mod bank;
#[allow(dead_code)]
#[path = "../../src/script.rs"]
mod script;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use cqrs_es::mem_store::{MemStore, MemStoreAggregateContext};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, CqrsFramework, EventStore};
use postgres_es::PostgresEventRepository;
use sqlx::postgres::PgPoolOptions;

use self::bank::{
    Account, AccountCommand, AccountEvent, AccountOpened, BankServices, MoneyDeposited,
};
use self::script::Step;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(fields) => {
            eprintln!("{}", script::result_line(&fields));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cqrs-bench-peers {}: {e}", args.join(" "));
            ExitCode::FAILURE
        }
    }
}

fn number(args: &[String], i: usize) -> Result<usize, Failure> {
    let arg = args.get(i).ok_or("missing argument")?;
    Ok(arg
        .parse()
        .map_err(|_| format!("`{arg}` is not a number"))?)
}

fn text(args: &[String], i: usize) -> Result<&str, Failure> {
    Ok(args.get(i).ok_or("missing argument")?)
}

async fn run(args: &[String]) -> Result<Vec<(&'static str, f64)>, Failure> {
    match args.first().map(String::as_str) {
        Some("mem-cmds") => {
            let cqrs = CqrsFramework::new(
                MemStore::<Account>::default(),
                Vec::new(),
                BankServices::default(),
            );
            commands(
                Arc::new(cqrs),
                number(args, 1)?,
                number(args, 2)?,
                number(args, 3)?,
            )
            .await
        }
        Some("mem-growth") => mem_growth(number(args, 1)?, number(args, 2)?).await,
        Some("pg-cmds") => {
            let (url, schema) = (text(args, 1)?, text(args, 2)?);
            let cqrs = postgres(url, schema).await?;
            commands(
                Arc::new(cqrs),
                number(args, 3)?,
                number(args, 4)?,
                number(args, 5)?,
            )
            .await
        }
        Some("pg-growth") => {
            pg_growth(
                text(args, 1)?,
                text(args, 2)?,
                number(args, 3)?,
                number(args, 4)?,
                number(args, 5)?,
            )
            .await
        }
        _ => Err("expected mem-cmds, mem-growth, pg-cmds or pg-growth".into()),
    }
}

fn command(step: Step) -> AccountCommand {
    match step {
        Step::Open { owner } => AccountCommand::OpenAccount { owner },
        Step::Deposit(amount) => AccountCommand::Deposit { amount },
        Step::Withdraw(amount) => AccountCommand::Withdraw { amount },
    }
}

/// Runs the script with `clients` concurrent tasks on distinct accounts.
async fn commands<S>(
    cqrs: Arc<CqrsFramework<Account, S>>,
    accounts: usize,
    per_account: usize,
    clients: usize,
) -> Result<Vec<(&'static str, f64)>, Failure>
where
    S: EventStore<Account> + 'static,
    S::AC: Send,
{
    let rss_start = script::current_rss_kib();
    // Warm up as the other side does: one command per client on an account
    // of its own, so connection pools are filled before the clock starts.
    for client in 0..clients {
        let id = format!("warm-{client}");
        cqrs.execute(
            &id,
            AccountCommand::OpenAccount {
                owner: "warm".into(),
            },
        )
        .await?;
    }
    let ids: Arc<Vec<String>> = Arc::new((0..accounts).map(script::account_id).collect());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let cqrs = Arc::clone(&cqrs);
        let ids = Arc::clone(&ids);
        tasks.push(tokio::spawn(async move {
            let mut refused = 0usize;
            for (a, i) in script::order(client, clients, accounts, per_account) {
                let id = &ids[a];
                match cqrs.execute(id, command(script::step(a, i))).await {
                    Ok(()) => {}
                    Err(AggregateError::UserError(_)) => refused += 1,
                    Err(e) => return Err(format!("{id}: {e}")),
                }
            }
            Ok(refused)
        }));
    }
    let mut refused = 0;
    for task in tasks {
        refused += task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let commands = accounts * per_account;
    Ok(vec![
        ("seconds", seconds),
        ("commands", commands as f64),
        ("refused", refused as f64),
        ("events", (commands - refused) as f64),
        ("rss_start_kib", rss_start.map_or(f64::NAN, |k| k as f64)),
        (
            "rss_kib",
            script::peak_rss_kib().map_or(f64::NAN, |k| k as f64),
        ),
    ])
}

/// The events of an account with `size` events: opened, then deposits of 1.
fn history(a: usize, size: usize) -> Vec<AccountEvent> {
    let mut events = vec![AccountEvent::AccountOpened(AccountOpened {
        owner: format!("owner-{a:06}"),
    })];
    events.extend((1..size).map(|_| AccountEvent::MoneyDeposited(MoneyDeposited { amount: 1 })));
    events
}

/// One command on each of `aggregates` accounts that have `size` events.
async fn mem_growth(size: usize, aggregates: usize) -> Result<Vec<(&'static str, f64)>, Failure> {
    let store = MemStore::<Account>::default();
    for a in 0..aggregates {
        let context = MemStoreAggregateContext {
            aggregate_id: script::account_id(a),
            aggregate: Account::default(),
            current_sequence: 0,
        };
        store
            .commit(history(a, size), context, HashMap::new())
            .await?;
    }
    let cqrs = CqrsFramework::new(store, Vec::new(), BankServices::default());
    time_one_each(&cqrs, aggregates).await
}

async fn time_one_each<S: EventStore<Account>>(
    cqrs: &CqrsFramework<Account, S>,
    aggregates: usize,
) -> Result<Vec<(&'static str, f64)>, Failure> {
    let started = Instant::now();
    for a in 0..aggregates {
        cqrs.execute(
            &script::account_id(a),
            AccountCommand::Deposit { amount: 1 },
        )
        .await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(vec![("seconds", seconds), ("commands", aggregates as f64)])
}

type PgCqrs = CqrsFramework<Account, PersistedEventStore<PostgresEventRepository, Account>>;

/// postgres-es as its README sets it up (its `default_postgress_pool`, its
/// tables from `db/init.sql`), in schema `schema`.
async fn postgres(url: &str, schema: &str) -> Result<PgCqrs, Failure> {
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect(url)
        .await?;
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
        CREATE TABLE {schema}.events
        (
            aggregate_type text                         NOT NULL,
            aggregate_id   text                         NOT NULL,
            sequence       bigint CHECK (sequence >= 0) NOT NULL,
            event_type     text                         NOT NULL,
            event_version  text                         NOT NULL,
            payload        json                         NOT NULL,
            metadata       json                         NOT NULL,
            PRIMARY KEY (aggregate_type, aggregate_id, sequence)
        );
        CREATE TABLE {schema}.snapshots
        (
            aggregate_type   text                                 NOT NULL,
            aggregate_id     text                                 NOT NULL,
            last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
            current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
            payload          json                                 NOT NULL,
            PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
        );"
    ))
    .execute(&pool)
    .await?;
    let repo = PostgresEventRepository::new(pool)
        .with_tables(&format!("{schema}.events"), &format!("{schema}.snapshots"));
    Ok(CqrsFramework::new(
        PersistedEventStore::new_event_store(repo),
        Vec::new(),
        BankServices::default(),
    ))
}

/// One command on each of `aggregates` accounts that have `size` events,
/// written beforehand in one statement (the rows postgres-es itself writes).
async fn pg_growth(
    url: &str,
    schema: &str,
    size: usize,
    aggregates: usize,
    total: usize,
) -> Result<Vec<(&'static str, f64)>, Failure> {
    let cqrs = postgres(url, schema).await?;
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let opened = serde_json::to_string(&history(0, 1)[0])?.replace("owner-000000", "OWNER");
    let deposited =
        serde_json::to_string(&AccountEvent::MoneyDeposited(MoneyDeposited { amount: 1 }))?;
    sqlx::query(&format!(
        "INSERT INTO {schema}.events
         SELECT 'account', 'acc-' || lpad(a::text, 6, '0'), s,
                CASE WHEN s = 1 THEN 'account.opened' ELSE 'account.deposited' END, '1',
                CASE WHEN s = 1 THEN replace($3, 'OWNER', 'owner-' || lpad(a::text, 6, '0'))
                     ELSE $4 END::json,
                '{{}}'
         FROM generate_series(0, $1 - 1) a, generate_series(1, $2) s"
    ))
    .bind(aggregates as i64)
    .bind(size as i64)
    .bind(opened)
    .bind(deposited)
    .execute(&pool)
    .await?;
    // Other streams up to `total` events, so every stream length is timed
    // on a table (and indexes) of the same size.
    let filler = i64::try_from(total.saturating_sub(size * aggregates)).unwrap_or(0);
    sqlx::query(&format!(
        "INSERT INTO {schema}.events
         SELECT 'filler', 'filler-' || (g / 1000), g % 1000 + 1, 'account.deposited', '1',
                $2::json, '{{}}'
         FROM generate_series(0, $1 - 1) g"
    ))
    .bind(filler)
    .bind(serde_json::to_string(&AccountEvent::MoneyDeposited(
        MoneyDeposited { amount: 1 },
    ))?)
    .execute(&pool)
    .await?;
    // Settle what the preparation wrote, so neither its write-back nor an
    // autovacuum of the new rows runs during the timed commits (the other
    // side does the same).
    sqlx::raw_sql(&format!("VACUUM ANALYZE {schema}.events"))
        .execute(&pool)
        .await?;
    sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    // Fill the pool as the measured loop will use it.
    cqrs.execute(
        "warm-0",
        AccountCommand::OpenAccount {
            owner: "warm".into(),
        },
    )
    .await?;
    time_one_each(&cqrs, aggregates).await
}
