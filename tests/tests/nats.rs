//! The read side over NATS JetStream, in one process: the relay publishes
//! the event store's log to a stream, read sides consume it with durable
//! consumers. Each test starts a server of its own (`tests/src/nats.rs`).
//!
//! The fault tests, with processes killed and servers stopped, are in
//! `nats_faults.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use cqrs_core::nats::{JetStream, JetStreamOptions, decode_token, encode_token};
use cqrs_core::prelude::*;
use cqrs_core::store::{CheckpointStore, LogFilter, SqliteStore, Store};
use cqrs_core::subscription::{LeaseOptions, RelayOptions};
use cqrs_core::{Documents, Error, ProjectionStatus, ReadSide, Receipt, RunState, replay};
use cqrs_examples::bank::*;
use cqrs_tests::nats::TestNats;

const PATIENCE: Duration = Duration::from_secs(20);

/// Deposits per account, a second projection of the bank's events, for a
/// second read side on the same stream.
#[derive(Projection, Default, Debug)]
#[projection(name = "deposit_counts", events(MoneyDeposited))]
struct DepositCounts {
    #[document]
    counts: Documents<u64>,
}

impl Project<MoneyDeposited> for DepositCounts {
    fn project(&mut self, e: &Envelope<MoneyDeposited>) {
        *self.counts.entry(e.aggregate_id()).or_default() += 1;
    }
}

#[derive(Query, Deserialize, Debug)]
#[query(projection = DepositCounts, output = BTreeMap<String, u64>)]
struct AllDepositCounts;

