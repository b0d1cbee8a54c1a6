//! The conformance cases: each takes a fresh store and checks one part of the
//! contract in `cqrs_core::store`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::store::{ExpectedVersion, LogFilter, Snapshot, Store};
use cqrs_core::subscription::Tail;
use cqrs_core::{
    DecodeErrorKind, Envelope, Metadata, NewEvent, RecordedEvent, StoreError, StreamId, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Long enough for the slowest store on a loaded 2-core machine; a hang
/// fails instead of blocking the suite.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// An event type implemented by hand (not derived), for the decode case.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Deposited {
    amount: u64,
}

impl cqrs_core::Event for Deposited {
    const NAME: &'static str = "deposited";
    const VERSION: u32 = 1;
}

pub(crate) fn event(name: &str, payload: serde_json::Value) -> NewEvent {
    raw_event(name, serde_json::to_vec(&payload).unwrap())
}

pub(crate) fn raw_event(name: &str, payload: Vec<u8>) -> NewEvent {
    NewEvent::new(name.to_owned(), payload)
}

/// The whole log, read in pages through `read_log`.
pub(crate) async fn whole_log(store: &dyn Store) -> Vec<Arc<RecordedEvent>> {
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

fn json_value(payload: &[u8]) -> serde_json::Value {
    serde_json::from_slice(payload).expect("payloads in these cases are JSON")
}

fn assert_same_event(stored: &RecordedEvent, written: &NewEvent) {
    assert_eq!(stored.event_id, written.event_id);
    assert_eq!(stored.event_name, written.event_name);
    assert_eq!(stored.schema_version, written.schema_version);
    assert_eq!(
        json_value(&stored.payload),
        json_value(&written.payload),
        "payloads differ"
    );
    assert_eq!(stored.metadata, written.metadata);
    assert_eq!(stored.timestamp, written.timestamp);
}

/// Versions 1..=n in order, positions strictly increasing.
fn assert_contiguous(events: &[Arc<RecordedEvent>]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1, "versions must be contiguous");
    }
    for pair in events.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions must increase"
        );
    }
}

pub(crate) async fn append_and_read(store: Arc<dyn Store>) {
    let a = StreamId::new("account", "a-1");
    let b = StreamId::new("account", "b-1");
    assert_eq!(store.head().await.unwrap(), 0);
    assert!(store.read_stream(&a, 1).await.unwrap().is_empty());

    let written = vec![
        event("opened", json!({"owner": "Ada"})),
        event("deposited", json!({"amount": 10})),
    ];
    let outcome = store
        .append(&a, ExpectedVersion::Exact(0), written.clone())
        .await
        .unwrap();
    assert_eq!(
        (
            outcome.version,
            outcome.first_position,
            outcome.last_position
        ),
        (2, 1, 2)
    );
    let stored = store.read_stream(&a, 1).await.unwrap();
    assert_eq!(stored.len(), 2);
    for (i, (s, w)) in stored.iter().zip(&written).enumerate() {
        assert_same_event(s, w);
        assert_eq!(*s.stream, a);
        assert_eq!(s.version, i as u64 + 1);
        assert_eq!(s.position, i as u64 + 1);
    }
    let from_two = store.read_stream(&a, 2).await.unwrap();
    assert_eq!(from_two.len(), 1);
    assert_eq!(from_two[0].version, 2);
    assert!(store.read_stream(&a, 3).await.unwrap().is_empty());

    let outcome = store
        .append(&b, ExpectedVersion::Any, vec![event("opened", json!({}))])
        .await
        .unwrap();
    assert_eq!(
        (
            outcome.version,
            outcome.first_position,
            outcome.last_position
        ),
        (1, 3, 3)
    );
    assert_eq!(store.head().await.unwrap(), 3);
    assert_eq!(*store.watch_head().borrow(), 3);
    let log = store.read_log(0, &LogFilter::all(), 100).await.unwrap();
    assert_eq!(log.through, 3);
    let positions: Vec<u64> = log.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, [1, 2, 3]);
    assert_eq!(*log.events[2].stream, b);
    let rest = store.read_log(3, &LogFilter::all(), 100).await.unwrap();
    assert!(rest.events.is_empty());
    assert_eq!(rest.through, 3);
}

