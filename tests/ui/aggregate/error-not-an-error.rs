use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Debug)]
pub enum AccountError {
    NotOpen,
}

#[derive(Aggregate, Default)]
#[aggregate(events(Opened), error = AccountError)]
pub struct Account;

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

fn main() {}
