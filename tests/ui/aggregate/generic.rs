use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened;

#[derive(Aggregate, Default)]
#[aggregate(events(Opened), error = std::io::Error)]
pub struct Account<T> {
    balance: T,
}

fn main() {
    let _ = AccountEvent::Opened(Opened);
}
