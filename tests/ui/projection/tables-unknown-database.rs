use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited), tables = mysql)]
pub struct BalanceRows;

fn main() {}
