//! Crashes: a writer process killed with SIGKILL mid-load (SQLite and
//! PostgreSQL), and a PostgreSQL server stopped like a crash while writers
//! run. Afterwards no batch is partial, versions are contiguous, positions
//! strictly increase, and every append that was acknowledged is there.
//!
//! Then an engine process with a durable projection killed mid-load: the
//! saved documents are exactly the projection as of its saved checkpoint,
//! and an engine started on the store resumes from there, counting every
//! event once.

#[path = "../src/crash_bank.rs"]
mod crash_bank;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use cqrs_core::store::{
    EventStore, ExpectedVersion, GlobalLog, LogFilter, PostgresOptions, PostgresStore, SqliteStore,
    Store,
};
use cqrs_core::{Engine, NewEvent, Projection, RecordedEvent, StoreError, StreamId};
use cqrs_tests::pg::{TestPostgres, unique_schema};

use self::crash_bank::{
    CrashDeposit, CrashLedger, CrashOpen, CrashReceive, CrashSend, CrashWithdraw, EVENTS_KEY,
    ViewLedger,
};

/// An append the writer saw succeed: stream id, version after it, last position.
#[derive(Debug)]
struct Ack {
    stream: StreamId,
    version: u64,
    last_position: u64,
}

/// Runs `crash-writer` with `args`, lets it append until it has acknowledged
/// `acks_before_kill` appends and `extra` more time passed, then kills it
/// with SIGKILL. Returns what it acknowledged.
fn run_and_kill(args: &[&str], acks_before_kill: usize, extra: Duration) -> Vec<Ack> {
    let lines = run_until_killed(
        env!("CARGO_BIN_EXE_crash-writer"),
        args,
        |lines| lines.len() >= acks_before_kill,
        extra,
    );
    lines.iter().filter_map(|line| parse_ack(line)).collect()
}

/// Runs `program` with `args` until `ready` says yes to the lines it
/// printed so far and `extra` more time passed, then kills it with SIGKILL.
/// Returns every line it printed.
fn run_until_killed(
    program: &str,
    args: &[&str],
    mut ready: impl FnMut(&[String]) -> bool,
    extra: Duration,
) -> Vec<String> {
    let name = Path::new(program).file_name().unwrap().to_string_lossy();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let started = Instant::now();
    while !ready(&printed) {
        match received.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => printed.push(line),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{name} was not ready after printing {} lines: {e}",
                    printed.len()
                );
            }
        }
    }
    std::thread::sleep(extra);
    // `Child::kill` is SIGKILL on unix: no destructor, no flush, no rollback.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{name} must have been killed");
    reader.join().unwrap();
    printed.extend(received.try_iter());
    eprintln!(
        "{name} printed {} lines in {:?} before SIGKILL",
        printed.len(),
        started.elapsed()
    );
    printed
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.split(' ');
    if parts.next()? != "ok" {
        return None;
    }
    let aggregate = parts.next()?;
    let id = parts.next()?;
    Some(Ack {
        stream: StreamId::new(aggregate, id),
        version: parts.next()?.parse().ok()?,
        last_position: parts.next()?.parse().ok()?,
    })
}

/// The whole log, paged.
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

/// No partial batch, contiguous versions, increasing positions, every
/// acknowledged append present where it was acknowledged.
async fn check_log(store: &dyn Store, acks: &[Ack], batch: u64) {
    let log = whole_log(store).await;
    assert!(!log.is_empty(), "nothing was written");
    for pair in log.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions must strictly increase"
        );
    }
    let mut streams: BTreeMap<&StreamId, Vec<&RecordedEvent>> = BTreeMap::new();
    for event in &log {
        streams.entry(&event.stream).or_default().push(event);
    }
    for (stream, events) in &streams {
        assert_eq!(
            events.len() as u64 % batch,
            0,
            "stream {stream} holds a partial batch ({} events)",
            events.len()
        );
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.version, i as u64 + 1, "stream {stream}: versions");
        }
        // The events of one batch come from one append.
        for chunk in events.chunks(batch as usize) {
            let seq = |e: &RecordedEvent| {
                let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
                v["seq"].clone()
            };
            assert!(
                chunk.iter().all(|e| seq(e) == seq(chunk[0])),
                "stream {stream}: a batch mixes appends"
            );
        }
    }
    for ack in acks {
        let events = streams
            .get(&ack.stream)
            .unwrap_or_else(|| panic!("acknowledged stream {} is missing", ack.stream));
        let event = events.get(ack.version as usize - 1).unwrap_or_else(|| {
            panic!(
                "acknowledged version {} of {} is missing",
                ack.version, ack.stream
            )
        });
        assert_eq!(event.position, ack.last_position, "{ack:?}");
    }
    // A reader of the store sees the same head.
    assert_eq!(store.head().await.unwrap(), log.last().unwrap().position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_killed_mid_load_leaves_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let path_text = path.to_str().unwrap().to_owned();
    let acks = tokio::task::spawn_blocking(move || {
        run_and_kill(&["sqlite", &path_text], 100, Duration::from_millis(300))
    })
    .await
    .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    check_log(&store, &acks, 3).await;
    // The reopened store goes on where the log ended.
    let head = store.head().await.unwrap();
    let outcome = store
        .append(
            &StreamId::new("after", "crash"),
            ExpectedVersion::Exact(0),
            vec![event(0)],
        )
        .await
        .unwrap();
    assert_eq!(outcome.last_position, head + 1);
}

