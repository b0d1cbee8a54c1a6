//! Process managers: workflows across aggregates.
//!
//! A process manager reacts to events of any aggregates by sending
//! commands, so that a change that spans several aggregates (move money
//! from one account to another) finishes, or is undone, even when the
//! process running it dies half way. `#[derive(ProcessManager)]` on a
//! struct makes it the state of one running workflow *instance*:
//!
//! - each listed event finds its instance with an `impl Correlate<E>`
//!   (a key read from the event) and may start one;
//! - each listed event has an `impl React<E>`, which changes the
//!   instance's state and returns a [`Reaction`]: the commands to send, a
//!   deadline, or the end of the instance;
//! - a command it sent that the aggregate refused comes back to an
//!   `impl Recover<C>` if there is one (the instance fails otherwise);
//! - a deadline that passes comes to its `impl Timeout`.
//!
//! ```standalone_crate
//! use cqrs_core::prelude::*;
//! use cqrs_core::process::{Correlate, Correlation, React, Reaction, Timeout, Deadline};
//! use std::time::Duration;
//! # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! # pub struct Ordered { pub order: String }
//! # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! # pub struct Paid { pub order: String }
//! # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! # pub struct Cancelled;
//! # #[derive(Command, Serialize, Deserialize, Debug)]
//! # #[command(aggregate = Order)]
//! # pub struct Cancel { #[id] pub order: String }
//! # #[derive(Command, Serialize, Deserialize, Debug)]
//! # #[command(aggregate = Order)]
//! # pub struct Place { #[id] pub order: String }
//! # #[derive(Aggregate, Default)]
//! # #[aggregate(name = "order", events(Ordered, Paid, Cancelled), commands(Place, Cancel), error = std::io::Error)]
//! # pub struct Order;
//! # impl Apply<Ordered> for Order { fn apply(&mut self, _: &Ordered) {} }
//! # impl Apply<Paid> for Order { fn apply(&mut self, _: &Paid) {} }
//! # impl Apply<Cancelled> for Order { fn apply(&mut self, _: &Cancelled) {} }
//! # impl Handle<Place> for Order { fn handle(&self, c: &Place) -> Result<Events<Self>, std::io::Error> { Ok(events![Ordered { order: c.order.clone() }]) } }
//! # impl Handle<Cancel> for Order { fn handle(&self, _: &Cancel) -> Result<Events<Self>, std::io::Error> { Ok(events![Cancelled]) } }
//! /// Cancels an order that is not paid within an hour.
//! #[derive(ProcessManager, Default, Serialize, Deserialize)]
//! #[process(name = "payment", events(Ordered, Paid), commands(Cancel))]
//! pub struct Payment { order: String }
//!
//! impl Correlate<Ordered> for Payment {
//!     fn correlate(e: &Envelope<Ordered>) -> Correlation { Correlation::start(&e.order) }
//! }
//! impl Correlate<Paid> for Payment {
//!     fn correlate(e: &Envelope<Paid>) -> Correlation { Correlation::join(&e.order) }
//! }
//! impl React<Ordered> for Payment {
//!     fn react(&mut self, e: &Envelope<Ordered>) -> Reaction<Self> {
//!         self.order = e.order.clone();
//!         Reaction::new().deadline("payment", Duration::from_secs(3600))
//!     }
//! }
//! impl React<Paid> for Payment {
//!     fn react(&mut self, _: &Envelope<Paid>) -> Reaction<Self> { Reaction::new().complete() }
//! }
//! impl Timeout for Payment {
//!     fn timeout(&mut self, _: &Deadline) -> Reaction<Self> {
//!         Reaction::new().send(Cancel { order: self.order.clone() }).complete()
//!     }
//! }
//! ```
//!
//! # What the runtime guarantees
//!
//! A process manager reads the global log like a durable projection: one
//! runner at a time across the processes that share the store (the
//! [lease](crate::subscription::LeaseOptions)), its instances saved with
//! its checkpoint in one transaction, in the event store. Each command
//! goes through the engine with the triggering event's id as its
//! `causation_id`, the event's correlation id carried over, and an
//! [idempotency key](crate::Metadata::idempotency_key) made of the
//! manager, the instance, the event and the command's index
//! (`{manager}/{instance}/{event id}/{index}`): a crash between sending a
//! command and saving the checkpoint reads the event again and sends the
//! same commands with the same keys, which the engine answers with their
//! first receipts instead of running them twice. Reactions must therefore
//! depend only on the instance's state and the input, not on the time or
//! on chance.
//!
//! Deadlines are saved with their instance. When one passes (by the
//! engine's [`Clock`]), the holder of the lease appends a deadline event
//! to the instance's own stream (`$process:{manager}`, id the instance
//! key), once, by idempotency key; the manager reads it from the log like
//! any other event, so it reaches `Timeout` exactly once, after a restart
//! too. Completing an instance cancels its deadlines.
//!
//! Status and history: [`Engine::process_status`](crate::Engine::process_status)
//! counts instances running, completed and failed;
//! [`Engine::process_instance`](crate::Engine::process_instance) shows one,
//! with which input caused which command.

