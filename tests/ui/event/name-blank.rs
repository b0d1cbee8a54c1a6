use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "   ")]
pub struct Opened;

fn main() {}