impl Answer<AllDepositCounts> for DepositCounts {
    fn answer(&self, _: &AllDepositCounts) -> BTreeMap<String, u64> {
        self.counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

async fn jetstream(nats: &TestNats) -> JetStream {
    JetStream::connect(&nats.url(), JetStreamOptions::new())
        .await
        .unwrap()
}

/// A write side on a SQLite file with a relay to `nats`.
async fn write_side(dir: &std::path::Path, nats: &TestNats) -> Engine {
    Engine::builder()
        .store(SqliteStore::open(dir.join("events.db")).unwrap())
        .services(BankServices::default())
        .relay("relay", jetstream(nats).await.sink(), RelayOptions::new())
        .build()
        .await
        .unwrap()
}

/// A read side named `name` running `projection` into `read`.
async fn read_side(
    nats: &TestNats,
    name: &str,
    projection: &str,
    read: impl CheckpointStore,
) -> ReadSide {
    ReadSide::builder()
        .source(jetstream(nats).await.source(name))
        .projections([projection])
        .read_store(read)
        .lease(LeaseOptions::new().ttl(Duration::from_millis(1_000)))
        .build()
        .await
        .unwrap()
}

/// Opens `accounts` accounts and deposits into each `rounds` times.
async fn deposits(engine: &Engine, accounts: &[&str], rounds: u64) -> Receipt {
    let mut last = None;
    for account in accounts {
        engine
            .execute(OpenAccount {
                account: (*account).to_owned(),
                owner: format!("owner of {account}"),
            })
            .await
            .unwrap();
        for r in 0..rounds {
            last = Some(
                engine
                    .execute(Deposit {
                        account: (*account).to_owned(),
                        amount: r + 1,
                    })
                    .await
                    .unwrap(),
            );
        }
    }
    last.unwrap()
}

/// Waits until the relay has published everything the store holds.
async fn relayed(engine: &Engine) -> u64 {
    let head = engine.store().head().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = &engine.relays()[0];
        if status.position >= head {
            return head;
        }
        assert!(Instant::now() < deadline, "relay stuck: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the status of `projection` is one `pick` accepts.
async fn status_until(
    reader: &ReadSide,
    projection: &str,
    pick: impl Fn(&ProjectionStatus) -> bool,
) -> ProjectionStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = reader.projection_status(projection).unwrap();
        if pick(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "never reached: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stream(nats: &TestNats) -> jetstream::stream::Stream {
    let client = async_nats::connect(nats.url()).await.unwrap();
    jetstream::new(client).get_stream("CQRS").await.unwrap()
}

async fn balances(store: &dyn Store) -> BTreeMap<String, AccountSummary> {
    let replayed: Balances = replay(store).await.unwrap();
    replayed.answer(&AllAccounts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_read_side_reads_its_writes_through_jetstream() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let writer = write_side(dir.path(), &nats).await;
    let reader = read_side(&nats, "reads", "balances", MemoryStore::new()).await;
    let receipt = deposits(&writer, &["a", "b", "c"], 20).await;
    // The receipt travels as JSON, as it would between processes.
    let receipt: Receipt = serde_json::from_str(&serde_json::to_string(&receipt).unwrap()).unwrap();
    let view = reader
        .query(AllAccounts)
        .after(&receipt)
        .timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(view, balances(writer.store().as_ref()).await);

    let head = relayed(&writer).await;
    let relay = &writer.relays()[0];
    assert_eq!(relay.name, "relay");
    assert_eq!((relay.position, relay.head, relay.lag()), (head, head, 0));
    assert_eq!(relay.state, RunState::Live);
    assert_eq!(relay.last_error, None);

    let info = stream(&nats).await.get_info().await.unwrap().state.clone();
    assert_eq!(info.messages, head, "one message per event");
    let status = status_until(&reader, "balances", |s| {
        s.source_sequence == Some(info.last_sequence)
    })
    .await;
    assert_eq!((status.position, status.head), (head, head));
    assert_eq!(status.state, RunState::Live);
    assert!(status.durable);
}

/// Stream ids and event names with characters NATS gives a meaning to (or
/// refuses) in subjects are encoded, one token each, and come back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_ids_nats_does_not_allow_in_subjects_are_encoded() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let writer = write_side(dir.path(), &nats).await;
    let reader = read_side(&nats, "reads", "balances", MemoryStore::new()).await;
    let odd = ["acc.1", "a b", "x*>y", "é-1"];
    deposits(&writer, &odd, 1).await;
    // The trace context travels too, as a `traceparent` header.
    let traced = Deposit {
        account: "a b".into(),
        amount: 1,
    };
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let receipt = writer
        .execute_with(traced, Metadata::new().traceparent(parent))
        .await
        .unwrap();
    let view = reader
        .query(AllAccounts)
        .after(&receipt)
        .timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(
        view.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut ids = odd.to_vec();
            ids.sort_unstable();
            ids
        },
        "the ids come back as written"
    );

    let stream = stream(&nats).await;
    let events = writer
        .store()
        .read_log(0, &LogFilter::all(), usize::MAX)
        .await
        .unwrap()
        .events;
    for (i, event) in events.iter().enumerate() {
        let message = stream.get_raw_message(i as u64 + 1).await.unwrap();
        let tokens: Vec<&str> = message.subject.split('.').collect();
        assert_eq!(
            tokens,
            [
                "cqrs",
                "account",
                &encode_token(event.stream.id.as_str()),
                &encode_token(&event.event_name),
            ],
            "one token per part"
        );
        assert_eq!(
            decode_token(tokens[2]).as_deref(),
            Some(event.stream.id.as_str())
        );
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(
            header("Nats-Msg-Id"),
            Some(event.event_id.hyphenated().to_string())
        );
        assert_eq!(header("Cqrs-Position"), Some(event.position.to_string()));
        assert_eq!(header("Cqrs-Version"), Some(event.version.to_string()));
        assert_eq!(header("Cqrs-Event").as_deref(), Some(&*event.event_name));
        assert_eq!(
            header("Cqrs-Schema-Version"),
            Some(event.schema_version.to_string())
        );
        assert_eq!(
            header("Cqrs-Correlation-Id"),
            event
                .metadata
                .correlation_id
                .map(|id| id.hyphenated().to_string())
        );
        assert!(header("Cqrs-Timestamp").is_some());
        assert_eq!(header("traceparent"), event.metadata.traceparent);
        assert_eq!(&message.payload[..], &event.payload[..], "the stored JSON");
    }
    assert_eq!(
        events.last().unwrap().metadata.traceparent.as_deref(),
        Some(parent)
    );
    // A subject filter finds an encoded id.
    assert_eq!(encode_token("acc.1"), "acc%2E1");
    assert_eq!(encode_token("x*>y"), "x%2A%3Ey");
}

/// An event published again (a relay's in-flight publishes after it lost
/// its lease, say) is dropped by JetStream's dedup window on its event id;
/// a relay whose checkpoint was lost resumes from the stream's last
/// position instead of publishing everything again. No read model counts
/// an event twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_again_are_stored_once() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let writer = write_side(dir.path(), &nats).await;
    let receipt = deposits(&writer, &["a", "b"], 10).await;
    let head = relayed(&writer).await;
    writer.stop().await;
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    store.save_checkpoint("relay", 0).await.unwrap();
    drop(store);

    let writer = write_side(dir.path(), &nats).await;
    relayed(&writer).await;
    let state = stream(&nats).await.get_info().await.unwrap().state.clone();
    assert_eq!((state.messages, state.last_sequence), (head, head));
    for sequence in [1, 5, head] {
        let ack = publish_forged(
            &nats,
            Forged {
                model: Some(sequence),
                same_id: true,
                ..Forged::copy()
            },
        )
        .await;
        assert!(ack.duplicate, "message {sequence} dropped as a duplicate");
    }
    let state = stream(&nats).await.get_info().await.unwrap().state.clone();
    assert_eq!((state.messages, state.last_sequence), (head, head));

    let reader = read_side(&nats, "reads", "balances", MemoryStore::new()).await;
    let view = reader
        .query(AllAccounts)
        .after(&receipt)
        .timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(view, balances(writer.store().as_ref()).await);
    assert_eq!(view["a"].movements, 11, "each event applied once");
}

/// Two read sides with different projections and read stores consume one
/// stream, each with its own durable consumer and checkpoint; one rebuilds
/// from the stream's start while the other carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_read_sides_consume_one_stream_and_rebuild_from_its_start() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let writer = write_side(dir.path(), &nats).await;
    let first = read_side(&nats, "money", "balances", MemoryStore::new()).await;
    let second = read_side(
        &nats,
        "counting",
        "deposit_counts",
        SqliteStore::open(dir.path().join("counts.db")).unwrap(),
    )
    .await;
    let receipt = deposits(&writer, &["a", "b", "c"], 7).await;
    let view = first
        .query(AllAccounts)
        .after(&receipt)
        .timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(view, balances(writer.store().as_ref()).await);
    let counts = second
        .query(AllDepositCounts)
        .after(&receipt)
        .timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(
        counts,
        [("a", 7), ("b", 7), ("c", 7)]
            .map(|(k, v)| (k.to_owned(), v))
            .into()
    );
    assert!(first.projection_status("deposit_counts").is_none());
    assert!(second.projection_status("balances").is_none());

    // One durable consumer each, named after the read side.
    let mut names = Vec::new();
    let mut listing = stream(&nats).await.consumer_names();
    while let Some(name) = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut listing), cx)
    })
    .await
    {
        names.push(name.unwrap());
    }
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].starts_with("counting_deposit_counts_"),
        "{names:?}"
    );
    assert!(names[1].starts_with("money_balances_"), "{names:?}");

    // A rebuild replays the stream from its start, into a fresh state.
    let rebuild = second.rebuild("deposit_counts").await.unwrap();
    let done = rebuild.finished().await.unwrap();
    assert_eq!(done.position, writer.store().head().await.unwrap());
    let after = second
        .query(AllDepositCounts)
        .after(&receipt)
        .timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(after, counts, "rebuilt, not doubled");
    let saved = SqliteStore::open(dir.path().join("counts.db"))
        .unwrap()
        .load_read_model("deposit_counts")
        .await
        .unwrap();
    assert_eq!(saved.checkpoint, Some(done.position));

    // The other read side was not disturbed, and still follows.
    let more = writer
        .execute(Deposit {
            account: "a".into(),
            amount: 1,
        })
        .await
        .unwrap();
    let view = first
        .query(AllAccounts)
        .after(&more)
        .timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(view, balances(writer.store().as_ref()).await);
}

