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
#[projection(events(Deposited))]
pub struct Balance<'a> {
    owner: &'a str,
}

fn main() {}
