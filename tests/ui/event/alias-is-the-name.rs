use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.deposited", aliases("account.deposited"))]
pub struct Deposited {
    pub cents: u64,
}

fn main() {}
