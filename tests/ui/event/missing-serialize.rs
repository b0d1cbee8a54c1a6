use cqrs_core::prelude::*;

#[derive(Event, Deserialize, Clone, Debug, PartialEq)]
pub struct AccountOpened {
    pub owner: String,
}

fn main() {}
