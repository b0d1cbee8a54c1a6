use cqrs_core::prelude::*;

#[derive(Aggregate, Default)]
#[aggregate(events(), error = std::io::Error)]
pub struct Account {
    balance: u64,
}

fn main() {}
