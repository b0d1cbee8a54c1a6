//! A typed event with the data the log recorded around it.

use std::ops::Deref;
use std::sync::Arc;

use uuid::Uuid;

use crate::error::DecodeError;
use crate::event::Event;
use crate::record::{Metadata, RecordedEvent, StreamId, Timestamp};

/// Event `E` as a projection sees it: the decoded value plus its stream,
/// version, position, timestamp and metadata.
///
/// Dereferences to the event, so `envelope.amount` reads a field of it.
#[derive(Clone, Debug)]
pub struct Envelope<E> {
    event: E,
    record: Arc<RecordedEvent>,
}

impl<E: Event> Envelope<E> {
    /// Decodes the record's payload as `E`.
    ///
    /// # Errors
    ///
    /// When the record is another event, a newer schema version than `E`
    /// reads, or a payload that does not decode.
    pub fn decode(record: &Arc<RecordedEvent>) -> Result<Self, DecodeError> {
        let event = crate::codec::decode_event::<E>(
            &record.event_name,
            record.schema_version,
            &record.payload,
        )
        .map_err(|e| e.at(record))?;
        Ok(Self {
            event,
            record: Arc::clone(record),
        })
    }
}

impl<E> Envelope<E> {
    /// The event.
    pub fn event(&self) -> &E {
        &self.event
    }

    /// The event, by value.
    pub fn into_event(self) -> E {
        self.event
    }

    /// The stream it was appended to.
    pub fn stream(&self) -> &StreamId {
        &self.record.stream
    }

    /// The aggregate instance id.
    pub fn aggregate_id(&self) -> &str {
        &self.record.stream.id
    }

    /// Its version in the stream.
    pub fn version(&self) -> u64 {
        self.record.version
    }

    /// Its position in the global log.
    pub fn position(&self) -> u64 {
        self.record.position
    }

    /// The unique event id.
    pub fn event_id(&self) -> Uuid {
        self.record.event_id
    }

    /// When it was produced.
    pub fn timestamp(&self) -> Timestamp {
        self.record.timestamp
    }

    /// Correlation, causation, actor and extras.
    pub fn metadata(&self) -> &Metadata {
        &self.record.metadata
    }

    /// The whole stored record.
    pub fn record(&self) -> &RecordedEvent {
        &self.record
    }
}

impl<E> Deref for Envelope<E> {
    type Target = E;

    fn deref(&self) -> &E {
        &self.event
    }
}
