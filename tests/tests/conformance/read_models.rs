//! The read-model cases: the documents of a durable projection saved with its
//! checkpoint (`CheckpointStore::{load,commit,reset}_read_model`), on every
//! store.

use std::collections::BTreeMap;
use std::sync::Arc;

use cqrs_core::store::{DocumentChange, ExpectedVersion, Store};
use cqrs_core::{StoreError, StreamId};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::cases::{PATIENCE, event};

/// A document as a test sees it: (collection, key) -> JSON value.
pub(crate) type Docs = BTreeMap<(String, String), Value>;

pub(crate) fn put(collection: &str, key: &str, body: Value) -> DocumentChange {
    raw_put(collection, key, serde_json::to_vec(&body).unwrap())
}

pub(crate) fn raw_put(collection: &str, key: &str, body: Vec<u8>) -> DocumentChange {
    DocumentChange {
        collection: collection.to_owned(),
        key: key.to_owned(),
        body: Some(body),
    }
}

pub(crate) fn delete(collection: &str, key: &str) -> DocumentChange {
    DocumentChange {
        collection: collection.to_owned(),
        key: key.to_owned(),
        body: None,
    }
}

pub(crate) fn docs<const N: usize>(entries: [(&str, &str, Value); N]) -> Docs {
    entries
        .into_iter()
        .map(|(c, k, v)| ((c.to_owned(), k.to_owned()), v))
        .collect()
}

/// The saved read model, bodies parsed: stores may normalize the JSON text
/// (PostgreSQL's `jsonb` does), and documents are decoded by serde anyway.
pub(crate) async fn load(store: &dyn Store, name: &str) -> (Option<u64>, Docs) {
    let saved = store.load_read_model(name).await.unwrap();
    let count = saved.documents.len();
    let docs: Docs = saved
        .documents
        .into_iter()
        .map(|(c, k, body)| {
            let value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("document {c}/{k} is not JSON: {e}"));
            ((c, k), value)
        })
        .collect();
    assert_eq!(docs.len(), count, "a document came back twice");
    (saved.checkpoint, docs)
}

pub(crate) async fn read_model_commit_then_load(store: Arc<dyn Store>) {
    assert_eq!(load(&*store, "balances").await, (None, Docs::new()));
    store
        .commit_read_model(
            "balances",
            vec![
                put("accounts", "ada", json!(100)),
                put("accounts", "bob", json!(5)),
                put("owners", "ada", json!({"name": "Ada", "since": 1815})),
            ],
            3,
            None,
        )
        .await
        .unwrap();
    let expected = docs([
        ("accounts", "ada", json!(100)),
        ("accounts", "bob", json!(5)),
        ("owners", "ada", json!({"name": "Ada", "since": 1815})),
    ]);
    assert_eq!(load(&*store, "balances").await, (Some(3), expected));
    // The read model's checkpoint is the projection's checkpoint.
    assert_eq!(store.load_checkpoint("balances").await.unwrap(), Some(3));

    // Updates, deletes (also of a document that does not exist), inserts.
    store
        .commit_read_model(
            "balances",
            vec![
                put("accounts", "ada", json!(150)),
                delete("accounts", "bob"),
                delete("accounts", "nobody"),
                put("owners", "cy", json!({"name": "Cy"})),
            ],
            7,
            None,
        )
        .await
        .unwrap();
    let expected = docs([
        ("accounts", "ada", json!(150)),
        ("owners", "ada", json!({"name": "Ada", "since": 1815})),
        ("owners", "cy", json!({"name": "Cy"})),
    ]);
    assert_eq!(load(&*store, "balances").await, (Some(7), expected.clone()));

    // Changes apply in order: the last change of a document wins.
    store
        .commit_read_model(
            "balances",
            vec![
                put("accounts", "dan", json!(1)),
                put("accounts", "dan", json!(2)),
                put("accounts", "eve", json!(1)),
                delete("accounts", "eve"),
                delete("owners", "cy"),
                put("owners", "cy", json!({"name": "Cy", "again": true})),
            ],
            8,
            None,
        )
        .await
        .unwrap();
    let mut expected = expected;
    expected.insert(("accounts".into(), "dan".into()), json!(2));
    expected.insert(
        ("owners".into(), "cy".into()),
        json!({"name": "Cy", "again": true}),
    );
    assert_eq!(load(&*store, "balances").await, (Some(8), expected.clone()));

    // No changes: only the checkpoint moves.
    store
        .commit_read_model("balances", Vec::new(), 9, None)
        .await
        .unwrap();
    assert_eq!(load(&*store, "balances").await, (Some(9), expected));
    assert_eq!(load(&*store, "other").await, (None, Docs::new()));
}

