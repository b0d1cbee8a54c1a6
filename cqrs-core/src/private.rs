//! Not public API: what the derives' generated code calls. May change in any
//! release without notice.

pub use inventory;
pub use serde;
pub use serde_json;

pub use crate::schema::fingerprint;

use serde::de::DeserializeOwned;
use serde::{Deserializer, Serialize, Serializer};

use crate::aggregate::Aggregate;
use crate::command::Command;
use crate::error::DecodeError;
use crate::event::{Event, EventSet};
use crate::projection::Projection;
use crate::projection::runner::{ProjectionHost, RunningProjection};
use crate::registry::{EventDescriptor, Registered, Registration};
use crate::upcast::{UpcastError, UpcastOutput};

/// Encodes one event's payload.
///
/// # Errors
///
/// When the event's `Serialize` fails.
pub fn encode_event<E: Event>(event: &E) -> Result<Vec<u8>, serde_json::Error> {
    crate::codec::encode_event(event)
}

/// A command's stream id from its `#[id]` field: generic rather than through
/// `&dyn Display`, so that `String`, `&str` and the integers take their
/// `ToString` fast paths instead of the formatting machinery.
pub fn stream_id<T: std::fmt::Display + ?Sized>(id: &T) -> String {
    id.to_string()
}

/// Decodes a payload stored as `name`/`version` into `E`.
///
/// # Errors
///
/// Another name, an unsupported version or a payload that does not decode.
pub fn decode_event<E: Event>(name: &str, version: u32, payload: &[u8]) -> Result<E, DecodeError> {
    crate::codec::decode_event(name, version, payload)
}

/// The error for a name no event of the set has.
pub fn unknown_event(name: &str, version: u32) -> DecodeError {
    crate::codec::unknown_event(name, version)
}

/// Whether `name` is the name or an alias of `E`.
pub fn is_stored_name<E: Event>(name: &str) -> bool {
    crate::codec::is_stored_name::<E>(name)
}

/// Runs a JSON upcaster (`upcast(from = N, with = f)`): `f` returns the
/// value, or a `Result` of it.
///
/// # Errors
///
/// The upcaster's.
pub fn json_upcast<F, R>(f: F, value: serde_json::Value) -> Result<serde_json::Value, UpcastError>
where
    F: FnOnce(serde_json::Value) -> R,
    R: UpcastOutput,
{
    f(value).into_result()
}

/// Decodes the JSON of an older version as its shape (`shape = S`).
///
/// # Errors
///
/// When the JSON is not that shape.
pub fn decode_shape<S: DeserializeOwned>(value: serde_json::Value) -> Result<S, serde_json::Error> {
    serde_json::from_value(value)
}

/// `E::ALIASES`, read through a bound (see [`event_name`]).
pub const fn event_aliases<E: Event>() -> &'static [&'static str] {
    E::ALIASES
}

/// The descriptor event `E` registered (its Rust path is where it is
/// defined, which a derive listing it cannot know), or one made of its
/// constants, named `rust_type`, when it registered something else.
pub const fn event_descriptor<E: Event + Registered>(rust_type: &'static str) -> EventDescriptor {
    match E::REGISTRATION {
        Registration::Event(descriptor) => *descriptor,
        _ => EventDescriptor {
            name: E::NAME,
            version: E::VERSION,
            rust_type,
            aliases: E::ALIASES,
            upcasts: &[],
            shape: E::SHAPE,
        },
    }
}

/// Serializes one variant of an event enum.
///
/// # Errors
///
/// The serializer's.
pub fn serialize_tagged<S: Serializer, E: Event>(
    serializer: S,
    event: &E,
) -> Result<S::Ok, S::Error> {
    crate::codec::serialize_tagged(serializer, event)
}

/// Deserializes an event enum.
///
/// # Errors
///
/// The deserializer's, or a [`DecodeError`] as a custom error.
pub fn deserialize_tagged<'de, D: Deserializer<'de>, S: EventSet>(
    deserializer: D,
) -> Result<S, D::Error> {
    crate::codec::deserialize_tagged(deserializer)
}

/// Encodes an aggregate snapshot, marked with the fingerprint of the
/// state's shape.
///
/// # Errors
///
/// When the state's `Serialize` fails.
pub fn encode_snapshot<T: Serialize>(state: &T, shape: u64) -> Result<Vec<u8>, serde_json::Error> {
    crate::codec::encode_snapshot(state, shape)
}

/// Decodes an aggregate snapshot taken by the shape with fingerprint
/// `shape`.
///
/// # Errors
///
/// A snapshot of another shape, or bytes that are not the state's shape.
pub fn decode_snapshot<T: DeserializeOwned>(
    aggregate: &'static str,
    bytes: &[u8],
    shape: u64,
) -> Result<T, DecodeError> {
    crate::codec::decode_snapshot(aggregate, bytes, shape)
}

pub use crate::dispatch::{execute_json, execute_json_lenient, query_json, query_json_lenient};

/// Starts projection `P` inline.
pub fn start_inline_projection<P: Projection>(
    host: &ProjectionHost,
) -> (
    RunningProjection,
    std::sync::Arc<dyn crate::store::inline::InlineProjection>,
) {
    crate::projection::inline::start_inline::<P>(host)
}

