//! The store conformance suite: one set of cases (`conformance/cases.rs`,
//! and `conformance/read_models.rs` for durable read models), run against
//! every store: memory, SQLite (file and in memory) and
//! PostgreSQL (one throwaway server per test binary, one schema per test).
//! Then the checks only some stores need (group commit, reopening a file,
//! schema names, notifications across processes).

#[path = "conformance/cases.rs"]
mod cases;
#[path = "conformance/leases.rs"]
mod leases;
#[path = "conformance/read_models.rs"]
mod read_models;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::MemoryStore;
use cqrs_core::store::{
    EventStore, ExpectedVersion, GlobalLog, PostgresOptions, PostgresStore, SqliteStore, Store,
};
use cqrs_core::{StoreError, StreamId};
use cqrs_tests::pg::{TestPostgres, unique_schema};
use serde_json::json;
use tokio::task::JoinSet;

use self::cases::{event, raw_event};

/// A store for one test, and whatever must live as long as it (a temp dir).
struct Fixture {
    store: Arc<dyn Store>,
    _keep: Box<dyn Any + Send>,
}

impl Fixture {
    fn new(store: impl Store, keep: impl Any + Send) -> Self {
        Self {
            store: Arc::new(store),
            _keep: Box::new(keep),
        }
    }
}

async fn memory(_test: &str) -> Option<Fixture> {
    Some(Fixture::new(MemoryStore::new(), ()))
}

async fn sqlite_file(_test: &str) -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    Some(Fixture::new(store, dir))
}

async fn sqlite_memory(_test: &str) -> Option<Fixture> {
    Some(Fixture::new(SqliteStore::in_memory().unwrap(), ()))
}

async fn postgres(test: &str) -> Option<Fixture> {
    Some(Fixture::new(postgres_store(test).await?, ()))
}

/// The connection string of the test binary's shared server (`None`: no
/// PostgreSQL).
async fn shared_postgres() -> Option<String> {
    let server = tokio::task::spawn_blocking(TestPostgres::shared)
        .await
        .unwrap()?;
    Some(server.connection_string())
}

/// A store in a fresh schema of the shared server (`None`: no PostgreSQL).
async fn postgres_store(test: &str) -> Option<PostgresStore> {
    let config = shared_postgres().await?;
    let options = PostgresOptions::new()
        .schema(unique_schema(test))
        .max_connections(4);
    Some(PostgresStore::connect(&config, options).await.unwrap())
}

/// One `#[tokio::test]` per case, in a module per store.
macro_rules! conformance {
    ($($store:ident),* $(,)?) => {
        $(
            mod $store {
                conformance!(@cases $store:
                    cases::append_and_read,
                    cases::conflicts_are_typed,
                    cases::empty_append_is_rejected,
                    cases::sixteen_appenders_on_one_stream,
                    cases::sixteen_appenders_on_sixteen_streams,
                    cases::tail_sees_every_event_once_under_eight_writers,
                    cases::log_filters_by_event_name_and_aggregate,
                    cases::snapshots_keep_the_newest,
                    cases::checkpoints_round_trip,
                    cases::metadata_round_trips,
                    cases::unicode_and_large_payloads,
                    cases::ten_thousand_events_read_back,
                    cases::catch_up_reads_every_event_once_across_pages,
                    cases::undecodable_payload_is_a_typed_error,
                    cases::stream_ids_follow_one_rule,
                    cases::watch_head_follows_appends,
                    read_models::read_model_commit_then_load,
                    read_models::read_model_later_commits_overwrite,
                    read_models::read_model_unicode_and_large_documents,
                    read_models::read_model_reset_clears_one_projection,
                    read_models::read_model_loads_see_whole_commits,
                    read_models::read_model_concurrent_commits_to_many_projections,
                    leases::lease_has_one_holder_and_fences_the_last_one,
                    leases::lease_runs_out_and_is_taken_over,
                    leases::checkpoint_never_moves_back,
                    leases::log_filter_selects_unknown_names,
                );
            }
        )*
    };
    (@cases $store:ident: $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(fixture) = super::$store(stringify!($case)).await else {
                    return;
                };
                super::$module::$case(::std::sync::Arc::clone(&fixture.store)).await;
            }
        )*
    };
}

