//! The one place where typed events become stored bytes and back.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{SerializeStruct, Serializer};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::event::{Event, EventSet};

/// Encodes an event's payload.
pub(crate) fn encode_event<E: Event>(event: &E) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(event)
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
