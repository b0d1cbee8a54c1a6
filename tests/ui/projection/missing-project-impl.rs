use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Withdrawn {
    pub amount: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited, Withdrawn))]
pub struct Balance {
    cents: i64,
}

impl Project<Deposited> for Balance {
    fn project(&mut self, e: &Envelope<Deposited>) {
        self.cents += e.amount as i64;
    }
}

fn main() {}
