use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Projection, Default)]
#[projection(events(Opened))]
#[document]
pub struct Opens {
    #[document]
    count: Documents<u64>,
}

impl Project<Opened> for Opens {
    fn project(&mut self, _: &Envelope<Opened>) {}
}

fn main() {}
