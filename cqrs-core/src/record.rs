//! Stored events as the log sees them: untyped records with their envelope data.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{InvalidStreamId, StreamIdPart, StreamIdRule};

/// Names one stream: the aggregate (stream type) and the instance id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId {
    /// The aggregate name, e.g. `"account"`: borrowed when it is the
    /// aggregate's own `NAME`, so naming a stream costs no copy of it.
    pub aggregate: Cow<'static, str>,
    /// The instance id, e.g. `"acc-42"`.
    pub id: String,
}

impl StreamId {
    /// A stream of aggregate `aggregate` with instance id `id`.
    pub fn new(aggregate: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            aggregate: Cow::Owned(aggregate.into()),
            id: id.into(),
        }
    }

    /// A stream of an aggregate named by a `&'static str` (an aggregate's
    /// `NAME`): the name is borrowed, not copied.
    ///
    /// ```
    /// use cqrs_core::StreamId;
    /// let stream = StreamId::of("account", "a-1");
    /// assert_eq!(stream, StreamId::new("account", "a-1"));
    /// assert_eq!(stream.to_string(), "account/a-1");
    /// ```
    pub fn of(aggregate: &'static str, id: impl Into<String>) -> Self {
        Self {
            aggregate: Cow::Borrowed(aggregate),
            id: id.into(),
        }
    }
}

impl StreamId {
    /// The longest aggregate name, and the longest instance id, any store
    /// accepts: 1,024 bytes of UTF-8 each. Both sit in one index entry on
    /// PostgreSQL, whose B-tree entries must stay under 2,704 bytes.
    pub const MAX_LEN: usize = 1024;

    /// Checks the one rule every store applies to stream ids, before any
    /// I/O: the aggregate name and the instance id are each non-empty, at
    /// most [`MAX_LEN`](Self::MAX_LEN) bytes of UTF-8, and free of control
    /// characters (Unicode category Cc: NUL, tab, newline, DEL, ...).
    ///
    /// The engine checks a command's stream before loading it, and every
    /// store checks again in its append and read paths, so a stream that
    /// one store accepts is accepted by all of them.
    ///
    /// # Errors
    ///
    /// [`InvalidStreamId`] naming the part and the rule it breaks; its
    /// message shows a long id shortened.
    ///
    /// # Examples
    ///
    /// ```
    /// use cqrs_core::{StreamId, StreamIdRule};
    ///
    /// assert!(StreamId::new("account", "a-1").check().is_ok());
    /// let empty = StreamId::new("account", "").check().unwrap_err();
    /// assert_eq!(empty.rule, StreamIdRule::Empty);
    /// let nul = StreamId::new("account", "a\0b").check().unwrap_err();
    /// assert_eq!(nul.rule, StreamIdRule::ControlCharacter { code: 0, at: 1 });
    /// let long = StreamId::new("account", "x".repeat(10_000)).check().unwrap_err();
    /// assert_eq!(long.rule, StreamIdRule::TooLong { len: 10_000 });
    /// assert!(long.to_string().len() < 300, "{long}");
    /// ```
    pub fn check(&self) -> Result<(), InvalidStreamId> {
        check_part(StreamIdPart::Aggregate, &self.aggregate)?;
        check_part(StreamIdPart::Id, &self.id)
    }
}

/// One part of a stream id against the rule of [`StreamId::check`].
fn check_part(part: StreamIdPart, text: &str) -> Result<(), InvalidStreamId> {
    let rule = if text.is_empty() {
        StreamIdRule::Empty
    } else if text.len() > StreamId::MAX_LEN {
        StreamIdRule::TooLong { len: text.len() }
    } else if let Some((at, c)) = text.char_indices().find(|(_, c)| c.is_control()) {
        StreamIdRule::ControlCharacter {
            code: u32::from(c),
            at,
        }
    } else {
        return Ok(());
    };
    Err(InvalidStreamId {
        part,
        value: Shown(text).to_string(),
        rule,
    })
}

