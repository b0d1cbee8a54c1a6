//! The one place where typed events become stored bytes and back.
//!
//! Every reader of a stored event decodes it here, through
//! [`decode_event`]: aggregate loads (the generated
//! [`EventSet::decode`]), projections ([`Envelope::decode`](crate::Envelope::decode),
//! in process, inline, in SQL tables, and read sides fed from elsewhere),
//! [`replay`](crate::replay), [`Engine::events`](crate::Engine::events) and
//! the test kit. So every one of them reads an event under an old name
//! (`aliases(..)`) and upcasts an old version ([`crate::upcast`]) alike, and
//! none panics on what the log holds. Snapshots are encoded and decoded
//! here too, with the fingerprint of the state's shape.

use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned, Deserializer, Error as _};
use serde::ser::{SerializeStruct, Serializer};
use serde_json::Value;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::event::{Event, EventSet};
use crate::upcast::{Step, guarded};

/// Encodes an event's payload into a buffer of exactly its size.
///
/// Stores keep payloads for the life of the event: serializing into a
/// reused scratch buffer and copying out once costs one exact allocation,
/// where `serde_json::to_vec` grows a buffer (128 bytes or more) that the
/// store would then have to shrink or waste.
pub(crate) fn encode_event<E: Event>(event: &E) -> Result<Vec<u8>, serde_json::Error> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            serde_json::to_writer(&mut *buffer, event)?;
            let payload = buffer.to_vec();
            // A rare huge event should not pin its buffer to the thread.
            if buffer.capacity() > 64 * 1024 {
                *buffer = Vec::new();
            }
            Ok(payload)
        }
        // Re-entered from inside a `Serialize` impl: no scratch to share.
        Err(_) => serde_json::to_vec(event),
    })
}

/// Whether `name` is one `E` is stored under: its name or an alias.
pub(crate) fn is_stored_name<E: Event>(name: &str) -> bool {
    name == E::NAME || E::ALIASES.contains(&name)
}

/// Decodes a payload stored under `name` and `version` as `E`: under its
/// name or an alias, at its version or upcast from an older one.
pub(crate) fn decode_event<E: Event>(
    name: &str,
    version: u32,
    payload: &[u8],
) -> Result<E, DecodeError> {
    if !is_stored_name::<E>(name) {
        return Err(unknown_event(name, version));
    }
    if version > E::VERSION {
        return Err(DecodeError::new(DecodeErrorKind::NewerVersion {
            name: name.to_owned(),
            found: version,
            supported: E::VERSION,
        }));
    }
    if version < E::VERSION {
        return upcast(name, version, payload);
    }
    serde_json::from_slice(payload).map_err(|source| {
        DecodeError::new(DecodeErrorKind::Payload {
            name: name.to_owned(),
            version,
            source,
        })
    })
}

/// Runs the upcasters of `E` from version `found` on: JSON ones one
/// version each, until the current version or a typed one, which makes
/// `E` itself. Every failure, a panic included, is a typed error.
fn upcast<E: Event>(name: &str, found: u32, payload: &[u8]) -> Result<E, DecodeError> {
    let error = |kind| Err(DecodeError::new(kind));
    let older = || DecodeErrorKind::OlderVersion {
        name: name.to_owned(),
        found,
        supported: E::VERSION,
    };
    if !E::UPCASTERS.iter().any(|u| u.from() == found) {
        return error(older());
    }
    let mut value: Value = match serde_json::from_slice(payload) {
        Ok(value) => value,
        Err(source) => {
            return error(DecodeErrorKind::Payload {
                name: name.to_owned(),
                version: found,
                source,
            });
        }
    };
    let mut at = found;
    loop {
        // A chain with a gap (possible only in a hand-written `Event`
        // impl) stops where the gap is.
        let Some(upcaster) = E::UPCASTERS.iter().find(|u| u.from() == at) else {
            return error(older());
        };
        let failed = |source| DecodeErrorKind::Upcast {
            name: name.to_owned(),
            found,
            from: at,
            source,
        };
        match *upcaster.step() {
            Step::Json(step) => {
                value = match guarded(move || step(value)) {
                    Ok(Ok(next)) => next,
                    Ok(Err(source)) | Err(source) => return error(failed(source)),
                };
                at += 1;
                if at >= E::VERSION {
                    return serde_json::from_value(value).map_err(|source| {
                        DecodeError::new(DecodeErrorKind::UpcastOutput {
                            name: name.to_owned(),
                            found,
                            version: at,
                            source,
                        })
                    });
                }
            }
            Step::Typed(step) => {
                return match guarded(move || step(value)) {
                    Ok(Ok(event)) => Ok(event),
                    Ok(Err(source)) if at == found => error(DecodeErrorKind::Payload {
                        name: name.to_owned(),
                        version: found,
                        source,
                    }),
                    Ok(Err(source)) => error(DecodeErrorKind::UpcastOutput {
                        name: name.to_owned(),
                        found,
                        version: at,
                        source,
                    }),
                    Err(panicked) => error(failed(panicked)),
                };
            }
        }
    }
}

