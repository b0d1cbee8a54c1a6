// A process manager with every part: a reaction that sends a command, a
// refused command undone by `Recover`, a deadline that reaches `Timeout`;
// run through the test kit, in a crate that denies warnings.
#![deny(warnings, unused_qualifications)]

use std::time::Duration;

use cqrs_core::prelude::*;
use cqrs_core::process::{InstanceStatus, Issued, ProcessTest};

const REVIEW_ABOVE: u64 = 100;
const REVIEW_WINDOW: Duration = Duration::from_secs(3600);

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "transfer.sent")]
pub struct Sent {
    pub transfer: String,
    pub to: String,
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "transfer.received")]
pub struct Received {
    pub transfer: String,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "transfer.refunded")]
pub struct Refunded {
    pub transfer: String,
}

#[derive(Aggregate, Default)]
#[aggregate(
    name = "account",
    events(Sent, Received, Refunded),
    commands(Receive, Refund),
    error = std::io::Error,
)]
pub struct Account;

impl Apply<Sent> for Account {
    fn apply(&mut self, _: &Sent) {}
}

impl Apply<Received> for Account {
    fn apply(&mut self, _: &Received) {}
}

impl Apply<Refunded> for Account {
    fn apply(&mut self, _: &Refunded) {}
}

#[derive(Command, Serialize, Deserialize, Debug)]
#[command(aggregate = Account)]
pub struct Receive {
    #[id]
    pub to: String,
    pub transfer: String,
    pub amount: u64,
}

#[derive(Command, Serialize, Deserialize, Debug)]
#[command(aggregate = Account)]
pub struct Refund {
    #[id]
    pub from: String,
    pub transfer: String,
}

impl Handle<Receive> for Account {
    fn handle(&self, c: &Receive) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Received {
            transfer: c.transfer.clone()
        }])
    }
}

impl Handle<Refund> for Account {
    fn handle(&self, c: &Refund) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Refunded {
            transfer: c.transfer.clone()
        }])
    }
}

#[derive(ProcessManager, Default, Debug, Serialize, Deserialize)]
#[process(
    name = "transfer",
    events(Sent, Received, Refunded),
    commands(Receive, Refund)
)]
pub struct Transfer {
    transfer: String,
    from: String,
    to: String,
    amount: u64,
}

impl Transfer {
    fn credit(&self) -> Receive {
        Receive {
            to: self.to.clone(),
            transfer: self.transfer.clone(),
            amount: self.amount,
        }
    }

    fn refund(&self) -> Refund {
        Refund {
            from: self.from.clone(),
            transfer: self.transfer.clone(),
        }
    }
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

impl Correlate<Refunded> for Transfer {
    fn correlate(e: &Envelope<Refunded>) -> Correlation {
        Correlation::join(&e.transfer)
    }
}

impl React<Sent> for Transfer {
    fn react(&mut self, e: &Envelope<Sent>) -> Reaction<Self> {
        self.transfer = e.transfer.clone();
        self.from = e.aggregate_id().to_owned();
        self.to = e.to.clone();
        self.amount = e.amount;
        if e.amount > REVIEW_ABOVE {
            return Reaction::new().deadline("review", REVIEW_WINDOW);
        }
        Reaction::new().send(self.credit())
    }
}

impl React<Received> for Transfer {
    fn react(&mut self, _: &Envelope<Received>) -> Reaction<Self> {
        Reaction::new().complete()
    }
}

impl React<Refunded> for Transfer {
    fn react(&mut self, _: &Envelope<Refunded>) -> Reaction<Self> {
        Reaction::new().complete()
    }
}

impl Recover<Receive> for Transfer {
    fn recover(&mut self, _: &Refused<Receive>) -> Reaction<Self> {
        Reaction::new().send(self.refund())
    }
}

impl Timeout for Transfer {
    fn timeout(&mut self, _: &Deadline) -> Reaction<Self> {
        Reaction::new().send(self.refund())
    }
}

fn sent(transfer: &str, amount: u64) -> Sent {
    Sent {
        transfer: transfer.to_owned(),
        to: "b".to_owned(),
        amount,
    }
}

fn main() {
    assert_eq!(<Transfer as ProcessManager>::NAME, "transfer");
    assert_eq!(
        <Transfer as ProcessManager>::EVENTS,
        ["transfer.sent", "transfer.received", "transfer.refunded"]
    );
    assert_eq!(
        <Transfer as ProcessManager>::COMMANDS,
        ["Receive", "Refund"]
    );

    let credit = Receive {
        to: "b".into(),
        transfer: "t-1".into(),
        amount: 5,
    };
    let refund = Refund {
        from: "a".into(),
        transfer: "t-1".into(),
    };

    // Sent, then credited.
    ProcessTest::<Transfer>::new()
        .given(("account", "a"), sent("t-1", 5))
        .then_expect_commands([Issued::of(&credit)])
        .given(
            ("account", "b"),
            Received {
                transfer: "t-1".into(),
            },
        )
        .then_expect_status(InstanceStatus::Completed);

    // The credit refused: `Recover` refunds.
    ProcessTest::<Transfer>::new()
        .refuse(&credit, std::io::Error::other("closed"))
        .given(("account", "a"), sent("t-1", 5))
        .then_expect_commands([Issued::of(&credit), Issued::of(&refund)])
        .then_expect_status(InstanceStatus::Running);

    // Held for review, never approved: `Timeout` refunds.
    let refund = Refund {
        from: "a".into(),
        transfer: "t-2".into(),
    };
    ProcessTest::<Transfer>::new()
        .given(("account", "a"), sent("t-2", 500))
        .then_expect_no_commands()
        .then_expect_deadline("review", REVIEW_WINDOW)
        .advance(REVIEW_WINDOW)
        .then_expect_commands([Issued::of(&refund)]);
}
