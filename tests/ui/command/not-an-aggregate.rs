use cqrs_core::prelude::*;

pub struct Wallet;

#[derive(Command, Deserialize)]
#[command(aggregate = Wallet)]
pub struct Deposit {
    #[id]
    pub account: String,
}

fn main() {}