/// The error for a name no event of the set has (nor as an alias).
pub(crate) fn unknown_event(name: &str, version: u32) -> DecodeError {
    DecodeError::new(DecodeErrorKind::UnknownEvent {
        name: name.to_owned(),
        version,
    })
}

/// A snapshot as stored: the fingerprint of the state's shape, then the
/// state.
#[derive(Serialize)]
#[serde(crate = "serde")]
struct SnapshotOut<'a, T> {
    shape: String,
    state: &'a T,
}

#[derive(serde::Deserialize)]
#[serde(crate = "serde")]
struct SnapshotHead {
    // Anything else (the state) is skipped unread.
    shape: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(crate = "serde")]
struct SnapshotIn<T> {
    state: T,
}

/// Encodes a snapshot of a state whose shape has fingerprint `shape`.
pub(crate) fn encode_snapshot<T: Serialize>(
    state: &T,
    shape: u64,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&SnapshotOut {
        shape: format!("{shape:016x}"),
        state,
    })
}

/// Decodes a snapshot of aggregate `aggregate`, if it was taken by the
/// shape with fingerprint `shape`: one taken by another shape (or before
/// snapshots carried one) is [`DecodeErrorKind::SnapshotShape`], never
/// decoded into the wrong fields.
pub(crate) fn decode_snapshot<T: DeserializeOwned>(
    aggregate: &'static str,
    bytes: &[u8],
    shape: u64,
) -> Result<T, DecodeError> {
    let found = serde_json::from_slice::<SnapshotHead>(bytes)
        .ok()
        .and_then(|head| head.shape)
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok());
    if found != Some(shape) {
        return Err(DecodeError::new(DecodeErrorKind::SnapshotShape {
            aggregate,
            found,
            expected: shape,
        }));
    }
    serde_json::from_slice::<SnapshotIn<T>>(bytes)
        .map(|snapshot| snapshot.state)
        .map_err(|source| DecodeError::new(DecodeErrorKind::Snapshot { aggregate, source }))
}

/// Serializes one variant of an event enum as `{"event", "version", "data"}`.
pub(crate) fn serialize_tagged<S: Serializer, E: Event>(
    serializer: S,
    event: &E,
) -> Result<S::Ok, S::Error> {
    let mut s = serializer.serialize_struct("Event", 3)?;
    s.serialize_field("event", E::NAME)?;
    s.serialize_field("version", &E::VERSION)?;
    s.serialize_field("data", event)?;
    s.end()
}

#[derive(serde::Deserialize)]
#[serde(crate = "serde")]
struct Tagged {
    event: String,
    #[serde(default = "first_version")]
    version: u32,
    data: serde_json::Value,
}

fn first_version() -> u32 {
    1
}

/// Deserializes an event enum from `{"event", "version", "data"}`.
pub(crate) fn deserialize_tagged<'de, D: Deserializer<'de>, S: EventSet>(
    deserializer: D,
) -> Result<S, D::Error> {
    let tagged = Tagged::deserialize(deserializer)?;
    let bytes = serde_json::to_vec(&tagged.data).map_err(D::Error::custom)?;
    S::decode(&tagged.event, tagged.version, &bytes).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    struct Moved {
        to: String,
    }

    impl Event for Moved {
        const NAME: &'static str = "moved";
        const VERSION: u32 = 2;
    }

    #[test]
    fn versions_other_than_the_current_one_are_typed_errors() {
        let payload = encode_event(&Moved { to: "x".into() }).unwrap();
        assert_eq!(
            decode_event::<Moved>("moved", 2, &payload).unwrap(),
            Moved { to: "x".into() }
        );
        let newer = decode_event::<Moved>("moved", 3, &payload).unwrap_err();
        assert!(matches!(
            newer.kind,
            DecodeErrorKind::NewerVersion {
                found: 3,
                supported: 2,
                ..
            }
        ));
        let older = decode_event::<Moved>("moved", 1, &payload).unwrap_err();
        assert!(matches!(
            older.kind,
            DecodeErrorKind::OlderVersion { found: 1, .. }
        ));
        let other = decode_event::<Moved>("jumped", 2, &payload).unwrap_err();
        assert!(matches!(other.kind, DecodeErrorKind::UnknownEvent { .. }));
        let broken = decode_event::<Moved>("moved", 2, b"{\"to\": 5}").unwrap_err();
        assert!(matches!(broken.kind, DecodeErrorKind::Payload { .. }));
        assert!(broken.to_string().contains("`moved` version 2"), "{broken}");
    }

    #[test]
    fn payloads_are_exactly_sized_and_the_scratch_buffer_is_reused_safely() {
        let long = "y".repeat(100_000);
        for to in ["x", long.as_str(), "", "z"] {
            let event = Moved { to: to.into() };
            let payload = encode_event(&event).unwrap();
            assert_eq!(payload, serde_json::to_vec(&event).unwrap());
            assert_eq!(payload.capacity(), payload.len());
        }
    }
}