mod clock;
mod kit;
pub(crate) mod runner;

use std::any::Any;
use std::fmt::{self, Debug, Display};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use clock::{Clock, ManualClock, SystemClock};
pub use kit::ProcessTest;
pub use runner::{ProcessStatus, RunningProcess};

use crate::BoxFuture;
use crate::aggregate::Aggregate;
use crate::command::{Command, Receipt};
use crate::engine::Engine;
use crate::error::{CommandError, DecodeError, Error};
use crate::projection::Envelope;
use crate::record::{Metadata, RecordedEvent, StreamId, Timestamp};
use crate::registry::EventDescriptor;

/// The state of one instance of a workflow, and how events reach it.
///
/// Implemented by `#[derive(ProcessManager)]`; users write one
/// [`Correlate`] and one [`React`] impl per listed event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a process manager",
    label = "not a process manager",
    note = "derive it: `#[derive(ProcessManager, Default, Serialize, Deserialize)]` with `#[process(events(..), commands(..))]`"
)]
pub trait ProcessManager: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The manager's name (`#[process(name = "..")]`, default: the type name).
    const NAME: &'static str;
    /// The names of the events it reacts to.
    const EVENTS: &'static [&'static str];
    /// The names of the commands it may send.
    const COMMANDS: &'static [&'static str];
    /// Its events as they registered (generated, in the order of `EVENTS`).
    #[doc(hidden)]
    const EVENT_DESCRIPTORS: &'static [EventDescriptor] = &[];

    /// Whether a stored event of this name is one it reacts to.
    #[doc(hidden)]
    fn consumes(name: &str) -> bool {
        crate::projection::consumes(Self::EVENTS, Self::EVENT_DESCRIPTORS, name)
    }

    /// Decodes a recorded event it reacts to and finds its instance
    /// (generated: calls [`Correlate`], and [`React`] when run).
    ///
    /// # Errors
    ///
    /// When a consumed event does not decode.
    #[doc(hidden)]
    fn route(record: &Arc<RecordedEvent>) -> Result<Option<Routed<Self>>, DecodeError>;

    /// Runs its [`Timeout`] impl, if it has one (generated).
    #[doc(hidden)]
    fn on_deadline(&mut self, deadline: &Deadline) -> Option<Reaction<Self>>;
}

/// How an event finds the instance it concerns.
#[diagnostic::on_unimplemented(
    message = "process manager `{Self}` lists event `{E}` but does not say which instance it concerns",
    label = "missing `impl Correlate<{E}> for {Self}`",
    note = "add `impl Correlate<{E}> for {Self} {{ fn correlate(event: &Envelope<{E}>) -> Correlation {{ Correlation::start(..) }} }}`"
)]
pub trait Correlate<E> {
    /// The instance's key, and whether the event may start it.
    fn correlate(event: &Envelope<E>) -> Correlation;
}

