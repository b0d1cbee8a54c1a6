//! The bank example: open accounts, move money, get refused, read your writes.
//!
//! ```text
//! cargo run --bin bank                              # in memory
//! cargo run --bin bank -- --store sqlite:bank.db    # a SQLite file; run it twice
//! cargo run --bin bank -- --store postgres:'host=/tmp user=postgres'
//! cargo run --bin bank -- --store sqlite:bank.db --relay nats://127.0.0.1:4222
//! cargo run --bin bank -- --serve 127.0.0.1:8080    # the bank over HTTP
//! ```
//!
//! With `--serve`, it runs no demo: it serves the bank's commands, queries,
//! event feed and status over HTTP (`cqrs_core::http`) until Ctrl-C.
//!
//! With `--relay`, a relay publishes every event to NATS JetStream, where
//! the `balances` binary (the read side in a process and database of its
//! own) reads them; `examples/nats-demo.sh` runs the two together.

// Amounts are cents, grouped as money: `100_00` is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::time::Duration;

use cqrs_core::nats::{JetStream, JetStreamOptions};
use cqrs_core::prelude::*;
use cqrs_core::process::{InstanceStatus, ManualClock};
use cqrs_core::store::{LogFilter, PostgresOptions, PostgresStore, SqliteStore};
use cqrs_core::subscription::RelayOptions;
use cqrs_examples::bank::{
    AccountError, AllAccounts, ApproveTransfer, BalanceOf, BankServices, CloseAccount, Deposit,
    OpenAccount, REVIEW_ABOVE, REVIEW_WINDOW, SendTransfer, Withdraw, money,
};

