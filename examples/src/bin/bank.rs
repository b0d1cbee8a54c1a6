//! The bank example: open accounts, move money, get refused, read your writes.
//!
//! Run it with `cargo run --bin bank`.

use std::time::Duration;

use cqrs_core::prelude::*;
use cqrs_core::store::LogFilter;
use cqrs_examples::bank::{
    money, AccountError, AllAccounts, BalanceOf, BankServices, Deposit, OpenAccount, ReceiveTransfer,
    SendTransfer, Withdraw,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("The bank example: every change is an event in an append-only log;");
    println!("balances are read from a projection that follows the log.\n");

    let app = Engine::builder()
        .store(MemoryStore::new())
        .services(BankServices { withdrawal_limit: 1_000_00 })
        .query_timeout(Duration::from_secs(2))
        .build()
        .await?;
    println!("Store: in memory (nothing survives this process).\n");

    step("Ada and Bob open accounts");
    let r = app.execute(OpenAccount { account: "ada".into(), owner: "Ada Lovelace".into() }).await?;
    receipt("open ada", &r);
    let r = app.execute(OpenAccount { account: "bob".into(), owner: "Bob Babbage".into() }).await?;
    receipt("open bob", &r);

    step("Ada deposits 100.00, then withdraws 30.00");
    let r = app.execute(Deposit { account: "ada".into(), amount: 100_00 }).await?;
    receipt("deposit", &r);
    let r = app.execute(Withdraw { account: "ada".into(), amount: 30_00 }).await?;
    receipt("withdraw", &r);

    step("Ada sends 25.00 to Bob: two commands, one per account");
    let transfer = "t-1";
    let sent = app
        .execute(SendTransfer { from: "ada".into(), to: "bob".into(), transfer: transfer.into(), amount: 25_00 })
        .await?;
    receipt("debit ada", &sent);
    let received = app
        .execute(ReceiveTransfer { to: "bob".into(), from: "ada".into(), transfer: transfer.into(), amount: 25_00 })
        .await?;
    receipt("credit bob", &received);

    step("Bob tries to withdraw 500.00 (he has 25.00)");
    match app.execute(Withdraw { account: "bob".into(), amount: 500_00 }).await {
        Err(CommandError::Domain(error @ AccountError::InsufficientFunds { .. })) => {
            println!("  refused by the account itself: {error}");
            println!("  nothing was written; Bob's account is unchanged");
        }
        other => return Err(format!("expected an overdraft refusal, got {other:?}").into()),
    }

    step("Read your own writes");
    println!("  The projection runs on its own task, a moment behind the log.");
    println!("  `query(..).after(&receipt)` waits until it has seen that command:");
    let ada = app.query(BalanceOf { account: "ada".into() }).after(&sent).await?;
    let bob = app.query(BalanceOf { account: "bob".into() }).after(&received).await?;
    println!("  balance of ada: {}", ada.map_or_else(|| "unknown".into(), money));
    println!("  balance of bob: {}", bob.map_or_else(|| "unknown".into(), money));

    step("Every account, from the read model");
    for (id, account) in app.query(AllAccounts).await? {
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
    let answer = app.query_json("BalanceOf", serde_json::json!({ "account": "bob" })).await?;
    println!("  query_json(\"BalanceOf\") -> {answer} (in cents; may lag: no `after` here)");

    step("The projection's position and lag");
    let status = app.projection_status("balances").ok_or("no balances projection")?;
    println!(
        "  balances: at position {} of {}, lag {}, {:?}",
        status.position,
        status.head,
        status.lag(),
        status.state
    );

    step("The event log");
    let log = app.store().read_log(0, &LogFilter::all(), 100).await?;
    for e in &log.events {
        println!(
            "  #{:<2} {:<10} v{:<2} {:<26} {}",
            e.position,
            e.stream.to_string(),
            e.version,
            e.event_name,
            String::from_utf8_lossy(&e.payload)
        );
    }

    step("What the application registered");
    print!("{}", indent(&app.catalog().to_string()));
    println!("\nDone.");
    Ok(())
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn receipt(what: &str, r: &Receipt) {
    let position = r.position.map_or_else(|| "-".into(), |p| p.to_string());
    println!("  {what:<10} -> {}/{} now at version {}, global position {position}", r.aggregate, r.id, r.version);
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
