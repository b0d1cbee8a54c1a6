//! The crash tests' bank: accounts, deposits, withdrawals, transfers, and
//! `CrashLedger`, a durable projection (a `Documents<u64>` of balances saved
//! with its checkpoint).
//!
//! Compiled into two programs by `#[path]`: the `crash-engine` child, which
//! runs it under load until it is killed, and `tests/crash.rs`, which reopens
//! the store and checks the ledger. The names it registers (events
//! `crash_bank.*`, aggregate `crash_account`, commands `Crash*`, projection
//! `crash_ledger`) are its own, and engines get it through [`registry`], so
//! nothing else linked into a program clashes with it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use cqrs_core::prelude::*;
use cqrs_core::projection::DocumentCollection;
use cqrs_core::registry::{ProjectionDescriptor, Registration};
use cqrs_core::{DecodeError, Documents, RecordedEvent, Registered, Registry};

// ---- events ----------------------------------------------------------------

/// An account was opened.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "crash_bank.opened")]
pub(crate) struct Opened {}

/// Money was paid in.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "crash_bank.deposited")]
pub(crate) struct Deposited {
    /// In cents.
    pub(crate) amount: u64,
}

/// Money was taken out.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "crash_bank.withdrawn")]
pub(crate) struct Withdrawn {
    /// In cents.
    pub(crate) amount: u64,
}

/// Money left for another account.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "crash_bank.sent")]
pub(crate) struct Sent {
    /// The receiving account.
    pub(crate) to: String,
    /// In cents.
    pub(crate) amount: u64,
}

/// Money arrived from another account.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "crash_bank.received")]
pub(crate) struct Received {
    /// The sending account.
    pub(crate) from: String,
    /// In cents.
    pub(crate) amount: u64,
}

/// Why the bank refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CrashError {
    /// Opening an account twice.
    #[error("account is already open")]
    AlreadyOpen,
    /// Using an account that was never opened.
    #[error("account is not open")]
    NotOpen,
    /// Taking out more than there is.
    #[error("insufficient funds: {balance} held, {requested} requested")]
    InsufficientFunds {
        /// What the account holds.
        balance: u64,
        /// What was asked for.
        requested: u64,
    },
    /// Sending money to the same account.
    #[error("cannot transfer to the same account")]
    SameAccount,
}

// ---- commands --------------------------------------------------------------

/// Open an account.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = CrashAccount)]
pub(crate) struct CrashOpen {
    /// The new account's id.
    #[id]
    pub(crate) account: String,
}

/// Pay money in.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = CrashAccount)]
pub(crate) struct CrashDeposit {
    /// The account.
    #[id]
    pub(crate) account: String,
    /// In cents.
    pub(crate) amount: u64,
}

/// Take money out.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = CrashAccount)]
pub(crate) struct CrashWithdraw {
    /// The account.
    #[id]
    pub(crate) account: String,
    /// In cents.
    pub(crate) amount: u64,
}

/// First half of a transfer: debit the sender.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = CrashAccount)]
pub(crate) struct CrashSend {
    /// The sending account.
    #[id]
    pub(crate) from: String,
    /// The receiving account.
    pub(crate) to: String,
    /// In cents.
    pub(crate) amount: u64,
}

/// Second half of a transfer: credit the receiver.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = CrashAccount)]
pub(crate) struct CrashReceive {
    /// The receiving account.
    #[id]
    pub(crate) to: String,
    /// The sending account.
    pub(crate) from: String,
    /// In cents.
    pub(crate) amount: u64,
}

// ---- the aggregate ---------------------------------------------------------

/// One account: the write model. Snapshots often, so snapshot writes are
/// in flight too when the process is killed.
#[derive(Aggregate, Default, Debug, Serialize, Deserialize)]
#[aggregate(
    name = "crash_account",
    events(Opened, Deposited, Withdrawn, Sent, Received),
    commands(CrashOpen, CrashDeposit, CrashWithdraw, CrashSend, CrashReceive),
    error = CrashError,
    snapshot_every = 20,
)]
pub(crate) struct CrashAccount {
    open: bool,
    balance: u64,
}

