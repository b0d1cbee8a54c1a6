// `snapshot_every` turns snapshots on: the aggregate is serialized every N
// events and reloaded from the snapshot.

use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Added {
    pub n: u64,
}

#[derive(Aggregate, Default, Serialize, Deserialize, Debug, PartialEq)]
#[aggregate(name = "counter", events(Added), commands(Add), error = std::io::Error, snapshot_every = 2)]
pub struct Counter {
    total: u64,
}

impl Apply<Added> for Counter {
    fn apply(&mut self, e: &Added) {
        self.total += e.n;
    }
}

#[derive(Command, Deserialize)]
#[command(aggregate = Counter)]
pub struct Add {
    #[id]
    pub counter: String,
    pub n: u64,
}

impl Handle<Add> for Counter {
    fn handle(&self, c: &Add) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Added { n: c.n }])
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Counter::SNAPSHOT_EVERY, Some(2));
    let state = Counter { total: 7 };
    let bytes = state.encode_snapshot().unwrap().unwrap();
    assert_eq!(Counter::decode_snapshot(&bytes).unwrap().unwrap(), state);

    let app = Engine::builder().build().await.unwrap();
    for n in 1..=5 {
        app.execute(Add {
            counter: "c".into(),
            n,
        })
        .await
        .unwrap();
    }
}