pub(crate) async fn conflicts_are_typed(store: Arc<dyn Store>) {
    let s = StreamId::new("account", "c-1");
    store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            vec![event("opened", json!({}))],
        )
        .await
        .unwrap();
    for expected in [0, 5] {
        match store
            .append(
                &s,
                ExpectedVersion::Exact(expected),
                vec![event("x", json!({}))],
            )
            .await
        {
            Err(StoreError::Conflict {
                stream,
                expected: e,
                actual,
            }) => {
                assert_eq!(stream, s);
                assert_eq!(e, expected);
                assert_eq!(actual, 1);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(store.read_stream(&s, 1).await.unwrap().len(), 1);
    assert_eq!(store.head().await.unwrap(), 1);
    let outcome = store
        .append(
            &s,
            ExpectedVersion::Exact(1),
            vec![event("a", json!({})), event("b", json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(outcome.version, 3);
    let outcome = store
        .append(&s, ExpectedVersion::Any, vec![event("c", json!({}))])
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.last_position), (4, 4));
    assert_contiguous(&store.read_stream(&s, 1).await.unwrap());
}

pub(crate) async fn empty_append_is_rejected(store: Arc<dyn Store>) {
    let s = StreamId::new("account", "e-1");
    for expected in [ExpectedVersion::Exact(0), ExpectedVersion::Any] {
        match store.append(&s, expected, Vec::new()).await {
            Err(StoreError::InvalidAppend { stream, .. }) => assert_eq!(stream, s),
            other => panic!("expected InvalidAppend, got {other:?}"),
        }
    }
    assert!(store.read_stream(&s, 1).await.unwrap().is_empty());
    assert_eq!(store.head().await.unwrap(), 0);
}

/// Appends one event as writer `writer`, retrying on conflicts with the
/// version the conflict reports.
async fn append_retrying(store: &dyn Store, stream: &StreamId, writer: usize, seq: usize) -> u32 {
    let mut expected = ExpectedVersion::Exact(0);
    let mut conflicts = 0;
    loop {
        let e = event("counted", json!({"writer": writer, "seq": seq}));
        match store.append(stream, expected, vec![e]).await {
            Ok(_) => return conflicts,
            Err(StoreError::Conflict { actual, .. }) => {
                conflicts += 1;
                expected = ExpectedVersion::Exact(actual);
            }
            Err(e) => panic!("append failed: {e}"),
        }
    }
}

pub(crate) async fn sixteen_appenders_on_one_stream(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    const EACH: usize = 10;
    let s = StreamId::new("counter", "shared");
    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        let (store, s) = (Arc::clone(&store), s.clone());
        tasks.spawn(async move {
            for seq in 0..EACH {
                append_retrying(&*store, &s, writer, seq).await;
            }
        });
    }
    tokio::time::timeout(PATIENCE, tasks.join_all())
        .await
        .expect("appenders hang");
    let events = store.read_stream(&s, 1).await.unwrap();
    assert_eq!(events.len(), WRITERS * EACH, "lost or extra events");
    assert_contiguous(&events);
    let mut seen = HashSet::new();
    for e in &events {
        let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
        assert!(
            seen.insert((v["writer"].clone(), v["seq"].clone())),
            "duplicate {v}"
        );
    }
    let ids: HashSet<Uuid> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), events.len());
}

pub(crate) async fn sixteen_appenders_on_sixteen_streams(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    const EACH: usize = 20;
    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let s = StreamId::new("counter", format!("w-{writer}"));
            for seq in 0..EACH {
                let version = (seq * 2) as u64;
                let outcome = store
                    .append(
                        &s,
                        ExpectedVersion::Exact(version),
                        vec![event("one", json!({"seq": seq})), event("two", json!({}))],
                    )
                    .await
                    .expect("no one else writes this stream");
                assert_eq!(outcome.version, version + 2);
                assert_eq!(outcome.last_position, outcome.first_position + 1);
            }
        });
    }
    tokio::time::timeout(PATIENCE, tasks.join_all())
        .await
        .expect("appenders hang");
    for writer in 0..WRITERS {
        let s = StreamId::new("counter", format!("w-{writer}"));
        let events = store.read_stream(&s, 1).await.unwrap();
        assert_eq!(events.len(), EACH * 2);
        assert_contiguous(&events);
    }
    let log = whole_log(&*store).await;
    assert_eq!(log.len(), WRITERS * EACH * 2);
    for pair in log.windows(2) {
        assert!(pair[0].position < pair[1].position);
    }
}

