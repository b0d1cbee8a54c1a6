use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = 2, upcast(from = 1, with = v1_to_v2))]
pub struct Deposited {
    pub cents: u64,
}

fn v1_to_v2(v: &serde_json::Value) -> serde_json::Value {
    v.clone()
}

fn main() {}
