use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.opened"_v2)]
pub struct Opened;

fn main() {}
