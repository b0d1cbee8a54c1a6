use cqrs_core::prelude::*;

#[derive(Command, Deserialize)]
#[command(name = "open")]
pub struct Open {
    #[id]
    pub account: String,
}

fn main() {}
