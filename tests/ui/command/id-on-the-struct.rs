use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Aggregate, Default)]
#[aggregate(events(Opened), error = std::io::Error)]
pub struct Account;

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

#[derive(Command, Deserialize)]
#[command(aggregate = Account)]
#[id]
pub struct Close {
    pub account: String,
}

fn main() {}
