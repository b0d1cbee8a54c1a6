use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum AccountOpened {
    Personal,
    Business,
}

fn main() {}
