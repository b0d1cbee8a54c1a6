//! Where a projection runs is configuration: inline (its changes commit in
//! the command's transaction), async in this process, or elsewhere. Shown on
//! every store: an inline read model includes a command as soon as its
//! receipt is back, saved with the events; inline and async give the same
//! read model; two processes running one inline projection on one database
//! agree; placements that cannot work are refused when the engine is built.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::prelude::*;
use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use cqrs_core::{Error, Placement, replay};
use cqrs_examples::bank::*;
use cqrs_tests::pg::{TestPostgres, unique_schema};

async fn engine(store: Arc<dyn Store>, placement: Placement) -> Engine {
    Engine::builder()
        .shared_store(store)
        .services(BankServices::default())
        .placement("balances", placement)
        .build()
        .await
        .unwrap()
}

/// Runs commands on `engine`: after each, the inline read model already
/// holds it (no waiting), and the store saved it with the events.
async fn commands_are_visible_at_once(
    engine: &Engine,
    store: &dyn Store,
    accounts: usize,
    rounds: usize,
) {
    for a in 0..accounts {
        engine
            .execute(OpenAccount {
                account: format!("acc-{a}"),
                owner: format!("owner {a}"),
            })
            .await
            .unwrap();
    }
    let mut expected = vec![0u64; accounts];
    for r in 0..rounds {
        let a = r % accounts;
        let receipt = engine
            .execute(Deposit {
                account: format!("acc-{a}"),
                amount: 10 + r as u64,
            })
            .await
            .unwrap();
        expected[a] += 10 + r as u64;
        // No `.after`: the receipt means it is in.
        let balance = engine
            .query(BalanceOf {
                account: format!("acc-{a}"),
            })
            .await
            .unwrap();
        assert_eq!(balance, Some(expected[a]), "round {r}");
        if r % 7 == 0 {
            let saved = store.load_read_model("balances").await.unwrap();
            assert_eq!(saved.checkpoint, receipt.position, "saved with the events");
        }
    }
}

