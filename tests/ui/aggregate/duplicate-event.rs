use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Closed;

#[derive(Aggregate, Default)]
#[aggregate(events(Opened, Closed, Opened), error = std::io::Error)]
pub struct Account;

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

impl Apply<Closed> for Account {
    fn apply(&mut self, _: &Closed) {}
}

fn main() {
    let _ = AccountEvent::Opened(Opened);
}