conformance!(memory, sqlite_file, sqlite_memory, postgres);

/// Fires `appends` concurrently: stream `g-<i>`, expecting version 0, except
/// every fourth, which expects 7 and must fail alone. Returns the outcomes.
async fn concurrent_mixed_appends(
    store: Arc<dyn Store>,
    appends: usize,
    events: usize,
) -> Vec<(usize, Result<u64, StoreError>)> {
    let mut tasks = JoinSet::new();
    for i in 0..appends {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            // Every fourth append expects version 7 of the stream the one
            // before it appends to at version 0, so that two appends to one
            // stream can share a group, one passing its check and one not.
            let (target, expected) = if i % 4 == 3 { (i - 1, 7) } else { (i, 0) };
            let s = StreamId::new("grouped", format!("g{events}-{target}"));
            let batch = (0..events).map(|e| event("n", json!({"i": i, "e": e})));
            let result = store
                .append(&s, ExpectedVersion::Exact(expected), batch.collect())
                .await
                .map(|o| o.version);
            (i, result)
        });
    }
    let mut results = tasks.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    results
}

fn assert_conflicts_fail_alone(results: &[(usize, Result<u64, StoreError>)], events: u64) {
    for (i, result) in results {
        match result {
            Ok(version) => {
                assert_ne!(i % 4, 3, "append {i} should have conflicted");
                assert_eq!(*version, events);
            }
            Err(StoreError::Conflict {
                expected, actual, ..
            }) => {
                assert_eq!(i % 4, 3, "append {i} failed: {result:?}");
                // Before or after the append it shares a stream with.
                assert_eq!(*expected, 7);
                assert!(*actual == 0 || *actual == events, "{result:?}");
            }
            Err(e) => panic!("append {i} failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_group_commit_isolates_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let results = concurrent_mixed_appends(Arc::new(store.clone()), 64, 2).await;
    assert_conflicts_fail_alone(&results, 2);
    let stats = store.stats();
    assert_eq!(stats.writes, 48);
    assert!(
        stats.transactions < stats.writes,
        "concurrent appends should share commits: {stats:?}"
    );
    let log = cases::whole_log(&store).await;
    assert_eq!(log.len(), 96);
}

#[tokio::test]
async fn sqlite_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let s = StreamId::new("account", "a-1");
    let written = vec![
        event("opened", json!({"owner": "Ada"})),
        event("x", json!({})),
    ];
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .append(&s, ExpectedVersion::Exact(0), written.clone())
            .await
            .unwrap();
        use cqrs_core::store::CheckpointStore;
        store.save_checkpoint("p", 2).await.unwrap();
        store
            .commit_read_model(
                "balances",
                vec![read_models::put("accounts", "ada", json!(5))],
                1,
                None,
            )
            .await
            .unwrap();
    }
    // Reopening twice more: the migrations are recorded and not run again.
    drop(SqliteStore::open(&path).unwrap());
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.head().await.unwrap(), 2);
    assert_eq!(*store.watch_head().borrow(), 2);
    let stored = store.read_stream(&s, 1).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].payload, written[0].payload);
    use cqrs_core::store::CheckpointStore;
    assert_eq!(store.load_checkpoint("p").await.unwrap(), Some(2));
    assert_eq!(
        read_models::load(&store, "balances").await,
        (Some(1), read_models::docs([("accounts", "ada", json!(5))]))
    );
    let outcome = store
        .append(&s, ExpectedVersion::Exact(2), vec![event("y", json!({}))])
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.last_position), (3, 3));
}

