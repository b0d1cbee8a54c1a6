//! Reading pages of the global log: which rows a page holds, checked here
//! or selected by SQLite.

use std::sync::Arc;

use rusqlite::{Connection, params};

use super::rows::{RowError, event_columns, event_row};
use super::{to_i64, to_u64};
use crate::record::RecordedEvent;
use crate::store::LogFilter;
use crate::store::decode::Spent;

/// Rows of the log after a position, up to a head, in order.
const LOG_ROWS: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events
     WHERE position > ?1 AND position <= ?2
     ORDER BY position
     LIMIT ?3"
);

/// The same, only the rows a filter selects (its lists as JSON arrays,
/// `NULL` for no condition; ?5 and ?6 the aggregates and known names of
/// `LogFilter::unknown`).
const LOG_ROWS_SELECTED: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events
     WHERE position > ?1 AND position <= ?2
       AND (((?3 IS NULL OR event_name IN (SELECT value FROM json_each(?3)))
             AND (?4 IS NULL OR stream_aggregate IN (SELECT value FROM json_each(?4))))
         OR (?5 IS NOT NULL AND stream_aggregate IN (SELECT value FROM json_each(?5))
             AND event_name NOT IN (SELECT value FROM json_each(?6))))
     ORDER BY position
     LIMIT ?7"
);

/// How many rows a filtered read checks itself before it decides whether
/// SQLite should check the rest.
const PROBE_ROWS: usize = 256;

/// A page of the log being read.
pub(super) struct Page {
    pub(super) records: Vec<Arc<RecordedEvent>>,
    pub(super) spent: Spent,
    pub(super) limit: usize,
}

/// How a scan of rows checked here ended.
enum Scan {
    /// The page is full, or every row up to the head was seen.
    Finished,
    /// Most rows are filtered out: the rest is better selected by SQLite.
    /// Every row up to this position was seen.
    Sparse(u64),
}

impl Page {
    /// Reads the events of `filter` in `(after, head]` until the page is full.
    ///
    /// A filter is checked in one of two ways. SQLite checks its lists
    /// against each row: cheap per row left out, but it costs about as much
    /// again per row kept as decoding the row's text does. So the rows are
    /// first checked here, where a row left out still costs its step but a
    /// row kept costs a comparison of its name; once a probe shows that most
    /// rows are left out, SQLite selects the rest of the page.
    pub(super) fn read(
        &mut self,
        conn: &Connection,
        filter: &LogFilter,
        after: u64,
        head: u64,
    ) -> Result<(), RowError> {
        let everything = filter.is_everything();
        if everything {
            return self.read_rows(conn, after, head);
        }
        match self.read_rows_checking(conn, filter, after, head)? {
            Scan::Finished => Ok(()),
            Scan::Sparse(seen) => self.read_selected(conn, filter, seen, head),
        }
    }

    /// Every row, up to the page's limit.
    fn read_rows(&mut self, conn: &Connection, after: u64, head: u64) -> Result<(), RowError> {
        let mut statement = conn.prepare_cached(LOG_ROWS)?;
        let mut rows = statement.query(params![to_i64(after), to_i64(head), self.room()])?;
        while let Some(row) = rows.next()? {
            self.records.push(self.spent.record(event_row(row)?));
        }
        Ok(())
    }

    /// Every row, keeping those `filter` selects, until the page is full or
    /// the probe finds the filter sparse.
    fn read_rows_checking(
        &mut self,
        conn: &Connection,
        filter: &LogFilter,
        after: u64,
        head: u64,
    ) -> Result<Scan, RowError> {
        let mut statement = conn.prepare_cached(LOG_ROWS)?;
        // No limit: it counts rows kept, not rows seen.
        let mut rows = statement.query(params![to_i64(after), to_i64(head), -1])?;
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            seen += 1;
            if selects(filter, row)? {
                self.records.push(self.spent.record(event_row(row)?));
                if self.records.len() >= self.limit {
                    return Ok(Scan::Finished);
                }
            } else if seen >= PROBE_ROWS && self.records.len() * 2 < seen {
                return Ok(Scan::Sparse(to_u64(row.get(0)?)));
            }
        }
        Ok(Scan::Finished)
    }

    /// The rows `filter` selects, selected by SQLite, until the page is full.
    fn read_selected(
        &mut self,
        conn: &Connection,
        filter: &LogFilter,
        after: u64,
        head: u64,
    ) -> Result<(), RowError> {
        let mut statement = conn.prepare_cached(LOG_ROWS_SELECTED)?;
        let mut rows = statement.query(params![
            to_i64(after),
            to_i64(head),
            json_list(&filter.events),
            json_list(&filter.aggregates),
            filter.unknown.as_ref().map(|u| json_array(&u.aggregates)),
            filter.unknown.as_ref().map(|u| json_array(&u.known)),
            self.room()
        ])?;
        while let Some(row) = rows.next()? {
            self.records.push(self.spent.record(event_row(row)?));
        }
        Ok(())
    }

    /// How many more events the page takes, as an SQL limit.
    fn room(&self) -> i64 {
        i64::try_from(self.limit.saturating_sub(self.records.len())).unwrap_or(i64::MAX)
    }
}

