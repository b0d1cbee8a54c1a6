//! The one place where typed events become stored bytes and back.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{SerializeStruct, Serializer};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::event::{Event, EventSet};

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

/// Decodes a payload stored under `name` and `version` as `E`.
pub(crate) fn decode_event<E: Event>(
    name: &str,
    version: u32,
    payload: &[u8],
) -> Result<E, DecodeError> {
    if name != E::NAME {
        return Err(DecodeError::new(DecodeErrorKind::UnknownEvent {
            name: name.to_owned(),
        }));
    }
    if version > E::VERSION {
        return Err(DecodeError::new(DecodeErrorKind::NewerVersion {
            name: name.to_owned(),
            found: version,
            supported: E::VERSION,
        }));
    }
    if version < E::VERSION {
        return Err(DecodeError::new(DecodeErrorKind::OlderVersion {
            name: name.to_owned(),
            found: version,
            supported: E::VERSION,
        }));
    }
    serde_json::from_slice(payload).map_err(|source| {
        DecodeError::new(DecodeErrorKind::Payload {
            name: name.to_owned(),
            version,
            source,
        })
    })
}

pub(crate) fn unknown_event(name: &str) -> DecodeError {
    DecodeError::new(DecodeErrorKind::UnknownEvent {
        name: name.to_owned(),
    })
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
