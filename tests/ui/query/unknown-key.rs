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
#[query(projection = Total, output = u64, ouptut = u32)]
pub struct TotalCents;

impl Answer<TotalCents> for Total {
    fn answer(&self, _: &TotalCents) -> u64 {
        self.cents
    }
}

fn main() {}