/// Whether `filter` selects the row: its name and aggregate compared as
/// SQLite's `IN` compares them (byte for byte).
fn selects(filter: &LogFilter, row: &rusqlite::Row<'_>) -> rusqlite::Result<bool> {
    let listed = |names: &[String], column| -> rusqlite::Result<bool> {
        if names.is_empty() {
            return Ok(true);
        }
        let value = row.get_ref(column)?.as_bytes()?;
        Ok(names.iter().any(|name| name.as_bytes() == value))
    };
    if listed(&filter.events, 5)? && listed(&filter.aggregates, 1)? {
        return Ok(true);
    }
    let Some(unknown) = &filter.unknown else {
        return Ok(false);
    };
    let (aggregate, name) = (row.get_ref(1)?.as_bytes()?, row.get_ref(5)?.as_bytes()?);
    Ok(unknown.aggregates.iter().any(|a| a.as_bytes() == aggregate)
        && !unknown.known.iter().any(|k| k.as_bytes() == name))
}

/// The filter's lists as JSON arrays for `json_each`, `NULL` when empty.
fn json_list(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| json_array(names))
}

fn json_array(names: &[String]) -> String {
    serde_json::Value::from(names.to_vec()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{NewEvent, StreamId, Timestamp};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{EventStore, ExpectedVersion, GlobalLog};

    /// The positions `filter` selects, read in pages of `limit` through
    /// `read_log`.
    async fn read_in_pages(store: &SqliteStore, filter: &LogFilter, limit: usize) -> Vec<u64> {
        let mut positions = Vec::new();
        let mut after = 0;
        loop {
            let slice = store.read_log(after, filter, limit).await.unwrap();
            assert!(slice.events.len() <= limit);
            if slice.through <= after {
                return positions;
            }
            positions.extend(slice.events.iter().map(|e| e.position));
            after = slice.through;
        }
    }

    /// Whether rows are checked here or selected by SQLite, and wherever a
    /// read switches from one to the other, a filtered read returns what the
    /// filter selects, each event once.
    #[tokio::test]
    async fn filtered_reads_switch_checks_without_skipping() {
        let store = SqliteStore::in_memory().unwrap();
        // Leading rows left out, a kept row right where a read decides to
        // let SQLite select, then dense and sparse stretches, and another
        // aggregate.
        let name = |i: usize| match i {
            0..PROBE_ROWS => "other",
            _ if i < 600 => ["kept", "other"][i % 2],
            _ if i < 1_400 => ["kept", "also", "other", "other", "other", "other"][i % 6],
            _ => ["kept", "kept", "other"][i % 3],
        };
        for chunk in 0..20 {
            let aggregate = if chunk % 4 == 3 { "cart" } else { "account" };
            let events = (chunk * 100..(chunk + 1) * 100)
                .map(|i| NewEvent {
                    timestamp: Timestamp(0),
                    ..NewEvent::new(name(i), "{}")
                })
                .collect();
            let stream = StreamId::new(aggregate, chunk.to_string());
            store
                .append(&stream, ExpectedVersion::Exact(0), events)
                .await
                .unwrap();
        }
        let all = read_in_pages(&store, &LogFilter::all(), 5_000).await;
        assert_eq!(all.len(), 2_000);
        let log = store.read_log(0, &LogFilter::all(), 5_000).await.unwrap();
        for filter in [
            LogFilter::events(["kept"]),
            LogFilter::events(["kept", "also"]),
            LogFilter::events(["kept"]).aggregates(["account"]),
            LogFilter::all().aggregates(["cart"]),
            LogFilter::events(["nothing"]),
        ] {
            let expected: Vec<u64> = log
                .events
                .iter()
                .filter(|e| filter.matches(e))
                .map(|e| e.position)
                .collect();
            for limit in [1, 7, 100, 300, 5_000] {
                let read = read_in_pages(&store, &filter, limit).await;
                assert_eq!(read, expected, "{filter:?}, pages of {limit}");
            }
        }
    }
}
