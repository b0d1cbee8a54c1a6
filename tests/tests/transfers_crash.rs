//! The transfer process manager's process killed with SIGKILL at random
//! points of a thousand transfers, on SQLite and on PostgreSQL, and started
//! again each time (now and then with a second one standing by for the
//! lease). In the end every transfer is credited or refunded
//! exactly once, no money was made or lost, and the balances equal a
//! from-scratch replay of the log.

// Amounts are cents, grouped as money: `100_00` is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::process::InstanceStatus;
use cqrs_core::store::{LogFilter, PostgresOptions, PostgresStore, SqliteStore, Store};
use cqrs_core::{Aggregate, Answer, Engine, RecordedEvent, replay};
use cqrs_examples::bank::*;
use cqrs_tests::pg::{TestPostgres, unique_schema};
use cqrs_tests::process::Child;

const TRANSFERS: usize = 1000;
const ACCOUNTS: usize = 20;
const START: u64 = 10_000_00;
const KILLS: usize = 8;

/// A small xorshift: the test's randomness, its seed printed so a failure
/// can be run again.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn account(n: u64) -> String {
    format!("a{n}")
}

/// Starts the manager's process on `args`, waiting until it runs.
fn start(args: &[String]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crash-transfers"));
    command.args(args);
    let mut child = Child::spawn("crash-transfers", command);
    child.wait_for("ready", Duration::from_secs(30));
    child
}

/// Sends the transfers (a tenth to a closed account, a tenth held for
/// review, half of those approved) from this process; answers the ids of
/// those the bank accepted.
async fn send_transfers(app: Engine, seed: u64) -> BTreeSet<String> {
    let mut rng = Rng(seed);
    let mut accepted = BTreeSet::new();
    for n in 0..TRANSFERS {
        let from = rng.below(ACCOUNTS as u64);
        let kind = rng.below(10);
        let to = match kind {
            0 => String::from("closed"),
            _ => account((from + 1 + rng.below(ACCOUNTS as u64 - 1)) % ACCOUNTS as u64),
        };
        let amount = match kind {
            1 => REVIEW_ABOVE + 1 + rng.below(100_00),
            _ => 1 + rng.below(100_00),
        };
        let id = format!("t-{n}");
        let sent = app
            .execute(SendTransfer {
                from: account(from),
                to,
                transfer: id.clone(),
                amount,
            })
            .await;
        if sent.is_ok() {
            accepted.insert(id.clone());
            if kind == 1 && rng.below(2) == 0 {
                app.execute(ApproveTransfer {
                    from: account(from),
                    transfer: id,
                })
                .await
                .unwrap();
            }
        }
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    accepted
}

/// The whole log.
async fn whole_log(store: &dyn Store) -> Vec<Arc<RecordedEvent>> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let slice = store
            .read_log(after, &LogFilter::all(), 4096)
            .await
            .unwrap();
        if slice.events.is_empty() {
            return all;
        }
        after = slice.through;
        all.extend(slice.events);
    }
}

/// The status of every instance the manager saved, by key, read from the
/// stored documents as they are.
async fn saved_instances(store: &dyn Store) -> BTreeMap<String, InstanceStatus> {
    let saved = store.load_read_model("process:transfer").await.unwrap();
    saved
        .documents
        .into_iter()
        .map(|(_, key, body)| {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let status: InstanceStatus = serde_json::from_value(json).unwrap();
            (key, status)
        })
        .collect()
}

