//! Our side of the NATS JetStream figures, and their raw `async-nats`
//! baselines: the relay from a store to a stream, a remote read side
//! catching up from a stream, and the lag from a command's commit to its
//! visibility on a read side.
//!
//! Every task gets a stream of its own (`S<n>` on subjects `s<n>.>`, named
//! by the runner), made with `JetStream::create_stream` on both sides so
//! that its configuration is the one the relay uses.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::ContextBuilder;
use async_nats::jetstream::message::PublishMessage;
use cqrs_core::nats::{JetStream, JetStreamOptions, encode_token};
use cqrs_core::prelude::*;
use cqrs_core::store::{
    CheckpointStore, GlobalLog, LogFilter, PostgresOptions, PostgresStore, SqliteStore,
};
use cqrs_core::subscription::{Relay, RelayOptions};
use cqrs_core::{ReadSide, RecordedEvent, RunState};
use cqrs_examples::bank::{
    AccountOpened, AllAccounts, BalanceOf, BankServices, Deposit, MoneyDeposited, MoneyWithdrawn,
    OpenAccount,
};
use futures_core::Stream as _;
use tokio::sync::watch;

use crate::child::Report;
use crate::runner::Failure;

/// Publishes in flight at most, on the raw side and in the relay's
/// context (`JetStream::connect` asks for as many).
const IN_FLIGHT: usize = 16_384;

/// Events per batch of a read side, and per pull of the raw consumer.
const READ_BATCH: usize = 4096;

/// Accounts the lag figure's commands go to, round-robin.
const LAG_ACCOUNTS: usize = 100;

/// How long to wait for anything that should take a moment.
const PATIENCE: Duration = Duration::from_secs(120);

/// Runs the task `args` names (`nats-<task> ..`, see [`crate::child`]) on
/// a worker thread of the runtime, where the relay and the read sides run
/// theirs. On the thread of `block_on`, glibc's allocator pays for the
/// blocks that async-nats's connection task (on a worker) frees and this
/// thread allocated (`malloc_consolidate`): the raw publisher that builds
/// its messages in the loop took 30 to 50 % more CPU there.
pub(crate) async fn run(args: Vec<String>) -> Result<Report, Failure> {
    tokio::spawn(async move { task(&args).await })
        .await
        .map_err(|e| Failure(e.to_string()))?
}

async fn task(args: &[String]) -> Result<Report, Failure> {
    let text = |i: usize| -> Result<&str, Failure> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| Failure("missing argument".into()))
    };
    let number = |i: usize| -> Result<usize, Failure> {
        let arg = text(i)?;
        arg.parse()
            .map_err(|_| Failure(format!("`{arg}` is not a number")))
    };
    // The NATS servers' process ids, `1234,5678`: their CPU time is
    // reported with ours.
    let servers = |i: usize| -> Result<Vec<u32>, Failure> {
        Ok(text(i)?.split(',').filter_map(|p| p.parse().ok()).collect())
    };
    match text(0)? {
        // <url> <stream> <replicas> <store file> <servers>; `nats-fill`
        // keeps the stream.
        task @ ("nats-relay" | "nats-fill") => {
            let (url, stream, file, keep) = (text(1)?, text(2)?, text(4)?, task == "nats-fill");
            relay(url, stream, number(3)?, file, &servers(5)?, keep).await
        }
        // .. <prebuilt|read>
        "nats-publish" => {
            let (url, stream, file) = (text(1)?, text(2)?, text(4)?);
            publish(url, stream, number(3)?, file, &servers(5)?, text(6)?).await
        }
        // <url> <stream> <read store> <events> <servers>
        "nats-catchup" => {
            let events = number(4)? as u64;
            catch_up(text(1)?, text(2)?, text(3)?, events, &servers(5)?).await
        }
        // <url> <stream> <events> <servers> <ack|decode>
        "nats-consume" => {
            let (url, stream, events) = (text(1)?, text(2)?, number(3)? as u64);
            consume(url, stream, events, &servers(4)?, text(5)?).await
        }
        // <url> <stream> <dir> <commands/s> <seconds> <servers> <sqlite|memory>
        "nats-lag" => {
            let (url, stream, dir) = (text(1)?, text(2)?, text(3)?);
            let (rate, seconds) = (number(4)? as f64, number(5)? as f64);
            lag(url, stream, dir, (rate, seconds), &servers(6)?, text(7)?).await
        }
        other => Err(Failure(format!("unknown task `{other}`"))),
    }
}