#[tokio::test]
async fn sqlite_in_memory_stores_are_private() {
    let a = SqliteStore::in_memory().unwrap();
    let b = SqliteStore::in_memory().unwrap();
    let s = StreamId::new("account", "a-1");
    a.append(&s, ExpectedVersion::Exact(0), vec![event("x", json!({}))])
        .await
        .unwrap();
    assert_eq!(a.head().await.unwrap(), 1);
    assert_eq!(b.head().await.unwrap(), 0);
    assert!(b.read_stream(&s, 1).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_group_commit_isolates_conflicts_and_bad_payloads() {
    let Some(store) = postgres_store("group_commit").await else {
        return;
    };
    // Several events per append (the `append_group` function), then one
    // (the plain `INSERT` of one-event groups).
    for events in [2, 1] {
        let before = store.stats();
        let results = concurrent_mixed_appends(Arc::new(store.clone()), 64, events).await;
        assert_conflicts_fail_alone(&results, events as u64);
        let stats = store.stats();
        assert_eq!(stats.appends - before.appends, 48);
        assert!(
            stats.transactions - before.transactions < 48,
            "concurrent appends should share commits: {stats:?}"
        );
    }

    // A payload PostgreSQL refuses fails alone, even inside a group.
    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            let s = StreamId::new("payloads", format!("p-{i}"));
            let payload = if i == 5 {
                b"{not json".to_vec()
            } else if i == 7 {
                // `jsonb` cannot hold U+0000 in a string.
                br#"{"text":"a\u0000b"}"#.to_vec()
            } else {
                br#"{"ok":true}"#.to_vec()
            };
            (
                i,
                store
                    .append(&s, ExpectedVersion::Exact(0), vec![raw_event("p", payload)])
                    .await,
            )
        });
    }
    for (i, result) in tasks.join_all().await {
        if i == 5 || i == 7 {
            assert!(
                matches!(result, Err(StoreError::InvalidAppend { .. })),
                "{result:?}"
            );
        } else {
            assert_eq!(result.unwrap().version, 1);
        }
    }
    assert_eq!(cases::whole_log(&store).await.len(), 96 + 48 + 14);
}

#[tokio::test]
async fn postgres_schema_name_is_validated() {
    for bad in ["Bad", "a-b", "x; DROP TABLE events", "pg_toast", "", "1abc"] {
        // Checked before any connection is made: no server needed.
        let error = PostgresStore::connect(
            "host=/nonexistent user=postgres",
            PostgresOptions::new().schema(bad),
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("invalid PostgreSQL schema name"),
            "{bad}: {error}"
        );
    }
}