pub(crate) async fn tail_sees_every_event_once_under_eight_writers(store: Arc<dyn Store>) {
    const WRITERS: usize = 8;
    const APPENDS: usize = 25;
    // Writer w's append k carries (k % 3) + 1 events.
    let total: usize = WRITERS * (0..APPENDS).map(|k| k % 3 + 1).sum::<usize>();
    let mut tail = Tail::new(store.clone(), 0, LogFilter::all(), 7);
    let reader = tokio::spawn(async move {
        let mut seen: Vec<Arc<RecordedEvent>> = Vec::with_capacity(total);
        while seen.len() < total {
            let slice = tail.next().await.expect("tail failed");
            for e in slice.events {
                if let Some(last) = seen.last() {
                    assert!(
                        e.position > last.position,
                        "position {} after {}: skipped or duplicated",
                        e.position,
                        last.position
                    );
                }
                seen.push(e);
            }
            assert_eq!(tail.position(), slice.through);
        }
        seen
    });
    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            let s = StreamId::new("tailed", format!("w-{writer}"));
            for k in 0..APPENDS {
                let batch = (0..=k % 3)
                    .map(|i| event("tailed", json!({"k": k, "i": i})))
                    .collect();
                store.append(&s, ExpectedVersion::Any, batch).await.unwrap();
                if k % 5 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
    tokio::time::timeout(PATIENCE, writers.join_all())
        .await
        .expect("writers hang");
    let seen = tokio::time::timeout(PATIENCE, reader)
        .await
        .expect("the tail did not see every event")
        .unwrap();
    let stored = whole_log(&*store).await;
    assert_eq!(stored.len(), total);
    let seen: Vec<u64> = seen.iter().map(|e| e.position).collect();
    let stored: Vec<u64> = stored.iter().map(|e| e.position).collect();
    assert_eq!(seen, stored, "the tail must see exactly the stored log");
}

pub(crate) async fn log_filters_by_event_name_and_aggregate(store: Arc<dyn Store>) {
    let o1 = StreamId::new("order", "o-1");
    let o2 = StreamId::new("order", "o-2");
    let a1 = StreamId::new("account", "a-1");
    let append = |s: &StreamId, names: &[&str]| {
        let events = names.iter().map(|n| event(n, json!({}))).collect();
        let (store, s) = (Arc::clone(&store), s.clone());
        async move {
            store
                .append(&s, ExpectedVersion::Any, events)
                .await
                .unwrap()
        }
    };
    append(&o1, &["placed", "paid"]).await; // 1, 2
    append(&a1, &["opened", "deposited"]).await; // 3, 4
    append(&o2, &["placed"]).await; // 5
    append(&a1, &["placed"]).await; // 6: an account event of the same name

    let positions = |slice: &cqrs_core::store::LogSlice| -> Vec<u64> {
        slice.events.iter().map(|e| e.position).collect()
    };
    let placed = store
        .read_log(0, &LogFilter::events(["placed"]), 100)
        .await
        .unwrap();
    assert_eq!(positions(&placed), [1, 5, 6]);
    assert_eq!(placed.through, 6);
    let accounts = store
        .read_log(0, &LogFilter::all().aggregates(["account"]), 100)
        .await
        .unwrap();
    assert_eq!(positions(&accounts), [3, 4, 6]);
    let both = store
        .read_log(
            0,
            &LogFilter::events(["placed", "paid"]).aggregates(["order"]),
            100,
        )
        .await
        .unwrap();
    assert_eq!(positions(&both), [1, 2, 5]);
    assert_eq!(both.through, 6);
    let none = store
        .read_log(0, &LogFilter::events(["nothing"]), 100)
        .await
        .unwrap();
    assert!(none.events.is_empty());
    assert_eq!(none.through, 6);

    // Paging: a full page ends at its last event, and the next page goes on.
    let first = store
        .read_log(0, &LogFilter::events(["placed"]), 2)
        .await
        .unwrap();
    assert_eq!(positions(&first), [1, 5]);
    assert_eq!(first.through, 5);
    let second = store
        .read_log(first.through, &LogFilter::events(["placed"]), 2)
        .await
        .unwrap();
    assert_eq!(positions(&second), [6]);
    assert_eq!(second.through, 6);
    let mut after = 0;
    let mut paged = Vec::new();
    loop {
        let page = store.read_log(after, &LogFilter::all(), 2).await.unwrap();
        if page.through == after {
            break;
        }
        assert!(page.events.len() <= 2);
        paged.extend(positions(&page));
        after = page.through;
    }
    assert_eq!(paged, [1, 2, 3, 4, 5, 6]);
}

pub(crate) async fn snapshots_keep_the_newest(store: Arc<dyn Store>) {
    let s = StreamId::new("account", "snap");
    let other = StreamId::new("account", "other");
    assert_eq!(store.load_snapshot(&s).await.unwrap(), None);
    let snapshot = |version: u64, state: &[u8]| Snapshot {
        version,
        state: state.to_vec(),
        taken_at: Timestamp(1_700_000_000_000_000 + version as i64),
    };
    let v5 = snapshot(5, &[0, 159, 146, 150, 255]); // not UTF-8 on purpose
    store.save_snapshot(&s, v5.clone()).await.unwrap();
    assert_eq!(store.load_snapshot(&s).await.unwrap(), Some(v5.clone()));
    store
        .save_snapshot(&s, snapshot(3, b"older"))
        .await
        .unwrap();
    assert_eq!(
        store.load_snapshot(&s).await.unwrap(),
        Some(v5),
        "an older snapshot must not replace a newer one"
    );
    let v8 = snapshot(8, br#"{"balance":8}"#);
    store.save_snapshot(&s, v8.clone()).await.unwrap();
    assert_eq!(store.load_snapshot(&s).await.unwrap(), Some(v8));
    assert_eq!(store.load_snapshot(&other).await.unwrap(), None);
}

pub(crate) async fn checkpoints_round_trip(store: Arc<dyn Store>) {
    assert_eq!(store.load_checkpoint("balances").await.unwrap(), None);
    store.save_checkpoint("balances", 5).await.unwrap();
    assert_eq!(store.load_checkpoint("balances").await.unwrap(), Some(5));
    store.save_checkpoint("balances", 9).await.unwrap();
    store.save_checkpoint("überblick", 2).await.unwrap();
    assert_eq!(store.load_checkpoint("balances").await.unwrap(), Some(9));
    assert_eq!(store.load_checkpoint("überblick").await.unwrap(), Some(2));
    // A rebuild starts again from zero.
    store.save_checkpoint("balances", 0).await.unwrap();
    assert_eq!(store.load_checkpoint("balances").await.unwrap(), Some(0));
}

pub(crate) async fn metadata_round_trips(store: Arc<dyn Store>) {
    let s = StreamId::new("account", "meta");
    let full = Metadata::new()
        .correlation_id(Uuid::new_v4())
        .causation_id(Uuid::new_v4())
        .actor("alice@example.com")
        .with("channel", "web")
        .with("clé", "valeur \"quoted\" \\ / \n ✓");
    let mut with_meta = event("opened", json!({}));
    with_meta.metadata = full;
    let bare = event("closed", json!({}));
    let written = vec![with_meta, bare];
    store
        .append(&s, ExpectedVersion::Exact(0), written.clone())
        .await
        .unwrap();
    let stored = store.read_stream(&s, 1).await.unwrap();
    let logged = store
        .read_log(0, &LogFilter::all(), 10)
        .await
        .unwrap()
        .events;
    for (w, (s, l)) in written.iter().zip(stored.iter().zip(&logged)) {
        assert_same_event(s, w);
        assert_eq!(s, l);
    }
}

pub(crate) async fn unicode_and_large_payloads(store: Arc<dyn Store>) {
    let s = StreamId::new("ünïcødé", "ストリーム/🚀 ١٢٣");
    let unicode = event(
        "événement.créé ✓",
        json!({"text": "héllo wörld — 你好 — مرحبا — 🎉👩‍👩‍👧", "escaped": "\"\\/\n\t"}),
    );
    // Spacing and key order may be normalised; the value may not change.
    let spaced = raw_event(
        "spaced",
        br#"{ "b" : 1,  "a" : [ 1, 2.50 ] , "a2":"x" }"#.to_vec(),
    );
    let big = event("big", json!({"blob": "x".repeat(1024 * 1024)}));
    assert!(big.payload.len() > 1024 * 1024);
    let written = vec![unicode, spaced, big];
    store
        .append(&s, ExpectedVersion::Exact(0), written.clone())
        .await
        .unwrap();
    let stored = store.read_stream(&s, 1).await.unwrap();
    assert_eq!(stored.len(), 3);
    for (st, w) in stored.iter().zip(&written) {
        assert_eq!(*st.stream, s);
        assert_same_event(st, w);
    }
    let by_name = store
        .read_log(
            0,
            &LogFilter::events(["événement.créé ✓"]).aggregates(["ünïcødé"]),
            10,
        )
        .await
        .unwrap();
    assert_eq!(by_name.events.len(), 1);
    assert_same_event(&by_name.events[0], &written[0]);
}

pub(crate) async fn ten_thousand_events_read_back(store: Arc<dyn Store>) {
    const TOTAL: usize = 10_000;
    const BATCH: usize = 1_000;
    let s = StreamId::new("long", "stream");
    for b in 0..TOTAL / BATCH {
        let events = (0..BATCH)
            .map(|i| event("tick", json!({"n": b * BATCH + i})))
            .collect();
        let outcome = store
            .append(&s, ExpectedVersion::Exact((b * BATCH) as u64), events)
            .await
            .unwrap();
        assert_eq!(outcome.version, ((b + 1) * BATCH) as u64);
    }
    let events = store.read_stream(&s, 1).await.unwrap();
    assert_eq!(events.len(), TOTAL);
    assert_contiguous(&events);
    for (i, e) in events.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
        assert_eq!(v["n"], i);
    }
    let tail_part = store.read_stream(&s, 9_001).await.unwrap();
    assert_eq!(tail_part.len(), 1_000);
    assert_eq!(tail_part[0].version, 9_001);
    assert_eq!(whole_log(&*store).await.len(), TOTAL);
}

/// Keeps a copy of every event it consumes, and the record itself for some:
/// a record a projection still holds must not be refilled by a later read.
#[derive(Default)]
struct Copies {
    copies: Vec<RecordedEvent>,
    held: Vec<(usize, Arc<RecordedEvent>)>,
}

impl cqrs_core::Projection for Copies {
    const NAME: &'static str = "copies";
    const EVENTS: &'static [&'static str] = &["kept", "also-kept"];

    fn project_recorded(
        &mut self,
        record: &Arc<RecordedEvent>,
    ) -> Result<(), cqrs_core::DecodeError> {
        if self.copies.len().is_multiple_of(7) {
            self.held.push((self.copies.len(), Arc::clone(record)));
        }
        self.copies.push((**record).clone());
        Ok(())
    }
}

