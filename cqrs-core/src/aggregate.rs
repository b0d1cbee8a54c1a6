//! The write model: aggregates, how they fold events and how they handle commands.

use std::future::Future;

use crate::command::Command;
use crate::event::{EventSet, Events};

/// A consistency boundary: the state one stream of events folds into, and the
/// rules its commands are checked against.
///
/// Implemented by `#[derive(Aggregate)]`, which also generates the event enum
/// (`<Aggregate>Event`), the fold over it and the command dispatch. Users write
/// one [`Apply`] impl per event and one [`Handle`] (or [`HandleAsync`]) impl per
/// command.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate",
    label = "not an aggregate",
    note = "derive it: `#[derive(Aggregate, Default)]` with `#[aggregate(events(..), commands(..), error = ..)]`"
)]
pub trait Aggregate: Default + Send + Sync + Sized + 'static {
    /// The stream type name (`#[aggregate(name = "..")]`, default: the type name).
    const NAME: &'static str;
    /// Take a snapshot every this many events (`snapshot_every = N`), if set.
    const SNAPSHOT_EVERY: Option<u64>;

    /// The generated event enum.
    type Event: EventSet;
    /// The domain error its handlers return (`error = T`).
    type Error: std::error::Error + Send + Sync + 'static;
    /// What handlers may use besides the state (`services = T`, default `()`).
    type Services: Send + Sync + 'static;

    /// Folds one event into the state (generated: dispatches to [`Apply`]).
    fn apply_event(&mut self, event: &Self::Event);

    /// The state as snapshot bytes, when the aggregate takes snapshots.
    #[doc(hidden)]
    fn encode_snapshot(&self) -> Option<Result<Vec<u8>, serde_json::Error>>;

    /// The state back from snapshot bytes, when the aggregate takes
    /// snapshots: an error for a snapshot taken by another shape of the
    /// state (its fingerprint differs) or one that does not decode.
    #[doc(hidden)]
    fn decode_snapshot(bytes: &[u8]) -> Option<Result<Self, crate::error::DecodeError>>;

    /// The domain error as JSON, when its type is `Serialize` (generated):
    /// what the HTTP adapter puts in a refused command's problem.
    #[doc(hidden)]
    fn error_json(error: &Self::Error) -> Option<serde_json::Value> {
        let _ = error;
        None
    }
}

/// The services of an aggregate that declares none (`()`), which need no
/// registration; `None` for any other services type.
pub(crate) fn unit_services<S: 'static>() -> Option<&'static S> {
    static UNIT: () = ();
    (&UNIT as &dyn std::any::Any).downcast_ref::<S>()
}

/// Folds event `E` into the aggregate's state.
///
/// Must not fail and must not look anywhere but at the event: it runs again on
/// every reload.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` lists event `{E}` but does not apply it",
    label = "missing `impl Apply<{E}> for {Self}`",
    note = "add `impl Apply<{E}> for {Self} {{ fn apply(&mut self, event: &{E}) {{ .. }} }}`"
)]
pub trait Apply<E> {
    /// Changes the state by what the event says happened.
    fn apply(&mut self, event: &E);
}

/// Decides command `C` against the current state: the events to record, or a
/// domain error.
///
/// For a handler that awaits or uses the aggregate's services, mark the command
/// `#[command(aggregate = X, async)]` and implement [`HandleAsync`] instead.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` lists command `{C}` but does not handle it",
    label = "missing `impl Handle<{C}> for {Self}`",
    note = "add `impl Handle<{C}> for {Self} {{ fn handle(&self, command: &{C}) -> Result<Events<Self>, Self::Error> {{ .. }} }}`"
)]
pub trait Handle<C: Command<Aggregate = Self>>: Aggregate {
    /// The events that record the command's effect, or why it is refused.
    ///
    /// # Errors
    ///
    /// The aggregate's domain error, returned to the caller of
    /// [`Engine::execute`](crate::Engine::execute) as is.
    fn handle(&self, command: &C) -> Result<Events<Self>, Self::Error>;
}

/// The async form of [`Handle`], which also receives the aggregate's services
/// (`#[aggregate(services = T)]`). Selected per command with
/// `#[command(aggregate = X, async)]`.
#[diagnostic::on_unimplemented(
    message = "command `{C}` is marked `async` but aggregate `{Self}` has no async handler for it",
    label = "missing `impl HandleAsync<{C}> for {Self}`",
    note = "add `impl HandleAsync<{C}> for {Self} {{ async fn handle(&self, command: &{C}, services: &Self::Services) -> Result<Events<Self>, Self::Error> {{ .. }} }}`"
)]
pub trait HandleAsync<C: Command<Aggregate = Self>>: Aggregate {
    /// The events that record the command's effect, or why it is refused.
    ///
    /// # Errors
    ///
    /// The aggregate's domain error, returned to the caller as is.
    fn handle(
        &self,
        command: &C,
        services: &Self::Services,
    ) -> impl Future<Output = Result<Events<Self>, Self::Error>> + Send;
}