#[tokio::test]
async fn postgres_unreachable_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "host={} user=postgres dbname=postgres",
        dir.path().display()
    );
    let error = PostgresStore::connect(&config, PostgresOptions::new())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, StoreError::Backend { .. })
            && text.contains("cannot connect to PostgreSQL"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_starts_migrate_once() {
    let Some(config) = shared_postgres().await else {
        return;
    };
    let schema = unique_schema("concurrent_starts");
    let mut starts = JoinSet::new();
    for _ in 0..4 {
        let (config, schema) = (config.clone(), schema.clone());
        starts.spawn(async move {
            PostgresStore::connect(
                &config,
                PostgresOptions::new().schema(schema).max_connections(2),
            )
            .await
            .unwrap()
        });
    }
    let stores = starts.join_all().await;
    let s = StreamId::new("account", "a-1");
    stores[0]
        .append(&s, ExpectedVersion::Exact(0), vec![event("x", json!({}))])
        .await
        .unwrap();
    for store in &stores {
        assert_eq!(store.read_stream(&s, 1).await.unwrap().len(), 1);
    }
}

/// An append that waited for the append lock while another process
/// committed to the same stream still answers right: a conflict when it
/// expected the old version, the next version when it expected any. (The
/// store's one-event statement took its snapshot before the wait, so it
/// cannot see that commit; the unique (stream, version) key catches it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_append_that_waited_for_another_process() {
    let Some(config) = shared_postgres().await else {
        return;
    };
    let schema = unique_schema("lock_wait");
    let store = PostgresStore::connect(
        &config,
        PostgresOptions::new()
            .schema(schema.as_str())
            .max_connections(2),
    )
    .await
    .unwrap();
    let (mut other, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let insert = format!(
        "INSERT INTO \"{schema}\".events (stream_aggregate, stream_id, version, event_id,
             event_name, schema_version, payload, metadata, timestamp_us)
         VALUES ('account', $1, 1, gen_random_uuid(), 'elsewhere', 1, '{{}}', '{{}}', 0)"
    );
    for (id, expected) in [
        ("a-1", ExpectedVersion::Exact(0)),
        ("a-2", ExpectedVersion::Any),
    ] {
        let s = StreamId::new("account", id);
        let tx = other.transaction().await.unwrap();
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&store.append_lock_key()],
        )
        .await
        .unwrap();
        tx.execute(&insert, &[&id]).await.unwrap();
        let append = tokio::spawn({
            let (store, s) = (store.clone(), s.clone());
            async move {
                store
                    .append(&s, expected, vec![event("x", json!({}))])
                    .await
            }
        });
        // Commit only once the store's append waits for the lock.
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let waiting: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if waiting == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the append never waited for the lock");
        tx.commit().await.unwrap();
        let result = append.await.unwrap();
        let names: Vec<_> = store
            .read_stream(&s, 1)
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_name.to_string())
            .collect();
        match expected {
            ExpectedVersion::Exact(_) => {
                assert!(
                    matches!(
                        result,
                        Err(StoreError::Conflict {
                            expected: 0,
                            actual: 1,
                            ..
                        })
                    ),
                    "{result:?}"
                );
                assert_eq!(names, ["elsewhere"]);
            }
            ExpectedVersion::Any => {
                assert_eq!(result.unwrap().version, 2);
                assert_eq!(names, ["elsewhere", "x"]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_schemas_are_isolated_and_heads_follow_other_stores() {
    let Some(config) = shared_postgres().await else {
        return;
    };
    let schema = unique_schema("notify");
    // The poll is far away: only a notification can move B's head in time.
    let options = PostgresOptions::new()
        .schema(schema.as_str())
        .max_connections(2)
        .head_poll_interval(Duration::from_secs(3600));
    let a = PostgresStore::connect(&config, options.clone())
        .await
        .unwrap();
    let b = PostgresStore::connect(&config, options).await.unwrap();
    let elsewhere = PostgresStore::connect(
        &config,
        PostgresOptions::new().schema(unique_schema("elsewhere")),
    )
    .await
    .unwrap();
    // Let B's listener connect and LISTEN before the append.
    let mut head = b.watch_head();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = StreamId::new("account", "a-1");
    let outcome = a
        .append(&s, ExpectedVersion::Exact(0), vec![event("x", json!({}))])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while *head.borrow_and_update() < outcome.last_position {
            head.changed().await.unwrap();
        }
    })
    .await
    .expect("B's head did not follow A's append");
    assert_eq!(b.read_stream(&s, 1).await.unwrap().len(), 1);
    assert_eq!(elsewhere.head().await.unwrap(), 0);
    assert_eq!(*elsewhere.watch_head().borrow(), 0);
}

/// Many stores on one schema stand for many processes: their writers commit
/// independently (no shared writer task), and a tail on yet another store
/// must still see every position once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_tail_never_skips_across_independent_writers() {
    const STORES: usize = 4;
    const TASKS: usize = 4;
    const APPENDS: usize = 30;
    let Some(config) = shared_postgres().await else {
        return;
    };
    // One append per transaction: as many commits as possible to interleave.
    let options = PostgresOptions::new()
        .schema(unique_schema("independent_writers"))
        .max_connections(2)
        .max_group(1);
    let reader = PostgresStore::connect(&config, options.clone())
        .await
        .unwrap();
    let total = STORES * TASKS * APPENDS * 2;
    let mut tail = cqrs_core::subscription::Tail::new(
        Arc::new(reader.clone()),
        0,
        cqrs_core::store::LogFilter::all(),
        5,
    );
    let follower = tokio::spawn(async move {
        let mut seen: Vec<u64> = Vec::with_capacity(total);
        while seen.len() < total {
            for e in tail.next().await.unwrap().events {
                assert!(seen.last().is_none_or(|&last| e.position > last));
                seen.push(e.position);
            }
        }
        seen
    });
    let mut writers = JoinSet::new();
    for s in 0..STORES {
        let store = PostgresStore::connect(&config, options.clone())
            .await
            .unwrap();
        for t in 0..TASKS {
            let store = store.clone();
            writers.spawn(async move {
                let stream = StreamId::new("independent", format!("s{s}-t{t}"));
                for k in 0..APPENDS {
                    let batch = vec![event("a", json!({"k": k})), event("b", json!({}))];
                    store
                        .append(&stream, ExpectedVersion::Exact(2 * k as u64), batch)
                        .await
                        .unwrap();
                }
            });
        }
    }
    tokio::time::timeout(Duration::from_secs(60), writers.join_all())
        .await
        .expect("writers hang");
    let seen = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .expect("the tail missed events")
        .unwrap();
    let stored: Vec<u64> = cases::whole_log(&reader)
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(stored.len(), total);
    assert_eq!(seen, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_refused_document_commits_nothing() {
    let fixture = sqlite_file("refused").await.unwrap();
    read_models::refused_document_commits_nothing(fixture.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory_refused_document_commits_nothing() {
    let fixture = sqlite_memory("refused").await.unwrap();
    read_models::refused_document_commits_nothing(fixture.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_refused_document_commits_nothing() {
    let Some(fixture) = postgres("refused").await else {
        return;
    };
    read_models::refused_document_commits_nothing(fixture.store).await;
}

/// A read-model commit is one job of a group transaction: refused, it fails
/// alone, and the appends and commits grouped with it are saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_refused_read_model_commit_fails_alone_in_its_group() {
    use cqrs_core::store::CheckpointStore;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..48_usize {
        let store = store.clone();
        tasks.spawn(async move {
            let result = match i % 3 {
                0 => store
                    .append(
                        &StreamId::new("grouped", format!("g-{i}")),
                        ExpectedVersion::Exact(0),
                        vec![event("x", json!({"i": i}))],
                    )
                    .await
                    .map(drop),
                _ => {
                    let body = if i == 25 {
                        b"{not json".to_vec()
                    } else {
                        serde_json::to_vec(&json!({"i": i})).unwrap()
                    };
                    store
                        .commit_read_model(
                            &format!("p-{i}"),
                            vec![read_models::raw_put("d", "x", body)],
                            i as u64,
                            None,
                        )
                        .await
                }
            };
            (i, result)
        });
    }
    for (i, result) in tasks.join_all().await {
        if i == 25 {
            assert!(result.is_err(), "the refused commit was saved");
            assert_eq!(
                read_models::load(&store, "p-25").await,
                (None, read_models::Docs::new())
            );
        } else {
            result.unwrap_or_else(|e| panic!("write {i} failed: {e}"));
        }
    }
    for i in (0..48_usize).filter(|i| i % 3 != 0 && *i != 25) {
        assert_eq!(
            read_models::load(&store, &format!("p-{i}")).await,
            (
                Some(i as u64),
                read_models::docs([("d", "x", json!({"i": i}))])
            )
        );
    }
    assert_eq!(cases::whole_log(&store).await.len(), 16);
    let stats = store.stats();
    assert_eq!(stats.writes, 47);
    assert!(
        stats.transactions < stats.writes,
        "concurrent writes should share commits: {stats:?}"
    );
}

/// PostgreSQL keeps documents as `jsonb`: the text comes back normalized
/// (same value), and a string holding U+0000, which `jsonb` cannot store,
/// fails its whole commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_documents_are_jsonb() {
    use cqrs_core::store::CheckpointStore;
    let Some(store) = postgres_store("jsonb").await else {
        return;
    };
    let written = br#"{ "b" : 1,  "a" : [ 1, 2.50 ] }"#.to_vec();
    store
        .commit_read_model(
            "shapes",
            vec![read_models::raw_put("d", "x", written.clone())],
            1,
            None,
        )
        .await
        .unwrap();
    let saved = store.load_read_model("shapes").await.unwrap();
    let body = &saved.documents[0].2;
    assert_ne!(body, &written, "jsonb normalizes the text");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(body).unwrap(),
        serde_json::from_slice::<serde_json::Value>(&written).unwrap()
    );
    let nul = vec![
        read_models::put("d", "y", json!(2)),
        read_models::put("d", "x", json!({"text": "a\u{0}b"})),
    ];
    let error = store
        .commit_read_model("shapes", nul, 2, None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("shapes"), "{error}");
    let (checkpoint, docs) = read_models::load(&store, "shapes").await;
    assert_eq!(checkpoint, Some(1));
    assert_eq!(docs.len(), 1);
}
