use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(version = 1, name = "account.opened", version = 2)]
pub struct AccountOpened {
    pub owner: String,
}

fn main() {}
