//! The bank on durable stores through the engine: a restart resumes the
//! durable projection from its checkpoint, a rebuild replays the log with
//! progress, and a PostgreSQL restart under load gives clear errors and loses
//! no acknowledged command.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cqrs_core::prelude::*;
use cqrs_core::store::{
    CheckpointStore, DocumentChange, EventStore, Fence, LeaseGrant, PostgresOptions, PostgresStore,
    SavedReadModel, SqliteStore, Store,
};
use cqrs_core::{BoxFuture, Error, MemoryStore, RunState, StoreError, StreamId, replay};
use cqrs_examples::bank::*;
use cqrs_tests::pg::{TestPostgres, unique_schema};

async fn engine(store: Arc<dyn Store>) -> Engine {
    Engine::builder()
        .shared_store(store)
        .services(BankServices::default())
        .build()
        .await
        .unwrap()
}

/// Writes some history, restarts the engine, checks the projection resumed
/// from its saved checkpoint (no replay from zero), then rebuilds it.
async fn resume_then_rebuild(store: Arc<dyn Store>) {
    let first = engine(Arc::clone(&store)).await;
    let mut last = None;
    for i in 0..20 {
        let id = format!("acc-{}", i % 4);
        if i < 4 {
            first
                .execute(OpenAccount {
                    account: id.clone(),
                    owner: id.clone(),
                })
                .await
                .unwrap();
        }
        last = Some(
            first
                .execute(Deposit {
                    account: id,
                    amount: 10,
                })
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    let before = first.query(AllAccounts).after(&last).await.unwrap();
    first.stop().await;
    let saved = store.load_read_model("balances").await.unwrap();
    assert_eq!(
        saved.checkpoint,
        Some(24),
        "documents and checkpoint saved together"
    );
    assert_eq!(saved.documents.len(), 4);

    let second = engine(Arc::clone(&store)).await;
    // Resumed at once from the saved state: already at the head, and equal.
    let status = second.projection_status("balances").unwrap();
    assert!(status.durable);
    let now = second
        .query(AllAccounts)
        .at_least(24)
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(now, before);
    assert_eq!(
        now["acc-0"].movements, 6,
        "no event counted twice after the restart"
    );

    let r = second
        .execute(Withdraw {
            account: "acc-1".into(),
            amount: 5,
        })
        .await
        .unwrap();
    let rebuild = second.rebuild("balances").await.unwrap();
    let mut progress = rebuild.subscribe();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while progress.changed().await.is_ok() {
            let now = *progress.borrow_and_update();
            seen.push(now);
            if now.done {
                break;
            }
        }
        seen
    });
    let done = rebuild.finished().await.unwrap();
    assert!(
        done.done && done.position >= 25 && done.events == 25,
        "{done:?}"
    );
    let seen = watcher.await.unwrap();
    assert!(
        seen.last().is_some_and(|p| p.done),
        "progress reached the end: {seen:?}"
    );
    let rebuilt = second.query(AllAccounts).after(&r).await.unwrap();
    let replayed: Balances = replay(store.as_ref()).await.unwrap();
    assert_eq!(rebuilt, replayed.answer(&AllAccounts));
    assert_eq!(rebuilt["acc-1"].balance, 45);
    assert_eq!(
        store.load_read_model("balances").await.unwrap().checkpoint,
        Some(25)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_resumes_and_rebuilds_the_durable_projection() {
    let dir = std::env::temp_dir().join(format!("cqrs-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("bank.db")).unwrap());
    resume_then_rebuild(store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_resumes_and_rebuilds_the_durable_projection() {
    let Some(pg) = TestPostgres::shared() else {
        return;
    };
    let options = PostgresOptions::new().schema(unique_schema("durable"));
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&pg.connection_string(), options)
            .await
            .unwrap(),
    );
    resume_then_rebuild(store).await;
}

/// Commands keep coming while PostgreSQL stops and starts again: while it is
/// down they fail with clear store errors, afterwards they succeed, and every
/// command that returned a receipt is in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_under_load_gives_clear_errors_and_loses_nothing() {
    let Some(pg) = TestPostgres::start_durable() else {
        return;
    };
    let options = PostgresOptions::new()
        .schema("restart")
        .connect_timeout(Duration::from_secs(1))
        .acquire_timeout(Duration::from_secs(2));
    let store = Arc::new(
        PostgresStore::connect(&pg.connection_string(), options)
            .await
            .unwrap(),
    );
    let app = engine(store.clone()).await;
    for t in 0..4 {
        app.execute(OpenAccount {
            account: format!("r-{t}"),
            owner: "R".into(),
        })
        .await
        .unwrap();
    }
    let running = Arc::new(AtomicBool::new(true));
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let app = app.clone();
            let running = Arc::clone(&running);
            tokio::spawn(async move {
                let (mut acked, mut errors) = (Vec::new(), Vec::new());
                while running.load(Ordering::Relaxed) {
                    match app
                        .execute(Deposit {
                            account: format!("r-{t}"),
                            amount: 1,
                        })
                        .await
                    {
                        Ok(receipt) => acked.push(receipt),
                        Err(CommandError::Engine(e)) => {
                            errors.push(e.to_string());
                            assert!(
                                matches!(e, Error::Store(StoreError::Backend { .. })),
                                "a store failure, not {e:?}"
                            );
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(CommandError::Domain(e)) => panic!("no refusal expected: {e}"),
                    }
                }
                (acked, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.stop_immediate();
    tokio::time::sleep(Duration::from_millis(700)).await;
    pg.start_again();
    // Long enough after the restart for every writer to succeed again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.store(false, Ordering::Relaxed);

    let mut acked_per_account = BTreeMap::new();
    let mut all_errors = Vec::new();
    for (t, task) in tasks.into_iter().enumerate() {
        let (acked, errors) = task.await.unwrap();
        assert!(!acked.is_empty());
        let last_version = acked.iter().map(|r| r.version).max().unwrap();
        acked_per_account.insert(format!("r-{t}"), (acked, last_version));
        all_errors.extend(errors);
    }
    assert!(!all_errors.is_empty(), "the writers saw the server go away");
    for e in &all_errors {
        assert!(
            e.contains("PostgreSQL") || e.contains("postgres") || e.contains("connect"),
            "unclear error: {e}"
        );
    }
    // Every acknowledged command is stored, and the streams are contiguous.
    for (id, (acked, _)) in &acked_per_account {
        let events = store
            .read_stream(&StreamId::new("account", id.as_str()), 1)
            .await
            .unwrap();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.version, i as u64 + 1, "contiguous versions in {id}");
        }
        for receipt in acked {
            assert!(
                receipt.version as usize <= events.len(),
                "acknowledged {receipt:?} is stored"
            );
        }
    }
    // The engine recovered: new commands work and the projection catches up.
    let r = app
        .execute(Deposit {
            account: "r-0".into(),
            amount: 1,
        })
        .await
        .unwrap();
    let all = app
        .query(AllAccounts)
        .after(&r)
        .timeout(Duration::from_secs(10))
        .await
        .unwrap();
    let replayed: Balances = replay(store.as_ref()).await.unwrap();
    assert_eq!(all, replayed.answer(&AllAccounts));
    assert!(!matches!(
        app.projection_status("balances").unwrap().state,
        RunState::Failed(_)
    ));
}

/// A read store whose answer to one commit is lost after the commit
/// landed, as when the connection drops between the server's commit and
/// its reply.
#[derive(Debug)]
struct LostAnswer {
    inner: Arc<SqliteStore>,
    armed: AtomicBool,
}

impl CheckpointStore for LostAnswer {
    fn load_checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        self.inner.load_checkpoint(name)
    }

    fn save_checkpoint<'a>(
        &'a self,
        name: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.save_checkpoint(name, position)
    }

    fn load_read_model<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<SavedReadModel, StoreError>> {
        self.inner.load_read_model(name)
    }

    fn commit_read_model<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner
                .commit_read_model(name, changes, checkpoint, fence)
                .await?;
            if self.armed.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Backend {
                    message: "connection lost before the answer".into(),
                    source: None,
                });
            }
            Ok(())
        })
    }

    fn reset_read_model<'a>(
        &'a self,
        name: &'a str,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.reset_read_model(name, fence)
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LeaseGrant, StoreError>> {
        self.inner.acquire_lease(name, holder, ttl)
    }

    fn release_lease<'a>(&'a self, fence: &'a Fence) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.release_lease(fence)
    }
}