async fn inline_on(store: Arc<dyn Store>) {
    let engine = engine(Arc::clone(&store), Placement::Inline).await;
    commands_are_visible_at_once(&engine, &*store, 4, 40).await;
    let replayed = replay::<Balances>(&*store).await.unwrap();
    assert_eq!(
        engine.query(AllAccounts).await.unwrap(),
        replayed.answer(&AllAccounts)
    );
    // A refused command changes nothing, inline or not.
    let before = store.load_read_model("balances").await.unwrap();
    let refused = engine
        .execute(Withdraw {
            account: String::from("acc-0"),
            amount: 1_000_000_000,
        })
        .await;
    assert!(matches!(refused, Err(CommandError::Domain(_))));
    assert_eq!(store.load_read_model("balances").await.unwrap(), before);
    engine.stop().await;

    // A restart restores the saved read model; async from there on, the
    // same read model.
    let engine = self::engine(Arc::clone(&store), Placement::Async).await;
    let head = store.head().await.unwrap();
    let all = engine.query(AllAccounts).at_least(head).await.unwrap();
    assert_eq!(all, replayed.answer(&AllAccounts));
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_inline() {
    inline_on(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inline() {
    let dir = tempfile::tempdir().unwrap();
    inline_on(Arc::new(
        SqliteStore::open(dir.path().join("e.db")).unwrap(),
    ))
    .await;
}

async fn pg(test: &str) -> Option<PostgresStore> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inline() {
    let Some(store) = pg("inline").await else {
        return;
    };
    inline_on(Arc::new(store)).await;
}

/// The same commands through an inline and an async engine (on two stores)
/// give the same read model.
async fn inline_and_async_agree(inline: Arc<dyn Store>, async_store: Arc<dyn Store>) {
    let a = engine(Arc::clone(&inline), Placement::Inline).await;
    let b = engine(Arc::clone(&async_store), Placement::Async).await;
    let mut last = None;
    for engine in [&a, &b] {
        for i in 0..30u64 {
            let account = format!("acc-{}", i % 3);
            if i < 3 {
                engine
                    .execute(OpenAccount {
                        account: account.clone(),
                        owner: account.clone(),
                    })
                    .await
                    .unwrap();
            }
            let _ = engine
                .execute(Withdraw {
                    account: account.clone(),
                    amount: 5,
                })
                .await;
            last = Some(
                engine
                    .execute(Deposit {
                        account,
                        amount: i + 1,
                    })
                    .await
                    .unwrap(),
            );
        }
    }
    let inline_model = a.query(AllAccounts).await.unwrap();
    let async_model = b.query(AllAccounts).after(&last.unwrap()).await.unwrap();
    assert_eq!(inline_model, async_model);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inline_and_async_agree() {
    let dir = tempfile::tempdir().unwrap();
    inline_and_async_agree(
        Arc::new(SqliteStore::open(dir.path().join("a.db")).unwrap()),
        Arc::new(SqliteStore::open(dir.path().join("b.db")).unwrap()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inline_and_async_agree() {
    let (Some(a), Some(b)) = (pg("agree_inline").await, pg("agree_async").await) else {
        return;
    };
    inline_and_async_agree(Arc::new(a), Arc::new(b)).await;
}

/// Two engines on one database (two stores on it stand for two
/// processes), both with the projection inline, commands alternating: each
/// append folds what the other appended since, so both read models, and
/// the saved one, equal a replay.
async fn two_processes_inline(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let one = engine(Arc::clone(&a), Placement::Inline).await;
    let two = engine(Arc::clone(&b), Placement::Inline).await;
    for i in 0..40u64 {
        let engine = if i % 2 == 0 { &one } else { &two };
        let account = format!("acc-{}", i % 5);
        if i < 5 {
            engine
                .execute(OpenAccount {
                    account: account.clone(),
                    owner: account.clone(),
                })
                .await
                .unwrap();
        }
        engine
            .execute(Deposit {
                account,
                amount: i + 1,
            })
            .await
            .unwrap();
    }
    let replayed = replay::<Balances>(&*a).await.unwrap().answer(&AllAccounts);
    let head = a.head().await.unwrap();
    let saved = a.load_read_model("balances").await.unwrap();
    assert_eq!(saved.checkpoint, Some(head));
    for engine in [&one, &two] {
        let seen = engine
            .query(AllAccounts)
            .at_least(head)
            .timeout(Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(seen, replayed);
    }
    let docs: std::collections::BTreeMap<String, AccountSummary> = saved
        .documents
        .iter()
        .map(|(_, key, body)| (key.clone(), serde_json::from_slice(body).unwrap()))
        .collect();
    assert_eq!(docs, replayed);
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_processes_inline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    two_processes_inline(
        Arc::new(SqliteStore::open(&path).unwrap()),
        Arc::new(SqliteStore::open(&path).unwrap()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_processes_inline() {
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::shared)
        .await
        .unwrap()
    else {
        return;
    };
    let schema = unique_schema("two_inline");
    let config = server.connection_string();
    let connect =
        || PostgresStore::connect(&config, PostgresOptions::new().schema(schema.as_str()));
    two_processes_inline(
        Arc::new(connect().await.unwrap()),
        Arc::new(connect().await.unwrap()),
    )
    .await;
}

/// Inline needs the read model in the event store's database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_with_a_read_store_of_its_own_is_refused() {
    let built = Engine::builder()
        .store(MemoryStore::new())
        .services(BankServices::default())
        .projection_store("balances", MemoryStore::new())
        .placement("balances", Placement::Inline)
        .build()
        .await;
    match built {
        Err(Error::Placement {
            projection,
            placement,
            reason,
        }) => {
            assert_eq!((projection.as_str(), placement), ("balances", "inline"));
            assert!(reason.contains("read store"), "{reason}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(matches!(
        Engine::builder()
            .store(MemoryStore::new())
            .services(BankServices::default())
            .placement("nope", Placement::Inline)
            .build()
            .await,
        Err(Error::UnknownProjection { .. })
    ));
}
