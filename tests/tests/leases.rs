//! Leases across processes: two engine processes run the same durable
//! projection on one store, with writers running in both. Only the lease
//! holder commits; the other stands by and takes over when the holder is
//! paused (`SIGSTOP`) or killed (`SIGKILL`) in the middle of a batch. A
//! holder woken after it lost its lease has its commit refused. Every run
//! ends with the saved read model equal to a replay of the log from
//! scratch.
//!
//! The engines are `crash-engine` children (see `tests/src/bin/crash-engine.rs`);
//! a pause file stops one of them inside a batch, before its commit, so the
//! signals land exactly there.

#[path = "../src/crash_bank.rs"]
mod crash_bank;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cqrs_core::Projection;
use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use cqrs_tests::pg::{TestPostgres, unique_schema};
use cqrs_tests::process::Child;

use self::crash_bank::CrashLedger;

/// The lease's term in the children; a standby asks every fifth of it.
const LEASE: Duration = Duration::from_millis(1_000);
/// How long after the holder stopped a standby must have taken over: the
/// term, one retry interval, and room for a loaded machine.
const TAKEOVER_BOUND: Duration = Duration::from_millis(1_000 + 200 + 2_000);
/// How long each child sends commands.
const WRITING: Duration = Duration::from_secs(6);
const PATIENCE: Duration = Duration::from_secs(30);

/// A `crash-engine` child and the lines it printed.
struct Engine(Child);

impl Engine {
    fn start(name: &'static str, store: &[&str], writing: Duration, pause: Option<&Path>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crash-engine"));
        command
            .args(store)
            .env("CQRS_TEST_LEASE_MS", LEASE.as_millis().to_string())
            .env("CQRS_TEST_WRITE_MS", writing.as_millis().to_string())
            .env("CQRS_TEST_ACCOUNT_PREFIX", name);
        if let Some(pause) = pause {
            command.env("CQRS_TEST_PAUSE_FILE", pause);
        }
        Self(Child::spawn(name, command))
    }

    /// Waits for a line starting with `prefix` (printed since the last
    /// call, or before); returns when it came.
    fn wait_for(&mut self, prefix: &str, within: Duration) -> Instant {
        self.0.wait_for(prefix, within);
        Instant::now()
    }

    /// Drops what it printed so far (the next `wait_for` sees only what
    /// comes after).
    fn forget(&mut self) {
        self.0.forget();
    }

    fn signal(&self, signal: &str) {
        self.0.signal(signal);
    }
}

