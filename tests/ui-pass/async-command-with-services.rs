// An async command whose handler awaits and uses the aggregate's services.

use std::sync::atomic::{AtomicU64, Ordering};

use cqrs_core::prelude::*;

pub struct Clock {
    now: AtomicU64,
}

impl Clock {
    async fn tick(&self) -> u64 {
        tokio::task::yield_now().await;
        self.now.fetch_add(1, Ordering::SeqCst)
    }
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Stamped {
    pub at: u64,
}

#[derive(Aggregate, Default)]
#[aggregate(events(Stamped), commands(Stamp), error = std::io::Error, services = Clock)]
pub struct Document {
    stamps: Vec<u64>,
}

impl Apply<Stamped> for Document {
    fn apply(&mut self, e: &Stamped) {
        self.stamps.push(e.at);
    }
}

#[derive(Command, Deserialize)]
#[command(aggregate = Document, async)]
pub struct Stamp {
    #[id]
    pub document: String,
}

impl HandleAsync<Stamp> for Document {
    async fn handle(&self, _: &Stamp, clock: &Clock) -> Result<Events<Self>, std::io::Error> {
        let at = clock.tick().await;
        Ok(events![Stamped { at }])
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = Engine::builder()
        .services(Clock {
            now: AtomicU64::new(41),
        })
        .build()
        .await
        .unwrap();
    let first = app
        .execute(Stamp {
            document: "d".into(),
        })
        .await
        .unwrap();
    let second = app
        .execute(Stamp {
            document: "d".into(),
        })
        .await
        .unwrap();
    assert_eq!((first.version, second.version), (1, 2));
}
