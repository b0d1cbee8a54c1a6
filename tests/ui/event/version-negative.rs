use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = -1)]
pub struct Opened;

fn main() {}
