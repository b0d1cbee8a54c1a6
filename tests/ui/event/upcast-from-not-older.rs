use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = 2, upcast(from = 2, with = v2_to_v3))]
pub struct Deposited {
    pub cents: u64,
}

fn v2_to_v3(v: serde_json::Value) -> serde_json::Value {
    v
}

fn main() {}
