use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Aggregate, Default)]
#[aggregate(events(Opened), commands(Open, Open), error = std::io::Error)]
pub struct Account;

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

#[derive(Command, Deserialize)]
#[command(aggregate = Account)]
pub struct Open {
    #[id]
    pub account: String,
}

impl Handle<Open> for Account {
    fn handle(&self, _: &Open) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Opened])
    }
}

fn main() {}