/// Reacts to event `E`: changes the instance's state and says what to do.
#[diagnostic::on_unimplemented(
    message = "process manager `{Self}` lists event `{E}` but does not react to it",
    label = "missing `impl React<{E}> for {Self}`",
    note = "add `impl React<{E}> for {Self} {{ fn react(&mut self, event: &Envelope<{E}>) -> Reaction<Self> {{ .. }} }}`"
)]
pub trait React<E>: Sized {
    /// The commands to send (and deadlines to set) for one event.
    fn react(&mut self, event: &Envelope<E>) -> Reaction<Self>;
}

/// Reacts to the refusal of a command the manager sent (a domain error of
/// its aggregate): undo what was done, try another way. Without it, a
/// refused command fails the instance. Only for a command the manager
/// lists: it could never send another one.
pub trait Recover<C: Command>: Issues<C> {
    /// What to do now that `refused.command` was refused.
    fn recover(&mut self, refused: &Refused<C>) -> Reaction<Self>;
}

/// Reacts to a deadline set by [`Reaction::deadline`] that passed.
#[diagnostic::on_unimplemented(
    message = "process manager `{Self}` sets a deadline but does not react to one",
    label = "missing `impl Timeout for {Self}`",
    note = "add `impl Timeout for {Self} {{ fn timeout(&mut self, deadline: &Deadline) -> Reaction<Self> {{ .. }} }}`"
)]
pub trait Timeout: Sized {
    /// What to do now that `deadline` passed.
    fn timeout(&mut self, deadline: &Deadline) -> Reaction<Self>;
}

/// What a process manager may send: the commands it lists (generated,
/// one impl per command in `commands(..)`).
#[diagnostic::on_unimplemented(
    message = "process manager `{Self}` does not list command `{C}`",
    label = "`{C}` is not in `commands(..)` of `{Self}`",
    note = "add it to the manager's attribute: `#[process(.., commands(.., {C}))]`"
)]
pub trait Issues<C: Command>: Sized {
    /// Runs its [`Recover`] impl for `C`, if it has one (generated).
    #[doc(hidden)]
    fn recover_from(&mut self, refused: &Refused<C>) -> Option<Reaction<Self>>;
}

/// Which instance an event concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Correlation {
    /// The instance with this key; started (from `Default`) if there is none.
    Start(String),
    /// The running instance with this key; the event is ignored if there
    /// is none (or it ended).
    Join(String),
    /// No instance: the event is ignored.
    Ignore,
}

impl Correlation {
    /// The instance `key`, started if there is none.
    pub fn start(key: impl Display) -> Self {
        Self::Start(key.to_string())
    }

    /// The running instance `key`, if there is one.
    pub fn join(key: impl Display) -> Self {
        Self::Join(key.to_string())
    }

    /// No instance.
    pub fn ignore() -> Self {
        Self::Ignore
    }
}

/// A command that was refused, with its aggregate's error.
#[derive(Debug)]
pub struct Refused<C: Command> {
    /// The command, as sent.
    pub command: C,
    /// Why its aggregate refused it.
    pub error: <C::Aggregate as Aggregate>::Error,
}

/// A deadline that passed, as [`Timeout`] receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// The name it was set under.
    pub name: String,
    /// When it was due.
    pub due: Timestamp,
}

/// What one reaction asks for: commands to send, deadlines to set or
/// cancel, and whether the instance ends.
///
/// ```
/// # use cqrs_core::process::Reaction;
/// # #[derive(Default)] struct Idle;
/// let reaction: Reaction<Idle> = Reaction::new().complete();
/// assert!(reaction.commands().is_empty());
/// ```
#[must_use = "a reaction does nothing unless returned"]
pub struct Reaction<P> {
    pub(crate) commands: Vec<Box<dyn Outgoing<P>>>,
    pub(crate) deadlines: Vec<(String, Option<Duration>)>,
    pub(crate) end: Option<Ending>,
}

