//! Idempotent commands on every store (issue 12): a command with an
//! idempotency key runs at most once per stream; a repeat, sent later, from
//! another engine, or at the same time, gets the first command's receipt.

use std::sync::Arc;

use cqrs_core::prelude::*;
use cqrs_core::store::{ExpectedVersion, PostgresOptions, PostgresStore, SqliteStore, Store};
use cqrs_core::{NewEvent, Placement, Registry, StoreError, StreamId};
use cqrs_tests::on_every_store;
use cqrs_tests::pg::{TestPostgres, unique_schema};
use cqrs_tests::stores::TestStore;

/// Something was added.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "tally.added")]
struct Added {
    n: u64,
}

/// Add `n` (`times` events of it); 0 is refused.
#[derive(Command, Deserialize, Debug, Clone)]
#[command(aggregate = Tally)]
struct Add {
    #[id]
    id: String,
    n: u64,
    times: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("nothing to add")]
struct Nothing;

#[derive(Aggregate, Default, Debug)]
#[aggregate(name = "tally", events(Added), commands(Add), error = Nothing)]
struct Tally {
    total: u64,
}

impl Apply<Added> for Tally {
    fn apply(&mut self, e: &Added) {
        self.total += e.n;
    }
}

impl Handle<Add> for Tally {
    fn handle(&self, c: &Add) -> Result<Events<Self>, Nothing> {
        if c.n == 0 {
            return Err(Nothing);
        }
        let mut events = Events::new();
        for _ in 0..c.times {
            events.push(Added { n: c.n });
        }
        Ok(events)
    }
}

async fn engine(store: &Arc<dyn Store>) -> Engine {
    let registry = Registry::new()
        .register::<Added>()
        .register::<Add>()
        .register::<Tally>();
    Engine::builder()
        .shared_store(Arc::clone(store))
        .registry(registry)
        .build()
        .await
        .unwrap()
}

fn add(id: &str, n: u64, times: u64) -> Add {
    Add {
        id: id.into(),
        n,
        times,
    }
}

fn key(k: &str) -> Metadata {
    Metadata::new().idempotency_key(k)
}

async fn total(engine: &Engine, id: &str) -> u64 {
    let events = engine.events::<Tally>(id).await.unwrap();
    events
        .iter()
        .map(|e| {
            let TallyEvent::Added(added) = e.event();
            added.n
        })
        .sum()
}

/// A repeat with the key gets the first receipt and appends nothing; another
/// key, or the same key on another stream, runs.
async fn a_repeated_key_gets_the_first_receipt(store: TestStore) {
    let app = engine(&store.store).await;
    let first = app.execute_with(add("a", 5, 2), key("k1")).await.unwrap();
    assert_eq!((first.version, first.events), (2, 2));
    let again = app.execute_with(add("a", 5, 2), key("k1")).await.unwrap();
    assert_eq!(again, first);
    // The handler did not run again: even a command that would now differ
    // (or be refused) is answered with the first receipt.
    let different = app.execute_with(add("a", 0, 1), key("k1")).await.unwrap();
    assert_eq!(different, first);
    assert_eq!(total(&app, "a").await, 10);

    let other_key = app.execute_with(add("a", 1, 1), key("k2")).await.unwrap();
    assert_eq!(other_key.version, 3);
    let other_stream = app.execute_with(add("b", 1, 1), key("k1")).await.unwrap();
    assert_eq!((other_stream.id.as_str(), other_stream.version), ("b", 1));
    // Without a key, every command runs.
    app.execute(add("a", 1, 1)).await.unwrap();
    app.execute(add("a", 1, 1)).await.unwrap();
    assert_eq!(total(&app, "a").await, 13);
    // The key is kept in the events' metadata too.
    let events = app.events::<Tally>("a").await.unwrap();
    assert_eq!(events[0].metadata().idempotency_key.as_deref(), Some("k1"));
}