impl fmt::Display for StreamId {
    /// `aggregate/id`, each part shown as error messages show it:
    /// control characters escaped, a long part cut with its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Shown(&self.aggregate), Shown(&self.id))
    }
}

/// A name or id as messages show it: control characters escaped (`\0`,
/// `\n`), and text longer than 80 bytes cut after about 64 with its length
/// (`aaaa…(10000 bytes)`), so a 50 MB id never lands whole in a message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shown<'a>(pub(crate) &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        const KEEP: usize = 64;
        let text = self.0;
        // A little slack, so that cutting always saves more than it adds.
        let mut cut = if text.len() > KEEP + 16 {
            KEEP
        } else {
            text.len()
        };
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        for c in text[..cut].chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                f.write_char(c)?;
            }
        }
        if cut < text.len() {
            write!(f, "…({} bytes)", text.len())?;
        }
        Ok(())
    }
}

/// Who and what caused an event, carried by every event a command appends.
///
/// # Examples
///
/// ```
/// use cqrs_core::Metadata;
/// let meta = Metadata::new().actor("alice").with("channel", "web");
/// assert_eq!(meta.actor.as_deref(), Some("alice"));
/// assert_eq!(meta.extra["channel"], "web");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Ties together everything one user request caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The message (event or command) that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Who asked for the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Free key/values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
    /// The command's idempotency key: a second command with the same key
    /// on the same stream is not run again; the engine answers with the
    /// first one's receipt (see [`Engine::execute_with`](crate::Engine::execute_with)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The W3C trace context (`traceparent`) the event belongs to: that of
    /// the `command` span that appended it when the engine runs with
    /// feature `otel` and an OpenTelemetry layer, else the one the caller
    /// gave (the HTTP adapter takes a request's `traceparent` header); a
    /// process manager's deadline event carries that of the event that
    /// started its instance. Consumers link their batch spans to it; a
    /// process manager's commands continue it. See
    /// [`telemetry`](crate::telemetry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    #[must_use]
    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the actor.
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the idempotency key: the engine runs a command with this key
    /// at most once per stream, and answers a repeat with the first receipt.
    ///
    /// ```
    /// use cqrs_core::Metadata;
    /// let metadata = Metadata::new().idempotency_key("order-17/pay");
    /// assert_eq!(metadata.idempotency_key.as_deref(), Some("order-17/pay"));
    /// ```
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the W3C trace context the command continues, as a
    /// `traceparent` header spells it; one that is not well formed is
    /// dropped (the W3C rule: start a new trace rather than fail).
    ///
    /// ```
    /// use cqrs_core::Metadata;
    /// let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// assert_eq!(Metadata::new().traceparent(parent).traceparent.as_deref(), Some(parent));
    /// assert_eq!(Metadata::new().traceparent("nonsense").traceparent, None);
    /// ```
    #[must_use]
    pub fn traceparent(mut self, traceparent: &str) -> Self {
        self.traceparent =
            crate::telemetry::is_traceparent(traceparent).then(|| traceparent.to_owned());
        self
    }

    /// Adds a free key/value.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// An event about to be appended: encoded, not yet positioned.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// A fresh unique id: [`NewEvent::new`] and the engine make a UUIDv7
    /// from the event's timestamp (see [`Timestamp::event_id`]).
    pub event_id: Uuid,
    /// The stored event name (borrowed from the event type's `NAME` when
    /// the engine encodes it).
    pub event_name: Cow<'static, str>,
    /// The schema version of the payload.
    pub schema_version: u32,
    /// The JSON payload.
    pub payload: Vec<u8>,
    /// Correlation, causation, actor, extras.
    pub metadata: Metadata,
    /// When the command produced it.
    pub timestamp: Timestamp,
}

