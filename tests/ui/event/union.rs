use cqrs_core::prelude::*;

#[derive(Event)]
pub union Amount {
    cents: u64,
    units: u32,
}

fn main() {}
