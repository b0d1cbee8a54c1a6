use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited))]
pub struct Total {
    cents: u64,
}

impl Project<Deposited> for Total {
    fn project(&mut self, e: &Envelope<Deposited>) {
        self.cents += e.amount;
    }
}

#[derive(Query, Deserialize)]
#[query(projection = Total)]
pub struct TotalCents;

fn main() {}
