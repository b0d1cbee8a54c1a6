//! The read side over NATS JetStream under real faults, with real servers
//! and processes: writers append to a SQLite event store, a relay process
//! publishes the log to JetStream, a reader process keeps the durable
//! `CrashLedger` in a database of its own (SQLite or PostgreSQL). While the
//! writers run, a relay or a reader is killed (`SIGKILL`) or paused
//! (`SIGSTOP`) in the middle of a batch, the stream's leader on a 3-node
//! cluster is killed, or the whole server is stopped for seconds. Every
//! run ends with
//!
//! - the stream holding every event of the store exactly once, in global
//!   order (no duplicate, no gap), and
//! - the remote read model equal to a replay of the event store from
//!   scratch, with its checkpoint at the store's head.
//!
//! The children are `crash-engine` (the writers, without projections),
//! `crash-relay` and `crash-reader` (see `tests/src/bin/`).

#[path = "../src/crash_bank.rs"]
mod crash_bank;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use cqrs_core::Projection;
use cqrs_core::nats::{JetStream, JetStreamOptions};
use cqrs_core::store::{LogFilter, Store};
use cqrs_tests::nats::TestNats;
use cqrs_tests::pg::{TestPostgres, unique_schema};
use cqrs_tests::process::Child;

use self::crash_bank::CrashLedger;

/// The lease's term in the children.
const LEASE: Duration = Duration::from_millis(1_000);
/// How long after the holder stopped a standby must have taken over: the
/// term, one retry interval, and room for a loaded machine.
const TAKEOVER_BOUND: Duration = Duration::from_millis(1_000 + 200 + 3_000);
/// How long the writers send commands.
const WRITING: Duration = Duration::from_secs(6);
/// The bound on every wait for a child or a server.
const PATIENCE: Duration = Duration::from_secs(60);

/// The servers, files and children of one test.
struct Scene {
    dir: tempfile::TempDir,
    nats: TestNats,
    /// The event store's arguments for the children.
    events: Vec<String>,
    /// The read store's.
    reads: Vec<String>,
    replicas: usize,
}

impl Scene {
    fn new(nats: TestNats) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let events = vec![
            "sqlite".to_owned(),
            dir.path().join("events.db").display().to_string(),
        ];
        let reads = vec![
            "sqlite".to_owned(),
            dir.path().join("reads.db").display().to_string(),
        ];
        Self {
            dir,
            nats,
            events,
            reads,
            replicas: 1,
        }
    }

    fn pause_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pause"))
    }

    /// Two writer tasks sending commands for [`WRITING`].
    fn writers(&self) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crash-engine"));
        command
            .args(&self.events)
            .env("CQRS_TEST_NO_PROJECTIONS", "1")
            .env("CQRS_TEST_TASKS", "2")
            .env("CQRS_TEST_WRITE_MS", WRITING.as_millis().to_string());
        Child::spawn("writers", command)
    }

    fn relay(&self, name: &str, pause: Option<&Path>) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crash-relay"));
        command
            .arg(self.nats.url())
            .args(&self.events)
            .env("CQRS_TEST_LEASE_MS", LEASE.as_millis().to_string())
            .env("CQRS_TEST_NATS_REPLICAS", self.replicas.to_string());
        if let Some(pause) = pause {
            command.env("CQRS_TEST_PAUSE_FILE", pause);
        }
        Child::spawn(name, command)
    }

    fn reader(&self, name: &str, pause: Option<&Path>) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crash-reader"));
        command
            .arg(self.nats.url())
            .args(&self.reads)
            .env("CQRS_TEST_LEASE_MS", LEASE.as_millis().to_string());
        if let Some(pause) = pause {
            command.env("CQRS_TEST_PAUSE_FILE", pause);
        }
        Child::spawn(name, command)
    }

    async fn stores(&self) -> (std::sync::Arc<dyn Store>, std::sync::Arc<dyn Store>) {
        let events: Vec<&str> = self.events.iter().map(String::as_str).collect();
        let reads: Vec<&str> = self.reads.iter().map(String::as_str).collect();
        let (events, _) = cqrs_tests::child::stores_from("nats_faults", &events).await;
        let (reads, _) = cqrs_tests::child::stores_from("nats_faults", &reads).await;
        (events, reads)
    }

    /// Waits until the remote ledger's checkpoint reached the store's head
    /// and stays there; then checks the stream against the store, and the
    /// remote read model against a replay from scratch.
    async fn check(&self) {
        let (events, reads) = self.stores().await;
        let deadline = Instant::now() + PATIENCE;
        let mut settled = 0;
        let head = loop {
            let head = events.head().await.unwrap();
            let saved = reads.load_checkpoint(CrashLedger::NAME).await.unwrap();
            settled = if saved == Some(head) { settled + 1 } else { 0 };
            if settled >= 5 {
                break head;
            }
            assert!(
                Instant::now() < deadline,
                "the remote ledger's checkpoint {saved:?} never settled at the store's head {head}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let positions: Vec<u64> = events
            .read_log(0, &LogFilter::all(), usize::MAX)
            .await
            .unwrap()
            .events
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(positions.last(), Some(&head));
        let relayed = stream_positions(&self.nats, self.replicas).await;
        assert_eq!(
            relayed.len(),
            positions.len(),
            "the stream holds {} messages for {} events",
            relayed.len(),
            positions.len()
        );
        assert!(
            relayed == positions,
            "the stream's positions are not the store's, in order (first difference at index {:?})",
            relayed.iter().zip(&positions).position(|(a, b)| a != b)
        );
        let saved = reads.load_read_model(CrashLedger::NAME).await.unwrap();
        assert_eq!(saved.checkpoint, Some(head));
        let documents: std::collections::BTreeMap<String, u64> = saved
            .documents
            .iter()
            .map(|(_, key, body)| (key.clone(), serde_json::from_slice(body).unwrap()))
            .collect();
        let replayed =
            cqrs_core::replay_with::<CrashLedger>(events.as_ref(), &crash_bank::registry())
                .await
                .unwrap();
        assert_eq!(
            documents,
            crash_bank::documents(&replayed),
            "the remote read model differs from a replay of the event store"
        );
        eprintln!(
            "{head} events: the stream holds each once, in order; the remote read model equals a replay"
        );
    }
}

/// The `Cqrs-Position` of every message of the stream, in stream order.
async fn stream_positions(nats: &TestNats, replicas: usize) -> Vec<u64> {
    let js = JetStream::connect(&nats.url(), JetStreamOptions::new().replicas(replicas))
        .await
        .unwrap();
    let stream = js.context().get_stream(js.stream_name()).await.unwrap();
    let last = stream.cached_info().state.last_sequence;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .messages()
        .await
        .unwrap();
    let mut positions = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while positions.len() < usize::try_from(last).unwrap() {
        let message = tokio::time::timeout_at(deadline.into(), next(&mut messages))
            .await
            .expect("the stream's messages did not all come")
            .unwrap();
        let position = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Cqrs-Position"))
            .map(|v| v.as_str().parse::<u64>().unwrap())
            .expect("a relayed message carries its position");
        positions.push(position);
    }
    positions
}

async fn next(messages: &mut pull::Stream) -> Option<async_nats::jetstream::Message> {
    std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut *messages), cx)
    })
    .await
    .map(|m| m.unwrap())
}