/// How an instance ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Completed,
    Failed(String),
}

impl<P> Default for Reaction<P> {
    fn default() -> Self {
        Self {
            commands: Vec::new(),
            deadlines: Vec::new(),
            end: None,
        }
    }
}

impl<P> Debug for Reaction<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reaction")
            .field("commands", &self.commands())
            .field("deadlines", &self.deadlines)
            .field("end", &self.end)
            .finish()
    }
}

impl<P> Reaction<P> {
    /// Nothing to do (yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `command` (after the commands added before it).
    pub fn send<C>(mut self, command: C) -> Self
    where
        C: Command + Serialize + DeserializeOwned,
        P: Issues<C> + Send + 'static,
    {
        self.commands.push(Box::new(command));
        self
    }

    /// Sets deadline `name` to `after` from now (by the engine's clock),
    /// replacing one set before under that name.
    pub fn deadline(mut self, name: impl Into<String>, after: Duration) -> Self
    where
        P: Timeout,
    {
        self.deadlines.push((name.into(), Some(after)));
        self
    }

    /// Cancels deadline `name`, if it is set.
    pub fn cancel_deadline(mut self, name: impl Into<String>) -> Self {
        self.deadlines.push((name.into(), None));
        self
    }

    /// Ends the instance, done: its deadlines are cancelled and later
    /// events for it are ignored.
    pub fn complete(mut self) -> Self {
        self.end = Some(Ending::Completed);
        self
    }

    /// Ends the instance as failed, with `reason`.
    pub fn fail(mut self, reason: impl Into<String>) -> Self {
        self.end = Some(Ending::Failed(reason.into()));
        self
    }

    /// The commands it sends, in order, as (name, JSON body).
    pub fn commands(&self) -> Vec<Issued> {
        self.commands.iter().map(|c| c.issued()).collect()
    }
}

/// A command as a process manager issued it: its name, target stream and
/// JSON body. What the test kit compares and the history shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// The command's name.
    pub command: String,
    /// Its target stream.
    pub stream: StreamId,
    /// The command as JSON.
    pub body: serde_json::Value,
}

impl Issued {
    /// `command`, as a process manager would issue it. A command that does
    /// not serialize to JSON (a map with keys that are not strings) shows
    /// the error as its body, a JSON string.
    pub fn of<C: Command + Serialize>(command: &C) -> Self {
        Self {
            command: C::NAME.to_owned(),
            stream: StreamId::of(<C::Aggregate as Aggregate>::NAME, command.aggregate_id()),
            body: serde_json::to_value(command).unwrap_or_else(|e| {
                serde_json::Value::String(format!("(does not serialize to JSON: {e})"))
            }),
        }
    }
}

/// A boxed reaction of `P`, to run on its instance.
pub type ReactFn<P> = Box<dyn FnOnce(&mut P) -> Reaction<P> + Send>;

/// A `Recover` impl, as a function.
#[doc(hidden)]
pub type RecoverFn<P, C> = fn(&mut P, &Refused<C>) -> Reaction<P>;

/// A reaction to run on an instance, once it is found.
pub struct Routed<P> {
    /// Which instance.
    pub correlation: Correlation,
    /// The reaction.
    pub react: ReactFn<P>,
}

impl<P> Debug for Routed<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routed")
            .field("correlation", &self.correlation)
            .finish_non_exhaustive()
    }
}

/// The route of event `E` to `P` (what the derive generates per event):
/// its correlation, and its reaction to run.
#[doc(hidden)]
pub fn route<P, E>(envelope: Envelope<E>) -> Routed<P>
where
    P: Correlate<E> + React<E> + 'static,
    E: Send + Sync + 'static,
{
    Routed {
        correlation: <P as Correlate<E>>::correlate(&envelope),
        react: Box::new(move |state: &mut P| <P as React<E>>::react(state, &envelope)),
    }
}

