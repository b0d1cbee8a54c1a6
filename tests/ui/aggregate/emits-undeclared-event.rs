use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Closed;

#[derive(Aggregate, Default)]
#[aggregate(events(Opened), commands(Close), error = std::io::Error)]
pub struct Account;

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

#[derive(Command, Deserialize)]
#[command(aggregate = Account)]
pub struct Close {
    #[id]
    pub account: String,
}

impl Handle<Close> for Account {
    fn handle(&self, _: &Close) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Closed])
    }
}

fn main() {}
