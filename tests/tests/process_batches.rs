//! A process manager that stops on an event of a batch commits nothing of
//! that batch: an instance an earlier event of the same batch changed is
//! not saved half changed by the reaction that panicked.

use std::time::Duration;

use cqrs_core::RunState;
use cqrs_core::prelude::*;

/// Something was put in a box; 13 makes the counter's reaction panic.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "box.put")]
pub struct Put {
    n: u64,
}

/// Puts each of `ns` in the box, as one append.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Crate)]
struct Fill {
    #[id]
    id: String,
    ns: Vec<u64>,
}

#[derive(Aggregate, Default, Debug)]
#[aggregate(name = "box", events(Put), commands(Fill), error = std::io::Error)]
struct Crate;

impl Apply<Put> for Crate {
    fn apply(&mut self, _: &Put) {}
}

impl Handle<Fill> for Crate {
    fn handle(&self, c: &Fill) -> Result<Events<Self>, std::io::Error> {
        let mut events = Events::new();
        for n in &c.ns {
            events.push(Put { n: *n });
        }
        Ok(events)
    }
}

/// Counts what was put in each box.
#[derive(ProcessManager, Default, Serialize, Deserialize, Debug)]
#[process(name = "counter", events(Put))]
struct Counter {
    total: u64,
}

impl Correlate<Put> for Counter {
    fn correlate(event: &Envelope<Put>) -> Correlation {
        Correlation::start(&event.stream().id)
    }
}

impl React<Put> for Counter {
    fn react(&mut self, event: &Envelope<Put>) -> Reaction<Self> {
        // Changed first, then the panic: the state is half changed.
        self.total += event.n;
        assert_ne!(event.n, 13, "13 is unlucky");
        Reaction::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_stops_commits_nothing_of_itself() {
    let app = Engine::builder().build().await.unwrap();
    let filled = app
        .execute(Fill {
            id: "x".into(),
            ns: vec![1, 13],
        })
        .await
        .unwrap();
    let mut status = app.process_status("counter").unwrap();
    for _ in 0..2000 {
        if matches!(status.state, RunState::Failed(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        status = app.process_status("counter").unwrap();
    }
    let RunState::Failed(reason) = &status.state else {
        panic!("the manager did not stop: {status:?}");
    };
    assert!(reason.contains("13 is unlucky"), "{reason}");
    // The batch held both events: neither is kept, nor the instance that
    // the first one started and the second one half changed.
    assert!(status.position < filled.position.unwrap() - 1, "{status:?}");
    assert_eq!(app.process_instance("counter", "x").await.unwrap(), None);
    let saved = app
        .store()
        .load_read_model("process:counter")
        .await
        .unwrap();
    assert!(saved.documents.is_empty(), "{:?}", saved.documents);
    app.shutdown();
}
