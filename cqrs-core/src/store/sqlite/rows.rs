//! Event rows: the columns a statement reads, and a row back as a record.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use uuid::Uuid;

use super::{backend, to_u64};
use crate::error::StoreError;
use crate::record::Timestamp;
use crate::store::decode::{
    EventRow, corrupt_row, decode_metadata, schema_version, stream_version,
};

/// The columns of an event row, in the order `event_row` reads them (a
/// macro, so statements can be built with `concat!`).
macro_rules! event_columns {
    () => {
        "position, stream_aggregate, stream_id, version, event_id, \
         event_name, schema_version, payload, metadata, timestamp_us"
    };
}

pub(super) use event_columns;

pub(super) const EVENT_COLUMNS: &str = event_columns!();

/// A payload bound as TEXT when it is UTF-8 (JSON always is), else as a BLOB.
pub(super) struct Payload<'a>(pub(super) &'a [u8]);

impl ToSql for Payload<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match std::str::from_utf8(self.0) {
            Ok(_) => ValueRef::Text(self.0),
            Err(_) => ValueRef::Blob(self.0),
        }))
    }
}

/// Why an event row could not be read: the statement failed (may pass), or
/// a column holds what no event can (cannot).
#[derive(Debug)]
pub(super) enum RowError {
    Sql(rusqlite::Error),
    Corrupt(StoreError),
}

impl From<rusqlite::Error> for RowError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl RowError {
    /// The store error, `context` saying what was being read.
    pub(super) fn into_store(self, context: impl FnOnce() -> String) -> StoreError {
        match self {
            Self::Sql(e) => backend(context(), e),
            Self::Corrupt(e) => e,
        }
    }
}

/// A text column, as stored.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Result<&'r str, String>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Text(bytes) => {
            std::str::from_utf8(bytes).map_err(|e| format!("is not UTF-8: {e}"))
        }
        other => Err(format!("holds {}, not text", type_name(other))),
    })
}

/// An integer column, as stored.
fn integer(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Result<i64, String>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => Ok(n),
        other => Err(format!("holds {}, not an integer", type_name(other))),
    })
}

fn type_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}

/// Reads an event row laid out as `EVENT_COLUMNS`, borrowing its text.
///
/// Every column is checked: one that does not hold what an event stores is
/// [`StoreError::Corrupt`], naming the row by the columns that do.
pub(super) fn event_row<'r>(row: &'r rusqlite::Row<'_>) -> Result<EventRow<'r>, RowError> {
    let position = integer(row, 0)?.map_or(0, to_u64);
    let aggregate = text(row, 1)?;
    let stream_id = text(row, 2)?;
    let version = integer(row, 3)?.and_then(stream_version);
    let stream = match (&aggregate, &stream_id) {
        (Ok(aggregate), Ok(id)) => Some((*aggregate, *id)),
        _ => None,
    };
    let at = |column, reason: String| {
        RowError::Corrupt(corrupt_row(
            position,
            stream,
            version.clone().ok(),
            column,
            reason,
        ))
    };
    let aggregate = aggregate.map_err(|r| at("stream_aggregate", r))?;
    let stream_id = stream_id.map_err(|r| at("stream_id", r))?;
    let version = version.clone().map_err(|r| at("version", r))?;
    // The id and the metadata are parsed from the bytes: their parsers
    // check what they read, no need to check the text as UTF-8 first.
    let event_id = match row.get_ref(4)? {
        ValueRef::Text(bytes) => Uuid::try_parse_ascii(bytes)
            .map_err(|e| at("event_id", format!("is not a UUID: {e}")))?,
        other => {
            return Err(at(
                "event_id",
                format!("holds {}, not text", type_name(other)),
            ));
        }
    };
    let event_name = text(row, 5)?.map_err(|r| at("event_name", r))?;
    let schema_version = integer(row, 6)?
        .and_then(schema_version)
        .map_err(|r| at("schema_version", r))?;
    let payload = match row.get_ref(7)? {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
        other => {
            return Err(at(
                "payload",
                format!("holds {}, not JSON text", type_name(other)),
            ));
        }
    };
    let metadata = match row.get_ref(8)? {
        ValueRef::Text(bytes) => decode_metadata(bytes)
            .map_err(|e| at("metadata", format!("is not the metadata of an event: {e}")))?,
        other => {
            return Err(at(
                "metadata",
                format!("holds {}, not JSON text", type_name(other)),
            ));
        }
    };
    let timestamp = integer(row, 9)?.map_err(|r| at("timestamp_us", r))?;
    Ok(EventRow {
        position,
        aggregate,
        stream_id,
        version,
        event_id,
        event_name,
        schema_version,
        payload,
        metadata,
        timestamp: Timestamp(timestamp),
    })
}
