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
pub struct Balance {
    cents: i64,
}

fn main() {}
