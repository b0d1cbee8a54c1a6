//! Conflicts across processes (issue 14, item 7): two `contender` processes,
//! each an engine at its defaults with 4 tasks, run commands on the same ten
//! streams of one SQLite file or one PostgreSQL schema. Every conflict is
//! retried after a jittered, growing wait; no command may give up, and the
//! log must hold exactly the commands that succeeded, each stream counting
//! up without a gap or a repeat. Each process prints its tally on stderr,
//! with the most retries one command needed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use cqrs_core::store::{LogFilter, PostgresOptions, PostgresStore, SqliteStore, Store};
use cqrs_core::{RecordedEvent, StreamId};
use cqrs_tests::pg::{TestPostgres, unique_schema};

/// Commands per task: 2 processes x 4 tasks x this many. Enough that the
/// engine as it was (8 retries back to back) gave up on some in every run.
const COMMANDS: u64 = 1_500;

/// The two tests run one after the other: four contenders at once on a
/// 2-core machine would test the scheduler.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What one process reported.
#[derive(Debug, Default)]
struct Done {
    ok: u64,
    retries: u64,
    most_retries: u64,
    gave_up: u64,
    failed: u64,
    first_ms: u64,
    last_ms: u64,
}

fn parse_done(line: &str) -> Done {
    let mut done = Done::default();
    for field in line.trim_start_matches("done ").split(' ') {
        let (key, value) = field.split_once('=').unwrap();
        let value: u64 = value.parse().unwrap();
        match key {
            "ok" => done.ok = value,
            "retries" => done.retries = value,
            "most_retries" => done.most_retries = value,
            "gave_up" => done.gave_up = value,
            "failed" => done.failed = value,
            "first_ms" => done.first_ms = value,
            "last_ms" => done.last_ms = value,
            other => panic!("unknown field {other} in {line:?}"),
        }
    }
    done
}

/// Runs two `contender` processes on the store named by `args`, started
/// together, and returns what each reported.
fn contend(args: &[&str]) -> Vec<Done> {
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_contender"))
            .args(args)
            .env("CONTENDER_COMMANDS", COMMANDS.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start contender")
    };
    let mut children: Vec<Child> = vec![spawn(), spawn()];
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|child| BufReader::new(child.stdout.take().unwrap()).lines())
        .collect();
    for lines in &mut outputs {
        let ready = lines.next().expect("a line").expect("text");
        assert_eq!(ready, "ready");
    }
    let started = Instant::now();
    for child in &mut children {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }
    let done: Vec<Done> = outputs
        .iter_mut()
        .map(|lines| {
            let line = lines
                .find(|l| l.as_ref().is_ok_and(|l| l.starts_with("done ")))
                .expect("a done line")
                .unwrap();
            parse_done(&line)
        })
        .collect();
    for child in &mut children {
        assert!(child.wait().unwrap().success(), "a contender failed");
    }
    eprintln!("two contenders: {done:?} in {:?}", started.elapsed());
    done
}

/// Every event of the log.
async fn whole_log(store: &dyn Store) -> Vec<Arc<RecordedEvent>> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let slice = store
            .read_log(after, &LogFilter::all(), 1000)
            .await
            .unwrap();
        if slice.through == after {
            return all;
        }
        after = slice.through;
        all.extend(slice.events);
    }
}

async fn check(store: &dyn Store, done: &[Done]) {
    let ok: u64 = done.iter().map(|d| d.ok).sum();
    let retries: u64 = done.iter().map(|d| d.retries).sum();
    let gave_up: u64 = done.iter().map(|d| d.gave_up).sum();
    let failed: u64 = done.iter().map(|d| d.failed).sum();
    assert_eq!(failed, 0, "commands failed: {done:?}");
    assert_eq!(gave_up, 0, "commands gave up after conflicts: {done:?}");
    assert_eq!(ok, 2 * 4 * COMMANDS);
    // Else the test did not test contention: there were conflicts, and
    // both processes wrote all along, side by side (a store that lets one
    // process starve the other of its write lock runs them one after the
    // other instead).
    assert!(retries > 0, "no conflict at all: {done:?}");
    let overlap = done[0]
        .last_ms
        .min(done[1].last_ms)
        .saturating_sub(done[0].first_ms.max(done[1].first_ms));
    let shorter = done
        .iter()
        .map(|d| d.last_ms.saturating_sub(d.first_ms))
        .min()
        .unwrap();
    assert!(
        overlap * 2 >= shorter,
        "the processes wrote side by side for {overlap} ms only: {done:?}"
    );

    let log = whole_log(store).await;
    assert_eq!(log.len() as u64, ok, "the log holds every success, once");
    let mut streams: BTreeMap<&StreamId, Vec<u64>> = BTreeMap::new();
    for event in &log {
        let value: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
        streams
            .entry(&event.stream)
            .or_default()
            .push(value["value"].as_u64().unwrap());
    }
    assert_eq!(streams.len(), 10);
    for (stream, values) in streams {
        let expected: Vec<u64> = (1..=values.len() as u64).collect();
        assert_eq!(values, expected, "{stream}: a lost or repeated update");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_sqlite_never_give_up_at_the_defaults() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contended.db");
    // Created (and migrated) before the race.
    drop(SqliteStore::open(&path).unwrap());
    let path_text = path.to_str().unwrap().to_owned();
    let done = tokio::task::spawn_blocking(move || contend(&["sqlite", &path_text]))
        .await
        .unwrap();
    check(&SqliteStore::open(&path).unwrap(), &done).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_postgres_never_give_up_at_the_defaults() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::start)
        .await
        .unwrap()
    else {
        return;
    };
    let config = server.connection_string();
    let schema = unique_schema("contention");
    // Migrated before the race.
    let store = PostgresStore::connect(&config, PostgresOptions::new().schema(schema.as_str()))
        .await
        .unwrap();
    let done = tokio::task::spawn_blocking(move || contend(&["postgres", &config, &schema]))
        .await
        .unwrap();
    check(&store, &done).await;
}

/// Processes that open one new SQLite file at the same moment (a writer and
/// a relay started together): the first switches the file to WAL and
/// migrates it while the others wait for it, instead of failing with
/// "database is locked".
#[test]
fn many_openers_of_one_new_sqlite_file_all_succeed() {
    const OPENERS: usize = 8;
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("fresh-{round}.db"));
        let start = std::sync::Barrier::new(OPENERS);
        std::thread::scope(|scope| {
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        SqliteStore::open(&path).map(drop)
                    })
                })
                .collect();
            for opener in openers {
                if let Err(e) = opener.join().unwrap() {
                    panic!("round {round}: an opener failed: {e:?}");
                }
            }
        });
    }
}
