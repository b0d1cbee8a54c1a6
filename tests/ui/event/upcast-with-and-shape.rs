use cqrs_core::prelude::*;

#[derive(Deserialize)]
pub struct DepositedV1 {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = 2, upcast(from = 1, with = v1_to_v2, shape = DepositedV1))]
pub struct Deposited {
    pub cents: u64,
}

fn v1_to_v2(v: serde_json::Value) -> serde_json::Value {
    v
}

fn main() {}
