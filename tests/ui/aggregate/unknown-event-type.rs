use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Aggregate, Default)]
#[aggregate(events(Opend), error = std::io::Error)]
pub struct Account;

fn main() {}
