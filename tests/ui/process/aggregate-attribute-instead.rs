use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Sent {
    pub transfer: String,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Received {
    pub transfer: String,
}

#[derive(Command, Serialize, Deserialize, Debug)]
#[command(aggregate = Account)]
pub struct Receive {
    #[id]
    pub account: String,
}

#[derive(Aggregate, Default)]
#[aggregate(events(Sent, Received), commands(Receive), error = std::io::Error)]
pub struct Account;

impl Apply<Sent> for Account {
    fn apply(&mut self, _: &Sent) {}
}

impl Apply<Received> for Account {
    fn apply(&mut self, _: &Received) {}
}

impl Handle<Receive> for Account {
    fn handle(&self, _: &Receive) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Received {
            transfer: String::new()
        }])
    }
}

#[derive(ProcessManager, Default, Serialize, Deserialize)]
#[aggregate(events(Sent, Received), commands(Receive))]
pub struct Transfer {
    to: String,
}

impl Correlate<Sent> for Transfer {
    fn correlate(e: &Envelope<Sent>) -> Correlation {
        Correlation::start(&e.transfer)
    }
}

impl Correlate<Received> for Transfer {
    fn correlate(e: &Envelope<Received>) -> Correlation {
        Correlation::join(&e.transfer)
    }
}

impl React<Sent> for Transfer {
    fn react(&mut self, _: &Envelope<Sent>) -> Reaction<Self> {
        Reaction::new().send(Receive {
            account: self.to.clone(),
        })
    }
}

impl React<Received> for Transfer {
    fn react(&mut self, _: &Envelope<Received>) -> Reaction<Self> {
        Reaction::new().complete()
    }
}

fn main() {}