/// What became of one command sent.
pub(crate) enum Outcome<P> {
    Done(Receipt),
    Refused {
        error: String,
        recovery: Option<Reaction<P>>,
    },
    Failed(Error),
}

/// A command in a reaction, its type erased.
pub(crate) trait Outgoing<P>: Send + Sync {
    fn issued(&self) -> Issued;
    fn send<'a>(
        &'a self,
        engine: &'a Engine,
        metadata: Metadata,
        state: &'a mut P,
    ) -> BoxFuture<'a, Outcome<P>>;
    /// The command refused with `error` (the test kit's refusals); the
    /// error back when it is not the aggregate's error type.
    fn refuse(
        &self,
        error: Box<dyn Any + Send>,
        state: &mut P,
    ) -> Result<Outcome<P>, Box<dyn Any + Send>>;
}

impl<P, C> Outgoing<P> for C
where
    C: Command + Serialize + DeserializeOwned,
    P: Issues<C> + Send + 'static,
{
    fn issued(&self) -> Issued {
        Issued::of(self)
    }

    fn send<'a>(
        &'a self,
        engine: &'a Engine,
        metadata: Metadata,
        state: &'a mut P,
    ) -> BoxFuture<'a, Outcome<P>> {
        Box::pin(async move {
            match engine.execute_ref(self, metadata).await {
                Ok(receipt) => Outcome::Done(receipt),
                Err(CommandError::Engine(e)) => Outcome::Failed(e),
                Err(CommandError::Domain(error)) => refused(self, error, state),
            }
        })
    }

    fn refuse(
        &self,
        error: Box<dyn Any + Send>,
        state: &mut P,
    ) -> Result<Outcome<P>, Box<dyn Any + Send>> {
        let error = *error.downcast::<<C::Aggregate as Aggregate>::Error>()?;
        Ok(refused(self, error, state))
    }
}

/// What the refusal of `command` with `error` leads to: the manager's
/// `Recover<C>`, if it has one.
fn refused<C, P>(
    command: &C,
    error: <C::Aggregate as Aggregate>::Error,
    state: &mut P,
) -> Outcome<P>
where
    C: Command + Serialize + DeserializeOwned,
    P: Issues<C>,
{
    let message = error.to_string();
    // The command is sent again after a restart: it is kept, and the
    // refusal holds a copy made through JSON.
    let recovery =
        copy_command(command).and_then(|command| state.recover_from(&Refused { command, error }));
    Outcome::Refused {
        error: message,
        recovery,
    }
}

/// A copy of `command` through its JSON form (commands derive
/// `Deserialize` for dispatch by name, not always `Clone`).
fn copy_command<C: Serialize + DeserializeOwned>(command: &C) -> Option<C> {
    serde_json::from_value(serde_json::to_value(command).ok()?).ok()
}

/// The key an instance's `n`th command for input `event_id` is sent with.
pub(crate) fn idempotency_key(manager: &str, instance: &str, event_id: Uuid, n: usize) -> String {
    format!("{manager}/{instance}/{event_id}/{n}")
}

/// What the state of a process manager needs: `Default` to start an
/// instance, `Serialize` and `Deserialize` to save it with the checkpoint.
/// The derive checks it once, on the type's name, and refers to its
/// [`ProcessManager`] impl only through the check, so a missing derive is
/// one error rather than one per supertrait and item.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "process manager `{Self}` needs `Default`, `Serialize` and `Deserialize`",
    label = "its instances start from `Default` and are saved as JSON",
    note = "derive them: `#[derive(ProcessManager, Default, Serialize, Deserialize)]`"
)]
pub trait ProcessState: Default + Serialize + DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<P: Default + Serialize + DeserializeOwned> ProcessState for P {}

