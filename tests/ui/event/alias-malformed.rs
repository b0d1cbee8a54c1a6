use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.deposited", aliases("deposit made"))]
pub struct Deposited {
    pub cents: u64,
}

fn main() {}
