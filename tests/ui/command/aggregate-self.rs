use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Closed;

#[derive(Debug)]
pub struct AccountError;

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("account error")
    }
}

impl std::error::Error for AccountError {}

#[derive(Aggregate, Default)]
#[aggregate(events(Opened, Closed), commands(Open), error = AccountError)]
pub struct Account {
    open: bool,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {
        self.open = true;
    }
}

impl Apply<Closed> for Account {
    fn apply(&mut self, _: &Closed) {
        self.open = false;
    }
}

#[derive(Command, Deserialize)]
#[command(aggregate = Self)]
pub struct Open {
    #[id]
    pub account: String,
}

impl Handle<Open> for Account {
    fn handle(&self, _: &Open) -> Result<Events<Self>, AccountError> {
        Ok(events![Opened])
    }
}

fn main() {}
