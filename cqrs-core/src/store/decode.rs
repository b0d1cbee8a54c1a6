//! From a stored row to a [`RecordedEvent`]: metadata decoding, and refilling
//! the records a reader handed back instead of allocating new ones.
//!
//! A catch-up reads every event once, so what a store does per row is most of
//! its cost: a record is an `Arc` and four heap buffers, and the metadata is
//! JSON. Both stores decode rows through here.

use std::borrow::Cow;
use std::sync::Arc;

use uuid::Uuid;

use crate::error::{RowLocation, StoreError};
use crate::record::{Metadata, RecordedEvent, StreamId, Timestamp};

/// An event row as a store reads it, its text borrowed from the row.
#[derive(Debug, Clone)]
pub(crate) struct EventRow<'r> {
    pub(crate) position: u64,
    pub(crate) aggregate: &'r str,
    pub(crate) stream_id: &'r str,
    pub(crate) version: u64,
    pub(crate) event_id: Uuid,
    pub(crate) event_name: &'r str,
    pub(crate) schema_version: u32,
    pub(crate) payload: &'r [u8],
    pub(crate) metadata: Metadata,
    pub(crate) timestamp: Timestamp,
}

impl EventRow<'_> {
    /// A new record holding a copy of the row (its metadata moved).
    pub(crate) fn into_record(self) -> RecordedEvent {
        RecordedEvent {
            event_id: self.event_id,
            stream: Arc::new(StreamId::new(self.aggregate, self.stream_id)),
            version: self.version,
            position: self.position,
            event_name: Cow::Owned(self.event_name.to_owned()),
            schema_version: self.schema_version,
            payload: self.payload.to_vec(),
            metadata: self.metadata,
            timestamp: self.timestamp,
        }
    }

    /// Overwrites `record` with the row, reusing its buffers.
    fn fill(self, record: &mut RecordedEvent) {
        // Exhaustive, so a new field of `RecordedEvent` is a compile error
        // here rather than a value left over from another event.
        let RecordedEvent {
            event_id,
            stream,
            version,
            position,
            event_name,
            schema_version,
            payload,
            metadata,
            timestamp,
        } = record;
        *event_id = self.event_id;
        if stream.aggregate != self.aggregate || stream.id != self.stream_id {
            match Arc::get_mut(stream) {
                Some(stream) => {
                    replace_text(stream.aggregate.to_mut(), self.aggregate);
                    replace_text(&mut stream.id, self.stream_id);
                }
                // Shared with a record the reader still holds.
                None => *stream = Arc::new(StreamId::new(self.aggregate, self.stream_id)),
            }
        }
        *version = self.version;
        *position = self.position;
        replace_text(event_name.to_mut(), self.event_name);
        *schema_version = self.schema_version;
        payload.clear();
        payload.extend_from_slice(self.payload);
        *metadata = self.metadata;
        *timestamp = self.timestamp;
    }
}

/// The typed error for a stored event row with a column that does not
/// decode, located by the columns read so far.
pub(crate) fn corrupt_row(
    position: u64,
    stream: Option<(&str, &str)>,
    version: Option<u64>,
    column: &'static str,
    reason: impl std::fmt::Display,
) -> StoreError {
    StoreError::Corrupt {
        at: RowLocation {
            position,
            stream: stream.map(|(aggregate, id)| StreamId::new(aggregate, id)),
            version,
        },
        column,
        reason: reason.to_string(),
    }
}

/// A stored stream version, which starts at 1.
pub(crate) fn stream_version(stored: i64) -> Result<u64, String> {
    u64::try_from(stored)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| format!("holds {stored}, not a stream version (1 or more)"))
}

/// A stored schema version, which starts at 1 and fits a `u32`.
pub(crate) fn schema_version(stored: i64) -> Result<u32, String> {
    u32::try_from(stored)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| format!("holds {stored}, not a schema version (1 to {})", u32::MAX))
}

fn replace_text(text: &mut String, with: &str) {
    text.clear();
    text.push_str(with);
}

/// Records a reader is done with, refilled by the next rows read.
#[derive(Debug, Default)]
pub(crate) struct Spent {
    records: Vec<Arc<RecordedEvent>>,
}

impl Spent {
    pub(crate) fn new(records: Vec<Arc<RecordedEvent>>) -> Self {
        Self { records }
    }

    /// The row as a record: a spent one refilled if one is held by no one
    /// else, else a new one.
    pub(crate) fn record(&mut self, row: EventRow<'_>) -> Arc<RecordedEvent> {
        while let Some(mut record) = self.records.pop() {
            // A record the caller still shares (kept by a projection, or by
            // a memory store) is only released.
            if let Some(unique) = Arc::get_mut(&mut record) {
                row.fill(unique);
                return record;
            }
        }
        Arc::new(row.into_record())
    }
}