impl NewEvent {
    /// An event named `name` with the JSON `payload`: a fresh id, schema
    /// version 1, no metadata, stamped now. Set the other fields with struct
    /// update syntax when they differ.
    ///
    /// ```
    /// use cqrs_core::{Metadata, NewEvent};
    /// let event = NewEvent::new("account.opened", r#"{"owner":"Ada"}"#);
    /// assert_eq!((event.event_name.as_ref(), event.schema_version), ("account.opened", 1));
    /// let tagged = NewEvent {
    ///     metadata: Metadata::new().actor("ada"),
    ///     ..NewEvent::new("account.opened", "{}")
    /// };
    /// assert_eq!(tagged.metadata.actor.as_deref(), Some("ada"));
    /// ```
    pub fn new(name: impl Into<Cow<'static, str>>, payload: impl Into<Vec<u8>>) -> Self {
        let timestamp = Timestamp::now();
        Self {
            event_id: timestamp.event_id(),
            event_name: name.into(),
            schema_version: 1,
            payload: payload.into(),
            metadata: Metadata::new(),
            timestamp,
        }
    }
}

/// An event as stored: the payload and everything the log knows about it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Unique id, assigned when the event was produced.
    pub event_id: Uuid,
    /// The stream it belongs to, shared: the events of one stream can point
    /// at one copy of its id.
    pub stream: Arc<StreamId>,
    /// Its version in the stream: 1 for the first event, contiguous.
    pub version: u64,
    /// Its position in the global log: 1 for the first event, strictly increasing.
    pub position: u64,
    /// The stored event name.
    pub event_name: Cow<'static, str>,
    /// The schema version of the payload.
    pub schema_version: u32,
    /// The JSON payload.
    pub payload: Vec<u8>,
    /// Correlation, causation, actor, extras.
    pub metadata: Metadata,
    /// When the command produced it.
    pub timestamp: Timestamp,
}

/// A point in time, in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// A fresh event id for an event stamped at this time: a UUIDv7, whose
    /// first 48 bits are the millisecond and the rest random. Ids made later
    /// sort later (within a millisecond, in any order), so a database index
    /// on them grows at its end, as the log does, instead of at a random
    /// page per event. A time before 1970 counts as 1970.
    ///
    /// ```
    /// use cqrs_core::Timestamp;
    ///
    /// let early = Timestamp(1_700_000_000_000_000).event_id();
    /// let later = Timestamp(1_700_000_000_001_000).event_id();
    /// assert_eq!(early.get_version_num(), 7);
    /// assert!(early < later);
    /// ```
    pub fn event_id(self) -> Uuid {
        let micros = u64::try_from(self.0).unwrap_or(0);
        let time = uuid::Timestamp::from_unix(
            uuid::NoContext,
            micros / 1_000_000,
            u32::try_from(micros % 1_000_000).unwrap_or(0) * 1_000,
        );
        Uuid::new_v7(time)
    }
}

/// A recorded event as JSON for people and scripts (the HTTP feed, the
/// admin tool): its payload as JSON (or as a string when it is not JSON).
#[cfg(any(feature = "http", feature = "admin"))]
#[derive(Serialize)]
pub(crate) struct EventView<'a> {
    position: u64,
    stream: &'a StreamId,
    version: u64,
    event: &'a str,
    schema_version: u32,
    event_id: Uuid,
    timestamp: Timestamp,
    payload: serde_json::Value,
    metadata: &'a Metadata,
}

#[cfg(any(feature = "http", feature = "admin"))]
impl<'a> From<&'a RecordedEvent> for EventView<'a> {
    fn from(record: &'a RecordedEvent) -> Self {
        Self {
            position: record.position,
            stream: &record.stream,
            version: record.version,
            event: &record.event_name,
            schema_version: record.schema_version,
            event_id: record.event_id,
            timestamp: record.timestamp,
            payload: serde_json::from_slice(&record.payload).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&record.payload).into_owned())
            }),
            metadata: &record.metadata,
        }
    }
}