/// A commit that landed but whose answer was lost is retried; the retry
/// finds its own checkpoint saved and carries on, instead of taking the
/// refusal of a checkpoint that is not after the saved one for a fault.
#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let read = Arc::new(LostAnswer {
        inner: Arc::new(SqliteStore::open(dir.path().join("read.db")).unwrap()),
        armed: AtomicBool::new(false),
    });
    let events = Arc::new(MemoryStore::new());
    let app = Engine::builder()
        .shared_store(events.clone())
        .shared_read_store(read.clone())
        .services(BankServices::default())
        .build()
        .await
        .unwrap();
    let opened = app
        .execute(OpenAccount {
            account: "a".into(),
            owner: "A".into(),
        })
        .await
        .unwrap();
    app.query(AllAccounts).after(&opened).await.unwrap();
    read.armed.store(true, Ordering::SeqCst);
    let mut last = opened;
    for _ in 0..5 {
        last = app
            .execute(Deposit {
                account: "a".into(),
                amount: 3,
            })
            .await
            .unwrap();
    }
    let all = app
        .query(AllAccounts)
        .after(&last)
        .timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!read.armed.load(Ordering::SeqCst), "the fault happened");
    let status = app.projection_status("balances").unwrap();
    assert_eq!(status.state, RunState::Live, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("connection lost")),
        "the lost answer is shown: {status:?}"
    );
    let replayed: Balances = replay(events.as_ref()).await.unwrap();
    assert_eq!(all, replayed.answer(&AllAccounts));
    app.stop().await;
    let saved = read.inner.load_read_model("balances").await.unwrap();
    assert_eq!(saved.checkpoint, last.position);
}