/// Starts projection `P`.
pub fn start_projection<P: Projection>(host: &ProjectionHost) -> RunningProjection {
    crate::projection::runner::start::<P>(host)
}

/// The id of a type, as a `fn` pointer a `static` descriptor can hold.
pub fn type_id_of<T: ?Sized + 'static>() -> std::any::TypeId {
    std::any::TypeId::of::<T>()
}

/// `<T as Checked<{ is_event::<T>() }>>::Type` is `T` when `T` passes the
/// check, and an error type when it does not: the check's bound fails once,
/// with its trait's message, and the error type silences every later use of
/// `T`, so one mistake in a derive's input gives one error.
pub trait Checked<const OK: bool> {
    /// `Self`, once checked.
    type Type: ?Sized;
}

impl<T: ?Sized> Checked<true> for T {
    type Type = T;
}

/// The check of a type listed in `events(..)`.
pub const fn is_event<E: Event>() -> bool {
    true
}

/// What a type listed in `commands(..)` of aggregate `A` must be.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command of aggregate `{A}`",
    label = "not a command of `{A}`",
    note = "a command in `commands(..)` targets this aggregate: `#[derive(Command)]` with `#[command(aggregate = {A})]`"
)]
pub trait CommandOf<A> {}

#[diagnostic::do_not_recommend]
impl<A, C: Command<Aggregate = A>> CommandOf<A> for C {}

/// The check of a type listed in `commands(..)` of aggregate `A`.
pub const fn is_command_of<C: CommandOf<A>, A>() -> bool {
    true
}

/// What `shape = S` in `upcast(..)` needs of `S`, as one bound with one
/// message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Deserialize`, so stored events of its version cannot be read as it",
    label = "needs `Deserialize`",
    note = "the shape of an older version is a plain struct with `#[derive(Deserialize)]`"
)]
pub trait OldShape: DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: DeserializeOwned> OldShape for T {}

/// The check of `shape = S` in `upcast(..)`.
pub const fn is_shape<S: OldShape>() -> bool {
    true
}

/// The check of `#[command(aggregate = X)]`.
pub const fn is_aggregate<A: Aggregate>() -> bool {
    true
}

/// The check of `#[query(projection = P)]`.
pub const fn is_projection<P: Projection>() -> bool {
    true
}

/// What `snapshot_every` needs of the aggregate, as one bound with one message.
#[diagnostic::on_unimplemented(
    message = "`snapshot_every` stores `{Self}` as snapshots, but `{Self}` is not `Serialize` and `Deserialize`",
    label = "needs `Serialize` and `Deserialize` on `{Self}`",
    note = "add `#[derive(Serialize, Deserialize)]` to `{Self}`, or remove `snapshot_every`"
)]
pub trait SnapshotState: Serialize + DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> SnapshotState for T {}

/// The check of `snapshot_every = N`.
pub const fn is_snapshot_state<T: SnapshotState>() -> bool {
    true
}

/// `E::NAME`, read through a bound rather than a path, so an event whose
/// own derive failed (say, without `Serialize`) is reported there only.
pub const fn event_name<E: Event>() -> &'static str {
    E::NAME
}

/// `E::VERSION`, see [`event_name`].
pub const fn event_version<E: Event>() -> u32 {
    E::VERSION
}

/// The check of a type listed in `commands(..)` of a process manager.
pub const fn is_command<C: crate::Command>() -> bool {
    true
}

/// Starts a process manager's runner (`ProcessDescriptor::start`).
pub fn start_process<P: crate::process::ProcessManager>(
    host: &crate::process::runner::ProcessHost,
) -> crate::process::RunningProcess {
    crate::process::runner::start::<P>(host)
}

pub use crate::process::{
    NoRecover, NoTimeout, Probe, RecoverProbe, ViaRecover, ViaTimeout, route,
};

/// Finds `Serialize` on a domain error type, in the derive's expansion
/// (method resolution on a concrete type): `Some(json)` when it is.
#[derive(Debug)]
pub struct ErrorProbe<E>(pub std::marker::PhantomData<E>);

/// The probe's answer when the error is `Serialize`.
pub trait ViaErrorJson<E> {
    /// The error as JSON.
    fn error_json(&self, error: &E) -> Option<serde_json::Value>;
}

impl<E: Serialize> ViaErrorJson<E> for ErrorProbe<E> {
    fn error_json(&self, error: &E) -> Option<serde_json::Value> {
        serde_json::to_value(error).ok()
    }
}

/// The probe's answer otherwise.
pub trait NoErrorJson<E> {
    /// `None`.
    fn error_json(&self, error: &E) -> Option<serde_json::Value>;
}

impl<E> NoErrorJson<E> for &ErrorProbe<E> {
    fn error_json(&self, _: &E) -> Option<serde_json::Value> {
        None
    }
}

/// A boxed domain error of aggregate `A` as JSON, if it is one and is
/// `Serialize` (`CommandDescriptor::error_json`).
pub fn error_json<A: Aggregate>(
    error: &(dyn std::error::Error + Send + Sync + 'static),
) -> Option<serde_json::Value> {
    error.downcast_ref::<A::Error>().and_then(A::error_json)
}
