use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited), tables = sqlite)]
pub struct BalanceRows {
    #[document]
    balances: Documents<u64>,
}

fn main() {}