/// The position in a `relayed <p>` or `projected <p>` line.
fn position(line: &str) -> u64 {
    line.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no position in `{line}`"))
}

fn at_least(n: u64) -> impl FnMut(&str) -> bool {
    move |rest| rest.trim().parse::<u64>().is_ok_and(|p| p >= n)
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pause(file: &Path) {
    let _ = std::fs::remove_file(marker(file));
    std::fs::write(file, b"").unwrap();
}

fn marker(file: &Path) -> PathBuf {
    let mut marker = file.as_os_str().to_owned();
    marker.push(".paused");
    PathBuf::from(marker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_batch_is_replaced_without_duplicates_or_gaps() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let scene = Scene::new(nats);
    let mut writers = scene.writers();
    let file = scene.pause_file("relay-1");
    let mut first = scene.relay("relay-1", Some(&file));
    let _reader = scene.reader("reader", None);
    first.wait_until("relayed ", PATIENCE, at_least(200));
    // Stopped after a publish, before its checkpoint: the stream is ahead.
    pause(&file);
    wait_for_file(&marker(&file));
    let (events, _) = scene.stores().await;
    let checkpoint = events.load_checkpoint("relay").await.unwrap().unwrap_or(0);
    let streamed = *stream_positions(&scene.nats, 1).await.last().unwrap();
    assert!(
        streamed > checkpoint,
        "the paused relay published {streamed} past its checkpoint {checkpoint}"
    );
    first.kill();
    std::fs::remove_file(&file).unwrap();
    let mut second = scene.relay("relay-2", None);
    second.wait_until("relayed ", PATIENCE, at_least(streamed + 100));
    // And once more, anywhere.
    second.kill();
    let _third = scene.relay("relay-3", None);
    writers.wait_for("done writing", PATIENCE);
    scene.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_killed_mid_batch_resumes_exactly_once_into_postgres() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let Some(pg) = TestPostgres::shared() else {
        return;
    };
    let mut scene = Scene::new(nats);
    scene.reads = vec![
        "postgres".to_owned(),
        pg.connection_string(),
        unique_schema("nats_reader_killed"),
    ];
    let mut writers = scene.writers();
    let _relay = scene.relay("relay", None);
    let file = scene.pause_file("reader");
    for round in 0..2 {
        let mut reader = scene.reader(&format!("reader-{round}"), Some(&file));
        let line = reader.wait_until("projected ", PATIENCE, at_least(150 * (round + 1)));
        // Inside a batch: read, partly applied, not committed.
        pause(&file);
        wait_for_file(&marker(&file));
        eprintln!("killing {} mid-batch after {line}", reader.name);
        reader.kill();
        std::fs::remove_file(&file).unwrap();
    }
    let _reader = scene.reader("reader-last", None);
    writers.wait_for("done writing", PATIENCE);
    scene.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_leader_killed_on_a_three_node_cluster() {
    let Some(nats) = TestNats::start_cluster() else {
        return;
    };
    let mut scene = Scene::new(nats);
    scene.replicas = 3;
    let mut writers = scene.writers();
    let mut relay = scene.relay("relay", None);
    let mut reader = scene.reader("reader", None);
    let line = relay.wait_until("relayed ", PATIENCE, at_least(200));
    let js = JetStream::connect(&scene.nats.url(), JetStreamOptions::new().replicas(3))
        .await
        .unwrap();
    let mut stream = js.context().get_stream(js.stream_name()).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the R3 stream has a leader");
    drop(js);
    eprintln!("killing the stream leader {leader} after {line}");
    scene.nats.kill(&leader);
    // The relay and the reader go on with the other two.
    relay.forget();
    let after = position(&line);
    relay.wait_until("relayed ", PATIENCE, at_least(after + 200));
    reader.wait_until("projected ", PATIENCE, at_least(after + 100));
    scene.nats.start_node(&leader);
    writers.wait_for("done writing", PATIENCE);
    scene.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_server_stopped_for_seconds_then_started_again() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let scene = Scene::new(nats);
    let mut writers = scene.writers();
    let mut relay = scene.relay("relay", None);
    let _reader = scene.reader("reader", None);
    relay.wait_until("relayed ", PATIENCE, at_least(200));
    scene.nats.stop();
    // The writers never notice: they keep appending while NATS is down.
    writers.forget();
    let down = Instant::now();
    let mut appended = 0;
    while down.elapsed() < Duration::from_secs(3) {
        writers.wait_for("ok ", PATIENCE);
        appended += 1;
    }
    assert!(
        appended > 10,
        "only {appended} commands went through while NATS was down"
    );
    relay.forget();
    scene.nats.start_again();
    // Reconnected by itself.
    let (events, _) = scene.stores().await;
    let head = events.head().await.unwrap();
    relay.wait_until("relayed ", PATIENCE, at_least(head));
    writers.wait_for("done writing", PATIENCE);
    scene.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_relay_loses_its_lease_and_is_fenced() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let scene = Scene::new(nats);
    let mut writers = scene.writers();
    let file = scene.pause_file("relay-1");
    let mut holder = scene.relay("relay-1", Some(&file));
    holder.wait_until("relayed ", PATIENCE, at_least(100));
    let mut standby = scene.relay("relay-2", None);
    standby.wait_for("state standby", PATIENCE);
    let _reader = scene.reader("reader", None);
    pause(&file);
    wait_for_file(&marker(&file));
    holder.signal("STOP");
    let stopped = Instant::now();
    standby.wait_for("state active", PATIENCE);
    let took = stopped.elapsed();
    assert!(
        took < TAKEOVER_BOUND,
        "the standby took {took:?} to take over"
    );
    let (events, _) = scene.stores().await;
    let head = events.head().await.unwrap();
    standby.wait_until("relayed ", PATIENCE, at_least(head));
    // Woken, it finishes its publish (refused by the stream, or dropped as
    // duplicates) and its checkpoint is refused: it stands by.
    std::fs::remove_file(&file).unwrap();
    holder.signal("CONT");
    holder.wait_for("refused ", PATIENCE);
    writers.wait_for("done writing", PATIENCE);
    scene.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_reader_loses_its_lease_and_is_fenced() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let scene = Scene::new(nats);
    let mut writers = scene.writers();
    let _relay = scene.relay("relay", None);
    let file = scene.pause_file("reader-1");
    let mut holder = scene.reader("reader-1", Some(&file));
    holder.wait_until("projected ", PATIENCE, at_least(100));
    let mut standby = scene.reader("reader-2", None);
    standby.wait_for("state standby", PATIENCE);
    pause(&file);
    wait_for_file(&marker(&file));
    holder.signal("STOP");
    let stopped = Instant::now();
    standby.wait_for("state active", PATIENCE);
    let took = stopped.elapsed();
    assert!(
        took < TAKEOVER_BOUND,
        "the standby took {took:?} to take over"
    );
    standby.wait_until("projected ", PATIENCE, at_least(300));
    std::fs::remove_file(&file).unwrap();
    holder.signal("CONT");
    holder.wait_for("refused ", PATIENCE);
    writers.wait_for("done writing", PATIENCE);
    scene.check().await;
}
