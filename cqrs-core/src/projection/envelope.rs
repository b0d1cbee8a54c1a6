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
    /// reads, an older one its upcasters do not bring to the current one,
    /// or a payload that does not decode (see [`decode_event`](crate::decode_event)).
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
    /// `event`, decoded from `record`.
    pub(crate) fn new(event: E, record: Arc<RecordedEvent>) -> Self {
        Self { event, record }
    }

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

    /// The name it is stored under (an alias, for an event stored before
    /// it was renamed).
    pub fn event_name(&self) -> &str {
        &self.record.event_name
    }

    /// The schema version it is stored with: older than the event's own
    /// when it was upcast.
    pub fn schema_version(&self) -> u32 {
        self.record.schema_version
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