async fn run(store: Arc<dyn Store>, args: Vec<String>) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    // This process sends the commands; the manager runs elsewhere.
    let app = Engine::builder()
        .shared_store(Arc::clone(&store))
        .services(BankServices::default())
        .without_projections()
        .without_process_managers()
        .build()
        .await
        .unwrap();
    for n in 0..ACCOUNTS as u64 {
        app.execute(OpenAccount {
            account: account(n),
            owner: format!("owner {n}"),
        })
        .await
        .unwrap();
        app.execute(Deposit {
            account: account(n),
            amount: START,
        })
        .await
        .unwrap();
    }
    app.execute(OpenAccount {
        account: "closed".into(),
        owner: "gone".into(),
    })
    .await
    .unwrap();
    app.execute(CloseAccount {
        account: "closed".into(),
    })
    .await
    .unwrap();

    let sender = tokio::spawn(send_transfers(app.clone(), seed));
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut kills = 0;
    while kills < KILLS || !sender.is_finished() {
        let args = args.clone();
        let pause = Duration::from_millis(100 + rng.below(500));
        let two = rng.below(3) == 0;
        tokio::task::spawn_blocking(move || {
            // Now and then a second process, standing by for the lease.
            let mut standby = two.then(|| start(&args));
            let mut child = start(&args);
            std::thread::sleep(pause);
            child.kill();
            if let Some(standby) = standby.as_mut() {
                std::thread::sleep(pause / 2);
                standby.kill();
            }
        })
        .await
        .unwrap();
        kills += 1;
    }
    let accepted = sender.await.unwrap();
    assert!(
        accepted.len() > TRANSFERS * 9 / 10,
        "only {} accepted",
        accepted.len()
    );
    eprintln!("{kills} kills; {} transfers accepted", accepted.len());

    // Started once more, twice at once: one of the two holds the lease
    // and finishes every transfer, the other stands by.
    let args_last = args.clone();
    let last = tokio::task::spawn_blocking(move || (start(&args_last), start(&args_last)))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let instances = loop {
        let instances = saved_instances(&*store).await;
        let ended = instances
            .values()
            .filter(|s| **s != InstanceStatus::Running)
            .count();
        if ended == accepted.len() {
            break instances;
        }
        assert!(
            Instant::now() < deadline,
            "after 180 s only {ended} of {} transfers ended",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(last);
    let keys: BTreeSet<String> = instances.keys().cloned().collect();
    assert_eq!(keys, accepted, "one instance per accepted transfer");
    assert!(
        instances.values().all(|s| *s == InstanceStatus::Completed),
        "{:?}",
        instances
            .values()
            .filter(|s| **s != InstanceStatus::Completed)
            .collect::<Vec<_>>()
    );

    // Each transfer credited or refunded, exactly once.
    let log = whole_log(&*store).await;
    let mut outcomes: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for e in &log {
        let kind = match &*e.event_name {
            "account.transfer_received" => "credited",
            "account.transfer_refunded" => "refunded",
            _ => continue,
        };
        let payload: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
        let id = payload["transfer"].as_str().unwrap().to_owned();
        outcomes.entry(id).or_default().push(kind);
    }
    for id in &accepted {
        let got = outcomes.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(got.len(), 1, "transfer {id}: {got:?}");
    }
    assert_eq!(outcomes.len(), accepted.len());
    let refunded = outcomes.values().filter(|o| o[0] == "refunded").count();
    assert!(
        refunded > 0 && refunded < accepted.len(),
        "{refunded} refunded"
    );

    // No money made or lost, and the read model from scratch agrees.
    let mut balances: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..ACCOUNTS as u64 {
        let mut state = Account::default();
        for event in app.events::<Account>(account(n)).await.unwrap() {
            state.apply_event(&event);
        }
        balances.insert(account(n), state.balance());
    }
    assert_eq!(balances.values().sum::<u64>(), START * ACCOUNTS as u64);
    let replayed = replay::<Balances>(&*store).await.unwrap();
    let from_scratch = <Balances as Answer<AllAccounts>>::answer(&replayed, &AllAccounts);
    for (id, balance) in &balances {
        assert_eq!(from_scratch[id].balance, *balance, "account {id}");
    }
    assert_eq!(from_scratch["closed"].balance, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_manager_killed_at_random_points_moves_every_transfer_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let args = vec![String::from("sqlite"), path.to_str().unwrap().to_owned()];
    run(store, args).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_manager_killed_at_random_points_moves_every_transfer_once() {
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::start_durable)
        .await
        .unwrap()
    else {
        return;
    };
    let config = server.connection_string();
    let schema = unique_schema("transfers_crash");
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&config, PostgresOptions::new().schema(schema.as_str()))
            .await
            .unwrap(),
    );
    let args = vec![String::from("postgres"), config, schema];
    run(store, args).await;
}
