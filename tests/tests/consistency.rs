//! Concurrency: many tasks, one engine or two, one stream or many. Balances
//! exact, versions contiguous, no event lost or duplicated, the projection
//! equal to a replay from scratch.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cqrs_core::prelude::*;
use cqrs_core::store::{GlobalLog, LogFilter, Store};
use cqrs_core::{StreamId, replay};
use cqrs_examples::bank::*;

const TASKS: usize = 8;
const DEPOSITS: usize = 500;

async fn engine(store: &MemoryStore, max_retries: u32) -> Engine {
    Engine::builder()
        .store(store.clone())
        .services(BankServices::default())
        .max_retries(max_retries)
        .build()
        .await
        .unwrap()
}

/// Checks the invariants every store must keep after concurrent commands.
async fn check_log(store: &dyn Store, expected_per_stream: &BTreeMap<String, usize>) {
    let mut positions = HashSet::new();
    let mut event_ids = HashSet::new();
    let mut last = 0;
    let mut after = 0;
    loop {
        let slice = store
            .read_log(after, &LogFilter::all(), 1000)
            .await
            .unwrap();
        if slice.events.is_empty() {
            break;
        }
        for e in &slice.events {
            assert!(e.position > last, "positions strictly increase");
            last = e.position;
            assert!(
                positions.insert(e.position),
                "duplicate position {}",
                e.position
            );
            assert!(event_ids.insert(e.event_id), "duplicate event id");
        }
        after = slice.through;
    }
    let total: usize = expected_per_stream.values().sum();
    assert_eq!(positions.len(), total, "no event lost or added");
    for (id, expected) in expected_per_stream {
        let events = store
            .read_stream(&StreamId::new("account", id.as_str()), 1)
            .await
            .unwrap();
        assert_eq!(events.len(), *expected, "stream {id}");
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.version, i as u64 + 1, "versions of {id} are contiguous");
        }
    }
}

async fn check_projection(app: &Engine, head: u64) {
    let live = app.query(AllAccounts).at_least(head).await.unwrap();
    let replayed: Balances = replay(app.store().as_ref()).await.unwrap();
    assert_eq!(
        live,
        replayed.answer(&AllAccounts),
        "the live projection equals a replay from scratch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_on_one_account() {
    let store = MemoryStore::new();
    let app = engine(&store, 8).await;
    app.execute(OpenAccount {
        account: "hot".into(),
        owner: "H".into(),
    })
    .await
    .unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..DEPOSITS {
                    app.execute(Deposit {
                        account: "hot".into(),
                        amount: 1,
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let head = store.head().await.unwrap();
    let all = app.query(AllAccounts).at_least(head).await.unwrap();
    assert_eq!(all["hot"].balance, (TASKS * DEPOSITS) as u64);
    check_log(
        &store,
        &BTreeMap::from([("hot".to_string(), TASKS * DEPOSITS + 1)]),
    )
    .await;
    check_projection(&app, head).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_on_distinct_accounts() {
    let store = MemoryStore::new();
    let app = engine(&store, 8).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let app = app.clone();
            tokio::spawn(async move {
                let id = format!("acc-{t}");
                app.execute(OpenAccount {
                    account: id.clone(),
                    owner: id.clone(),
                })
                .await
                .unwrap();
                for i in 0..DEPOSITS {
                    app.execute(Deposit {
                        account: id.clone(),
                        amount: i as u64 + 1,
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let head = store.head().await.unwrap();
    let all = app.query(AllAccounts).at_least(head).await.unwrap();
    let expected_balance = (DEPOSITS * (DEPOSITS + 1) / 2) as u64;
    for t in 0..TASKS {
        assert_eq!(all[&format!("acc-{t}")].balance, expected_balance);
    }
    let expected = (0..TASKS)
        .map(|t| (format!("acc-{t}"), DEPOSITS + 1))
        .collect();
    check_log(&store, &expected).await;
    check_projection(&app, head).await;
}

/// Two engines on one store stand for two processes: their caches go stale,
/// appends conflict, and the engine reloads and retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_on_one_account_retry_conflicts() {
    let store = MemoryStore::new();
    // Two writers alternate, so a command may lose many races in a row.
    let engines = [engine(&store, 1_000).await, engine(&store, 1_000).await];
    engines[0]
        .execute(OpenAccount {
            account: "shared".into(),
            owner: "S".into(),
        })
        .await
        .unwrap();
    let retries = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let app = engines[t % 2].clone();
            let retries = Arc::clone(&retries);
            tokio::spawn(async move {
                for _ in 0..DEPOSITS / 5 {
                    let r = app
                        .execute(Deposit {
                            account: "shared".into(),
                            amount: 1,
                        })
                        .await
                        .unwrap();
                    retries.fetch_add(r.retries, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let deposits = TASKS * DEPOSITS / 5;
    assert!(
        retries.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the engines did conflict"
    );
    let head = store.head().await.unwrap();
    for app in &engines {
        let balance = app
            .query(BalanceOf {
                account: "shared".into(),
            })
            .at_least(head)
            .await
            .unwrap();
        assert_eq!(balance, Some(deposits as u64));
    }
    check_log(
        &store,
        &BTreeMap::from([("shared".to_string(), deposits + 1)]),
    )
    .await;
    check_projection(&engines[1], head).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_are_bounded() {
    let store = MemoryStore::new();
    let engines = [engine(&store, 0).await, engine(&store, 0).await];
    engines[0]
        .execute(OpenAccount {
            account: "x".into(),
            owner: "X".into(),
        })
        .await
        .unwrap();
    // Engine 0 caches version 1; engine 1 moves the stream on; with no
    // retries allowed, engine 0's next command must fail with a typed error.
    engines[1]
        .execute(Deposit {
            account: "x".into(),
            amount: 1,
        })
        .await
        .unwrap();
    engines[1]
        .execute(Deposit {
            account: "x".into(),
            amount: 1,
        })
        .await
        .unwrap();
    let err = engines[0]
        .execute(Deposit {
            account: "x".into(),
            amount: 1,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            CommandError::Engine(cqrs_core::Error::TooManyConflicts { attempts: 1, .. })
        ),
        "{err}"
    );
    // The failed attempt dropped the stale state: the next command reloads.
    let r = engines[0]
        .execute(Deposit {
            account: "x".into(),
            amount: 1,
        })
        .await
        .unwrap();
    assert_eq!(r.version, 4);
}
