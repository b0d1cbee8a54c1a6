//! Events that changed shape, under `#![deny(warnings, missing_docs)]`:
//! JSON and typed upcasters (the typed ones chained), aliases, a
//! projection that skips unknown events, a snapshotting aggregate, and an
//! event built by a `macro_rules!` macro whose upcaster is a fragment.
#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    unused_qualifications
)]

use cqrs_core::prelude::*;

/// Version 1 held whole euros.
#[derive(Deserialize, Debug)]
pub struct DepositedV1 {
    /// Whole euros.
    pub euros: u64,
}

/// Version 2 held cents.
#[derive(Deserialize, Debug)]
pub struct DepositedV2 {
    /// In cents.
    pub cents: u64,
}

/// Money paid in, version 3: typed upcasters from 1 and 2.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(
    name = "account.deposited",
    aliases("deposit.made", "money.in"),
    version = 3,
    upcast(from = 1, shape = DepositedV1),
    upcast(from = 2, shape = DepositedV2),
)]
pub struct Deposited {
    /// In cents.
    #[serde(alias = "amount")]
    pub cents: u64,
    /// ISO code.
    #[serde(default = "euro")]
    pub currency: String,
}

fn euro() -> String {
    String::from("EUR")
}

impl Upcast<DepositedV1> for DepositedV2 {
    fn upcast(v1: DepositedV1) -> Self {
        DepositedV2 { cents: v1.euros * 100 }
    }
}

impl Upcast<DepositedV2> for Deposited {
    fn upcast(v2: DepositedV2) -> Self {
        Deposited { cents: v2.cents, currency: euro() }
    }
}

/// An account was opened, version 2: JSON upcasters, one fallible, one not.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.opened", version = 3, upcast(from = 1, with = upcasters::v1), upcast(from = 2, with = upcasters::v2))]
pub struct Opened {
    /// Who owns it.
    pub owner: String,
}

mod upcasters {
    use cqrs_core::UpcastError;
    use serde_json::Value;

    pub(crate) fn v1(mut v: Value) -> Result<Value, UpcastError> {
        cqrs_core::upcast::rename_field(&mut v, "name", "owner")?;
        Ok(v)
    }

    pub(crate) fn v2(v: Value) -> Value {
        v
    }
}

macro_rules! evolved {
    ($name:ident, $upcaster:path) => {
        /// Built by a macro.
        #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
        #[event(version = 2, upcast(from = 1, with = $upcaster))]
        pub struct $name;
    };
}

fn identity(v: serde_json::Value) -> serde_json::Value {
    v
}

evolved!(Pinged, identity);

/// A command.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Account)]
pub struct Deposit {
    /// The account.
    #[id]
    pub account: String,
}

/// An account.
#[derive(Aggregate, Default, Debug, Serialize, Deserialize)]
#[aggregate(events(Opened, Deposited, Pinged), commands(Deposit), error = std::io::Error, snapshot_every = 10)]
pub struct Account {
    #[serde(rename = "c")]
    cents: u64,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}
impl Apply<Deposited> for Account {
    fn apply(&mut self, e: &Deposited) {
        self.cents += e.cents;
    }
}
impl Apply<Pinged> for Account {
    fn apply(&mut self, _: &Pinged) {}
}
impl Handle<Deposit> for Account {
    fn handle(&self, _: &Deposit) -> Result<Events<Self>, std::io::Error> {
        Ok(events![Pinged])
    }
}

/// Deposits, skipping what this build does not know.
#[derive(Projection, Default, Debug)]
#[projection(events(Deposited), unknown_events = skip)]
pub struct Totals {
    cents: u64,
}

impl Project<Deposited> for Totals {
    fn project(&mut self, e: &Envelope<Deposited>) {
        self.cents += e.cents;
    }
}

fn main() {
    let v1: Deposited = cqrs_core::decode_event("deposit.made", 1, br#"{"euros": 2}"#).unwrap();
    assert_eq!(v1.cents, 200);
    let opened: Opened = cqrs_core::decode_event("account.opened", 1, br#"{"name": "Ada"}"#).unwrap();
    assert_eq!(opened.owner, "Ada");
    assert_eq!(<Totals as Projection>::UNKNOWN_EVENTS, cqrs_core::UnknownEvents::Skip);
    assert!(Deposited::SHAPE.contains("#[serde(alias = \"amount\")] cents: u64,"));
}
