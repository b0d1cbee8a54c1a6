//! The lease cases: one holder at a time per consumer name, fencing tokens
//! that turn away a former holder's commits, and checkpoints that only move
//! forward, on every store.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::store::{ExpectedVersion, Fence, LeaseGrant, LogFilter, Store};
use cqrs_core::{StoreError, StreamId};
use serde_json::json;

use super::cases::event;
use super::read_models::{load, put};

const TERM: Duration = Duration::from_secs(30);

async fn held(store: &dyn Store, name: &str, holder: &str, ttl: Duration) -> Fence {
    match store.acquire_lease(name, holder, ttl).await.unwrap() {
        LeaseGrant::Held(fence) => fence,
        taken => panic!("{holder} did not get `{name}`: {taken:?}"),
    }
}

pub(crate) async fn lease_has_one_holder_and_fences_the_last_one(store: Arc<dyn Store>) {
    let a = held(&*store, "balances", "a", TERM).await;
    assert_eq!(a.name, "balances");
    match store.acquire_lease("balances", "b", TERM).await.unwrap() {
        LeaseGrant::Taken { holder, expires_in } => {
            assert_eq!(holder, "a");
            assert!(
                expires_in <= TERM && expires_in > TERM / 2,
                "{expires_in:?}"
            );
        }
        other => panic!("b took a held lease: {other:?}"),
    }
    // Renewing keeps the token; another name is another lease.
    assert_eq!(held(&*store, "balances", "a", TERM).await, a);
    let other = held(&*store, "ledger", "b", TERM).await;
    assert_eq!(other.name, "ledger");

    store
        .commit_read_model("balances", vec![put("d", "k", json!(1))], 5, Some(&a))
        .await
        .unwrap();
    store.release_lease(&a).await.unwrap();
    let b = held(&*store, "balances", "b", TERM).await;
    assert!(
        b.token > a.token,
        "a new holder gets a larger token: {a:?} {b:?}"
    );

    // The former holder's commit and reset are refused, and write nothing.
    let before = load(&*store, "balances").await;
    let refused = store
        .commit_read_model("balances", vec![put("d", "k", json!(2))], 9, Some(&a))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::Fenced { name, token, current }
            if name == "balances" && *token == a.token && *current == Some(b.token)),
        "{refused}"
    );
    let refused = store
        .reset_read_model("balances", Some(&a))
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Fenced { .. }), "{refused}");
    assert_eq!(load(&*store, "balances").await, before);

    // The holder commits; releasing with a stale fence does nothing.
    store
        .commit_read_model("balances", vec![put("d", "k", json!(3))], 9, Some(&b))
        .await
        .unwrap();
    store.release_lease(&a).await.unwrap();
    assert!(matches!(
        store.acquire_lease("balances", "c", TERM).await.unwrap(),
        LeaseGrant::Taken { holder, .. } if holder == "b"
    ));
    // A released lease refuses every fence until someone takes it.
    store.release_lease(&b).await.unwrap();
    let refused = store
        .commit_read_model("balances", Vec::new(), 10, Some(&b))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Fenced { current: None, .. }),
        "{refused}"
    );
    assert_eq!(load(&*store, "balances").await.0, Some(9));
}

pub(crate) async fn lease_runs_out_and_is_taken_over(store: Arc<dyn Store>) {
    let short = Duration::from_millis(300);
    let a = held(&*store, "relay", "a", short).await;
    assert!(matches!(
        store.acquire_lease("relay", "b", short).await.unwrap(),
        LeaseGrant::Taken { .. }
    ));
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    let b = held(&*store, "relay", "b", TERM).await;
    assert!(b.token > a.token);
    // The former holder asking again finds it taken: it must stand by.
    assert!(matches!(
        store.acquire_lease("relay", "a", short).await.unwrap(),
        LeaseGrant::Taken { holder, .. } if holder == "b"
    ));
    let refused = store
        .commit_read_model("relay", Vec::new(), 1, Some(&a))
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Fenced { .. }), "{refused}");
}

/// The sequence seen with two engines on one database: the faster one
/// saved 4002, the slower one then committed its older state at 877. The
/// second commit must be refused and change nothing, lease or not.
pub(crate) async fn checkpoint_never_moves_back(store: Arc<dyn Store>) {
    store
        .commit_read_model(
            "balances",
            vec![put("accounts", "ada", json!(4002))],
            4002,
            None,
        )
        .await
        .unwrap();
    let saved = load(&*store, "balances").await;
    let refused = store
        .commit_read_model(
            "balances",
            vec![put("accounts", "ada", json!(877))],
            877,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::CheckpointNotAfter { name, saved: 4002, attempted: 877 } if name == "balances"),
        "{refused}"
    );
    assert!(!refused.is_transient());
    assert_eq!(load(&*store, "balances").await, saved);
    // The same checkpoint again is refused too: every commit moves forward.
    assert!(matches!(
        store
            .commit_read_model("balances", Vec::new(), 4002, None)
            .await,
        Err(StoreError::CheckpointNotAfter { .. })
    ));
    // An operator may still set it by hand.
    store.save_checkpoint("balances", 877).await.unwrap();
    assert_eq!(store.load_checkpoint("balances").await.unwrap(), Some(877));
}

/// A filter with `or_unknown_in` selects its events by name plus, in the
/// streams of the aggregates named, every event with a name not known.
pub(crate) async fn log_filter_selects_unknown_names(store: Arc<dyn Store>) {
    let names = ["opened", "deposited", "renamed-by-hand", "closed", "opened"];
    for (i, name) in names.iter().enumerate() {
        for aggregate in ["account", "cart"] {
            store
                .append(
                    &StreamId::new(aggregate, format!("s{i}")),
                    ExpectedVersion::Any,
                    vec![event(name, json!({ "i": i }))],
                )
                .await
                .unwrap();
        }
    }
    let filter =
        LogFilter::events(["opened"]).or_unknown_in(["account"], ["opened", "deposited", "closed"]);
    let all = store.read_log(0, &LogFilter::all(), 100).await.unwrap();
    let expected: Vec<u64> = all
        .events
        .iter()
        .filter(|e| filter.matches(e))
        .map(|e| e.position)
        .collect();
    let picked: Vec<(String, String)> = all
        .events
        .iter()
        .filter(|e| filter.matches(e))
        .map(|e| (e.stream.aggregate.to_string(), e.event_name.to_string()))
        .collect();
    assert_eq!(
        picked,
        [
            ("account", "opened"),
            ("cart", "opened"),
            ("account", "renamed-by-hand"),
            ("account", "opened"),
            ("cart", "opened"),
        ]
        .map(|(a, n)| (a.to_owned(), n.to_owned()))
    );
    for limit in [1, 2, 3, 100] {
        let mut read = Vec::new();
        let mut after = 0;
        loop {
            let slice = store.read_log(after, &filter, limit).await.unwrap();
            if slice.through <= after {
                break;
            }
            read.extend(slice.events.iter().map(|e| e.position));
            after = slice.through;
        }
        assert_eq!(read, expected, "pages of {limit}");
    }
}
