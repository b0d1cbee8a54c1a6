use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Aggregate, Default)]
#[aggregate(events(Opened), commands(Open, Register), error = std::io::Error)]
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

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Registered;

#[derive(Aggregate, Default)]
#[aggregate(events(Registered), commands(Register), error = std::io::Error)]
pub struct Customer;

impl Apply<Registered> for Customer {
    fn apply(&mut self, _: &Registered) {}
}

#[derive(Command, Deserialize)]
#[command(aggregate = Customer)]
pub struct Register {
    #[id]
    pub customer: String,
}

impl Handle<Register> for Customer {
    fn handle(&self, _: &Register) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Registered])
    }
}

fn main() {}