pub(crate) async fn read_model_later_commits_overwrite(store: Arc<dyn Store>) {
    for k in 1..=20_u64 {
        store
            .commit_read_model(
                "counter",
                vec![
                    put("totals", "n", json!(k)),
                    put("seen", &format!("k{k:02}"), json!(k)),
                ],
                k * 10,
                None,
            )
            .await
            .unwrap();
    }
    let (checkpoint, saved) = load(&*store, "counter").await;
    assert_eq!(checkpoint, Some(200));
    assert_eq!(saved.len(), 21);
    assert_eq!(saved[&("totals".into(), "n".into())], json!(20));
    // A commit whose checkpoint is not after the saved one is refused,
    // typed, and writes nothing: a read model never moves back.
    for behind in [150, 200] {
        let refused = store
            .commit_read_model(
                "counter",
                vec![put("totals", "n", json!("stale")), delete("seen", "k02")],
                behind,
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                StoreError::CheckpointNotAfter { saved: 200, attempted, .. } if attempted == behind
            ),
            "{refused}"
        );
        assert_eq!(load(&*store, "counter").await, (checkpoint, saved.clone()));
    }
    // A new body replaces the old one whole (no merge), whatever its shape.
    store
        .commit_read_model(
            "counter",
            vec![
                put("totals", "n", json!({"now": "an object"})),
                put("seen", "k01", json!(null)),
            ],
            210,
            None,
        )
        .await
        .unwrap();
    let (checkpoint, saved) = load(&*store, "counter").await;
    assert_eq!(checkpoint, Some(210));
    assert_eq!(
        saved[&("totals".into(), "n".into())],
        json!({"now": "an object"})
    );
    assert_eq!(saved[&("seen".into(), "k01".into())], json!(null));
    assert_eq!(saved.len(), 21);
}

pub(crate) async fn read_model_unicode_and_large_documents(store: Arc<dyn Store>) {
    let name = "überblick 🚀 ١٢٣";
    let big = json!({"blob": "é".repeat(512 * 1024), "n": u64::MAX});
    assert!(serde_json::to_vec(&big).unwrap().len() > 1024 * 1024);
    let unicode = json!({
        "text": "héllo wörld — 你好 — مرحبا — 🎉👩‍👩‍👧",
        "escaped": "\"\\/\n\t",
        "clé ✓": [1, 2.5, -3, true, null],
    });
    // Keys that would break SQL built from strings, and an empty key.
    let hostile = "'; DROP TABLE documents; --";
    let changes = vec![
        put("comptes/é", "ストリーム/🚀", unicode.clone()),
        put("comptes/é", hostile, json!("\"quoted\" 'single'")),
        put("comptes/é", "", json!({})),
        put("big", "one", big.clone()),
    ];
    store
        .commit_read_model(name, changes, 42, None)
        .await
        .unwrap();
    let expected = docs([
        ("comptes/é", "ストリーム/🚀", unicode),
        ("comptes/é", hostile, json!("\"quoted\" 'single'")),
        ("comptes/é", "", json!({})),
        ("big", "one", big),
    ]);
    assert_eq!(load(&*store, name).await, (Some(42), expected.clone()));
    // Serde reads the saved text back into the same value, key order aside.
    let saved = store.load_read_model(name).await.unwrap();
    let (_, _, body) = saved
        .documents
        .iter()
        .find(|(c, k, _)| c == "big" && k == "one")
        .unwrap();
    let blob: serde_json::Map<String, Value> = serde_json::from_slice(body).unwrap();
    assert_eq!(blob["n"], json!(u64::MAX));
    // Other projections with similar names see nothing of it.
    assert_eq!(load(&*store, "überblick").await, (None, Docs::new()));
    store
        .commit_read_model(name, vec![delete("big", "one")], 43, None)
        .await
        .unwrap();
    let mut expected = expected;
    expected.remove(&("big".into(), "one".into()));
    assert_eq!(load(&*store, name).await, (Some(43), expected));
}

pub(crate) async fn read_model_reset_clears_one_projection(store: Arc<dyn Store>) {
    // The same collections and keys in two projections: they stay apart.
    for (name, base) in [("a", 1), ("b", 100)] {
        store
            .commit_read_model(
                name,
                vec![
                    put("docs", "x", json!(base)),
                    put("docs", "y", json!(base + 1)),
                    put("more", "x", json!(base + 2)),
                ],
                base,
                None,
            )
            .await
            .unwrap();
    }
    // A projection with a checkpoint only (not durable).
    store.save_checkpoint("c", 77).await.unwrap();
    let b_before = load(&*store, "b").await;
    assert_eq!(b_before.1.len(), 3);

    store.reset_read_model("a", None).await.unwrap();
    assert_eq!(load(&*store, "a").await, (None, Docs::new()));
    assert_eq!(store.load_checkpoint("a").await.unwrap(), None);
    assert_eq!(load(&*store, "b").await, b_before, "b is untouched");
    assert_eq!(store.load_checkpoint("c").await.unwrap(), Some(77));
    // Resetting what was never saved, or twice, is fine.
    store.reset_read_model("ghost", None).await.unwrap();
    store.reset_read_model("a", None).await.unwrap();

    // A new start does not bring old documents back.
    store
        .commit_read_model("a", vec![put("docs", "z", json!(0))], 1, None)
        .await
        .unwrap();
    assert_eq!(
        load(&*store, "a").await,
        (Some(1), docs([("docs", "z", json!(0))]))
    );
    assert_eq!(load(&*store, "b").await, b_before);
}

