use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = 0)]
pub struct AccountOpened {
    pub owner: String,
}

fn main() {}