/// A read side that would start after events the stream no longer holds
/// (retention, here a purge) stops with an error naming the first missing
/// position; it never starts silently from the middle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_side_after_retention_names_the_first_missing_position() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let writer = write_side(dir.path(), &nats).await;
    let receipt = deposits(&writer, &["a", "b"], 10).await;
    relayed(&writer).await;
    // Messages 1 to 9 are gone; message 10 carries position 10.
    stream(&nats).await.purge().sequence(10).await.unwrap();

    let reader = read_side(&nats, "late", "balances", MemoryStore::new()).await;
    let status = status_until(&reader, "balances", |s| {
        matches!(s.state, RunState::Failed(_))
    })
    .await;
    let RunState::Failed(reason) = &status.state else {
        unreachable!()
    };
    assert!(
        reason.contains("no longer holds the events from position 1 through position 9"),
        "{reason}"
    );
    assert_eq!(status.position, 0, "nothing applied from the middle");
    let waited = Instant::now();
    let refused = reader
        .query(AllAccounts)
        .after(&receipt)
        .timeout(PATIENCE)
        .await;
    assert!(
        matches!(refused, Err(Error::ProjectionFailed { .. })),
        "{refused:?}"
    );
    assert!(waited.elapsed() < Duration::from_secs(5), "refused at once");
}

