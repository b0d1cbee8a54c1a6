use cqrs_core::prelude::*;

pub struct DepositedV1 {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = 2, upcast(from = 1, shape = DepositedV1))]
pub struct Deposited {
    pub cents: u64,
}

impl Upcast<DepositedV1> for Deposited {
    fn upcast(v1: DepositedV1) -> Self {
        Deposited { cents: v1.amount * 100 }
    }
}

fn main() {}