/// The derive's check of [`ProcessState`].
#[doc(hidden)]
pub const fn is_process_state<P: ProcessState>() -> bool {
    true
}

/// The derive's check that `P` has its `Correlate` impl for a listed
/// event `E`, made before the `React` one is needed: an event without
/// either impl is one error.
#[doc(hidden)]
pub const fn is_correlated<E, P: Correlate<E>>() -> bool {
    true
}

/// Runs `P`'s `Timeout` when it has one: `Timeout` is found through
/// method resolution on a concrete type (the derive's expansion), so a
/// manager without deadlines needs no empty impl.
#[doc(hidden)]
#[derive(Debug)]
pub struct Probe<P>(pub std::marker::PhantomData<P>);

#[doc(hidden)]
pub trait ViaTimeout<P> {
    fn timeout_fn(&self) -> Option<fn(&mut P, &Deadline) -> Reaction<P>>;
}

impl<P: Timeout> ViaTimeout<P> for Probe<P> {
    fn timeout_fn(&self) -> Option<fn(&mut P, &Deadline) -> Reaction<P>> {
        Some(<P as Timeout>::timeout)
    }
}

#[doc(hidden)]
pub trait NoTimeout<P> {
    fn timeout_fn(&self) -> Option<fn(&mut P, &Deadline) -> Reaction<P>>;
}

impl<P> NoTimeout<P> for &Probe<P> {
    fn timeout_fn(&self) -> Option<fn(&mut P, &Deadline) -> Reaction<P>> {
        None
    }
}

/// The same for `Recover<C>`.
#[doc(hidden)]
#[derive(Debug)]
pub struct RecoverProbe<P, C>(pub std::marker::PhantomData<(P, C)>);

#[doc(hidden)]
pub trait ViaRecover<P, C: Command> {
    fn recover_fn(&self) -> Option<RecoverFn<P, C>>;
}

impl<P: Recover<C>, C: Command> ViaRecover<P, C> for RecoverProbe<P, C> {
    fn recover_fn(&self) -> Option<RecoverFn<P, C>> {
        Some(<P as Recover<C>>::recover)
    }
}

#[doc(hidden)]
pub trait NoRecover<P, C: Command> {
    fn recover_fn(&self) -> Option<RecoverFn<P, C>>;
}

impl<P, C: Command> NoRecover<P, C> for &RecoverProbe<P, C> {
    fn recover_fn(&self) -> Option<RecoverFn<P, C>> {
        None
    }
}

/// How an instance stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Waiting for more input.
    Running,
    /// Done.
    Completed,
    /// Ended on a failure: a command refused without a `Recover` impl,
    /// a command that could not be sent, or `Reaction::fail`.
    Failed(String),
}

/// One instance of a process manager, as saved: for operators and tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessInstance {
    /// Its key.
    pub key: String,
    /// How it stands (`"status"`, with `"reason"` when it failed).
    #[serde(flatten)]
    pub status: InstanceStatus,
    /// Its state, as JSON.
    pub state: serde_json::Value,
    /// Its deadlines still to come.
    pub deadlines: Vec<Deadline>,
    /// Every input it took, in order, with what it sent.
    pub history: Vec<Step>,
}

/// One input an instance took, and the commands it sent for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The global position of the event (or deadline event) it took.
    pub position: u64,
    /// That event's id: the `causation_id` of the commands.
    pub event_id: Uuid,
    /// What it was: an event name, or `deadline:{name}`.
    pub input: String,
    /// The commands sent for it, in order.
    pub commands: Vec<Sent>,
}

/// A command an instance sent, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// The command.
    #[serde(flatten)]
    pub issued: Issued,
    /// The idempotency key it carried.
    pub idempotency_key: String,
    /// The global position of its last event (`None`: refused, or it
    /// appended nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// `None` when it was done; the refusal's message otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}
