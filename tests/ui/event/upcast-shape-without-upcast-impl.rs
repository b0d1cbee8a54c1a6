use cqrs_core::prelude::*;

#[derive(Deserialize)]
pub struct DepositedV1 {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = 2, upcast(from = 1, shape = DepositedV1))]
pub struct Deposited {
    pub cents: u64,
}

fn main() {}
