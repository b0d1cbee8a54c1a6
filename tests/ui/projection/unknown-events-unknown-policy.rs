use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub cents: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited), unknown_events = ignore)]
pub struct Totals {
    cents: u64,
}

impl Project<Deposited> for Totals {
    fn project(&mut self, e: &Envelope<Deposited>) {
        self.cents += e.cents;
    }
}

fn main() {}
