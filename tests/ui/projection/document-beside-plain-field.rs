use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited))]
pub struct Balances {
    #[document]
    accounts: Documents<u64>,
    deposits_seen: u64,
}

impl Project<Deposited> for Balances {
    fn project(&mut self, e: &Envelope<Deposited>) {
        *self.accounts.entry(e.aggregate_id()).or_default() += e.amount;
        self.deposits_seen += 1;
    }
}

fn main() {}
