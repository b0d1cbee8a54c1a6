//! A panicking `Apply` or handler never reaches the caller of `execute`, on
//! every store (issue 14, item 6). A panic on a command's new events refuses
//! the command and stores nothing, so no projection sees the event and the
//! stream stays usable; a panic on a stored event while loading is a typed
//! error naming where the event is, for every command on that stream, and
//! the other streams go on.

use std::sync::Arc;

use cqrs_core::prelude::*;
use cqrs_core::store::{ExpectedVersion, Store};
use cqrs_core::{Error, EventLocation, NewEvent, PanicSite, Registry, StreamId};
use cqrs_tests::on_every_store;
use cqrs_tests::stores::TestStore;

/// Something was added.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "fragile.added")]
struct Added {
    n: u64,
}

/// Add `n`; 13 makes `Apply` panic.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Fragile)]
struct Add {
    #[id]
    id: String,
    n: u64,
}

/// Its handler panics.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Fragile)]
struct Explode {
    #[id]
    id: String,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Aggregate, Default, Debug)]
#[aggregate(name = "fragile", events(Added), commands(Add, Explode), error = Never)]
struct Fragile {
    total: u64,
}

impl Apply<Added> for Fragile {
    fn apply(&mut self, e: &Added) {
        assert_ne!(e.n, 13, "13 is unlucky");
        self.total += e.n;
    }
}

impl Handle<Add> for Fragile {
    fn handle(&self, c: &Add) -> Result<Events<Self>, Never> {
        Ok(events![Added { n: c.n }])
    }
}

impl Handle<Explode> for Fragile {
    fn handle(&self, _: &Explode) -> Result<Events<Self>, Never> {
        panic!("the handler gave up")
    }
}

/// The sum of every `Added` in the log.
#[derive(Projection, Default, Debug)]
#[projection(name = "fragile.sum", events(Added))]
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

async fn engine(store: &Arc<dyn Store>) -> Engine {
    let registry = Registry::new()
        .register::<Added>()
        .register::<Add>()
        .register::<Explode>()
        .register::<Fragile>()
        .register::<Sum>()
        .register::<Total>();
    Engine::builder()
        .shared_store(Arc::clone(store))
        .registry(registry)
        .build()
        .await
        .unwrap()
}

fn add(id: &str, n: u64) -> Add {
    Add { id: id.into(), n }
}

async fn a_panicking_apply_refuses_the_command_and_stores_nothing(test: TestStore) {
    let store = test.store;
    let app = engine(&store).await;
    app.execute(add("s", 1)).await.unwrap();
    let refused = app.execute(add("s", 13)).await.unwrap_err();
    match &refused {
        CommandError::Engine(Error::CommandPanicked {
            command,
            stream,
            site,
            message,
        }) => {
            assert_eq!(*command, "Add");
            assert_eq!(*stream, StreamId::new("fragile", "s"));
            assert_eq!(
                *site,
                PanicSite::Applying {
                    event: "fragile.added"
                }
            );
            assert!(message.contains("13 is unlucky"), "{message}");
        }
        other => panic!("expected CommandPanicked, got {other:?}"),
    }
    let text = refused.to_string();
    assert!(
        text.contains("fragile/s") && text.contains("nothing was stored"),
        "{text}"
    );
    let stream = StreamId::new("fragile", "s");
    assert_eq!(store.read_stream(&stream, 1).await.unwrap().len(), 1);
    assert_eq!(store.head().await.unwrap(), 1);

    // The stream goes on, in this engine and in a fresh one (no cache).
    assert_eq!(app.execute(add("s", 2)).await.unwrap().version, 2);
    let fresh = engine(&store).await;
    let receipt = fresh.execute(add("s", 3)).await.unwrap();
    assert_eq!(receipt.version, 3);
    // No projection ever saw the refused event.
    assert_eq!(fresh.query(Total).after(&receipt).await.unwrap(), 6);
    assert_eq!(app.query(Total).after(&receipt).await.unwrap(), 6);
}

async fn a_panicking_handler_refuses_the_command(test: TestStore) {
    let app = engine(&test.store).await;
    app.execute(add("h", 1)).await.unwrap();
    let refused = app.execute(Explode { id: "h".into() }).await.unwrap_err();
    assert!(
        matches!(
            &refused,
            CommandError::Engine(Error::CommandPanicked { site: PanicSite::Handler, message, .. })
                if message == "the handler gave up"
        ),
        "{refused:?}"
    );
    assert_eq!(test.store.head().await.unwrap(), 1);
    assert_eq!(app.execute(add("h", 1)).await.unwrap().version, 2);
}

async fn a_stored_event_that_panics_on_load_is_a_typed_error_naming_where_it_is(test: TestStore) {
    let store = test.store;
    let app = engine(&store).await;
    app.execute(add("bad", 1)).await.unwrap();
    app.execute(add("good", 1)).await.unwrap();
    // Written by an older build, a tool, or by hand: `Apply` panics on it.
    let stream = StreamId::new("fragile", "bad");
    let outcome = store
        .append(
            &stream,
            ExpectedVersion::Exact(1),
            vec![NewEvent::new("fragile.added", r#"{"n":13}"#)],
        )
        .await
        .unwrap();
    let expected = EventLocation {
        stream: stream.clone(),
        version: 2,
        position: outcome.last_position,
    };
    // Every command on the stream, in a fresh engine (which must load it)
    // and in the running one (whose cached state is now behind), gets the
    // same error: twice, to show the stream is not left half-loaded.
    for app in [engine(&store).await, app] {
        for _ in 0..2 {
            let refused = app.execute(add("bad", 1)).await.unwrap_err();
            match &refused {
                CommandError::Engine(Error::ApplyPanicked { event, at, message }) => {
                    assert_eq!(event, "fragile.added");
                    assert_eq!(*at, expected);
                    assert!(message.contains("13 is unlucky"), "{message}");
                }
                other => panic!("expected ApplyPanicked, got {other:?}"),
            }
            let text = refused.to_string();
            assert!(
                text.contains(&format!(
                    "stream fragile/bad version 2 position {}",
                    outcome.last_position
                )),
                "{text}"
            );
        }
        // Other streams are unaffected.
        app.execute(add("good", 1)).await.unwrap();
    }
    assert_eq!(store.read_stream(&stream, 1).await.unwrap().len(), 2);
}

on_every_store!(
    a_panicking_apply_refuses_the_command_and_stores_nothing,
    a_panicking_handler_refuses_the_command,
    a_stored_event_that_panics_on_load_is_a_typed_error_naming_where_it_is,
);
