use cqrs_core::prelude::*;

#[derive(Aggregate, Default)]
pub struct Account {
    balance: u64,
}

fn main() {}