impl Copies {
    fn check_held(&self) {
        for (i, record) in &self.held {
            assert_eq!(**record, self.copies[*i], "a held record was overwritten");
        }
    }
}

/// A catch-up (`replay`, and a `Tail` handing its batches back) over many
/// pages, with dense and sparse stretches of wanted events and metadata of
/// every shape, sees exactly the events of the log, each once, whole.
pub(crate) async fn catch_up_reads_every_event_once_across_pages(store: Arc<dyn Store>) {
    const TOTAL: usize = 12_000;
    const BATCH: usize = 500;
    let correlation = Uuid::new_v4();
    let event_at = |i: usize| {
        // Dense, then sparse, then dense again.
        let name = match (i * 3 / TOTAL, i % 10) {
            (1, 0 | 1) | (0 | 2, 0..=5) => "kept",
            (0 | 2, 6) => "also-kept",
            _ => "other",
        };
        let mut e = event(name, json!({ "i": i }));
        e.metadata = match i % 4 {
            0 => Metadata::new(),
            1 => Metadata::new().correlation_id(correlation),
            2 => Metadata::new()
                .correlation_id(correlation)
                .causation_id(Uuid::new_v4())
                .actor(format!("actor \"{i}\" ü")),
            _ => Metadata::new()
                .actor("ada")
                .with("channel", format!("c{i}")),
        };
        e
    };
    for b in 0..TOTAL / BATCH {
        let s = StreamId::new("catch-up", format!("s-{}", b % 3));
        let events = (b * BATCH..(b + 1) * BATCH).map(event_at).collect();
        store
            .append(&s, ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
    let wanted: Vec<RecordedEvent> = whole_log(&*store)
        .await
        .iter()
        .filter(|e| <Copies as cqrs_core::Projection>::EVENTS.contains(&&*e.event_name))
        .map(|e| (**e).clone())
        .collect();
    assert!(wanted.len() > 5_000);

    let replayed = cqrs_core::replay::<Copies>(&*store).await.unwrap();
    replayed.check_held();
    assert!(replayed.copies == wanted, "replay differs from the log");

    let head = store.head().await.unwrap();
    let filter = LogFilter::events(<Copies as cqrs_core::Projection>::EVENTS.iter().copied());
    let mut tail = Tail::new(store.clone(), 0, filter, 300);
    let mut tailed = Copies::default();
    while tail.position() < head {
        let slice = tokio::time::timeout(PATIENCE, tail.next())
            .await
            .expect("the tail hangs")
            .unwrap();
        for record in &slice.events {
            cqrs_core::Projection::project_recorded(&mut tailed, record).unwrap();
        }
        tail.recycle(slice.events);
    }
    tailed.check_held();
    assert!(tailed.copies == wanted, "the tail differs from the log");
}

pub(crate) async fn undecodable_payload_is_a_typed_error(store: Arc<dyn Store>) {
    let bad = StreamId::new("account", "bad");
    let good = StreamId::new("account", "good");
    let named = |payload: &[u8]| raw_event(<Deposited as cqrs_core::Event>::NAME, payload.to_vec());
    store
        .append(
            &bad,
            ExpectedVersion::Exact(0),
            vec![named(br#"{"amount":1}"#), named(br#"{"amount":"lots"}"#)],
        )
        .await
        .unwrap();
    store
        .append(
            &good,
            ExpectedVersion::Exact(0),
            vec![named(br#"{"amount":2}"#)],
        )
        .await
        .unwrap();

    let records = store.read_stream(&bad, 1).await.unwrap();
    let first = Envelope::<Deposited>::decode(&records[0]).unwrap();
    assert_eq!(first.amount, 1);
    let error = Envelope::<Deposited>::decode(&records[1]).unwrap_err();
    assert!(
        matches!(&error.kind, DecodeErrorKind::Payload { name, version: 1, .. } if name == "deposited"),
        "{error:?}"
    );
    let at = error
        .at
        .as_ref()
        .expect("the error says where the event is");
    assert_eq!(at.stream, bad);
    assert_eq!(at.version, 2);
    assert_eq!(at.position, records[1].position);
    let text = error.to_string();
    assert!(
        text.contains("account/bad") && text.contains("version 2"),
        "{text}"
    );
    assert!(
        text.contains(&format!("position {}", records[1].position)),
        "{text}"
    );

    // The other stream, and the store, keep working.
    let good_records = store.read_stream(&good, 1).await.unwrap();
    assert_eq!(
        Envelope::<Deposited>::decode(&good_records[0])
            .unwrap()
            .amount,
        2
    );
    store
        .append(
            &good,
            ExpectedVersion::Exact(1),
            vec![named(br#"{"amount":3}"#)],
        )
        .await
        .unwrap();
    let log = whole_log(&*store).await;
    assert_eq!(log.len(), 4);
    let decoded: Vec<_> = log
        .iter()
        .filter(|r| *r.stream == good)
        .map(|r| Envelope::<Deposited>::decode(r).unwrap().amount)
        .collect();
    assert_eq!(decoded, [2, 3]);
}

pub(crate) async fn watch_head_follows_appends(store: Arc<dyn Store>) {
    let mut head = store.watch_head();
    assert_eq!(*head.borrow_and_update(), 0);
    let s = StreamId::new("account", "watched");
    let mut expected = BTreeMap::new();
    for round in 0..3u64 {
        let outcome = store
            .append(
                &s,
                ExpectedVersion::Exact(round),
                vec![event("tick", json!({}))],
            )
            .await
            .unwrap();
        tokio::time::timeout(PATIENCE, async {
            while *head.borrow_and_update() < outcome.last_position {
                head.changed().await.unwrap();
            }
        })
        .await
        .expect("watch_head did not move");
        expected.insert(round, outcome.last_position);
        assert_eq!(store.head().await.unwrap(), outcome.last_position);
    }
    assert_eq!(*head.borrow(), expected[&2]);
}

/// Text of `len` characters drawn from letters, digits and a few
/// multi-byte characters, differing from run to run: nothing a database
/// could compress into a smaller index entry.
pub(crate) fn random_text(len: usize) -> String {
    const ALPHABET: &[char] = &[
        'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r',
        's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J',
        'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', '0', '1',
        '2', '3', '4', '5', '6', '7', '8', '9', 'é', 'ß', 'ж', '中', '🚀', '-', '_', ' ',
    ];
    let mut state = Uuid::new_v4().as_u128() as u64 | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize]
        })
        .collect()
}

/// Text of exactly `bytes` bytes of [`random_text`]'s characters.
fn random_bytes(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes);
    for c in random_text(bytes).chars() {
        if text.len() + c.len_utf8() > bytes {
            break;
        }
        text.push(c);
    }
    while text.len() < bytes {
        text.push('x');
    }
    text
}

/// One rule for stream ids on every store (`StreamId::check`): an empty
/// part, a control character or more than `StreamId::MAX_LEN` bytes is
/// refused before any I/O with a typed error whose message shows a long id
/// shortened, on append and on read; parts of exactly the maximum length,
/// and random, are stored and read back.
pub(crate) async fn stream_ids_follow_one_rule(store: Arc<dyn Store>) {
    use cqrs_core::{StreamIdPart, StreamIdRule};
    let long = random_text(10_000);
    let cases = [
        (
            StreamId::new("account", ""),
            StreamIdPart::Id,
            StreamIdRule::Empty,
        ),
        (
            StreamId::new("", "a-1"),
            StreamIdPart::Aggregate,
            StreamIdRule::Empty,
        ),
        (
            StreamId::new("account", "a\0b"),
            StreamIdPart::Id,
            StreamIdRule::ControlCharacter { code: 0, at: 1 },
        ),
        (
            StreamId::new("account", "line\nbreak"),
            StreamIdPart::Id,
            StreamIdRule::ControlCharacter { code: 10, at: 4 },
        ),
        (
            StreamId::new("acc\u{7f}ount", "a-1"),
            StreamIdPart::Aggregate,
            StreamIdRule::ControlCharacter { code: 0x7f, at: 3 },
        ),
        (
            StreamId::new("account", long.clone()),
            StreamIdPart::Id,
            StreamIdRule::TooLong { len: long.len() },
        ),
        (
            StreamId::new("account", "x".repeat(StreamId::MAX_LEN + 1)),
            StreamIdPart::Id,
            StreamIdRule::TooLong {
                len: StreamId::MAX_LEN + 1,
            },
        ),
    ];
    for (stream, part, rule) in cases {
        let check = |result: Result<(), StoreError>, what: &str| match result {
            Err(StoreError::InvalidStreamId(invalid)) => {
                assert_eq!((invalid.part, invalid.rule), (part, rule), "{what}");
                let message = invalid.to_string();
                assert!(message.len() < 400, "{what}: a long message: {message}");
                assert!(
                    !message.contains('\0') && !message.contains('\n'),
                    "{message}"
                );
            }
            other => panic!("{what} of {stream:?}: expected InvalidStreamId, got {other:?}"),
        };
        let appended = store
            .append(
                &stream,
                ExpectedVersion::Exact(0),
                vec![event("e", json!({}))],
            )
            .await
            .map(drop);
        check(appended, "append");
        check(store.read_stream(&stream, 1).await.map(drop), "read");
    }
    assert_eq!(store.head().await.unwrap(), 0, "nothing was stored");

    // At the limit, with incompressible text, and with every kind of
    // character the rule allows.
    let widest = StreamId::new(
        random_bytes(StreamId::MAX_LEN),
        random_bytes(StreamId::MAX_LEN),
    );
    let allowed = StreamId::new("a", " spaced / slashed ☃ 🚀 ");
    for stream in [widest, allowed] {
        let outcome = store
            .append(
                &stream,
                ExpectedVersion::Exact(0),
                vec![event("e", json!({}))],
            )
            .await
            .unwrap_or_else(|e| panic!("{stream}: {e}"));
        assert_eq!(outcome.version, 1);
        let stored = store.read_stream(&stream, 1).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(*stored[0].stream, stream);
        let conflict = store
            .append(
                &stream,
                ExpectedVersion::Exact(0),
                vec![event("e", json!({}))],
            )
            .await
            .unwrap_err();
        let message = conflict.to_string();
        assert!(message.len() < 400, "a long message: {message}");
    }
}
