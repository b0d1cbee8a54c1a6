//! The engine process of the crash tests (`tests/tests/crash.rs`): runs a
//! `cqrs_core::Engine` with the durable `CrashLedger` projection and executes
//! bank commands from 8 concurrent tasks as fast as it can, until it is
//! killed (or 30 s pass).
//!
//! ```text
//! crash-engine sqlite <file> [read <read store>]
//! crash-engine postgres <connection string> <schema> [read <read store>]
//! ```
//!
//! With `read ..`, the ledger's documents, checkpoint and lease live in that
//! other store (a SQLite file or a PostgreSQL schema).
//!
//! Prints `ok <position>` for each command that appended,
//! `projected <position> <events>` whenever the ledger's saved position
//! moves (with how many events it projected in this process), and
//! `state <active|standby|..>` whenever the ledger's role changes, with
//! `refused` once a commit of its was refused (it lost its lease).
//!
//! The lease tests (`tests/tests/leases.rs`) set, in the environment:
//! `CQRS_TEST_LEASE_MS` (the lease's term, default 600), `CQRS_TEST_WRITE_MS`
//! (how long to send commands, default 30 s: the whole life),
//! `CQRS_TEST_ACCOUNT_PREFIX` (whose accounts its commands touch) and
//! `CQRS_TEST_PAUSE_FILE` (see `crash_bank::pause_point`). The NATS tests
//! set `CQRS_TEST_NO_PROJECTIONS` for a process that only writes, and
//! `CQRS_TEST_TASKS` (default 8) for fewer writers.

#[path = "../crash_bank.rs"]
mod crash_bank;

use std::io::Write;
use std::time::{Duration, Instant};

use cqrs_core::subscription::LeaseOptions;
use cqrs_core::{CommandError, Engine, Projection, Receipt};
use cqrs_tests::child::{Narrator, env_or, say};

use self::crash_bank::{
    CrashDeposit, CrashError, CrashLedger, CrashOpen, CrashReceive, CrashSend, CrashWithdraw,
    ViewLedger,
};

const TASKS: u64 = 8;
const ACCOUNTS: u64 = 16;
/// Small batches: the ledger commits often, so a kill often lands mid-commit.
const PROJECTION_BATCH: usize = 16;
/// The engine stops by itself if no one kills it.
const LIFETIME: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (store, read) = cqrs_tests::child::stores_from_args("crash-engine").await;
    let mut builder = Engine::builder().shared_store(store);
    if let Some(read) = read {
        builder = builder.shared_read_store(read);
    }
    if std::env::var_os("CQRS_TEST_NO_PROJECTIONS").is_some() {
        // Only the writers: the read side runs elsewhere.
        builder = builder.without_projections();
    }
    let engine = builder
        .registry(crash_bank::registry())
        .projection_batch_size(PROJECTION_BATCH)
        // The killed engine's lease runs out soon after the kill.
        .lease(LeaseOptions::new().ttl(Duration::from_millis(env_or("CQRS_TEST_LEASE_MS", 600))))
        .build()
        .await
        .expect("the crash bank registers cleanly");
    for a in 0..ACCOUNTS {
        report(
            engine
                .execute(CrashOpen {
                    account: account(a),
                })
                .await,
        );
    }
    tokio::spawn(watch_ledger(engine.clone()));
    let started = Instant::now();
    let writing = Duration::from_millis(env_or("CQRS_TEST_WRITE_MS", 30_000)).min(LIFETIME);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..env_or("CQRS_TEST_TASKS", TASKS) {
        let engine = engine.clone();
        tasks.spawn(async move { work(&engine, task, started + writing).await });
    }
    tasks.join_all().await;
    say("done writing");
    // Goes on projecting (and holding or waiting for its lease) until
    // killed, or its life is over.
    tokio::time::sleep(LIFETIME.saturating_sub(started.elapsed())).await;
}

fn account(n: u64) -> String {
    let prefix = std::env::var("CQRS_TEST_ACCOUNT_PREFIX").unwrap_or_else(|_| String::from("acct"));
    format!("{prefix}-{:02}", n % ACCOUNTS)
}

/// Deposits, withdrawals and transfers between random accounts.
async fn work(engine: &Engine, task: u64, deadline: Instant) {
    // A small xorshift: reproducible per task, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (task + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    while Instant::now() < deadline {
        let (roll, a, b, amount) = (next() % 10, next(), next(), next() % 100 + 1);
        let account = account(a);
        if roll < 5 {
            report(engine.execute(CrashDeposit { account, amount }).await);
        } else if roll < 7 {
            report(engine.execute(CrashWithdraw { account, amount }).await);
        } else {
            let to = self::account(b);
            let send = CrashSend {
                from: account.clone(),
                to: to.clone(),
                amount,
            };
            if report(engine.execute(send).await) {
                let receive = CrashReceive {
                    to,
                    from: account,
                    amount,
                };
                report(engine.execute(receive).await);
            }
        }
    }
}

/// Prints what a command appended; returns whether it succeeded. Refusals
/// (no funds, same account) are part of the load.
fn report(result: Result<Receipt, CommandError<CrashError>>) -> bool {
    match result {
        Ok(receipt) => {
            if let Some(position) = receipt.position {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "ok {position}");
                let _ = out.flush();
            }
            true
        }
        Err(CommandError::Domain(_)) => false,
        Err(e) => {
            eprintln!("crash-engine: {e}");
            false
        }
    }
}

/// Prints the ledger's saved position each time it moves, and its role.
async fn watch_ledger(engine: Engine) {
    // While a test may pause the ledger mid-batch, its state is not read
    // (a query would wait for the paused batch).
    let pausable = std::env::var_os("CQRS_TEST_PAUSE_FILE").is_some();
    let mut narrator = Narrator::new(true);
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let Some(status) = engine.projection_status(CrashLedger::NAME) else {
            return;
        };
        // A standby (the killed engine's lease not yet run out) folds
        // without saving: only an active ledger's position is saved.
        if let Some(last) =
            narrator.observe(&status.state, status.last_error.as_deref(), status.position)
        {
            let projected = if pausable {
                0
            } else {
                match engine.query(ViewLedger).await {
                    Ok(view) => view.projected_here,
                    Err(_) => 0,
                }
            };
            say(&format!("projected {last} {projected}"));
        }
    }
}
