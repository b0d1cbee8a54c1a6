//! Engine behaviour on a tiny domain: receipts, failures, snapshots, shutdown.

use std::time::Duration;

use crate::prelude::*;
use crate::store::{EventStore, ExpectedVersion, Snapshot, SnapshotStore};
use crate::{Error, NewEvent, RunState, StreamId, Timestamp};

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "unit.added")]
struct Added {
    n: u64,
}

#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Tally)]
struct Add {
    #[id]
    id: String,
    n: u64,
}

#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Tally)]
struct Nothing {
    #[id]
    id: String,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Aggregate, Default, Debug, Serialize, Deserialize)]
#[aggregate(name = "tally", events(Added), commands(Add, Nothing), error = Never, snapshot_every = 2)]
struct Tally {
    total: u64,
}

impl Apply<Added> for Tally {
    fn apply(&mut self, e: &Added) {
        self.total += e.n;
    }
}

impl Handle<Add> for Tally {
    fn handle(&self, c: &Add) -> Result<Events<Self>, Never> {
        Ok(events![Added { n: c.n }])
    }
}

impl Handle<Nothing> for Tally {
    fn handle(&self, _: &Nothing) -> Result<Events<Self>, Never> {
        Ok(events![])
    }
}

#[derive(Projection, Default, Debug)]
#[projection(name = "unit.sum", events(Added))]
struct Sum {
    total: u64,
}

impl Project<Added> for Sum {
    fn project(&mut self, e: &Envelope<Added>) {
        self.total += e.n;
    }
}

#[derive(Query, Deserialize, Debug)]
#[query(projection = Sum, output = u64)]
struct Total;

impl Answer<Total> for Sum {
    fn answer(&self, _: &Total) -> u64 {
        self.total
    }
}

/// Panics on 13, to show a broken projection stops alone.
#[derive(Projection, Default, Debug)]
#[projection(name = "unit.superstitious", events(Added))]
struct Superstitious {
    seen: u64,
}

impl Project<Added> for Superstitious {
    fn project(&mut self, e: &Envelope<Added>) {
        assert!(e.n != 13, "thirteen");
        self.seen += 1;
    }
}

#[derive(Query, Deserialize, Debug)]
#[query(projection = Superstitious, output = u64)]
struct Seen;

impl Answer<Seen> for Superstitious {
    fn answer(&self, _: &Seen) -> u64 {
        self.seen
    }
}

async fn engine(store: &MemoryStore) -> Engine {
    Engine::builder()
        .store(store.clone())
        .query_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap()
}