impl CrashAccount {
    fn debit(&self, amount: u64) -> Result<(), CrashError> {
        if !self.open {
            return Err(CrashError::NotOpen);
        }
        if amount > self.balance {
            return Err(CrashError::InsufficientFunds {
                balance: self.balance,
                requested: amount,
            });
        }
        Ok(())
    }

    fn credit(&self) -> Result<(), CrashError> {
        if self.open {
            Ok(())
        } else {
            Err(CrashError::NotOpen)
        }
    }
}

impl Apply<Opened> for CrashAccount {
    fn apply(&mut self, _: &Opened) {
        self.open = true;
    }
}

impl Apply<Deposited> for CrashAccount {
    fn apply(&mut self, e: &Deposited) {
        self.balance += e.amount;
    }
}

impl Apply<Withdrawn> for CrashAccount {
    fn apply(&mut self, e: &Withdrawn) {
        self.balance -= e.amount;
    }
}

impl Apply<Sent> for CrashAccount {
    fn apply(&mut self, e: &Sent) {
        self.balance -= e.amount;
    }
}

impl Apply<Received> for CrashAccount {
    fn apply(&mut self, e: &Received) {
        self.balance += e.amount;
    }
}

impl Handle<CrashOpen> for CrashAccount {
    fn handle(&self, _: &CrashOpen) -> Result<Events<Self>, CrashError> {
        if self.open {
            return Err(CrashError::AlreadyOpen);
        }
        Ok(events![Opened {}])
    }
}

impl Handle<CrashDeposit> for CrashAccount {
    fn handle(&self, c: &CrashDeposit) -> Result<Events<Self>, CrashError> {
        self.credit()?;
        Ok(events![Deposited { amount: c.amount }])
    }
}

impl Handle<CrashWithdraw> for CrashAccount {
    fn handle(&self, c: &CrashWithdraw) -> Result<Events<Self>, CrashError> {
        self.debit(c.amount)?;
        Ok(events![Withdrawn { amount: c.amount }])
    }
}

impl Handle<CrashSend> for CrashAccount {
    fn handle(&self, c: &CrashSend) -> Result<Events<Self>, CrashError> {
        if c.from == c.to {
            return Err(CrashError::SameAccount);
        }
        self.debit(c.amount)?;
        Ok(events![Sent {
            to: c.to.clone(),
            amount: c.amount,
        }])
    }
}

impl Handle<CrashReceive> for CrashAccount {
    fn handle(&self, c: &CrashReceive) -> Result<Events<Self>, CrashError> {
        self.credit()?;
        Ok(events![Received {
            from: c.from.clone(),
            amount: c.amount,
        }])
    }
}

// ---- the durable projection ------------------------------------------------

/// The key of the document counting every event the ledger projected: it
/// doubles if a restart projects an event again, and lags if one is lost.
pub(crate) const EVENTS_KEY: &str = "__events";

/// Balances per account, saved as documents with the checkpoint.
///
/// Its `Projection` impl is written by hand: what `#[derive(Projection)]`
/// with a `#[document]` field will generate.
#[derive(Default, Debug)]
pub(crate) struct CrashLedger {
    /// Account id -> balance, and [`EVENTS_KEY`] -> events projected.
    pub(crate) balances: Documents<u64>,
    /// Events this copy projected since it was created: not a document, so
    /// not restored; after a restart, only what the restart projected.
    pub(crate) projected_here: u64,
}

impl CrashLedger {
    fn count(&mut self) {
        pause_point();
        *self.balances.entry(EVENTS_KEY).or_default() += 1;
        self.projected_here += 1;
    }

    fn balance(&mut self, account: &str) -> &mut u64 {
        self.balances.entry(account).or_default()
    }
}

impl Project<Opened> for CrashLedger {
    fn project(&mut self, e: &Envelope<Opened>) {
        self.balance(e.aggregate_id());
        self.count();
    }
}

impl Project<Deposited> for CrashLedger {
    fn project(&mut self, e: &Envelope<Deposited>) {
        *self.balance(e.aggregate_id()) += e.amount;
        self.count();
    }
}

impl Project<Withdrawn> for CrashLedger {
    fn project(&mut self, e: &Envelope<Withdrawn>) {
        *self.balance(e.aggregate_id()) -= e.amount;
        self.count();
    }
}

impl Project<Sent> for CrashLedger {
    fn project(&mut self, e: &Envelope<Sent>) {
        *self.balance(e.aggregate_id()) -= e.amount;
        self.count();
    }
}