/// Decodes stored metadata (JSON text).
///
/// The shapes commands write, an object of `correlation_id`, `causation_id`
/// and `actor` whose strings need no unescaping, are read by a direct scan:
/// serde's field matching and `Option` handling cost more than the scan of
/// these few bytes, once per event of a catch-up. Anything else (extras,
/// escapes, `null`s, a malformed document) goes to `serde_json`, which
/// decides and reports errors, so both paths accept exactly the same texts.
///
/// Takes bytes, not `str`: neither path needs the text checked as UTF-8
/// beforehand (the scan checks the one string it keeps, serde every string).
pub(crate) fn decode_metadata(text: &[u8]) -> Result<Metadata, serde_json::Error> {
    match common_metadata(text) {
        Some(metadata) => Ok(metadata),
        None => serde_json::from_slice(text),
    }
}

/// The direct scan of [`decode_metadata`]: `None` for anything it does not
/// cover.
fn common_metadata(text: &[u8]) -> Option<Metadata> {
    // What the engine writes for every event of a command, as serde_json
    // spells it: matched whole, before the general scan.
    if let Some(rest) = text.strip_prefix(br#"{"correlation_id":"#)
        && let Some((id, b"}")) = quoted_uuid(rest)
    {
        return Some(Metadata::new().correlation_id(id));
    }
    let mut metadata = Metadata::new();
    let mut rest = skip_space(text).strip_prefix(b"{")?;
    rest = skip_space(rest);
    if let Some(after) = rest.strip_prefix(b"}") {
        return skip_space(after).is_empty().then_some(metadata);
    }
    loop {
        let (key, after) = plain_string(rest)?;
        rest = skip_space(skip_space(after).strip_prefix(b":")?);
        // A repeated key is an error for serde: left to it.
        rest = match key {
            b"correlation_id" if metadata.correlation_id.is_none() => {
                let (id, after) = quoted_uuid(rest)?;
                metadata.correlation_id = Some(id);
                after
            }
            b"causation_id" if metadata.causation_id.is_none() => {
                let (id, after) = quoted_uuid(rest)?;
                metadata.causation_id = Some(id);
                after
            }
            b"actor" if metadata.actor.is_none() => {
                let (actor, after) = plain_string(rest)?;
                metadata.actor = Some(String::from(std::str::from_utf8(actor).ok()?));
                after
            }
            b"traceparent" if metadata.traceparent.is_none() => {
                let (parent, after) = plain_string(rest)?;
                metadata.traceparent = Some(String::from(std::str::from_utf8(parent).ok()?));
                after
            }
            _ => return None,
        };
        rest = skip_space(rest);
        match rest.split_first()? {
            (b',', after) => rest = skip_space(after),
            (b'}', after) => return skip_space(after).is_empty().then_some(metadata),
            _ => return None,
        }
    }
}

/// A hyphenated UUID in quotes at the start of `text`, and what follows it:
/// parsed in place, as its 36 characters can hold neither a quote nor an
/// escape. Other spellings serde accepts (simple, braced, URN) are left to it.
fn quoted_uuid(text: &[u8]) -> Option<(Uuid, &[u8])> {
    let (b'"', rest) = text.split_first()? else {
        return None;
    };
    let (id, rest) = rest.split_at_checked(36)?;
    let (b'"', rest) = rest.split_first()? else {
        return None;
    };
    Some((Uuid::try_parse_ascii(id).ok()?, rest))
}

/// JSON's whitespace (not all of ASCII's: no form feed).
fn skip_space(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(text.len());
    &text[start..]
}

/// A string at the start of `text` with no escape or control character in
/// it: its contents and what follows it.
fn plain_string(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let text = text.strip_prefix(b"\"")?;
    let end = text
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    (text[end] == b'"').then(|| (&text[..end], &text[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "797e453f-1d71-45e0-aaef-e08532b16714";
    const OTHER: &str = "4fb1e77c-e1f2-441d-a55a-11d25ce9f7c4";

    /// The scan, where it answers, agrees with serde; where serde fails, the
    /// scan leaves it to serde.
    fn agrees(text: &str) {
        let by_serde = serde_json::from_str::<Metadata>(text).ok();
        let scanned = common_metadata(text.as_bytes());
        if let Some(scanned) = &scanned {
            assert_eq!(Some(scanned), by_serde.as_ref(), "{text}");
        }
        assert_eq!(decode_metadata(text.as_bytes()).ok(), by_serde, "{text}");
    }

    #[test]
    fn common_shapes_are_scanned() {
        for text in [
            String::from("{}"),
            String::from(" { } "),
            format!(r#"{{"correlation_id":"{ID}"}}"#),
            format!(r#"{{"correlation_id":"{ID}"}} "#),
            // PostgreSQL's jsonb: its own key order, a space after each `:` and `,`.
            format!(r#"{{"actor": "ada", "causation_id": "{OTHER}", "correlation_id": "{ID}"}}"#),
            format!("{{\n\t\"actor\" : \"Zoë\" ,\r\n\"correlation_id\":\"{ID}\"}}"),
            format!(r#"{{"causation_id":"{}"}}"#, OTHER.to_uppercase()),
            format!(
                r#"{{"correlation_id":"{ID}","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}"#
            ),
        ] {
            assert!(common_metadata(text.as_bytes()).is_some(), "{text}");
            agrees(&text);
        }
        let metadata = decode_metadata(
            format!(r#"{{"correlation_id":"{ID}","causation_id":"{OTHER}","actor":"ada"}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            metadata,
            Metadata::new()
                .correlation_id(ID.parse().unwrap())
                .causation_id(OTHER.parse().unwrap())
                .actor("ada")
        );
    }

    #[test]
    fn other_shapes_go_to_serde() {
        for text in [
            String::new(),
            String::from("{"),
            String::from("[]"),
            String::from("null"),
            String::from("{}}"),
            String::from("{},"),
            String::from("\u{c}{}"),
            String::from(r#"{"actor":"a\"b"}"#),
            String::from(r#"{"actor":"a\u0041"}"#),
            String::from("{\"actor\":\"a\u{1}b\"}"),
            String::from(r#"{"actor":null}"#),
            String::from(r#"{"actor":1}"#),
            String::from(r#"{"actor":"a","actor":"b"}"#),
            String::from(r#"{"actor":"a",}"#),
            String::from(r#"{"actor":"a" "x":"b"}"#),
            String::from(r#"{"extra":{"channel":"web"}}"#),
            String::from(r#"{"unknown":"kept out"}"#),
            String::from(r#"{"correlation_id":"not a uuid"}"#),
            format!(r#"{{"correlation_id":"{ID}""#),
            format!(r#"{{"correlation_id":"{}"}}"#, ID.replace('-', "")),
            format!(r#"{{"correlation_id":"{{{ID}}}"}}"#),
            format!(r#"{{"correlation_id":"urn:uuid:{ID}"}}"#),
            format!(r#"{{"correlation_id":"{ID}x"}}"#),
            format!(r#"{{"correlation_id":"{ID}"}}x"#),
            format!(r#"{{"correlation_id":"{ID}"}}}}"#),
            format!(r#"{{"correlation_id":"{}"}}"#, &ID[1..]),
        ] {
            agrees(&text);
        }
        assert!(decode_metadata(br#"{"actor":"a","actor":"b"}"#).is_err());
        assert!(decode_metadata(b"{\"actor\":\"\xff\"}").is_err());
        assert_eq!(
            decode_metadata(br#"{"actor":"a\"b","extra":{"k":"v"}}"#).unwrap(),
            Metadata::new().actor("a\"b").with("k", "v")
        );
    }

    fn row(position: u64, name: &str) -> EventRow<'_> {
        EventRow {
            position,
            aggregate: "account",
            stream_id: "a-1",
            version: position,
            event_id: Uuid::new_v4(),
            event_name: name,
            schema_version: 1,
            payload: br#"{"amount":5}"#,
            metadata: Metadata::new().actor("ada"),
            timestamp: Timestamp(7),
        }
    }

    /// A refilled record equals a new one and reuses the old allocation; a
    /// record shared elsewhere is released, untouched.
    #[test]
    fn spent_records_are_refilled_unless_shared() {
        let old = Arc::new(row(1, "account.opened").into_record());
        let old_at = Arc::as_ptr(&old);
        let shared = Arc::new(row(2, "account.closed").into_record());
        let kept = Arc::clone(&shared);
        let before = (*kept).clone();
        let mut spent = Spent::new(vec![old, shared]);

        let fresh = row(3, "account.deposited-with-a-longer-name");
        let expected = fresh.clone().into_record();
        let record = spent.record(fresh);
        assert_eq!(*record, expected);
        assert_eq!(Arc::as_ptr(&record), old_at);
        assert_eq!(*kept, before);
        assert_eq!(Arc::strong_count(&kept), 1);

        let fresh = row(4, "x");
        let expected = fresh.clone().into_record();
        assert_eq!(*spent.record(fresh), expected);
    }
}