/// The key is the store's, not the engine's: a fresh engine (no cache) on
/// the same store answers with the first receipt.
async fn a_fresh_engine_knows_the_key(store: TestStore) {
    let first = engine(&store.store)
        .await
        .execute_with(add("a", 3, 1), key("once"))
        .await
        .unwrap();
    let fresh = engine(&store.store).await;
    let again = fresh
        .execute_with(add("a", 3, 1), key("once"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(total(&fresh, "a").await, 3);
}

/// A refused command records no key: sent again, it runs again.
async fn a_refused_command_records_no_key(store: TestStore) {
    let app = engine(&store.store).await;
    let refused = app.execute_with(add("a", 0, 1), key("k")).await;
    assert!(matches!(refused, Err(CommandError::Domain(Nothing))));
    let ran = app.execute_with(add("a", 4, 1), key("k")).await.unwrap();
    assert_eq!(ran.version, 1);
    assert_eq!(total(&app, "a").await, 4);
}

/// A key from outside (an HTTP header) is checked before any I/O: empty,
/// over 256 bytes or with a control character, it is refused, nothing
/// stored; at the limit it runs.
async fn malformed_keys_are_refused(store: TestStore) {
    let app = engine(&store.store).await;
    for bad in [String::new(), "k".repeat(257), String::from("line\nbreak")] {
        let refused = app.execute_with(add("a", 1, 1), key(&bad)).await;
        match refused {
            Err(CommandError::Engine(cqrs_core::Error::Store(StoreError::InvalidAppend {
                reason,
                ..
            }))) => assert!(reason.contains("idempotency key"), "{reason}"),
            other => panic!("expected InvalidAppend for {bad:?}, got {other:?}"),
        }
        // The store refuses it too, when appended to directly.
        let event = NewEvent {
            metadata: key(&bad),
            ..NewEvent::new("tally.added", r#"{"n":1}"#)
        };
        let direct = store
            .store
            .append(
                &StreamId::new("tally", "a"),
                ExpectedVersion::Any,
                vec![event],
            )
            .await;
        assert!(
            matches!(direct, Err(StoreError::InvalidAppend { .. })),
            "{direct:?}"
        );
    }
    assert_eq!(total(&app, "a").await, 0);
    let longest = "k".repeat(cqrs_core::store::MAX_IDEMPOTENCY_KEY);
    let ran = app
        .execute_with(add("a", 1, 1), key(&longest))
        .await
        .unwrap();
    assert_eq!(
        app.execute_with(add("a", 1, 1), key(&longest))
            .await
            .unwrap(),
        ran
    );
    assert_eq!(total(&app, "a").await, 1);
}

/// Two engines (two processes, as far as the store can tell) send the same
/// command with the same key at once, many times over: each time exactly
/// one appends, and both get its receipt.
async fn concurrent_duplicates_append_once(store: TestStore) {
    let (one, two) = (engine(&store.store).await, engine(&store.store).await);
    let rounds = 25u64;
    for round in 0..rounds {
        let k = format!("round-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = [one.clone(), two.clone()]
            .into_iter()
            .map(|app| {
                let (k, barrier) = (k.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    app.execute_with(add("shared", 1, 1), key(&k)).await
                })
            })
            .collect();
        let mut receipts = Vec::new();
        for task in tasks {
            receipts.push(task.await.unwrap().unwrap());
        }
        assert_eq!(
            (receipts[0].version, receipts[0].position),
            (receipts[1].version, receipts[1].position),
            "round {round}: {receipts:?}"
        );
        assert_eq!(receipts[0].version, round + 1, "round {round}");
    }
    assert_eq!(total(&one, "shared").await, rounds);
}

/// The store itself refuses a recorded key, whatever version the append
/// expects, and tells where the recorded append went.
async fn the_store_refuses_a_recorded_key(store: TestStore) {
    let stream = StreamId::new("tally", "raw");
    let event = || NewEvent {
        metadata: key("raw-key"),
        ..NewEvent::new("tally.added", r#"{"n":1}"#)
    };
    let outcome = store
        .store
        .append(&stream, ExpectedVersion::Any, vec![event(), event()])
        .await
        .unwrap();
    let kept = store.store.find_key(&stream, "raw-key").await.unwrap();
    let kept = kept.expect("the key is recorded");
    assert_eq!((kept.outcome, kept.events), (outcome, 2));
    assert_eq!(store.store.find_key(&stream, "other").await.unwrap(), None);

    let again = store
        .store
        .append(&stream, ExpectedVersion::Any, vec![event()])
        .await;
    match again {
        Err(StoreError::DuplicateKey { stream: s, key }) => {
            assert_eq!((s, key.as_str()), (stream.clone(), "raw-key"));
        }
        other => panic!("expected DuplicateKey, got {other:?}"),
    }
    assert_eq!(store.store.read_stream(&stream, 1).await.unwrap().len(), 2);

    // One append's events carry one key.
    let mixed = vec![
        event(),
        NewEvent {
            metadata: key("another"),
            ..NewEvent::new("tally.added", r#"{"n":1}"#)
        },
    ];
    let refused = store
        .store
        .append(&stream, ExpectedVersion::Any, mixed)
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidAppend { .. })),
        "{refused:?}"
    );
}

/// With an inline read model (its changes in the append's transaction) and
/// through dispatch by name, as an HTTP adapter sends a retried request: the
/// repeat changes neither the stream nor the read model.
async fn a_retried_request_by_name_deposits_once_with_inline_read_model(store: TestStore) {
    use cqrs_examples::bank::{BalanceOf, BankServices, OpenAccount};
    let app = Engine::builder()
        .shared_store(Arc::clone(&store.store))
        .services(BankServices::default())
        .placement("balances", Placement::Inline)
        .build()
        .await
        .unwrap();
    app.execute(OpenAccount {
        account: "acc-1".into(),
        owner: "Ada".into(),
    })
    .await
    .unwrap();
    let body = br#"{"account":"acc-1","amount":40}"#;
    let header = "3f0c2a5e-retry";
    let first = app
        .execute_json_bytes_with("Deposit", body, key(header))
        .await
        .unwrap();
    for _ in 0..3 {
        let retry = app
            .execute_json_bytes_with("Deposit", body, key(header))
            .await
            .unwrap();
        assert_eq!(retry, first);
    }
    let balance = app
        .query(BalanceOf {
            account: "acc-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(balance, Some(40));
    let saved = store.store.load_read_model("balances").await.unwrap();
    assert_eq!(saved.checkpoint, first.position);
}

/// Runs one keyed command on a store opened by `open`, then again on the
/// same database opened afresh: the key was saved with the events.
async fn survives_reopening<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    let first = {
        let store = open().await;
        let app = engine(&store).await;
        let receipt = app
            .execute_with(add("a", 7, 3), key("durable"))
            .await
            .unwrap();
        app.stop().await;
        receipt
    };
    let store = open().await;
    let app = engine(&store).await;
    let again = app
        .execute_with(add("a", 7, 3), key("durable"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(total(&app, "a").await, 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_survive_reopening_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    survives_reopening(|| {
        let path = path.clone();
        async move { Arc::new(SqliteStore::open(path).unwrap()) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_survive_reconnecting_to_postgres() {
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::shared)
        .await
        .unwrap()
    else {
        return;
    };
    let schema = unique_schema("keys_survive");
    survives_reopening(|| {
        let (url, schema) = (server.connection_string(), schema.clone());
        async move {
            let options = PostgresOptions::new().schema(schema).max_connections(2);
            Arc::new(PostgresStore::connect(&url, options).await.unwrap()) as Arc<dyn Store>
        }
    })
    .await;
}

on_every_store!(
    malformed_keys_are_refused,
    a_retried_request_by_name_deposits_once_with_inline_read_model,
    a_repeated_key_gets_the_first_receipt,
    a_fresh_engine_knows_the_key,
    a_refused_command_records_no_key,
    concurrent_duplicates_append_once,
    the_store_refuses_a_recorded_key,
);
