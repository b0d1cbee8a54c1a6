use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Changed<T> {
    pub value: T,
}

fn main() {}