/// A message made from one on the stream, with changes.
struct Forged {
    /// The sequence of the message copied (`None`: the last).
    model: Option<u64>,
    /// Keeps its message id (otherwise a new one).
    same_id: bool,
    position: Option<u64>,
    previous: Option<u64>,
    payload: Option<&'static str>,
    headers: bool,
}

impl Forged {
    fn copy() -> Self {
        Self {
            model: None,
            same_id: false,
            position: None,
            previous: None,
            payload: None,
            headers: true,
        }
    }
}

/// Publishes a message made as `forged` says.
async fn publish_forged(nats: &TestNats, forged: Forged) -> jetstream::publish::PublishAck {
    let mut stream = stream(nats).await;
    let last = stream.info().await.unwrap().state.last_sequence;
    let model = stream
        .get_raw_message(forged.model.unwrap_or(last))
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    if forged.headers {
        for (name, values) in model.headers.iter() {
            let name: &str = name.as_ref();
            if !name.starts_with("Cqrs-") && name != "Nats-Msg-Id" {
                continue;
            }
            for value in values {
                headers.append(name, value.as_str());
            }
        }
        if !forged.same_id {
            headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
        }
        if let Some(position) = forged.position {
            headers.insert("Cqrs-Position", position.to_string().as_str());
        }
        if let Some(previous) = forged.previous {
            headers.insert("Cqrs-Previous", previous.to_string().as_str());
        }
    }
    let payload: Vec<u8> = match forged.payload {
        Some(text) => text.as_bytes().to_vec(),
        None => model.payload.to_vec(),
    };
    let client = async_nats::connect(nats.url()).await.unwrap();
    jetstream::new(client)
        .publish_with_headers(model.subject.to_string(), headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap()
}

/// Bad input on the stream stops the consumer at it, with a clear status:
/// everything before it is applied and kept, nothing after it is skipped
/// to, and waiting queries fail at once.
async fn bad_message_stops_the_read_side(forged: Forged, expected: &str) {
    let Some(nats) = TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let writer = write_side(dir.path(), &nats).await;
    let receipt = deposits(&writer, &["a", "b"], 5).await;
    let head = relayed(&writer).await;
    let ack = publish_forged(&nats, forged).await;
    assert_eq!(ack.sequence, head + 1);

    let read_db = dir.path().join("reads.db");
    let reader = read_side(
        &nats,
        "reads",
        "balances",
        SqliteStore::open(&read_db).unwrap(),
    )
    .await;
    let status = status_until(&reader, "balances", |s| {
        matches!(s.state, RunState::Failed(_))
    })
    .await;
    let RunState::Failed(reason) = &status.state else {
        unreachable!()
    };
    assert!(reason.contains(expected), "{reason}");
    assert_eq!(status.position, head, "everything before it applied");
    let saved = SqliteStore::open(&read_db)
        .unwrap()
        .load_read_model("balances")
        .await
        .unwrap();
    assert_eq!(saved.checkpoint, Some(head), "and kept");
    let view = reader.query(AllAccounts).await.unwrap();
    assert_eq!(view, balances(writer.store().as_ref()).await);
    let waited = Instant::now();
    let refused = reader
        .query(AllAccounts)
        .at_least(head + 1)
        .timeout(PATIENCE)
        .await;
    assert!(
        matches!(refused, Err(Error::ProjectionFailed { .. })),
        "{refused:?}"
    );
    assert!(waited.elapsed() < Duration::from_secs(5), "refused at once");
    drop(receipt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_no_relay_published_stops_the_read_side() {
    bad_message_stops_the_read_side(
        Forged {
            payload: Some("hello"),
            headers: false,
            ..Forged::copy()
        },
        "(JetStream sequence 13) has no headers: the message was not published by a relay",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_does_not_decode_stops_the_read_side() {
    bad_message_stops_the_read_side(
        Forged {
            position: Some(13),
            previous: Some(12),
            payload: Some("{\"amount\": \"many\"}"),
            ..Forged::copy()
        },
        "position 13",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_that_goes_backwards_stops_the_read_side() {
    bad_message_stops_the_read_side(
        Forged {
            position: Some(3),
            previous: Some(2),
            ..Forged::copy()
        },
        "the stream went backwards: message 13 carries position 3, after position 12",
    )
    .await;
}

/// A read side has no event store to fall back on: built without a source,
/// it says so.
#[tokio::test]
async fn a_read_side_needs_a_source() {
    let refused = ReadSide::builder()
        .read_store(MemoryStore::new())
        .build()
        .await;
    assert!(matches!(refused, Err(Error::NoSource)), "{refused:?}");
}

/// The runner drops a read when the head moves or its lease changes hands,
/// and reads again: a read dropped while it gathered messages loses none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_dropped_while_it_gathers_loses_no_message() {
    use cqrs_core::subscription::Source;

    let Some(nats) = TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = write_side(dir.path(), &nats).await;
    let accounts: Vec<String> = (0..8).map(|a| format!("gather-{a}")).collect();
    let mut writers = tokio::task::JoinSet::new();
    for account in accounts {
        let engine = engine.clone();
        writers.spawn(async move {
            let account: &str = &account;
            deposits(&engine, &[account], 300).await;
        });
    }
    writers.join_all().await;
    let head = relayed(&engine).await;
    assert_eq!(head, 8 * 301);

    let source = std::sync::Arc::new(jetstream(&nats).await.source("gathering"));
    let mut feed = source
        .open("all", 0, LogFilter::all(), 4_096)
        .await
        .unwrap();
    let (mut position, mut dropped, mut reads) = (0, 0, 0);
    let deadline = Instant::now() + PATIENCE;
    while position < head {
        assert!(Instant::now() < deadline, "stuck at {position} of {head}");
        // Short enough to drop reads in the middle of their gathering.
        match tokio::time::timeout(Duration::from_micros(300), feed.next()).await {
            Err(_) => dropped += 1,
            Ok(slice) => {
                let slice = slice.unwrap_or_else(|e| panic!("after position {position}: {e}"));
                for event in &slice.events {
                    assert_eq!(event.position, position + 1, "a message was lost");
                    position = event.position;
                }
                assert_eq!(slice.through, position);
                feed.committed(position).await.unwrap();
                reads += 1;
            }
        }
    }
    assert!(dropped > 0, "no read was dropped");
    eprintln!("{head} events in {reads} reads, {dropped} reads dropped");
}

/// Messages the server delivered that never arrived (a fail-over with a
/// pull batch in flight) leave a gap the stream does not have: the read
/// side reads again from its position instead of stopping. Here another
/// client takes messages from the read side's consumer and drops them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_lost_in_delivery_are_read_again() {
    use cqrs_core::subscription::Source;

    async fn next_of<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
    }

    let Some(nats) = TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = write_side(dir.path(), &nats).await;
    deposits(&engine, &["lost-1", "lost-2"], 99).await;
    let head = relayed(&engine).await;

    let source = std::sync::Arc::new(jetstream(&nats).await.source("losing"));
    let mut feed = source.open("all", 0, LogFilter::all(), 16).await.unwrap();
    let first = feed.next().await.unwrap();
    let mut position = first.through;
    feed.committed(position).await.unwrap();

    let stream = stream(&nats).await;
    let name = {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let mut names = js.get_stream("CQRS").await.unwrap().consumer_names();
        let mut found = None;
        while let Some(name) = next_of(&mut names).await {
            let name = name.unwrap();
            if name.starts_with("losing_all_") {
                found = Some(name);
            }
        }
        found.expect("the feed's consumer")
    };
    let thief: jetstream::consumer::PullConsumer = stream.get_consumer(&name).await.unwrap();
    let mut taken = thief.fetch().max_messages(40).messages().await.unwrap();
    let mut stolen = 0;
    while let Some(message) = next_of(&mut taken).await {
        message.unwrap();
        stolen += 1;
    }
    assert!(stolen > 0, "nothing was taken from the consumer");

    let deadline = Instant::now() + PATIENCE;
    while position < head {
        assert!(Instant::now() < deadline, "stuck at {position} of {head}");
        match feed.next().await {
            Ok(slice) => {
                for event in &slice.events {
                    assert_eq!(event.position, position + 1, "a message was skipped");
                    position = event.position;
                }
                feed.committed(position).await.unwrap();
            }
            Err(e) => assert!(e.is_transient(), "the read side stopped: {e}"),
        }
    }
    eprintln!("{stolen} messages taken and dropped; all {head} read in order");
}
