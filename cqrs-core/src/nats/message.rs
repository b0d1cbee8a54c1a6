//! An event as a JetStream message, and back: the payload is the stored
//! JSON, everything else travels in headers.

use std::borrow::Cow;
use std::sync::Arc;

use async_nats::HeaderMap;
use uuid::Uuid;

use crate::error::StoreError;
use crate::record::{Metadata, RecordedEvent, StreamId, Timestamp};

/// The headers a relayed event carries (besides `Nats-Msg-Id`, its event
/// id, which JetStream deduplicates on).
pub(crate) mod header {
    pub(crate) const POSITION: &str = "Cqrs-Position";
    /// The position of the event before it in the log (0: none): a reader
    /// that has applied another one knows events are missing.
    pub(crate) const PREVIOUS: &str = "Cqrs-Previous";
    pub(crate) const STREAM_TYPE: &str = "Cqrs-Stream-Type";
    pub(crate) const STREAM_ID: &str = "Cqrs-Stream-Id";
    pub(crate) const VERSION: &str = "Cqrs-Version";
    pub(crate) const EVENT: &str = "Cqrs-Event";
    pub(crate) const SCHEMA_VERSION: &str = "Cqrs-Schema-Version";
    pub(crate) const EVENT_ID: &str = "Cqrs-Event-Id";
    pub(crate) const TIMESTAMP: &str = "Cqrs-Timestamp";
    pub(crate) const CORRELATION: &str = "Cqrs-Correlation-Id";
    pub(crate) const CAUSATION: &str = "Cqrs-Causation-Id";
    pub(crate) const ACTOR: &str = "Cqrs-Actor";
    /// The W3C trace context, under the name tracing tools look for.
    pub(crate) const TRACEPARENT: &str = "traceparent";
    /// All of the metadata, as JSON (what the store holds).
    pub(crate) const METADATA: &str = "Cqrs-Metadata";
}

/// The headers of `event`, which follows the event at `previous` in the log.
pub(crate) fn headers(event: &RecordedEvent, previous: u64) -> Result<HeaderMap, StoreError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::POSITION, event.position.to_string());
    headers.insert(header::PREVIOUS, previous.to_string());
    headers.insert(header::STREAM_TYPE, event.stream.aggregate.as_ref());
    headers.insert(header::STREAM_ID, event.stream.id.as_str());
    headers.insert(header::VERSION, event.version.to_string());
    headers.insert(header::EVENT, event.event_name.as_ref());
    headers.insert(header::SCHEMA_VERSION, event.schema_version.to_string());
    headers.insert(header::EVENT_ID, event.event_id.hyphenated().to_string());
    headers.insert(header::TIMESTAMP, event.timestamp.as_micros().to_string());
    if let Some(id) = event.metadata.correlation_id {
        headers.insert(header::CORRELATION, id.hyphenated().to_string());
    }
    if let Some(id) = event.metadata.causation_id {
        headers.insert(header::CAUSATION, id.hyphenated().to_string());
    }
    if let Some(actor) = &event.metadata.actor {
        headers.insert(header::ACTOR, actor.as_str());
    }
    if let Some(parent) = &event.metadata.traceparent {
        headers.insert(header::TRACEPARENT, parent.as_str());
    }
    let metadata = serde_json::to_string(&event.metadata).map_err(|e| StoreError::Refused {
        message: format!(
            "the metadata of the event at position {} does not encode",
            event.position
        ),
        source: Some(Box::new(e)),
    })?;
    headers.insert(header::METADATA, metadata);
    Ok(headers)
}

/// What a message carried: the event, and the position before it.
#[derive(Debug)]
pub(crate) struct Carried {
    pub(crate) event: Arc<RecordedEvent>,
    pub(crate) previous: u64,
}

/// Reads an event back from a message's headers and payload. A message
/// that is not one a relay published (no headers of ours, or broken ones)
/// is [`StoreError::Corrupt`] naming the stream sequence and the header.
pub(crate) fn event(
    headers: Option<&HeaderMap>,
    payload: &[u8],
    sequence: u64,
) -> Result<Carried, StoreError> {
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
        at: crate::error::RowLocation {
            position: 0,
            stream: None,
            version: None,
        },
        column,
        reason: format!("(JetStream sequence {sequence}) {reason}"),
    };
    let headers = headers.ok_or_else(|| {
        corrupt(
            header::POSITION,
            String::from("has no headers: the message was not published by a relay"),
        )
    })?;
    let text = |name: &'static str| -> Result<&str, StoreError> {
        headers.get(name).map(|v| v.as_str()).ok_or_else(|| {
            corrupt(
                name,
                String::from("is missing: the message was not published by a relay"),
            )
        })
    };
    let number = |name: &'static str| -> Result<u64, StoreError> {
        let value = text(name)?;
        value
            .parse()
            .map_err(|_| corrupt(name, format!("holds `{value}`, not a number")))
    };
    let position = number(header::POSITION)?;
    let at = |column: &'static str, reason: String| {
        let mut e = corrupt(column, reason);
        if let StoreError::Corrupt { at, .. } = &mut e {
            at.position = position;
        }
        e
    };
    let event_id = Uuid::try_parse(text(header::EVENT_ID)?)
        .map_err(|e| at(header::EVENT_ID, format!("is not a UUID: {e}")))?;
    let metadata: Metadata = serde_json::from_str(text(header::METADATA)?)
        .map_err(|e| at(header::METADATA, format!("is not an event's metadata: {e}")))?;
    let version = number(header::VERSION)?;
    let schema_version = u32::try_from(number(header::SCHEMA_VERSION)?)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            at(
                header::SCHEMA_VERSION,
                String::from("is not a schema version"),
            )
        })?;
    let timestamp = text(header::TIMESTAMP)?;
    let timestamp: i64 = timestamp.parse().map_err(|_| {
        at(
            header::TIMESTAMP,
            format!("holds `{timestamp}`, not a number"),
        )
    })?;
    let event = RecordedEvent {
        event_id,
        stream: Arc::new(StreamId::new(
            text(header::STREAM_TYPE)?,
            text(header::STREAM_ID)?,
        )),
        version,
        position,
        event_name: Cow::Owned(text(header::EVENT)?.to_owned()),
        schema_version,
        payload: payload.to_vec(),
        metadata,
        timestamp: Timestamp(timestamp),
    };
    Ok(Carried {
        event: Arc::new(event),
        previous: number(header::PREVIOUS)?,
    })
}
