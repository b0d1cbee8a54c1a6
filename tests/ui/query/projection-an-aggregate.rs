use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Closed;

#[derive(Aggregate, Default)]
#[aggregate(events(Opened, Closed), error = std::io::Error)]
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

#[derive(Projection, Default)]
#[projection(events(Opened))]
pub struct Opens {
    count: u64,
}

impl Project<Opened> for Opens {
    fn project(&mut self, _: &Envelope<Opened>) {
        self.count += 1;
    }
}

#[derive(Query, Deserialize)]
#[query(projection = Account, output = u64)]
pub struct HowMany;

impl Answer<HowMany> for Opens {
    fn answer(&self, _: &HowMany) -> u64 {
        self.count
    }
}

fn main() {}