/// Event ids are UUIDv7 made from the event's own timestamp, so they sort
/// as the log does across milliseconds.
#[tokio::test]
async fn event_ids_are_time_ordered() {
    let store = MemoryStore::new();
    let app = engine(&store).await;
    for n in 0..3 {
        app.execute(Add {
            id: "t".into(),
            n: 1,
        })
        .await
        .unwrap();
        if n < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    let events = store
        .read_stream(&StreamId::new("tally", "t"), 1)
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    for pair in events.windows(2) {
        assert!(pair[0].event_id < pair[1].event_id, "{pair:?}");
    }
    for event in &events {
        assert_eq!(event.event_id.get_version_num(), 7);
        // The first 48 bits are the millisecond of the event's timestamp.
        assert_eq!(
            event.event_id.as_bytes()[..6],
            event.timestamp.event_id().as_bytes()[..6]
        );
    }
}

#[tokio::test]
async fn a_command_without_events_appends_nothing_and_does_not_wait() {
    let store = MemoryStore::new();
    let app = engine(&store).await;
    app.execute(Add {
        id: "t".into(),
        n: 1,
    })
    .await
    .unwrap();
    let r = app.execute(Nothing { id: "t".into() }).await.unwrap();
    assert_eq!((r.version, r.position, r.events), (1, None, 0));
    let none = app.execute(Nothing { id: "fresh".into() }).await.unwrap();
    assert_eq!(none.version, 0);
    // A receipt without a position answers at once, whatever the lag.
    app.query(Total)
        .after(&r)
        .timeout(Duration::from_millis(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_undecodable_event_is_a_typed_error_naming_where_it_is() {
    let store = MemoryStore::new();
    let app = engine(&store).await;
    let stream = StreamId::new("tally", "bad");
    let broken = NewEvent::new("unit.added", r#"{"n": "not a number"}"#);
    store
        .append(&stream, ExpectedVersion::Exact(0), vec![broken])
        .await
        .unwrap();

    let err = app
        .execute(Add {
            id: "bad".into(),
            n: 1,
        })
        .await
        .unwrap_err();
    let CommandError::Engine(Error::Decode(decode)) = &err else {
        panic!("expected a decode error: {err}")
    };
    let at = decode.at.as_ref().unwrap();
    assert_eq!(
        (at.stream.id.as_str(), at.version, at.position),
        ("bad", 1, 1)
    );
    assert!(
        err.to_string()
            .contains("stream tally/bad version 1 position 1"),
        "{err}"
    );

    // Other streams keep working; the projection that cannot read it stops there.
    let ok = app
        .execute(Add {
            id: "good".into(),
            n: 2,
        })
        .await
        .unwrap();
    let failed = app.query(Total).after(&ok).await.unwrap_err();
    assert!(
        matches!(
            failed,
            Error::ProjectionFailed {
                projection: "unit.sum",
                position: 0,
                ..
            }
        ),
        "{failed}"
    );
    let status = app.projection_status("unit.sum").unwrap();
    assert!(
        matches!(status.state, RunState::Failed(ref reason) if reason.contains("position 1")),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_panicking_projection_stops_alone() {
    let store = MemoryStore::new();
    let app = engine(&store).await;
    app.execute(Add {
        id: "x".into(),
        n: 1,
    })
    .await
    .unwrap();
    let r = app
        .execute(Add {
            id: "x".into(),
            n: 13,
        })
        .await
        .unwrap();
    let err = app.query(Seen).after(&r).await.unwrap_err();
    assert!(
        matches!(&err, Error::ProjectionFailed { reason, .. } if reason.contains("thirteen")),
        "{err}"
    );
    assert_eq!(app.query(Total).after(&r).await.unwrap(), 14);
    // Commands are unaffected.
    app.execute(Add {
        id: "x".into(),
        n: 1,
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_broken_snapshot_falls_back_to_replaying_the_stream() {
    let store = MemoryStore::new();
    let app = Engine::builder()
        .store(store.clone())
        .cache_capacity(0)
        .build()
        .await
        .unwrap();
    for _ in 0..3 {
        app.execute(Add {
            id: "s".into(),
            n: 1,
        })
        .await
        .unwrap();
    }
    let stream = StreamId::new("tally", "s");
    assert_eq!(
        store.load_snapshot(&stream).await.unwrap().unwrap().version,
        2
    );
    store
        .save_snapshot(
            &stream,
            Snapshot {
                version: 3,
                state: b"garbage".to_vec(),
                taken_at: Timestamp::now(),
            },
        )
        .await
        .unwrap();
    let r = app
        .execute(Add {
            id: "s".into(),
            n: 1,
        })
        .await
        .unwrap();
    assert_eq!(r.version, 4);
    assert_eq!(app.query(Total).after(&r).await.unwrap(), 4);
}

#[tokio::test]
async fn shutdown_stops_the_runners_but_not_commands() {
    let store = MemoryStore::new();
    let app = engine(&store).await;
    let r = app
        .execute(Add {
            id: "z".into(),
            n: 1,
        })
        .await
        .unwrap();
    app.query(Total).after(&r).await.unwrap();
    app.shutdown();
    let mut stopped = false;
    for _ in 0..100 {
        if app.projection_status("unit.sum").unwrap().state == RunState::Stopped {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stopped, "the runner reports it stopped");
    let r = app
        .execute(Add {
            id: "z".into(),
            n: 1,
        })
        .await
        .unwrap();
    let err = app
        .query(Total)
        .after(&r)
        .timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { .. } | Error::Shutdown),
        "{err}"
    );
}

#[test]
fn events_keep_their_order_however_many_there_are() {
    let added = |n| TallyEvent::from(Added { n });
    let mut events = Events::<Tally>::new();
    assert!(events.is_empty() && events.as_slice().is_empty());
    for n in 1..=3 {
        events.push(Added { n });
        let expected: Vec<_> = (1..=n).map(added).collect();
        assert_eq!(events.len() as u64, n);
        assert_eq!(events.as_slice(), expected.as_slice());
        assert_eq!(events.clone().into_vec(), expected);
        assert_eq!(events.clone().into_iter().collect::<Vec<_>>(), expected);
        assert_eq!(format!("{events:?}"), format!("{expected:?}"));
    }
    assert_eq!(
        events![Added { n: 1 }, Added { n: 2 }],
        Events::<Tally>::new()
            .with(Added { n: 1 })
            .with(Added { n: 2 })
    );
    assert_ne!(events![Added { n: 1 }], Events::<Tally>::new());
}

#[tokio::test]
async fn an_aggregate_the_registry_does_not_list_still_runs_commands() {
    let store = MemoryStore::new();
    let engine = Engine::builder()
        .store(store.clone())
        // Lists a projection only: `Tally` is used without being registered.
        .registry(crate::Registry::new().register::<Sum>())
        .without_projections()
        .build()
        .await
        .unwrap();
    for n in 1..=3 {
        let receipt = engine.execute(Add { id: "u".into(), n }).await.unwrap();
        assert_eq!(receipt.version, n);
    }
    let stored = store
        .read_stream(&StreamId::new("tally", "u"), 1)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
}

/// Every field of every span, as a subscriber saw them.
#[derive(Default)]
struct SpanFields(std::sync::Mutex<Vec<(String, String)>>);

struct Visit<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Visit<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

struct Recorder(std::sync::Arc<SpanFields>, std::sync::atomic::AtomicU64);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = self.0.0.lock().unwrap();
        fields.push((String::from("span"), span.metadata().name().to_owned()));
        span.record(&mut Visit(&mut fields));
        let id = self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::span::Id::from_u64(id + 1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Visit(&mut self.0.0.lock().unwrap()));
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// The `command` span carries the correlation id, the causation id and the
/// actor, so a trace ties a command to what caused it.
#[tokio::test(flavor = "current_thread")]
async fn the_command_span_carries_correlation_causation_and_actor() {
    let fields = std::sync::Arc::new(SpanFields::default());
    let recorder = Recorder(
        std::sync::Arc::clone(&fields),
        std::sync::atomic::AtomicU64::new(0),
    );
    let _guard = tracing::subscriber::set_default(recorder);
    let store = MemoryStore::new();
    let app = engine(&store).await;
    let correlation = uuid::Uuid::new_v4();
    let causation = uuid::Uuid::new_v4();
    app.execute_with(
        Add {
            id: "s".into(),
            n: 1,
        },
        Metadata::new()
            .correlation_id(correlation)
            .causation_id(causation)
            .actor("teller-7"),
    )
    .await
    .unwrap();
    let fields = fields.0.lock().unwrap().clone();
    let has = |name: &str, value: &str| fields.iter().any(|(n, v)| n == name && v == value);
    assert!(has("span", "command"), "{fields:?}");
    assert!(
        has("correlation_id", &correlation.to_string()),
        "{fields:?}"
    );
    assert!(has("causation_id", &causation.to_string()), "{fields:?}");
    assert!(has("actor", "teller-7"), "{fields:?}");
    assert!(has("outcome", "\"ok\""), "{fields:?}");
}

/// The derive finds out whether the domain error is `Serialize`.
#[test]
fn a_domain_error_is_json_only_when_it_is_serialize() {
    #[derive(Debug, thiserror::Error, Serialize)]
    #[error("closed")]
    struct Closed {
        since: u64,
    }
    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "door.shut")]
    struct Shut;
    #[derive(Aggregate, Default)]
    #[aggregate(name = "door", events(Shut), error = Closed)]
    struct Door;
    impl Apply<Shut> for Door {
        fn apply(&mut self, _: &Shut) {}
    }
    assert_eq!(
        <Door as crate::Aggregate>::error_json(&Closed { since: 3 }),
        Some(serde_json::json!({ "since": 3 }))
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Closed { since: 4 });
    assert_eq!(
        crate::__private::error_json::<Door>(&*boxed),
        Some(serde_json::json!({ "since": 4 }))
    );
    let other: Box<dyn std::error::Error + Send + Sync> = Box::new(std::io::Error::other("x"));
    assert_eq!(crate::__private::error_json::<Door>(&*other), None);
    // `Never` is not `Serialize`.
    assert_eq!(<Tally as crate::Aggregate>::error_json(&Never), None);
}
