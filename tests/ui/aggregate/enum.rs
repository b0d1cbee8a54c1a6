use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Aggregate, Default)]
#[aggregate(events(Opened), error = std::io::Error)]
pub enum Account {
    #[default]
    Closed,
    Open,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {
        *self = Account::Open;
    }
}

fn main() {}
