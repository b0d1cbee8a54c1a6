// A query without fields, answered from a projection that also uses a
// tuple-struct event.

use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Pinged(pub u8);

#[derive(Aggregate, Default)]
#[aggregate(events(Pinged), commands(Ping), error = std::io::Error)]
pub struct Probe;

impl Apply<Pinged> for Probe {
    fn apply(&mut self, _: &Pinged) {}
}

#[derive(Command, Deserialize)]
#[command(aggregate = Probe)]
pub struct Ping {
    #[id]
    pub probe: u8,
}

impl Handle<Ping> for Probe {
    fn handle(&self, c: &Ping) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Pinged(c.probe)])
    }
}

#[derive(Projection, Default)]
#[projection(events(Pinged))]
pub struct Pings(u64);

impl Project<Pinged> for Pings {
    fn project(&mut self, _: &Envelope<Pinged>) {
        self.0 += 1;
    }
}

#[derive(Query, Deserialize)]
#[query(projection = Pings, output = u64)]
pub struct PingCount;

impl Answer<PingCount> for Pings {
    fn answer(&self, _: &PingCount) -> u64 {
        self.0
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = Engine::builder().build().await.unwrap();
    app.execute(Ping { probe: 1 }).await.unwrap();
    let receipt = app.execute(Ping { probe: 2 }).await.unwrap();
    let count = app.query(PingCount).after(&receipt).await.unwrap();
    assert_eq!(count, 2);
    let json = app
        .query_json("PingCount", serde_json::json!(null))
        .await
        .unwrap();
    assert_eq!(json, serde_json::json!(2));
}