const USAGE: &str =
    "usage: bank [--store memory | --store sqlite:<file> | --store postgres:<connection string>]
            [--relay nats://<host>:<port>[,nats://..]] [--serve <address:port>]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        store,
        relay,
        serve,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("error: {problem}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if serve.is_none() {
        println!("The bank example: every change is an event in an append-only log;");
        println!("balances are read from a projection that follows the log.\n");
    }

    // Deadlines run on this clock, which the demo moves by hand so that a
    // five-minute review window passes at once; an application leaves the
    // engine on the system clock.
    let clock = ManualClock::new();
    let mut builder = Engine::builder();
    if serve.is_none() {
        builder = builder.clock(clock.clone());
    }
    let builder = builder
        .services(BankServices {
            withdrawal_limit: 1_000_00,
        })
        .query_timeout(Duration::from_secs(5));
    let (builder, described) = match &store {
        StoreArg::Memory => (
            builder.store(MemoryStore::new()),
            "in memory (nothing survives this process)".to_string(),
        ),
        StoreArg::Sqlite(path) => (
            builder.store(SqliteStore::open(path)?),
            format!("SQLite file {path}"),
        ),
        StoreArg::Postgres(config) => (
            builder.store(PostgresStore::connect(config, PostgresOptions::new()).await?),
            "PostgreSQL".to_string(),
        ),
    };
    let builder = match &relay {
        Some(url) => {
            let js = JetStream::connect(url, JetStreamOptions::new()).await?;
            builder.relay("relay", js.sink(), RelayOptions::new())
        }
        None => builder,
    };
    let app = builder.build().await?;
    if let Some(address) = serve {
        return serve_http(app, &address, &described).await;
    }
    let stored = app.store().head().await?;
    println!("Store: {described}.");
    if let Some(url) = &relay {
        println!("Relay: every event goes to the JetStream stream `CQRS` at {url}.");
    }
    if stored > 0 {
        println!(
            "It already holds {stored} events from earlier runs: this run continues from them."
        );
    }

    step("Ada, Bob and Carol open accounts; Carol closes hers");
    for (id, owner) in [
        ("ada", "Ada Lovelace"),
        ("bob", "Bob Babbage"),
        ("carol", "Carol Shaw"),
    ] {
        match app
            .execute(OpenAccount {
                account: id.into(),
                owner: owner.into(),
            })
            .await
        {
            Ok(r) => receipt(&format!("open {id}"), &r),
            Err(CommandError::Domain(AccountError::AlreadyOpen)) => {
                println!("  open {id:<5} -> refused: already open (from an earlier run)");
            }
            Err(e) => return Err(e.into()),
        }
    }
    match app
        .execute(CloseAccount {
            account: "carol".into(),
        })
        .await
    {
        Ok(r) => receipt("close carol", &r),
        Err(CommandError::Domain(AccountError::NotOpen)) => {
            println!("  close carol -> refused: already closed (from an earlier run)");
        }
        Err(e) => return Err(e.into()),
    }

    step("Ada deposits 1,000.00, then withdraws 30.00");
    let r = app
        .execute(Deposit {
            account: "ada".into(),
            amount: 1_000_00,
        })
        .await?;
    receipt("deposit", &r);
    let r = app
        .execute(Withdraw {
            account: "ada".into(),
            amount: 30_00,
        })
        .await?;
    receipt("withdraw", &r);

    // Transfer ids are new on every run, so a SQLite file can be run again.
    let run = r.version;
    step("Ada sends 25.00 to Bob: one command; the `transfer` process manager credits Bob");
    let (sent, received) = transfer(&app, "ada", "bob", &format!("t-{run}-a"), 25_00).await?;

    step("Ada sends 10.00 to Carol, whose account is closed: the manager refunds Ada");
    transfer(&app, "ada", "carol", &format!("t-{run}-b"), 10_00).await?;

    step(&format!(
        "Transfers over {} wait for an approval, for {} minutes at most",
        money(REVIEW_ABOVE),
        REVIEW_WINDOW.as_secs() / 60
    ));
    let approved = format!("t-{run}-c");
    app.execute(SendTransfer {
        from: "ada".into(),
        to: "bob".into(),
        transfer: approved.clone(),
        amount: 250_00,
    })
    .await?;
    println!("  sent 250.00 to bob as {approved}; the manager holds it for review");
    show(&app, &approved, false).await?;
    app.execute(ApproveTransfer {
        from: "ada".into(),
        transfer: approved.clone(),
    })
    .await?;
    println!("  approved:");
    show(&app, &approved, true).await?;
    let expired = format!("t-{run}-d");
    app.execute(SendTransfer {
        from: "ada".into(),
        to: "bob".into(),
        transfer: expired.clone(),
        amount: 300_00,
    })
    .await?;
    println!("  sent 300.00 to bob as {expired}, and nobody approves it");
    show(&app, &expired, false).await?;
    clock.advance(REVIEW_WINDOW);
    println!(
        "  {} minutes later (on the demo's clock):",
        REVIEW_WINDOW.as_secs() / 60
    );
    show(&app, &expired, true).await?;
    if let Some(status) = app.process_status("transfer") {
        println!(
            "  transfer manager: {} running, {} completed, {} failed; at position {} of {}, {}",
            status.running,
            status.completed,
            status.failed,
            status.position,
            status.head,
            status.state
        );
    }

    let bob = app
        .query(BalanceOf {
            account: "bob".into(),
        })
        .after(&received)
        .await?
        .unwrap_or(0);
    let too_much = bob + 100_00;
    step(&format!(
        "Bob tries to withdraw {} (he has {})",
        money(too_much),
        money(bob)
    ));
    match app
        .execute(Withdraw {
            account: "bob".into(),
            amount: too_much,
        })
        .await
    {
        Err(CommandError::Domain(
            error @ (AccountError::InsufficientFunds { .. } | AccountError::OverLimit { .. }),
        )) => {
            println!("  refused by the account itself: {error}");
            println!("  nothing was written; Bob's account is unchanged");
        }
        other => return Err(format!("expected an overdraft refusal, got {other:?}").into()),
    }

    step("Read your own writes");
    println!("  The projection runs on its own task, a moment behind the log.");
    println!("  `query(..).after(&receipt)` waits until it has seen that command:");
    let ada = app
        .query(BalanceOf {
            account: "ada".into(),
        })
        .after(&sent)
        .await?;
    let bob = app
        .query(BalanceOf {
            account: "bob".into(),
        })
        .after(&received)
        .await?;
    println!(
        "  balance of ada: {}",
        ada.map_or_else(|| "unknown".into(), money)
    );
    println!(
        "  balance of bob: {}",
        bob.map_or_else(|| "unknown".into(), money)
    );

    step("Every account, from the read model");
    for (id, account) in app.query(AllAccounts).after(&received).await? {
        println!(
            "  {id:<4} {:<14} {:>8}  ({} events)",
            account.owner,
            money(account.balance),
            account.movements
        );
    }

    step("Dispatch by name, as an HTTP handler or a CLI would");
    let body = serde_json::json!({ "account": "bob", "amount": 5_00 });
    println!("  execute_json(\"Deposit\", {body})");
    let r = app.execute_json("Deposit", body).await?;
    receipt("deposit", &r);
    let answer = app
        .query_json("BalanceOf", serde_json::json!({ "account": "bob" }))
        .await?;
    println!("  query_json(\"BalanceOf\") -> {answer} (in cents; no `after`, so it may lag)");

    step("The projection's position and lag");
    app.query(AllAccounts).after(&r).await?;
    // The answer is there as soon as the events are applied; the status
    // (position, head, live) is published a moment later.
    let shown = r.position.unwrap_or(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = app
            .projection_status("balances")
            .ok_or("no balances projection")?;
        let settled = status.position >= shown
            && status.head == status.position
            && status.state == cqrs_core::RunState::Live;
        if settled || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    println!(
        "  balances: at position {} of {}, lag {}, {}{}",
        status.position,
        status.head,
        status.lag(),
        status.state,
        if status.durable {
            ", saved in the store with its checkpoint"
        } else {
            ""
        }
    );

    step("The event log (the last 12 events)");
    let head = app.store().head().await?;
    let log = app
        .store()
        .read_log(head.saturating_sub(12), &LogFilter::all(), 12)
        .await?;
    for e in &log.events {
        println!(
            "  #{:<3} {:<12} v{:<3} {:<26} {}",
            e.position,
            e.stream.to_string(),
            e.version,
            e.event_name,
            String::from_utf8_lossy(&e.payload)
        );
    }

    step("What the application registered");
    print!("{}", indent(&app.catalog().to_string()));
    if relay.is_some() {
        relayed(&app, &r).await?;
    }
    // Gives up the leases at once: the next process (another run, the
    // admin tool) need not wait out their term.
    app.stop().await;
    println!("\nDone.");
    Ok(())
}

/// Serves the bank over HTTP at `address` until Ctrl-C.
async fn serve_http(
    app: Engine,
    address: &str,
    described: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("The bank over HTTP, on {described}.");
    println!("listening on {url}");
    println!("  open {url}/dashboard in a browser: projections, lag and events, live");
    println!("  POST {url}/commands/OpenAccount  {{\"account\":\"ada\",\"owner\":\"Ada\"}}");
    println!("  POST {url}/queries/BalanceOf?after=<position>  {{\"account\":\"ada\"}}");
    println!(
        "  GET  {url}/events  (Server-Sent Events)   GET {url}/projections   GET {url}/catalog"
    );
    let router = cqrs_core::http::router(app.clone(), cqrs_core::http::HttpOptions::new());
    cqrs_core::http::axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    app.stop().await;
    Ok(())
}

/// Sends a transfer and waits until its process manager instance ended;
/// prints its history. Answers the debit's receipt and the receipt of the
/// instance's last command, for reading one's writes.
async fn transfer(
    app: &Engine,
    from: &str,
    to: &str,
    id: &str,
    amount: u64,
) -> Result<(Receipt, Receipt), Box<dyn std::error::Error>> {
    let sent = app
        .execute(SendTransfer {
            from: from.into(),
            to: to.into(),
            transfer: id.into(),
            amount,
        })
        .await?;
    receipt(&format!("debit {from}"), &sent);
    let last = show(app, id, true).await?;
    let last = Receipt {
        position: last.or(sent.position),
        ..sent.clone()
    };
    Ok((sent, last))
}

/// Prints what transfer `id`'s instance did, once it ended (`until_ended`)
/// or once it took its first event; answers the position of its last
/// command's events.
async fn show(
    app: &Engine,
    id: &str,
    until_ended: bool,
) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let instance = loop {
        let instance = app.process_instance("transfer", id).await?;
        let ready = instance
            .as_ref()
            .is_some_and(|i| !until_ended || i.status != InstanceStatus::Running);
        if ready || std::time::Instant::now() > deadline {
            break instance.ok_or_else(|| format!("transfer {id} has no instance after 10 s"))?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut last = None;
    for step in &instance.history {
        let commands: Vec<String> = step
            .commands
            .iter()
            .map(|c| match &c.refused {
                None => format!("{} to {}", c.issued.command, c.issued.stream),
                Some(why) => format!(
                    "{} to {} (refused: {why})",
                    c.issued.command, c.issued.stream
                ),
            })
            .collect();
        last = step.commands.iter().rev().find_map(|c| c.position).or(last);
        let sent = if commands.is_empty() {
            String::from("nothing sent")
        } else {
            commands.join(", then ")
        };
        println!("    {:<26} -> {sent}", step.input);
    }
    for d in &instance.deadlines {
        println!("    deadline `{}` set", d.name);
    }
    let status = match &instance.status {
        InstanceStatus::Running => String::from("running"),
        InstanceStatus::Completed => String::from("completed"),
        InstanceStatus::Failed(why) => format!("failed: {why}"),
    };
    println!("    transfer {id}: {status}");
    Ok(last)
}

/// Waits (a bounded time) until the relay has published everything, then
/// says where it is and hands over the last receipt for the read side.
async fn relayed(app: &Engine, last: &Receipt) -> Result<(), Box<dyn std::error::Error>> {
    step("The relay to NATS JetStream");
    let head = app.store().head().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = app.relays().remove(0);
        if status.position >= head || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "  relay: published through position {} of {}, lag {}, {}",
        status.position,
        status.head,
        status.lag(),
        status.state
    );
    if let Some(error) = &status.last_error {
        println!("  last error: {error}");
    }
    if status.position < head {
        return Err(format!("the relay did not publish everything within 10 s: {status:?}").into());
    }
    // A receipt is JSON: the read side waits for it in another process.
    let receipt = serde_json::to_string(last)?;
    println!("  the last receipt, for the read side's --after:");
    println!("  {receipt}");
    if let Ok(path) = std::env::var("BANK_RECEIPT_FILE") {
        std::fs::write(path, &receipt)?;
    }
    app.stop().await;
    Ok(())
}

enum StoreArg {
    Memory,
    Sqlite(String),
    Postgres(String),
}

struct Args {
    store: StoreArg,
    relay: Option<String>,
    serve: Option<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        store: StoreArg::Memory,
        relay: None,
        serve: None,
    };
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
            "--store" => {
                let store = value("--store")?;
                parsed.store = match store.split_once(':') {
                    _ if store == "memory" => StoreArg::Memory,
                    Some(("sqlite", path)) if !path.is_empty() => StoreArg::Sqlite(path.to_owned()),
                    Some(("postgres", config)) if !config.is_empty() => {
                        StoreArg::Postgres(config.to_owned())
                    }
                    _ => return Err(format!("unknown store `{store}`")),
                };
            }
            "--relay" => {
                let url = value("--relay")?;
                if !url.split(',').all(|u| u.trim().starts_with("nats://")) {
                    return Err(format!("--relay takes nats:// addresses, not `{url}`"));
                }
                parsed.relay = Some(url);
            }
            "--serve" => parsed.serve = Some(value("--serve")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(parsed)
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn receipt(what: &str, r: &Receipt) {
    let position = r.position.map_or_else(|| "-".into(), |p| p.to_string());
    println!(
        "  {what:<10} -> {}/{} now at version {}, global position {position}",
        r.aggregate, r.id, r.version
    );
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
