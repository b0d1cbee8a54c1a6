use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = 4, upcast(from = 1, with = v1_to_v2), upcast(from = 3, with = v3_to_v4))]
pub struct Deposited {
    pub cents: u64,
}

fn v1_to_v2(v: serde_json::Value) -> serde_json::Value {
    v
}

fn v3_to_v4(v: serde_json::Value) -> serde_json::Value {
    v
}

fn main() {}
