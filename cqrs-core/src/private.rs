//! Not public API: what the derives' generated code calls. May change in any
//! release without notice.

pub use inventory;
pub use serde;
pub use serde_json;

use serde::de::DeserializeOwned;
use serde::{Deserializer, Serialize, Serializer};

use crate::error::DecodeError;
use crate::event::{Event, EventSet};
use crate::projection::Projection;
use crate::projection::runner::{ProjectionHost, RunningProjection};

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
pub fn unknown_event(name: &str) -> DecodeError {
    crate::codec::unknown_event(name)
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

/// Encodes an aggregate snapshot.
///
/// # Errors
///
/// When the state's `Serialize` fails.
pub fn encode_snapshot<T: Serialize>(state: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(state)
}

/// Decodes an aggregate snapshot.
///
/// # Errors
///
/// When the bytes are not the state's shape.
pub fn decode_snapshot<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

pub use crate::dispatch::{execute_json, execute_json_lenient, query_json, query_json_lenient};

/// Starts projection `P`.
pub fn start_projection<P: Projection>(host: &ProjectionHost) -> RunningProjection {
    crate::projection::runner::start::<P>(host)
}

/// The id of a type, as a `fn` pointer a `static` descriptor can hold.
pub fn type_id_of<T: ?Sized + 'static>() -> std::any::TypeId {
    std::any::TypeId::of::<T>()
}