/// The options both sides make stream `stream` with.
fn options(stream: &str, replicas: usize) -> JetStreamOptions {
    JetStreamOptions::new()
        .stream(stream)
        .subject_prefix(stream.to_lowercase())
        .replicas(replicas)
}

/// CPU time used so far by this process and by the NATS servers, in
/// seconds (from `/proc/<pid>/stat`, at 100 ticks per second).
#[derive(Clone, Copy, Debug)]
struct Cpu {
    own: f64,
    servers: f64,
}

impl Cpu {
    fn now(servers: &[u32]) -> Self {
        Self {
            own: cpu_seconds("self"),
            servers: servers.iter().map(|p| cpu_seconds(&p.to_string())).sum(),
        }
    }

    /// What was used since `self`, as report fields.
    fn since(self, servers: &[u32]) -> [(&'static str, f64); 2] {
        let now = Self::now(servers);
        [
            ("cpu_s", now.own - self.own),
            ("server_cpu_s", now.servers - self.servers),
        ]
    }
}

fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // After the command name in parentheses: field 3 (state) onwards;
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// A raw client of the servers at `url` (comma-separated).
async fn client(url: &str) -> Result<async_nats::Client, Failure> {
    let servers: Vec<&str> = url.split(',').collect();
    Ok(async_nats::ConnectOptions::new()
        .connect(servers.as_slice())
        .await?)
}

async fn delete_stream(url: &str, stream: &str) -> Result<(), Failure> {
    let context = async_nats::jetstream::new(client(url).await?);
    context.delete_stream(stream).await?;
    Ok(())
}

/// How many messages stream `stream` holds.
async fn stream_messages(url: &str, stream: &str) -> Result<u64, Failure> {
    let context = async_nats::jetstream::new(client(url).await?);
    let stream = context.get_stream(stream).await?;
    Ok(stream.cached_info().state.messages)
}

/// Relays the SQLite store `file` to a new stream `stream` with
/// `replicas` replicas, timing from the relay's start until it has
/// relayed the store's head. The stream is deleted afterwards, unless
/// `keep` (it then feeds the catch-up figure).
async fn relay(
    url: &str,
    stream: &str,
    replicas: usize,
    file: &str,
    servers: &[u32],
    keep: bool,
) -> Result<Report, Failure> {
    let store: Arc<dyn cqrs_core::store::Store> = Arc::new(SqliteStore::open(file)?);
    let head = store.head().await?;
    let js = JetStream::connect(url, options(stream, replicas)).await?;
    js.create_stream().await?;
    let (shutdown, stop) = watch::channel(false);
    let cpu = Cpu::now(servers);
    let started = Instant::now();
    // Its checkpoint is named after the stream: a fresh relay every time.
    let relay = Relay::start(
        format!("relay-{stream}"),
        store,
        Arc::new(js.sink()),
        RelayOptions::new(),
        stop,
    );
    loop {
        let status = relay.status();
        if let RunState::Failed(reason) = &status.state {
            return Err(Failure(format!("the relay failed: {reason}")));
        }
        if status.position >= head {
            break;
        }
        if started.elapsed() > PATIENCE {
            return Err(Failure(format!("the relay is stuck: {status:?}")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.since(servers);
    let _ = shutdown.send(true);
    relay.stopped(Duration::from_secs(5)).await;
    let messages = stream_messages(url, stream).await?;
    if messages != head {
        return Err(Failure(format!(
            "the stream holds {messages} messages, not the store's {head} events"
        )));
    }
    if !keep {
        delete_stream(url, stream).await?;
    }
    let mut report = vec![("seconds", seconds), ("events", head as f64)];
    report.extend(cpu);
    Ok(report)
}

/// The headers the relay gives `event`, which follows the event at
/// `previous` (as `cqrs_core::nats` writes them).
fn headers(event: &RecordedEvent, previous: u64) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::new();
    headers.insert("Cqrs-Position", event.position.to_string());
    headers.insert("Cqrs-Previous", previous.to_string());
    headers.insert("Cqrs-Stream-Type", event.stream.aggregate.as_ref());
    headers.insert("Cqrs-Stream-Id", event.stream.id.as_str());
    headers.insert("Cqrs-Version", event.version.to_string());
    headers.insert("Cqrs-Event", event.event_name.as_ref());
    headers.insert("Cqrs-Schema-Version", event.schema_version.to_string());
    headers.insert("Cqrs-Event-Id", event.event_id.hyphenated().to_string());
    headers.insert("Cqrs-Timestamp", event.timestamp.as_micros().to_string());
    if let Some(id) = event.metadata.correlation_id {
        headers.insert("Cqrs-Correlation-Id", id.hyphenated().to_string());
    }
    if let Some(id) = event.metadata.causation_id {
        headers.insert("Cqrs-Causation-Id", id.hyphenated().to_string());
    }
    if let Some(actor) = &event.metadata.actor {
        headers.insert("Cqrs-Actor", actor.as_str());
    }
    headers.insert("Cqrs-Metadata", serde_json::to_string(&event.metadata)?);
    Ok(headers)
}

/// The messages the relay publishes for `events`, the first of which
/// follows `previous` (position and id): same subjects, headers, payloads,
/// message ids and expected last ids.
fn messages(
    prefix: &str,
    events: &[Arc<RecordedEvent>],
    previous: &mut Option<(u64, String)>,
) -> Result<Vec<(String, PublishMessage)>, Failure> {
    let mut messages = Vec::with_capacity(events.len());
    for event in events {
        let id = event.event_id.hyphenated().to_string();
        let mut message = PublishMessage::build()
            .payload(event.payload.clone().into())
            .headers(headers(event, previous.as_ref().map_or(0, |(p, _)| *p))?)
            .message_id(&id);
        if let Some((_, last)) = previous.as_ref() {
            message = message.expected_last_message_id(last);
        }
        let subject = format!(
            "{prefix}.{}.{}.{}",
            encode_token(&event.stream.aggregate),
            encode_token(&event.stream.id),
            encode_token(&event.event_name)
        );
        messages.push((subject, message));
        *previous = Some((event.position, id));
    }
    Ok(messages)
}

/// Publishes with up to [`IN_FLIGHT`] acks outstanding, awaiting them in
/// order.
#[derive(Debug)]
struct Pipeline {
    context: async_nats::jetstream::Context,
    acks: VecDeque<async_nats::jetstream::context::PublishAckFuture>,
}

impl Pipeline {
    async fn send(&mut self, messages: Vec<(String, PublishMessage)>) -> Result<(), Failure> {
        for (subject, message) in messages {
            if self.acks.len() == IN_FLIGHT
                && let Some(ack) = self.acks.pop_front()
            {
                ack.await?;
            }
            self.acks
                .push_back(self.context.send_publish(subject, message).await?);
        }
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), Failure> {
        while let Some(ack) = self.acks.pop_front() {
            ack.await?;
        }
        Ok(())
    }
}

/// The raw baselines of [`relay`]: the messages the relay would publish
/// for the store `file`, published with `async-nats` alone, up to
/// [`IN_FLIGHT`] unacknowledged, acks awaited in order. `prebuilt`: read
/// from the store and built before the clock starts (the publishes
/// alone); `read`: read from the store, a page of 1,024 at a time, and
/// built inside the timed loop, as a relay must (a relay without
/// checkpoints, lease or batch boundaries: the ceiling of one on this
/// machine).
async fn publish(
    url: &str,
    stream: &str,
    replicas: usize,
    file: &str,
    servers: &[u32],
    mode: &str,
) -> Result<Report, Failure> {
    let inline = match mode {
        "prebuilt" => false,
        "read" => true,
        other => return Err(Failure(format!("unknown publish mode `{other}`"))),
    };
    let store = SqliteStore::open(file)?;
    let prefix = stream.to_lowercase();
    let mut previous = None;
    let mut prebuilt = Vec::new();
    if !inline {
        let mut after = 0;
        loop {
            let slice = store.read_log(after, &LogFilter::all(), 4096).await?;
            prebuilt.extend(messages(&prefix, &slice.events, &mut previous)?);
            if slice.through <= after {
                break;
            }
            after = slice.through;
        }
    }
    JetStream::connect(url, options(stream, replicas))
        .await?
        .create_stream()
        .await?;
    let mut pipeline = Pipeline {
        context: ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .max_ack_inflight(IN_FLIGHT)
            .build(client(url).await?),
        acks: VecDeque::with_capacity(IN_FLIGHT),
    };
    let cpu = Cpu::now(servers);
    let started = Instant::now();
    let mut events = prebuilt.len();
    if inline {
        let mut after = 0;
        loop {
            let slice = store.read_log(after, &LogFilter::all(), 1024).await?;
            events += slice.events.len();
            pipeline
                .send(messages(&prefix, &slice.events, &mut previous)?)
                .await?;
            if slice.through <= after {
                break;
            }
            after = slice.through;
        }
    } else {
        pipeline.send(prebuilt).await?;
    }
    pipeline.drain().await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.since(servers);
    let held = stream_messages(url, stream).await?;
    if held != events as u64 {
        return Err(Failure(format!(
            "the stream holds {held} messages, not the {events} published"
        )));
    }
    delete_stream(url, stream).await?;
    let mut report = vec![("seconds", seconds), ("events", events as f64)];
    report.extend(cpu);
    Ok(report)
}

/// Deletes every consumer of `stream` (what a catch-up sample left).
async fn delete_consumers(url: &str, stream: &str) -> Result<(), Failure> {
    let context = async_nats::jetstream::new(client(url).await?);
    let stream = context.get_stream(stream).await?;
    let mut names = stream.consumer_names();
    let mut all = Vec::new();
    while let Some(name) = poll_fn(|cx| Pin::new(&mut names).poll_next(cx)).await {
        all.push(name?);
    }
    for name in all {
        stream.delete_consumer(&name).await?;
    }
    Ok(())
}

/// Catches up a read side's `Balances` projection from stream `stream`,
/// which holds `events` relayed events, into the read store `read`
/// (`sqlite:<file>`, a fresh file; `pg:<connection>|<schema>`, a fresh
/// schema), timing from the read side's build until the projection
/// includes the last event.
async fn catch_up(
    url: &str,
    stream: &str,
    read: &str,
    events: u64,
    servers: &[u32],
) -> Result<Report, Failure> {
    let js = JetStream::connect(url, options(stream, 1)).await?;
    // Opened (and migrated) before the clock starts.
    let store: Arc<dyn CheckpointStore> = if let Some(file) = read.strip_prefix("sqlite:") {
        Arc::new(SqliteStore::open(file)?)
    } else if let Some(target) = read.strip_prefix("pg:") {
        let (connection, schema) = target
            .split_once('|')
            .ok_or_else(|| Failure("expected `pg:<connection>|<schema>`".into()))?;
        Arc::new(PostgresStore::connect(connection, PostgresOptions::new().schema(schema)).await?)
    } else {
        return Err(Failure(format!("unknown read store `{read}`")));
    };
    let cpu = Cpu::now(servers);
    let started = Instant::now();
    let reads = ReadSide::builder()
        .source(js.source("catchup"))
        .projections(["balances"])
        .shared_read_store(store)
        .projection_batch_size(READ_BATCH)
        .build()
        .await?;
    loop {
        let status = reads
            .projection_status("balances")
            .ok_or_else(|| Failure("`balances` is not running".into()))?;
        if let RunState::Failed(reason) = &status.state {
            return Err(Failure(format!("`balances` failed: {reason}")));
        }
        if status.position >= events {
            break;
        }
        if started.elapsed() > PATIENCE {
            return Err(Failure(format!("the read side is stuck: {status:?}")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.since(servers);
    let accounts = reads.query(AllAccounts).await?.len();
    reads.stop().await;
    delete_consumers(url, stream).await?;
    let mut report = vec![
        ("seconds", seconds),
        ("events", events as f64),
        ("accounts", accounts as f64),
    ];
    report.extend(cpu);
    Ok(report)
}

/// What any read side must take out of a relayed message before it can
/// project it: the headers `cqrs_core::nats` reads back (numbers, the
/// event id, the metadata's JSON) and the payload as the bank event it
/// names. Returns the event's position.
fn decode(message: &async_nats::jetstream::Message) -> Result<u64, Failure> {
    let headers = message
        .headers
        .as_ref()
        .ok_or_else(|| Failure("a message without headers".into()))?;
    let text = |name: &str| -> Result<&str, Failure> {
        headers
            .get(name)
            .map(|v| v.as_str())
            .ok_or_else(|| Failure(format!("a message without `{name}`")))
    };
    let number = |name: &str| -> Result<u64, Failure> {
        text(name)?
            .parse()
            .map_err(|_| Failure(format!("`{name}` is not a number")))
    };
    let position = number("Cqrs-Position")?;
    let numbers = [
        "Cqrs-Previous",
        "Cqrs-Version",
        "Cqrs-Schema-Version",
        "Cqrs-Timestamp",
    ];
    let mut check = 0u64;
    for name in numbers {
        check = check.wrapping_add(number(name)?);
    }
    let id = uuid::Uuid::try_parse(text("Cqrs-Event-Id")?)?;
    let metadata: cqrs_core::Metadata = serde_json::from_str(text("Cqrs-Metadata")?)?;
    let stream = (
        text("Cqrs-Stream-Type")?.len(),
        text("Cqrs-Stream-Id")?.len(),
    );
    let payload = &message.payload;
    let amount = match text("Cqrs-Event")? {
        n if n == <AccountOpened as Event>::NAME => {
            serde_json::from_slice::<AccountOpened>(payload)?
                .owner
                .len() as u64
        }
        n if n == <MoneyDeposited as Event>::NAME => {
            serde_json::from_slice::<MoneyDeposited>(payload)?.amount
        }
        n if n == <MoneyWithdrawn as Event>::NAME => {
            serde_json::from_slice::<MoneyWithdrawn>(payload)?.amount
        }
        other => {
            return Err(Failure(format!(
                "an event `{other}` the bench does not know"
            )));
        }
    };
    std::hint::black_box((check, id, metadata, stream, amount));
    Ok(position)
}

/// The raw baselines of [`catch_up`]: a durable pull consumer configured
/// as the read side's (acknowledging all up to a message, [`READ_BATCH`]
/// messages per pull), which reads every message of the stream and
/// acknowledges one per [`READ_BATCH`] and the last. `ack`: nothing else;
/// `decode`: each message is also [`decode`]d, as any read side must
/// (nothing is projected or stored: what a read side can reach at most).
async fn consume(
    url: &str,
    stream: &str,
    events: u64,
    servers: &[u32],
    mode: &str,
) -> Result<Report, Failure> {
    let decoding = match mode {
        "ack" => false,
        "decode" => true,
        other => return Err(Failure(format!("unknown consume mode `{other}`"))),
    };
    let context = async_nats::jetstream::new(client(url).await?);
    let handle = context.get_stream(stream).await?;
    let cpu = Cpu::now(servers);
    let started = Instant::now();
    let consumer = handle
        .create_consumer(pull::Config {
            durable_name: Some(String::from("raw")),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 100_000,
            inactive_threshold: Duration::from_secs(300),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(READ_BATCH)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await?;
    let (mut read, mut bytes) = (0u64, 0usize);
    while read < events {
        let message = poll_fn(|cx| Pin::new(&mut messages).poll_next(cx))
            .await
            .ok_or_else(|| Failure("the consumer's messages ended".into()))??;
        read += 1;
        bytes += message.payload.len();
        if decoding && decode(&message)? != read {
            return Err(Failure(format!("message {read} is not at position {read}")));
        }
        if read.is_multiple_of(READ_BATCH as u64) || read == events {
            message
                .ack()
                .await
                .map_err(|e| Failure(format!("cannot acknowledge: {e}")))?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.since(servers);
    drop(messages);
    delete_consumers(url, stream).await?;
    let mut report = vec![
        ("seconds", seconds),
        ("events", read as f64),
        ("bytes", bytes as f64),
    ];
    report.extend(cpu);
    Ok(report)
}

/// The lag from a command's commit to its visibility on a read side: a
/// write side on a SQLite file relays to stream `stream`; a read side in
/// this process keeps `Balances` in another SQLite file (`read` =
/// `sqlite`), or in memory (`memory`: what the read model's commit costs).
/// After a warm-up, `rate` deposits a second are sent for `seconds`, each
/// on its own task at its scheduled time (so a slow commit delays no
/// other), and each task times from its `execute` returning until a query
/// of the read side with its receipt answers.
async fn lag(
    url: &str,
    stream: &str,
    dir: &str,
    (rate, seconds): (f64, f64),
    servers: &[u32],
    read: &str,
) -> Result<Report, Failure> {
    let dir = std::path::Path::new(dir);
    let js = JetStream::connect(url, options(stream, 1)).await?;
    js.create_stream().await?;
    let engine = Engine::builder()
        .store(SqliteStore::open(dir.join("events.db"))?)
        .services(BankServices::default())
        .without_projections()
        .relay("relay", js.sink(), RelayOptions::new())
        .build()
        .await?;
    let read: Arc<dyn CheckpointStore> = match read {
        "sqlite" => Arc::new(SqliteStore::open(dir.join("read.db"))?),
        "memory" => Arc::new(MemoryStore::new()),
        other => return Err(Failure(format!("unknown read store `{other}`"))),
    };
    let reads = ReadSide::builder()
        .source(js.source("lag"))
        .projections(["balances"])
        .shared_read_store(read)
        .build()
        .await?;
    let ids: Arc<Vec<String>> =
        Arc::new((0..LAG_ACCOUNTS).map(crate::script::account_id).collect());
    let mut last = None;
    for id in ids.iter() {
        last = Some(
            engine
                .execute(OpenAccount {
                    account: id.clone(),
                    owner: String::from("lag"),
                })
                .await?,
        );
    }
    if let Some(receipt) = &last {
        reads
            .query(AllAccounts)
            .after(receipt)
            .timeout(PATIENCE)
            .await?;
    }
    // A second at the rate, not timed: every path has run before the
    // timed commands.
    let warm = schedule(&engine, &reads, &ids, rate, 1.0).await?;
    drop(warm);
    // When each event reaches the server: a plain subscriber on the
    // stream's subjects, which the server sends every stored message too.
    let mut subscriber = client(url)
        .await?
        .subscribe(format!("{}.>", stream.to_lowercase()))
        .await?;
    let arrivals = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let arrived = Arc::clone(&arrivals);
    let observer = tokio::spawn(async move {
        while let Some(message) = poll_fn(|cx| Pin::new(&mut subscriber).poll_next(cx)).await {
            let now = Instant::now();
            let position = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Cqrs-Position"))
                .and_then(|v| v.as_str().parse::<u64>().ok());
            if let Some(position) = position {
                arrived
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(position, now);
            }
        }
    });
    let cpu = Cpu::now(servers);
    let started = Instant::now();
    let commands = schedule(&engine, &reads, &ids, rate, seconds).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu.since(servers);
    observer.abort();
    engine.stop().await;
    reads.stop().await;
    let arrivals = arrivals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Commit to the server (the relay's part; negative when the relay was
    // faster than the command's task), and the server to the read model.
    let (mut lags, mut relayed, mut read) = (Vec::new(), Vec::new(), Vec::new());
    for command in &commands {
        lags.push(ms(command.visible - command.committed));
        if let Some(&at) = arrivals.get(&command.position) {
            relayed.push(ms_signed(at, command.committed));
            read.push(ms_signed(command.visible, at));
        }
    }
    if relayed.len() < commands.len() * 9 / 10 {
        return Err(Failure(format!(
            "the subscriber saw {} of {} events",
            relayed.len(),
            commands.len()
        )));
    }
    let mut report = vec![("seconds", elapsed), ("commands", lags.len() as f64)];
    for (names, values) in [
        (["p50_ms", "p90_ms", "p99_ms", "max_ms"], lags),
        (
            [
                "relay_p50_ms",
                "relay_p90_ms",
                "relay_p99_ms",
                "relay_max_ms",
            ],
            relayed,
        ),
        (
            ["read_p50_ms", "read_p90_ms", "read_p99_ms", "read_max_ms"],
            read,
        ),
    ] {
        let quantiles = quantiles(values, [0.5, 0.9, 0.99, 1.0]);
        report.extend(names.into_iter().zip(quantiles));
    }
    report.extend(cpu);
    Ok(report)
}

/// The `qs` quantiles of `values` (nearest rank).
fn quantiles<const N: usize>(mut values: Vec<f64>, qs: [f64; N]) -> [f64; N] {
    values.sort_by(f64::total_cmp);
    qs.map(|q| {
        let rank = (values.len() as f64 * q).ceil() as usize;
        values
            .get(rank.clamp(1, values.len().max(1)) - 1)
            .copied()
            .unwrap_or(f64::NAN)
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// `later - earlier` in ms, negative when `later` is earlier.
fn ms_signed(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => ms(d),
        None => -ms(earlier - later),
    }
}

/// One command of the lag figure.
#[derive(Debug)]
struct Timed {
    position: u64,
    /// When its `execute` returned.
    committed: Instant,
    /// When the read side's query with its receipt answered.
    visible: Instant,
}

/// Sends `rate` deposits a second for `seconds`.
async fn schedule(
    engine: &Engine,
    reads: &ReadSide,
    ids: &Arc<Vec<String>>,
    rate: f64,
    seconds: f64,
) -> Result<Vec<Timed>, Failure> {
    let total = (rate * seconds).round() as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // A late tick is sent at once: the schedule keeps its rate.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        ticks.tick().await;
        let (engine, reads, ids) = (engine.clone(), reads.clone(), Arc::clone(ids));
        tasks.spawn(async move {
            let account = ids[k % ids.len()].clone();
            let receipt = engine
                .execute(Deposit {
                    account: account.clone(),
                    amount: 1,
                })
                .await?;
            let committed = Instant::now();
            reads
                .query(BalanceOf { account })
                .after(&receipt)
                .timeout(PATIENCE)
                .await?;
            let visible = Instant::now();
            let position = receipt
                .position
                .ok_or_else(|| Failure("a deposit appended no event".into()))?;
            Ok::<_, Failure>(Timed {
                position,
                committed,
                visible,
            })
        });
    }
    let mut lags = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        lags.push(done.map_err(|e| Failure(e.to_string()))??);
    }
    Ok(lags)
}
