//! The SQLite schema: its migrations, and how a file is brought up to date.

use rusqlite::{Connection, TransactionBehavior, params};

use super::backend;
use crate::error::StoreError;
use crate::record::Timestamp;

/// The migrations, in order; each runs once, recorded in `schema_version`.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE events (
        position         INTEGER PRIMARY KEY,
        stream_aggregate TEXT NOT NULL,
        stream_id        TEXT NOT NULL,
        version          INTEGER NOT NULL,
        event_id         TEXT NOT NULL UNIQUE,
        event_name       TEXT NOT NULL,
        schema_version   INTEGER NOT NULL,
        payload          TEXT NOT NULL,
        metadata         TEXT NOT NULL,
        timestamp_us     INTEGER NOT NULL,
        UNIQUE (stream_aggregate, stream_id, version)
    );
    CREATE INDEX events_by_name ON events (event_name, position);
    CREATE INDEX events_by_aggregate ON events (stream_aggregate, position);
    CREATE TABLE snapshots (
        stream_aggregate TEXT NOT NULL,
        stream_id        TEXT NOT NULL,
        version          INTEGER NOT NULL,
        state            BLOB NOT NULL,
        taken_at_us      INTEGER NOT NULL,
        PRIMARY KEY (stream_aggregate, stream_id)
    ) WITHOUT ROWID;
    CREATE TABLE checkpoints (
        name     TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    ) WITHOUT ROWID;",
    ),
    (
        2,
        "CREATE TABLE documents (
        projection TEXT NOT NULL,
        collection TEXT NOT NULL,
        key        TEXT NOT NULL,
        body       TEXT NOT NULL CHECK (json_valid(body)),
        PRIMARY KEY (projection, collection, key)
    ) WITHOUT ROWID;",
    ),
    (
        3,
        "CREATE TABLE leases (
        name          TEXT PRIMARY KEY,
        holder        TEXT NOT NULL,
        token         INTEGER NOT NULL,
        expires_at_us INTEGER NOT NULL
    ) WITHOUT ROWID;",
    ),
    (
        4,
        "CREATE TABLE read_model_migrations (
        projection    TEXT NOT NULL,
        version       INTEGER NOT NULL,
        applied_at_us INTEGER NOT NULL,
        PRIMARY KEY (projection, version)
    ) WITHOUT ROWID;",
    ),
    (
        5,
        "CREATE TABLE idempotency_keys (
        stream_aggregate TEXT NOT NULL,
        stream_id        TEXT NOT NULL,
        key              TEXT NOT NULL,
        version          INTEGER NOT NULL,
        first_position   INTEGER NOT NULL,
        last_position    INTEGER NOT NULL,
        events           INTEGER NOT NULL,
        PRIMARY KEY (stream_aggregate, stream_id, key)
    ) WITHOUT ROWID;",
    ),
];

pub(super) fn migrate(conn: &mut Connection, database: &str) -> Result<(), StoreError> {
    let fail = |e| backend("cannot migrate the SQLite schema", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY,
            applied_at_us INTEGER NOT NULL
        )",
    )
    .map_err(fail)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > latest {
        return Err(StoreError::NewerSchema {
            database: database.to_owned(),
            found: current,
            supported: latest,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at_us) VALUES (?1, ?2)",
            params![version, Timestamp::now().as_micros()],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DocumentChange;
    use crate::store::sqlite::writer::{commit_read_model_rows, save_checkpoint_row};

    /// A database written before read models existed (schema version 1)
    /// gains the `documents` table on open, its data untouched.
    #[test]
    fn version_one_databases_are_migrated() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at_us INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1, 0);",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        save_checkpoint_row(&conn, "old", 7).unwrap();

        migrate(&mut conn, "test").unwrap();
        migrate(&mut conn, "test").unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_version ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, [1, 2, 3, 4, 5]);
        let change = DocumentChange {
            collection: String::from("c"),
            key: String::from("k"),
            body: Some(b"{\"n\":1}".to_vec()),
        };
        commit_read_model_rows(&conn, "new", &[change], 3).unwrap();
        let position: i64 = conn
            .query_row(
                "SELECT position FROM checkpoints WHERE name = 'old'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(position, 7);
    }
}
