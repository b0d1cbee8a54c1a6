use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "")]
pub struct AccountOpened {
    pub owner: String,
}

fn main() {}