/// Loads racing with commits: every load shows one commit whole, never the
/// documents of one with the checkpoint of another.
pub(crate) async fn read_model_loads_see_whole_commits(store: Arc<dyn Store>) {
    const COMMITS: u64 = 100;
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for k in 1..=COMMITS {
                let mut changes = vec![put("d", "x", json!(k)), put("d", "y", json!(k))];
                // z exists after odd commits only.
                changes.push(if k % 2 == 1 {
                    put("d", "z", json!(k))
                } else {
                    delete("d", "z")
                });
                store
                    .commit_read_model("racy", changes, k, None)
                    .await
                    .unwrap();
            }
        })
    };
    let mut readers = JoinSet::new();
    for _ in 0..2 {
        let store = Arc::clone(&store);
        readers.spawn(async move {
            let mut loads = 0;
            loop {
                let (checkpoint, saved) = load(&*store, "racy").await;
                loads += 1;
                let Some(k) = checkpoint else {
                    assert!(saved.is_empty(), "documents without a checkpoint");
                    tokio::task::yield_now().await;
                    continue;
                };
                let at = |key: &str| saved.get(&("d".to_owned(), key.to_owned())).cloned();
                assert_eq!(at("x"), Some(json!(k)), "x of another commit than {k}");
                assert_eq!(at("y"), Some(json!(k)), "y of another commit than {k}");
                let z = if k % 2 == 1 { Some(json!(k)) } else { None };
                assert_eq!(at("z"), z, "z of another commit than {k}");
                if k == COMMITS {
                    return loads;
                }
                tokio::task::yield_now().await;
            }
        });
    }
    tokio::time::timeout(PATIENCE, writer)
        .await
        .expect("commits hang")
        .unwrap();
    let loads = tokio::time::timeout(PATIENCE, readers.join_all())
        .await
        .expect("loads hang");
    assert!(loads.iter().all(|&n| n >= 1));
}

pub(crate) async fn read_model_concurrent_commits_to_many_projections(store: Arc<dyn Store>) {
    const PROJECTIONS: usize = 16;
    const COMMITS: u64 = 25;
    let mut tasks = JoinSet::new();
    for p in 0..PROJECTIONS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let name = format!("projection-{p}");
            for k in 1..=COMMITS {
                let mut changes = vec![
                    put("state", "count", json!(k)),
                    put("state", &format!("k{k}"), json!({"p": p, "k": k})),
                ];
                if k > 1 {
                    changes.push(delete("state", &format!("k{}", k - 1)));
                }
                store
                    .commit_read_model(&name, changes, k, None)
                    .await
                    .unwrap();
            }
        });
    }
    // Appends in the same moment, to share the stores' write paths.
    for w in 0..4 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let s = StreamId::new("beside", format!("w-{w}"));
            for k in 0..10 {
                store
                    .append(&s, ExpectedVersion::Exact(k), vec![event("x", json!({}))])
                    .await
                    .unwrap();
            }
        });
    }
    tokio::time::timeout(PATIENCE, tasks.join_all())
        .await
        .expect("commits hang");
    for p in 0..PROJECTIONS {
        let expected = docs([
            ("state", "count", json!(COMMITS)),
            ("state", "k25", json!({"p": p, "k": COMMITS})),
        ]);
        assert_eq!(
            load(&*store, &format!("projection-{p}")).await,
            (Some(COMMITS), expected)
        );
    }
    assert_eq!(store.head().await.unwrap(), 40);
}

/// For stores that check documents (SQLite, PostgreSQL): a commit one of
/// whose documents the store refuses fails whole, leaving the documents and
/// the checkpoint as they were.
pub(crate) async fn refused_document_commits_nothing(store: Arc<dyn Store>) {
    let name = "atomic";
    store
        .commit_read_model(
            name,
            vec![put("d", "a", json!(1)), put("d", "b", json!(2))],
            5,
            None,
        )
        .await
        .unwrap();
    let before = load(&*store, name).await;
    // The refused document comes after good changes of every kind, so they
    // have run when it fails.
    let refused = [
        (
            "not JSON",
            raw_put("d", "bad", b"{\"unterminated\": ".to_vec()),
        ),
        ("not UTF-8", raw_put("d", "bad", vec![b'"', 0xff, b'"'])),
    ];
    for (why, bad) in refused {
        let changes = vec![
            put("d", "a", json!(10)),
            delete("d", "b"),
            put("d", "c", json!(30)),
            bad,
            put("d", "e", json!(50)),
        ];
        let result = store.commit_read_model(name, changes, 9, None).await;
        assert!(result.is_err(), "a document {why} was accepted");
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains(name),
            "the error names the read model: {text}"
        );
        assert_eq!(
            load(&*store, name).await,
            before,
            "{why}: something was saved"
        );
    }
    // The store goes on.
    store
        .commit_read_model(name, vec![put("d", "c", json!(3))], 10, None)
        .await
        .unwrap();
    let (checkpoint, saved) = load(&*store, name).await;
    assert_eq!(checkpoint, Some(10));
    assert_eq!(saved.len(), 3);
}