/// Two writer processes on one SQLite file, appending to the same streams
/// at once, while this process follows the file's log without writing:
/// version checks hold across processes (no append is acknowledged twice
/// for one version), positions have no gap and no duplicate, and the tail
/// here sees every event once, in order, though only other processes
/// append (the file's `data_version` is polled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_writer_processes_stay_consistent_and_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Created first, so neither writer races the other's migration.
    let follower: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let mut tail = cqrs_core::subscription::Tail::new(follower.clone(), 0, LogFilter::all(), 64);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let following = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let slice = tail.next().await.unwrap();
                seen.lock()
                    .unwrap()
                    .extend(slice.events.iter().map(|e| e.position));
            }
        })
    };
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let path = path.to_str().unwrap().to_owned();
            std::thread::spawn(move || {
                run_and_kill(&["sqlite", &path], 150, Duration::from_millis(500))
            })
        })
        .collect();
    let acks: Vec<Ack> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let store = SqliteStore::open(&path).unwrap();
    check_log(&store, &acks, 3).await;
    let log = whole_log(&store).await;
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "gaps in positions"
    );
    let mut acked = std::collections::HashSet::new();
    for ack in &acks {
        assert!(
            acked.insert((ack.stream.clone(), ack.version)),
            "{} version {} acknowledged twice",
            ack.stream,
            ack.version
        );
    }
    let head = *positions.last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().last() != Some(&head) {
        assert!(
            Instant::now() < deadline,
            "the follower never saw the other processes' appends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    following.abort();
    assert_eq!(
        *seen.lock().unwrap(),
        positions,
        "the follower saw another log"
    );
    assert_eq!(*follower.watch_head().borrow(), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_killed_mid_load_leaves_whole_batches() {
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::start_durable)
        .await
        .unwrap()
    else {
        return;
    };
    let config = server.connection_string();
    let schema = unique_schema("crash");
    // Migrate first, so the writer's start is not part of the race.
    drop(
        PostgresStore::connect(&config, PostgresOptions::new().schema(schema.as_str()))
            .await
            .unwrap(),
    );
    let args = (config.clone(), schema.clone());
    let acks = tokio::task::spawn_blocking(move || {
        run_and_kill(
            &["postgres", &args.0, &args.1],
            100,
            Duration::from_millis(300),
        )
    })
    .await
    .unwrap();
    let store = PostgresStore::connect(&config, PostgresOptions::new().schema(schema))
        .await
        .unwrap();
    check_log(&store, &acks, 3).await;
}

fn event(seq: u64) -> NewEvent {
    NewEvent::new("restarted", format!(r#"{{"seq":{seq}}}"#))
}

/// What the in-process writers of the restart test saw.
#[derive(Default)]
struct Seen {
    acks: Vec<Ack>,
    errors: Vec<StoreError>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_mid_load_loses_no_acknowledged_append() {
    const WRITERS: usize = 8;
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::start_durable)
        .await
        .unwrap()
    else {
        return;
    };
    let server = Arc::new(server);
    let options = PostgresOptions::new()
        .schema(unique_schema("restart"))
        .connect_timeout(Duration::from_secs(2))
        .head_poll_interval(Duration::from_millis(500));
    let store = PostgresStore::connect(&server.connection_string(), options.clone())
        .await
        .unwrap();
    // Another store that only follows the log: its head can move only if
    // its listener reconnects after the restart (its poll is an hour away).
    let observer = PostgresStore::connect(
        &server.connection_string(),
        options.head_poll_interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    // Writers that succeeded at least 5 times since the restart.
    let recovered = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (store, seen, stop, restarted, recovered) = (
            store.clone(),
            Arc::clone(&seen),
            Arc::clone(&stop),
            Arc::clone(&restarted),
            Arc::clone(&recovered),
        );
        writers.spawn(async move {
            let stream = StreamId::new("restart", format!("w-{w}"));
            let mut version = 0;
            let mut seq = 0;
            let mut since_restart = 0;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let batch = (0..3).map(|_| event(seq)).collect();
                match store
                    .append(&stream, ExpectedVersion::Exact(version), batch)
                    .await
                {
                    Ok(outcome) => {
                        version = outcome.version;
                        seen.lock().unwrap().acks.push(Ack {
                            stream: stream.clone(),
                            version,
                            last_position: outcome.last_position,
                        });
                        if restarted.load(Ordering::Relaxed) {
                            since_restart += 1;
                            if since_restart == 5 {
                                recovered.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(StoreError::Conflict { actual, .. }) => version = actual,
                    Err(e) => {
                        seen.lock().unwrap().errors.push(e);
                        tokio::time::sleep(Duration::from_millis(25)).await;
                        // An append cut off mid-commit may have landed: re-read.
                        if let Ok(events) = store.read_stream(&stream, 1).await {
                            version = events.len() as u64;
                        }
                    }
                }
            }
        });
    }

    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = seen.lock().unwrap().acks.len();
    assert!(before > 0, "the writers made no progress before the crash");
    let s = Arc::clone(&server);
    tokio::task::spawn_blocking(move || s.stop_immediate())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = Arc::clone(&server);
    tokio::task::spawn_blocking(move || s.start_again())
        .await
        .unwrap();
    restarted.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while recovered.load(Ordering::Relaxed) < WRITERS {
        assert!(
            Instant::now() < deadline,
            "only {} of {WRITERS} writers recovered after the restart",
            recovered.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writers.join_all().await;

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        !seen.errors.is_empty(),
        "the writers should have seen the server go down"
    );
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for error in &seen.errors {
        let text = error.to_string();
        assert!(
            matches!(error, StoreError::Backend { .. }) && text.contains("PostgreSQL"),
            "unclear error while the server was down: {text}"
        );
        // One line per kind of error: the stream names differ, nothing else.
        let kind = text.replace(char::is_numeric, "#");
        *kinds.entry(kind).or_default() += 1;
    }
    eprintln!(
        "{} appends acknowledged ({before} before the crash), {} errors while down: {kinds:#?}",
        seen.acks.len(),
        seen.errors.len()
    );
    check_log(&store, &seen.acks, 3).await;

    // The live heads recovered with the server, also where nothing was
    // appended: the observer's listener reconnected.
    let head = store.head().await.unwrap();
    for follower in [&store, &observer] {
        let mut watch = follower.watch_head();
        tokio::time::timeout(Duration::from_secs(10), async {
            while *watch.borrow_and_update() < head {
                watch.changed().await.unwrap();
            }
        })
        .await
        .expect("watch_head did not catch up after the restart");
    }
}

// ---- an engine with a durable projection, killed --------------------------

/// How many times in a row an engine is started on the store and killed.
const KILLS: usize = 3;
/// Commands an engine executes before it may be killed.
const COMMANDS_BEFORE_KILL: usize = 300;

/// Runs `crash-engine` with `args` under load and kills it with SIGKILL once
/// it executed [`COMMANDS_BEFORE_KILL`] commands and its ledger saved past
/// the 100th of them. Returns the highest saved position it reported.
fn run_engine_and_kill(args: &[&str]) -> u64 {
    let number = |line: &String, prefix: &str| -> Option<u64> {
        line.strip_prefix(prefix)?.split(' ').next()?.parse().ok()
    };
    let printed = run_until_killed(
        env!("CARGO_BIN_EXE_crash-engine"),
        args,
        |lines| {
            let commands: Vec<u64> = lines.iter().filter_map(|l| number(l, "ok ")).collect();
            let saved = lines.iter().filter_map(|l| number(l, "projected ")).max();
            commands.len() >= COMMANDS_BEFORE_KILL && saved >= Some(commands[99])
        },
        // Long enough that the kill lands in the middle of commits.
        Duration::from_millis(200),
    );
    printed
        .iter()
        .filter_map(|l| number(l, "projected "))
        .max()
        .unwrap_or(0)
}

/// Every event of the log the ledger consumes, paged.
async fn ledger_events(store: &dyn Store) -> Vec<Arc<RecordedEvent>> {
    let filter = LogFilter::events(CrashLedger::EVENTS.iter().copied());
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let slice = store.read_log(after, &filter, 1000).await.unwrap();
        if slice.through == after {
            return all;
        }
        after = slice.through;
        all.extend(slice.events);
    }
}

/// Waits until the head and the ledger's checkpoint stop moving.
///
/// PostgreSQL runs what a client sent before it died: a backend notices the
/// client is gone only when it answers, so an append or a commit the killed
/// engine had sent may land after the kill. Each is one statement, one
/// implicit transaction, so none waits for the dead client: the store
/// settles within milliseconds.
async fn settle(store: &dyn Store, read: &dyn Store) {
    let state = || async {
        let checkpoint = read.load_checkpoint(CrashLedger::NAME).await.unwrap();
        (store.head().await.unwrap(), checkpoint)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = state().await;
    let mut unchanged = 0;
    while unchanged < 3 {
        assert!(
            Instant::now() < deadline,
            "the store keeps changing after the kill"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = state().await;
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
    }
}

/// The ledger's saved documents are exactly a replay of the log through its
/// saved checkpoint: not a document more or less, not an event counted twice
/// or missed. Returns how many events that is.
async fn check_saved_ledger(store: &dyn Store, read: &dyn Store, reported: u64) -> u64 {
    let head = store.head().await.unwrap();
    let saved = read.load_read_model(CrashLedger::NAME).await.unwrap();
    let checkpoint = saved
        .checkpoint
        .expect("the ledger saved a checkpoint before the kill");
    assert!(
        checkpoint >= reported && checkpoint <= head,
        "saved checkpoint {checkpoint}: below what the engine reported saved \
         ({reported}), or above the head ({head})"
    );
    eprintln!(
        "ledger saved through {checkpoint} of {head} ({} documents)",
        saved.documents.len()
    );
    let mut at_checkpoint = CrashLedger::default();
    for record in ledger_events(store).await {
        if record.position <= checkpoint {
            at_checkpoint.project_recorded(&record).unwrap();
        }
    }
    let documents: BTreeMap<String, u64> = saved
        .documents
        .iter()
        .map(|(collection, key, body)| {
            assert_eq!(collection, "balances");
            (key.clone(), serde_json::from_slice(body).unwrap())
        })
        .collect();
    assert_eq!(documents.len(), saved.documents.len());
    assert_eq!(
        documents,
        crash_bank::documents(&at_checkpoint),
        "the saved documents are not the ledger as of checkpoint {checkpoint}"
    );
    assert_eq!(
        documents.get(EVENTS_KEY).copied(),
        Some(at_checkpoint.projected_here)
    );
    at_checkpoint.projected_here
}

/// An engine started on the store restores the ledger, projects only the
/// events after its checkpoint, and ends equal to a replay from scratch,
/// every event counted once; then it goes on and saves what it projects.
async fn check_resumed_ledger(
    store: Arc<dyn Store>,
    read: Arc<dyn Store>,
    through_checkpoint: u64,
) {
    let head = store.head().await.unwrap();
    let total = ledger_events(&*store).await.len() as u64;
    let engine = Engine::builder()
        .shared_store(Arc::clone(&store))
        .shared_read_store(read.clone())
        .registry(crash_bank::registry())
        .build()
        .await
        .unwrap();
    let live = engine
        .query(ViewLedger)
        .at_least(head)
        .timeout(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        live.projected_here,
        total - through_checkpoint,
        "the restarted ledger must project exactly the events after its checkpoint"
    );
    assert_eq!(
        live.balances.get(EVENTS_KEY).copied(),
        Some(total),
        "every event counted once"
    );
    let replayed = cqrs_core::replay::<CrashLedger>(&*store).await.unwrap();
    assert_eq!(live.balances, crash_bank::documents(&replayed));

    let account = String::from("after-the-crash");
    let other = String::from("acct-00");
    let mut last = None;
    for receipt in [
        engine
            .execute(CrashOpen {
                account: account.clone(),
            })
            .await,
        engine
            .execute(CrashDeposit {
                account: account.clone(),
                amount: 50,
            })
            .await,
        engine
            .execute(CrashWithdraw {
                account: account.clone(),
                amount: 20,
            })
            .await,
        engine
            .execute(CrashSend {
                from: account.clone(),
                to: other.clone(),
                amount: 5,
            })
            .await,
        engine
            .execute(CrashReceive {
                to: account.clone(),
                from: other,
                amount: 1,
            })
            .await,
    ] {
        last = Some(receipt.unwrap());
    }
    let view = engine
        .query(ViewLedger)
        .after(&last.unwrap())
        .await
        .unwrap();
    assert_eq!(view.balances[&account], 26);
    assert_eq!(view.balances[EVENTS_KEY], total + 5);
    // The killed engine's lease runs out, this engine takes over and saves
    // what it folded meanwhile.
    let deadline = Instant::now() + Duration::from_secs(30);
    let position = loop {
        let status = engine.projection_status(CrashLedger::NAME).unwrap();
        let saved = read.load_checkpoint(CrashLedger::NAME).await.unwrap();
        if status.state == cqrs_core::RunState::Live && saved == Some(status.position) {
            break status.position;
        }
        assert!(
            Instant::now() < deadline,
            "the ledger never took over: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    engine.stop().await;
    let saved = read.load_read_model(CrashLedger::NAME).await.unwrap();
    assert_eq!(saved.checkpoint, Some(position));
    assert_eq!(saved.documents.len(), view.balances.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_engine_killed_mid_load_resumes_its_durable_projection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.db");
    let mut through_checkpoint = 0;
    for _ in 0..KILLS {
        let path_text = path.to_str().unwrap().to_owned();
        let reported =
            tokio::task::spawn_blocking(move || run_engine_and_kill(&["sqlite", &path_text]))
                .await
                .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        through_checkpoint = check_saved_ledger(&store, &store, reported).await;
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    check_resumed_ledger(Arc::clone(&store), store, through_checkpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_engine_killed_mid_load_resumes_its_durable_projection() {
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::start_durable)
        .await
        .unwrap()
    else {
        return;
    };
    let config = server.connection_string();
    let schema = unique_schema("engine_crash");
    let connect =
        || PostgresStore::connect(&config, PostgresOptions::new().schema(schema.as_str()));
    let mut through_checkpoint = 0;
    for _ in 0..KILLS {
        let args = (config.clone(), schema.clone());
        let reported = tokio::task::spawn_blocking(move || {
            run_engine_and_kill(&["postgres", &args.0, &args.1])
        })
        .await
        .unwrap();
        let store = connect().await.unwrap();
        settle(&store, &store).await;
        through_checkpoint = check_saved_ledger(&store, &store, reported).await;
    }
    let store: Arc<dyn Store> = Arc::new(connect().await.unwrap());
    check_resumed_ledger(Arc::clone(&store), store, through_checkpoint).await;
}

/// The ledger's read model in another database than the events: events in
/// PostgreSQL, documents and checkpoint in a SQLite file (`events_in_pg`),
/// or the reverse. The engine is killed mid-load three times; every event
/// is counted once.
async fn engine_killed_with_reads_elsewhere(events_in_pg: bool) {
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::start_durable)
        .await
        .unwrap()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other.db").to_str().unwrap().to_owned();
    let config = server.connection_string();
    let schema = unique_schema("reads_elsewhere");
    let sqlite = vec![String::from("sqlite"), file.clone()];
    let postgres = vec![String::from("postgres"), config.clone(), schema.clone()];
    let (events_args, read_args) = if events_in_pg {
        (postgres, sqlite)
    } else {
        (sqlite, postgres)
    };
    let mut args = events_args;
    args.push(String::from("read"));
    args.extend(read_args);
    let open = || async {
        let pg: Arc<dyn Store> = Arc::new(
            PostgresStore::connect(&config, PostgresOptions::new().schema(schema.as_str()))
                .await
                .unwrap(),
        );
        let lite: Arc<dyn Store> = Arc::new(SqliteStore::open(&file).unwrap());
        if events_in_pg { (pg, lite) } else { (lite, pg) }
    };
    let mut through_checkpoint = 0;
    for _ in 0..KILLS {
        let run = args.clone();
        let reported = tokio::task::spawn_blocking(move || {
            run_engine_and_kill(&run.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        let (store, read) = open().await;
        settle(&*store, &*read).await;
        through_checkpoint = check_saved_ledger(&*store, &*read, reported).await;
        // The events' own database holds no read model at all.
        assert_eq!(
            store.load_checkpoint(CrashLedger::NAME).await.unwrap(),
            None
        );
    }
    let (store, read) = open().await;
    check_resumed_ledger(store, read, through_checkpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_events_with_a_sqlite_read_model_survive_kills() {
    engine_killed_with_reads_elsewhere(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_events_with_a_postgres_read_model_survive_kills() {
    engine_killed_with_reads_elsewhere(false).await;
}
