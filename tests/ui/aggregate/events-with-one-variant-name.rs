use cqrs_core::prelude::*;

mod v1 {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "opened.v1")]
    pub struct Opened;
}

mod v2 {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "opened.v2")]
    pub struct Opened;
}

#[derive(Aggregate, Default)]
#[aggregate(events(v1::Opened, v2::Opened), error = std::io::Error)]
pub struct Account;

impl Apply<v1::Opened> for Account {
    fn apply(&mut self, _: &v1::Opened) {}
}

impl Apply<v2::Opened> for Account {
    fn apply(&mut self, _: &v2::Opened) {}
}

fn main() {}
