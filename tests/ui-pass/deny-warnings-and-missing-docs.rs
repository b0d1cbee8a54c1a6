//! A user crate that denies warnings, missing docs, missing `Debug` impls and
//! unneeded qualifications: every item the derives generate is documented and
//! named by a path that cannot be shortened.
#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    unused_qualifications
)]

use cqrs_core::prelude::*;

/// An account was opened.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.opened")]
pub struct Opened {
    /// Who owns it.
    pub owner: String,
}

/// Money was paid in.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    /// In cents.
    pub amount: u64,
}

/// What the pricing of a deposit needs.
#[derive(Debug)]
pub struct Fees {
    /// Taken from each deposit.
    pub fee: u64,
}

/// An account.
#[derive(Aggregate, Default, Debug, Serialize, Deserialize)]
#[aggregate(
    events(Opened, Deposited),
    commands(Open, Deposit),
    error = std::io::Error,
    services = Fees,
    snapshot_every = 10,
)]
pub struct Account {
    balance: u64,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

impl Apply<Deposited> for Account {
    fn apply(&mut self, e: &Deposited) {
        self.balance += e.amount;
    }
}

/// Opens an account.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Account)]
pub struct Open {
    /// The account.
    #[id]
    pub account: String,
}

/// Pays money in, less the fee.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Account, async)]
pub struct Deposit {
    /// The account.
    #[id]
    pub account: String,
    /// In cents.
    pub amount: u64,
}

impl Handle<Open> for Account {
    fn handle(&self, c: &Open) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Opened {
            owner: c.account.clone()
        }])
    }
}

impl HandleAsync<Deposit> for Account {
    async fn handle(&self, c: &Deposit, fees: &Fees) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Deposited {
            amount: c.amount - fees.fee
        }])
    }
}

/// The total paid in.
#[derive(Projection, Default, Debug)]
#[projection(events(Deposited))]
pub struct Total {
    cents: u64,
}

impl Project<Deposited> for Total {
    fn project(&mut self, e: &Envelope<Deposited>) {
        self.cents += e.amount;
    }
}

/// Asks for the total.
#[derive(Query, Deserialize, Debug)]
#[query(projection = Total, output = u64)]
pub struct TotalCents;

impl Answer<TotalCents> for Total {
    fn answer(&self, _: &TotalCents) -> u64 {
        self.cents
    }
}

fn main() {
    let _ = AccountEvent::from(Deposited { amount: 1 });
}
