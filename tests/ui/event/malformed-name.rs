use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account opened")]
pub struct AccountOpened {
    pub owner: String,
}

fn main() {}
