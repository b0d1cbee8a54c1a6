//! CQRS and event sourcing for Rust, driven by derive macros.
//!
//! Describe a domain with plain structs and five derives; `cqrs-core` runs it:
//!
//! - [`Event`]: a fact, stored by name and schema version;
//! - [`Aggregate`]: the write model; generates its event enum, the fold
//!   ([`Apply`]) and the command dispatch ([`Handle`], [`HandleAsync`]);
//! - [`Command`]: a request to change one aggregate, its `#[id]` field naming
//!   the stream;
//! - [`Projection`]: a read model fed from the global log ([`Project`]);
//! - [`Query`]: a question a projection answers ([`Answer`]).
//!
//! The [`Engine`] executes commands with optimistic concurrency, keeps hot
//! aggregates cached, runs projections asynchronously, and answers queries,
//! optionally after a command's events are visible (read-your-writes).
//!
//! # A tour
//!
//! ```standalone_crate
//! use cqrs_core::prelude::*;
//!
//! #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! #[event(name = "account.opened")]
//! pub struct AccountOpened { pub owner: String }
//!
//! #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! pub struct MoneyDeposited { pub amount: u64 }
//!
//! #[derive(Debug, thiserror::Error)]
//! pub enum AccountError {
//!     #[error("the account is already open")]
//!     AlreadyOpen,
//!     #[error("the account is not open")]
//!     NotOpen,
//! }
//!
//! #[derive(Command, Deserialize)]
//! #[command(aggregate = Account)]
//! pub struct Open { #[id] pub account: String, pub owner: String }
//!
//! #[derive(Command, Deserialize)]
//! #[command(aggregate = Account)]
//! pub struct Deposit { #[id] pub account: String, pub amount: u64 }
//!
//! #[derive(Aggregate, Default)]
//! #[aggregate(
//!     name = "account",
//!     events(AccountOpened, MoneyDeposited),
//!     commands(Open, Deposit),
//!     error = AccountError,
//! )]
//! pub struct Account { open: bool, balance: u64 }
//!
//! impl Apply<AccountOpened> for Account {
//!     fn apply(&mut self, _: &AccountOpened) { self.open = true; }
//! }
//! impl Apply<MoneyDeposited> for Account {
//!     fn apply(&mut self, e: &MoneyDeposited) { self.balance += e.amount; }
//! }
//! impl Handle<Open> for Account {
//!     fn handle(&self, c: &Open) -> Result<Events<Self>, AccountError> {
//!         if self.open { return Err(AccountError::AlreadyOpen); }
//!         Ok(events![AccountOpened { owner: c.owner.clone() }])
//!     }
//! }
//! impl Handle<Deposit> for Account {
//!     fn handle(&self, c: &Deposit) -> Result<Events<Self>, AccountError> {
//!         if !self.open { return Err(AccountError::NotOpen); }
//!         Ok(events![MoneyDeposited { amount: c.amount }])
//!     }
//! }
//!
//! #[derive(Projection, Default)]
//! #[projection(name = "balances", events(MoneyDeposited))]
//! pub struct Balances { by_account: std::collections::HashMap<String, u64> }
//!
//! impl Project<MoneyDeposited> for Balances {
//!     fn project(&mut self, e: &Envelope<MoneyDeposited>) {
//!         *self.by_account.entry(e.aggregate_id().to_owned()).or_default() += e.amount;
//!     }
//! }
//!
//! #[derive(Query, Deserialize)]
//! #[query(projection = Balances, output = Option<u64>)]
//! pub struct BalanceOf { pub account: String }
//!
//! impl Answer<BalanceOf> for Balances {
//!     fn answer(&self, q: &BalanceOf) -> Option<u64> { self.by_account.get(&q.account).copied() }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cqrs_core::Error> {
//! let app = Engine::builder().store(MemoryStore::new()).build().await?;
//! app.execute(Open { account: "a-1".into(), owner: "Ada".into() }).await?;
//! let receipt = app.execute(Deposit { account: "a-1".into(), amount: 100 }).await?;
//! let balance = app.query(BalanceOf { account: "a-1".into() }).after(&receipt).await?;
//! assert_eq!(balance, Some(100));
//!
//! let refused = app.execute(Open { account: "a-1".into(), owner: "Bob".into() }).await;
//! assert!(matches!(refused, Err(CommandError::Domain(AccountError::AlreadyOpen))));
//! # Ok(()) }
//! ```
//!
//! # Schema evolution
//!
//! Stored events keep their shape forever. An event that changes gets a new
//! `version` and an upcaster from the old one (`#[event(version = 2,
//! upcast(from = 1, with = ..))]`, see [`upcast`]); a renamed one lists its
//! old names (`aliases(..)`). Every reader of the log decodes through
//! [`decode_event`], so old events read alike everywhere, and what this
//! build cannot read is a typed [`DecodeError`] naming where it is, never a
//! panic. The [`schema`] lock fails a test when an event's shape changed
//! without a new version.
//!
//! # Compile-time checks
//!
//! The derives reject an incomplete or inconsistent domain where the mistake
//! is: an event without its `Apply` impl, a command without its handler, a
//! command with no `#[id]`, an unknown attribute key, a duplicate name, and
//! more; see the README for the full list. What only the whole program can
//! know (two aggregates using one event name) is checked when the engine is
//! built, by the [`Registry`].

