use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited))]
pub struct Balances {
    #[document(table = "balances")]
    accounts: Documents<u64>,
}

impl Project<Deposited> for Balances {
    fn project(&mut self, e: &Envelope<Deposited>) {
        *self.accounts.entry(e.aggregate_id()).or_default() += e.amount;
    }
}

fn main() {}
