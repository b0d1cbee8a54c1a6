//! Event rows: the columns a statement reads, and a row back as a record.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use uuid::Uuid;

use super::to_u64;
use crate::record::{RecordedEvent, Timestamp};
use crate::store::decode::{EventRow, decode_metadata};

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

/// Reads an event row laid out as `EVENT_COLUMNS`, borrowing its text.
pub(super) fn event_row<'r>(row: &'r rusqlite::Row<'_>) -> rusqlite::Result<EventRow<'r>> {
    let conversion = |i, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
    };
    let text = |i| -> rusqlite::Result<&'r str> { Ok(row.get_ref(i)?.as_str()?) };
    // The id and the metadata are parsed from the bytes: their parsers
    // check what they read, no need to check the text as UTF-8 first.
    let bytes = |i| -> rusqlite::Result<&'r [u8]> { Ok(row.get_ref(i)?.as_bytes()?) };
    let event_id = Uuid::try_parse_ascii(bytes(4)?).map_err(|e| conversion(4, Box::new(e)))?;
    let payload = match row.get_ref(7)? {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
        other => {
            return Err(rusqlite::Error::InvalidColumnType(
                7,
                String::from("payload"),
                other.data_type(),
            ));
        }
    };
    let metadata = decode_metadata(bytes(8)?).map_err(|e| conversion(8, Box::new(e)))?;
    Ok(EventRow {
        position: to_u64(row.get(0)?),
        aggregate: text(1)?,
        stream_id: text(2)?,
        version: to_u64(row.get(3)?),
        event_id,
        event_name: text(5)?,
        schema_version: row.get(6)?,
        payload,
        metadata,
        timestamp: Timestamp(row.get(9)?),
    })
}

pub(super) fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecordedEvent> {
    event_row(row).map(|row| row.to_record())
}