/// Waits for `path` to exist.
fn wait_for_file(path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the ledger's saved checkpoint reached the head and stays
/// there, then checks that its saved documents are exactly a replay of the
/// whole log from scratch.
async fn check_equals_replay(store: &dyn Store) {
    let deadline = Instant::now() + PATIENCE;
    let mut settled = 0;
    let head = loop {
        let head = store.head().await.unwrap();
        let saved = store.load_checkpoint(CrashLedger::NAME).await.unwrap();
        settled = if saved == Some(head) { settled + 1 } else { 0 };
        if settled >= 5 {
            break head;
        }
        assert!(
            Instant::now() < deadline,
            "the ledger's checkpoint {saved:?} never settled at the head {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let saved = store.load_read_model(CrashLedger::NAME).await.unwrap();
    assert_eq!(saved.checkpoint, Some(head));
    let documents: std::collections::BTreeMap<String, u64> = saved
        .documents
        .iter()
        .map(|(_, key, body)| (key.clone(), serde_json::from_slice(body).unwrap()))
        .collect();
    let replayed = cqrs_core::replay_with::<CrashLedger>(store, &crash_bank::registry())
        .await
        .unwrap();
    assert_eq!(
        documents,
        crash_bank::documents(&replayed),
        "the saved read model differs from a replay of the log from scratch"
    );
    eprintln!(
        "read model at {head} equals a replay ({} documents)",
        documents.len()
    );
}

/// Starts the holder and the standby, and pauses the holder inside a
/// batch; returns both. The holder sends commands for `holder_writes`,
/// the standby for [`WRITING`]: the writers run while the holder is
/// paused, stopped or killed. (A holder that writes too competes for a
/// SQLite file's write lock with its own lease renewals, and may lose the
/// lease before the signal; the standby then takes over earlier.)
fn holder_paused_mid_batch(
    store: &[&str],
    pause: &Path,
    holder_writes: Duration,
) -> (Engine, Engine) {
    let mut holder = Engine::start("a", store, holder_writes, Some(pause));
    holder.wait_for("state active", PATIENCE);
    let mut standby = Engine::start("b", store, WRITING, None);
    standby.wait_for("state standby", PATIENCE);
    let mut marker = pause.as_os_str().to_owned();
    marker.push(".paused");
    std::fs::write(pause, b"").unwrap();
    wait_for_file(Path::new(&marker), PATIENCE);
    (holder, standby)
}

/// Stops `holder` with SIGSTOP. On SQLite (`file`), only at a moment it
/// holds no write transaction: a process stopped inside one keeps the
/// file locked against every other writer (SQLite's one-writer rule) until
/// it runs again, standbys included. The holder here writes only its lease
/// renewals (its runner is paused before its commit), so a few tries find
/// such a moment.
fn stop(holder: &Engine, file: Option<&Path>) -> Instant {
    let first = Instant::now();
    for _ in 0..50 {
        holder.signal("STOP");
        let Some(file) = file else { return first };
        let conn = rusqlite::Connection::open(file).unwrap();
        if conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok() {
            return first;
        }
        holder.signal("CONT");
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the holder always held the SQLite write lock");
}

/// SIGSTOP the holder mid-batch: the standby takes over within the bound;
/// SIGCONT: the woken holder's commit is refused and it stands by; the read
/// model equals a replay.
fn paused_holder_is_fenced(store: &[&str], dir: &Path, file: Option<&Path>) -> (Engine, Engine) {
    let pause = dir.join("pause");
    let (mut holder, mut standby) = holder_paused_mid_batch(store, &pause, Duration::ZERO);
    // Lines from here on: on a busy SQLite file the standby may take over
    // while the holder is still being stopped (its renewals waited for the
    // file's write lock); the bound then counts from the first stop.
    standby.forget();
    let stopped = stop(&holder, file);
    let took_over = standby.wait_for("state active", PATIENCE);
    let takeover = took_over - stopped;
    eprintln!("the standby took over {takeover:?} after SIGSTOP");
    assert!(
        takeover <= TAKEOVER_BOUND,
        "takeover took {takeover:?}, more than {TAKEOVER_BOUND:?}"
    );
    std::fs::remove_file(&pause).unwrap();
    holder.forget();
    holder.signal("CONT");
    holder.wait_for("refused", PATIENCE);
    holder.wait_for("state standby", PATIENCE);
    standby.wait_for("done writing", PATIENCE);
    (holder, standby)
}

/// SIGKILL the holder mid-batch: the standby takes over within the bound.
fn killed_holder_is_replaced(store: &[&str], dir: &Path) -> Engine {
    let pause = dir.join("pause");
    let (holder, mut standby) = holder_paused_mid_batch(store, &pause, Duration::ZERO);
    standby.forget();
    holder.signal("KILL");
    let killed = Instant::now();
    drop(holder);
    let took_over = standby.wait_for("state active", PATIENCE);
    let takeover = took_over - killed;
    eprintln!("the standby took over {takeover:?} after SIGKILL");
    assert!(
        takeover <= TAKEOVER_BOUND,
        "takeover took {takeover:?}, more than {TAKEOVER_BOUND:?}"
    );
    standby.wait_for("done writing", PATIENCE);
    standby
}

fn sqlite_args(path: &Path) -> Vec<String> {
    vec![String::from("sqlite"), path.to_str().unwrap().to_owned()]
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_paused_holder_is_fenced_and_the_standby_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let args = sqlite_args(&path);
    let work = dir.path().to_path_buf();
    let file = path.clone();
    let engines = tokio::task::spawn_blocking(move || {
        paused_holder_is_fenced(&refs(&args), &work, Some(&file))
    })
    .await
    .unwrap();
    check_equals_replay(&SqliteStore::open(&path).unwrap()).await;
    drop(engines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_holder_is_replaced_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let args = sqlite_args(&path);
    let work = dir.path().to_path_buf();
    let standby =
        tokio::task::spawn_blocking(move || killed_holder_is_replaced(&refs(&args), &work))
            .await
            .unwrap();
    check_equals_replay(&SqliteStore::open(&path).unwrap()).await;
    drop(standby);
}

/// A server of this test binary's own, and a schema for one test.
async fn postgres(test: &str) -> Option<(&'static TestPostgres, Vec<String>)> {
    let server = tokio::task::spawn_blocking(TestPostgres::shared)
        .await
        .unwrap()?;
    let args = vec![
        String::from("postgres"),
        server.connection_string(),
        unique_schema(test),
    ];
    Some((server, args))
}

async fn connect(args: &[String]) -> PostgresStore {
    PostgresStore::connect(&args[1], PostgresOptions::new().schema(args[2].as_str()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_paused_holder_is_fenced_and_the_standby_takes_over() {
    let Some((_server, args)) = postgres("lease_paused").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (run, work) = (args.clone(), dir.path().to_path_buf());
    let engines =
        tokio::task::spawn_blocking(move || paused_holder_is_fenced(&refs(&run), &work, None))
            .await
            .unwrap();
    check_equals_replay(&connect(&args).await).await;
    drop(engines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_holder_is_replaced_within_the_bound() {
    let Some((_server, args)) = postgres("lease_killed").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (run, work): (Vec<String>, PathBuf) = (args.clone(), dir.path().to_path_buf());
    let standby =
        tokio::task::spawn_blocking(move || killed_holder_is_replaced(&refs(&run), &work))
            .await
            .unwrap();
    check_equals_replay(&connect(&args).await).await;
    drop(standby);
}