#![forbid(unsafe_code)]

// Lets the derives' `::cqrs_core::..` paths resolve inside this crate's own tests.
#[cfg(all(test, feature = "derive"))]
extern crate self as cqrs_core;

#[cfg(feature = "admin")]
pub mod admin;
mod aggregate;
mod codec;
mod command;
mod dispatch;
mod engine;
mod error;
mod event;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "nats")]
pub mod nats;
pub mod process;
pub mod projection;
mod query;
mod read_side;
mod record;
pub mod registry;
pub mod schema;
pub mod store;
pub mod subscription;
pub mod telemetry;
pub mod testing;
pub mod upcast;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

use std::future::Future;
use std::pin::Pin;

pub use aggregate::{Aggregate, Apply, Handle, HandleAsync};
pub use command::{Command, Receipt};
pub use engine::{Engine, EngineBuilder, QueryRequest};
pub use error::{
    BodyError, CommandError, DecodeError, DecodeErrorKind, Error, EventLocation, InvalidStreamId,
    PanicSite, RegistryError, RowLocation, StoreError, StreamIdPart, StreamIdRule,
};
pub use event::{Event, EventOf, EventSet, Events, decode_event};
pub use process::ProcessManager;
pub use projection::{
    Documents, Envelope, Placement, Project, Projection, ProjectionStatus, Rebuild,
    RebuildProgress, RunState, UnknownEvents, replay, replay_with,
};
pub use query::{Answer, Query};
pub use read_side::{ReadSide, ReadSideBuilder};
pub use record::{Metadata, NewEvent, RecordedEvent, StreamId, Timestamp};
pub use registry::{Catalog, Registered, Registry};
pub use store::MemoryStore;
pub use upcast::{Upcast, UpcastError, UpcastOutput, Upcaster};

#[cfg(feature = "derive")]
pub use cqrs_macros::{Aggregate, Command, Event, ProcessManager, Projection, Query};

/// The SQLite driver the store and table projections use, for the
/// handlers of projections kept in SQLite tables (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use rusqlite;
/// The PostgreSQL driver the store and table projections use, for the
/// handlers of projections kept in PostgreSQL tables (feature `postgres`).
#[cfg(feature = "postgres")]
pub use tokio_postgres;

/// A boxed, sendable future: what store traits return, so stores can be used
/// as `dyn Store`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything a domain module needs: `use cqrs_core::prelude::*;`.
///
/// Also brings serde's `Serialize` and `Deserialize` (trait and derive), which
/// events, commands and queries derive.
pub mod prelude {
    pub use crate::ProcessManager;
    pub use crate::process::{
        Correlate, Correlation, Deadline, React, Reaction, Recover, Refused, Timeout,
    };
    pub use crate::{
        Aggregate, Answer, Apply, Command, CommandError, Documents, Engine, Envelope, Event,
        EventSet, Events, Handle, HandleAsync, MemoryStore, Metadata, Project, Projection, Query,
        Receipt, Upcast, UpcastError, events,
    };
    pub use serde::{Deserialize, Serialize};
}
