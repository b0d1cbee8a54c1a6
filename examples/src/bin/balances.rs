//! The bank's read side in a process and a database of its own: the
//! `balances` projection, fed from NATS JetStream by the `bank` binary's
//! relay, with no event store here.
//!
//! ```text
//! cargo run --bin bank -- --store sqlite:bank.db --relay nats://127.0.0.1:4222
//! cargo run --bin balances -- --nats nats://127.0.0.1:4222 --read-store sqlite:reads.db
//! ```
//!
//! `--after '<receipt JSON>'` (the last line `bank` prints) waits until this
//! read model has seen that command: read-your-writes across processes.
//! `--follow` keeps running and prints the projection's status every
//! second until interrupted. `examples/nats-demo.sh` runs the whole demo.

// Amounts are cents, grouped as money: `100_00` is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::time::{Duration, Instant};

use cqrs_core::nats::{JetStream, JetStreamOptions};
use cqrs_core::prelude::*;
use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore};
use cqrs_core::{ProjectionStatus, ReadSide, RunState};
use cqrs_examples::bank::{AllAccounts, money};

const USAGE: &str = "usage: balances --nats nats://<host>:<port>[,nats://..]
                [--read-store memory | --read-store sqlite:<file> | --read-store postgres:<connection string>]
                [--after '<receipt JSON>'] [--follow]";

struct Args {
    nats: String,
    read_store: String,
    after: Option<Receipt>,
    follow: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("error: {problem}\n{USAGE}");
            std::process::exit(2);
        }
    };
    println!("The bank's read side: the balances projection, fed from NATS JetStream.");
    let js = JetStream::connect(&args.nats, JetStreamOptions::new()).await?;
    let builder = ReadSide::builder()
        .source(js.source("balances"))
        .projections(["balances"]);
    let (builder, described) = match args.read_store.split_once(':') {
        _ if args.read_store == "memory" => (
            builder.read_store(MemoryStore::new()),
            String::from("in memory"),
        ),
        Some(("sqlite", path)) => (
            builder.read_store(SqliteStore::open(path)?),
            format!("SQLite file {path}"),
        ),
        Some(("postgres", config)) => (
            builder.read_store(PostgresStore::connect(config, PostgresOptions::new()).await?),
            String::from("PostgreSQL"),
        ),
        _ => return Err(format!("unknown read store `{}`", args.read_store).into()),
    };
    let reads = builder.build().await?;
    println!("Read model: {described}; events from {}.", args.nats);

    let accounts = match &args.after {
        Some(receipt) => {
            println!(
                "\nWaiting until the read model has seen {}/{} version {} ..",
                receipt.aggregate, receipt.id, receipt.version
            );
            reads
                .query(AllAccounts)
                .after(receipt)
                .timeout(Duration::from_secs(20))
                .await?
        }
        None => {
            caught_up(&reads).await?;
            reads.query(AllAccounts).await?
        }
    };
    println!("\n== Every account, from the remote read model");
    for (id, account) in &accounts {
        println!(
            "  {id:<4} {:<14} {:>8}  ({} events)",
            account.owner,
            money(account.balance),
            account.movements
        );
    }
    let status = reads
        .projection_status("balances")
        .ok_or("no balances projection")?;
    println!("\n== The projection");
    print_status(&status);
    if args.follow {
        println!("\nFollowing (Ctrl-C to stop) ..");
        // Until the process is interrupted: the read model is committed
        // as it goes, so nothing is lost by stopping it at any point.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(status) = reads.projection_status("balances") {
                print_status(&status);
            }
        }
    }
    reads.stop().await;
    Ok(())
}

/// Waits (a bounded time) until the projection has applied everything the
/// stream held when it looked, or stopped.
async fn caught_up(reads: &ReadSide) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = reads
            .projection_status("balances")
            .ok_or("no balances projection")?;
        if let RunState::Failed(reason) = &status.state {
            return Err(format!("the balances projection stopped: {reason}").into());
        }
        let seen = status.source_sequence.unwrap_or(0) > 0 || status.head > 0;
        if seen && status.lag() == 0 && status.state == RunState::Live {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not caught up within 20 s: {status:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn print_status(status: &ProjectionStatus) {
    println!(
        "  balances: at position {} of {}, lag {}, stream sequence {}, {}",
        status.position,
        status.head,
        status.lag(),
        status
            .source_sequence
            .map_or_else(|| "-".into(), |s| s.to_string()),
        status.state
    );
    if let Some(error) = &status.last_error {
        println!("  last error: {error}");
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut nats, mut read_store, mut after, mut follow) = (None, None, None, false);
    while let Some(arg) = args.next() {
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            value
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--nats" => {
                let url = value("--nats")?;
                if !url.split(',').all(|u| u.trim().starts_with("nats://")) {
                    return Err(format!("--nats takes nats:// addresses, not `{url}`"));
                }
                nats = Some(url);
            }
            "--read-store" => {
                let store = value("--read-store")?;
                let known = store == "memory"
                    || matches!(store.split_once(':'),
                        Some(("sqlite" | "postgres", rest)) if !rest.is_empty());
                if !known {
                    return Err(format!("unknown read store `{store}`"));
                }
                read_store = Some(store);
            }
            "--after" => {
                let receipt = value("--after")?;
                after = Some(
                    serde_json::from_str(&receipt)
                        .map_err(|e| format!("--after takes a receipt as JSON: {e}"))?,
                );
            }
            "--follow" => follow = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args {
        nats: nats.ok_or("--nats is required")?,
        read_store: read_store.unwrap_or_else(|| String::from("memory")),
        after,
        follow,
    })
}
