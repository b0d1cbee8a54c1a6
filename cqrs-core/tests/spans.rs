//! The `tracing` spans of a command and of a projection batch, with their
//! fields. Alone in its own test binary: `tracing` caches per call site whether
//! anyone listens, so tests running in parallel without a subscriber would
//! race with this one.
#![allow(missing_docs, missing_debug_implementations)]

use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "spans.added")]
pub struct Added {
    pub n: u64,
}

#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Tally)]
pub struct Add {
    #[id]
    pub id: String,
    pub n: u64,
}

#[derive(Aggregate, Default, Debug)]
#[aggregate(name = "tally", events(Added), commands(Add), error = std::io::Error)]
pub struct Tally {
    total: u64,
}

impl Apply<Added> for Tally {
    fn apply(&mut self, e: &Added) {
        self.total += e.n;
    }
}

impl Handle<Add> for Tally {
    fn handle(&self, c: &Add) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Added { n: c.n }])
    }
}

#[derive(Projection, Default, Debug)]
#[projection(name = "spans.sum", events(Added))]
pub struct Sum {
    total: u64,
}

impl Project<Added> for Sum {
    fn project(&mut self, e: &Envelope<Added>) {
        self.total += e.n;
    }
}

#[derive(Query, Deserialize, Debug)]
#[query(projection = Sum, output = u64)]
pub struct Total;

impl Answer<Total> for Sum {
    fn answer(&self, _: &Total) -> u64 {
        self.total
    }
}

async fn engine(store: &MemoryStore) -> Engine {
    Engine::builder()
        .store(store.clone())
        .build()
        .await
        .unwrap()
}

/// Records the spans opened while it is the default subscriber.
mod capture {
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    pub(super) type Spans = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

    #[derive(Default)]
    pub(super) struct Capture {
        pub(super) spans: Spans,
    }

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut fields = BTreeMap::new();
            span.record(&mut Fields(&mut fields));
            let mut spans = self.spans.lock().unwrap();
            spans.push((span.metadata().name().to_owned(), fields));
            Id::from_u64(spans.len() as u64)
        }
        fn record(&self, span: &Id, values: &Record<'_>) {
            let mut spans = self.spans.lock().unwrap();
            if let Some((_, fields)) = spans.get_mut(span.into_u64() as usize - 1) {
                values.record(&mut Fields(fields));
            }
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[test]
fn commands_and_projection_batches_have_spans() {
    let capture = capture::Capture::default();
    let spans = capture.spans.clone();
    tracing::subscriber::with_default(capture, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let app = engine(&MemoryStore::new()).await;
            let r = app
                .execute(Add {
                    id: "traced".into(),
                    n: 3,
                })
                .await
                .unwrap();
            app.query(Total).after(&r).await.unwrap();
        });
    });
    let spans = spans.lock().unwrap();
    let command = spans
        .iter()
        .find(|(name, _)| name == "command")
        .expect("a command span");
    for (field, value) in [
        ("aggregate", "tally"),
        ("id", "traced"),
        ("command", "Add"),
        ("version", "1"),
        ("outcome", "ok"),
    ] {
        assert_eq!(
            command.1.get(field).map(String::as_str),
            Some(value),
            "{field} in {:?}",
            command.1
        );
    }
    let batch = spans
        .iter()
        .find(|(name, f)| {
            name == "projection_batch"
                && f.get("projection").map(String::as_str) == Some("spans.sum")
        })
        .expect("a projection batch span");
    assert_eq!(
        batch.1.get("through").map(String::as_str),
        Some("1"),
        "{:?}",
        batch.1
    );
    assert_eq!(
        batch.1.get("events").map(String::as_str),
        Some("1"),
        "{:?}",
        batch.1
    );
}