impl Project<Received> for CrashLedger {
    fn project(&mut self, e: &Envelope<Received>) {
        *self.balance(e.aggregate_id()) += e.amount;
        self.count();
    }
}

/// The lease tests' way to stop a ledger in the middle of a batch (after
/// reading it, before committing it): while the file named by
/// `CQRS_TEST_PAUSE_FILE` exists, projecting an event waits, after
/// creating `<that file>.paused` to say so.
fn pause_point() {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(file) =
        FILE.get_or_init(|| std::env::var_os("CQRS_TEST_PAUSE_FILE").map(PathBuf::from))
    else {
        return;
    };
    if file.exists() {
        let mut marker = file.clone().into_os_string();
        marker.push(".paused");
        let _ = std::fs::write(&marker, std::process::id().to_string());
        while file.exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Decodes `record` as `E` and projects it.
fn project_as<E: Event>(
    ledger: &mut CrashLedger,
    record: &Arc<RecordedEvent>,
) -> Result<(), DecodeError>
where
    CrashLedger: Project<E>,
{
    let envelope = Envelope::<E>::decode(record)?;
    <CrashLedger as Project<E>>::project(ledger, &envelope);
    Ok(())
}

impl cqrs_core::Projection for CrashLedger {
    const NAME: &'static str = "crash_ledger";
    const EVENTS: &'static [&'static str] = &[
        <Opened as Event>::NAME,
        <Deposited as Event>::NAME,
        <Withdrawn as Event>::NAME,
        <Sent as Event>::NAME,
        <Received as Event>::NAME,
    ];

    fn project_recorded(&mut self, record: &Arc<RecordedEvent>) -> Result<(), DecodeError> {
        match &*record.event_name {
            <Opened as Event>::NAME => project_as::<Opened>(self, record),
            <Deposited as Event>::NAME => project_as::<Deposited>(self, record),
            <Withdrawn as Event>::NAME => project_as::<Withdrawn>(self, record),
            <Sent as Event>::NAME => project_as::<Sent>(self, record),
            <Received as Event>::NAME => project_as::<Received>(self, record),
            _ => Ok(()),
        }
    }

    fn document_collections(&mut self) -> Vec<(&'static str, &mut dyn DocumentCollection)> {
        vec![("balances", &mut self.balances)]
    }
}

impl Registered for CrashLedger {
    const REGISTRATION: Registration = Registration::Projection(&ProjectionDescriptor {
        name: <CrashLedger as cqrs_core::Projection>::NAME,
        rust_type: concat!(module_path!(), "::CrashLedger"),
        events: <CrashLedger as cqrs_core::Projection>::EVENTS,
        start: cqrs_core::__private::start_projection::<CrashLedger>,
        start_inline: Some(cqrs_core::__private::start_inline_projection::<CrashLedger>),
    });
}

/// The ledger as a running engine holds it.
#[derive(Query, Deserialize, Debug)]
#[query(projection = CrashLedger, output = LedgerView)]
pub(crate) struct ViewLedger;

/// What [`ViewLedger`] answers.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct LedgerView {
    /// Every document, by key.
    pub(crate) balances: BTreeMap<String, u64>,
    /// See [`CrashLedger::projected_here`].
    pub(crate) projected_here: u64,
}

impl Answer<ViewLedger> for CrashLedger {
    fn answer(&self, _: &ViewLedger) -> LedgerView {
        LedgerView {
            balances: documents(self),
            projected_here: self.projected_here,
        }
    }
}

/// The ledger's documents, through `Documents::iter`.
pub(crate) fn documents(ledger: &CrashLedger) -> BTreeMap<String, u64> {
    ledger
        .balances
        .iter()
        .map(|(key, balance)| (key.clone(), *balance))
        .collect()
}

/// Everything above, for `Engine::builder().registry(..)`.
pub(crate) fn registry() -> Registry {
    Registry::new()
        .register::<CrashAccount>()
        .register::<CrashOpen>()
        .register::<CrashDeposit>()
        .register::<CrashWithdraw>()
        .register::<CrashSend>()
        .register::<CrashReceive>()
        .register::<CrashLedger>()
        .register::<ViewLedger>()
}
