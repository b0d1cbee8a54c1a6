//! The PostgreSQL schema: the validated schema name, the migrations, and the
//! SQL text of every statement the store prepares.

use std::fmt;

use deadpool_postgres::tokio_postgres::Client;

use super::pg_error;
use crate::error::StoreError;

/// A schema name checked against `^[a-z_][a-z0-9_]{0,62}$` (and not `pg_*`,
/// which PostgreSQL reserves). It is the only text ever spliced into SQL, and
/// always double-quoted as an identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SchemaName(String);

impl SchemaName {
    pub(super) fn parse(name: &str) -> Result<Self, StoreError> {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && name.len() <= 63
            && !name.starts_with("pg_");
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(StoreError::Backend {
                message: format!(
                    "invalid PostgreSQL schema name `{name}`: expected 1 to 63 characters matching \
                     `^[a-z_][a-z0-9_]*$`, not starting with `pg_`"
                ),
                source: None,
            })
        }
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    /// A lock key for `what` in this schema: FNV-1a over both, stable across
    /// builds and processes (unlike `std`'s hasher), so every process using
    /// the schema takes the same lock.
    pub(super) fn lock_key(&self, what: &str) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in what.bytes().chain([b'.']).chain(self.0.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}

/// Displays as the quoted identifier, ready to splice into SQL.
impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// The migrations, in order: `(version, SQL)`; `{s}` stands for the quoted
/// schema. Each runs once, recorded in `schema_migrations`.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE {s}.events (
    position         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_aggregate text NOT NULL,
    stream_id        text NOT NULL,
    version          bigint NOT NULL CHECK (version > 0),
    event_id         uuid NOT NULL UNIQUE,
    event_name       text NOT NULL,
    schema_version   integer NOT NULL,
    payload          jsonb NOT NULL,
    metadata         jsonb NOT NULL,
    timestamp_us     bigint NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream_aggregate, stream_id, version)
);
CREATE INDEX events_by_name ON {s}.events (event_name, position);
CREATE INDEX events_by_aggregate ON {s}.events (stream_aggregate, position);

CREATE TABLE {s}.snapshots (
    stream_aggregate text NOT NULL,
    stream_id        text NOT NULL,
    version          bigint NOT NULL,
    state            bytea NOT NULL,
    taken_at_us      bigint NOT NULL,
    PRIMARY KEY (stream_aggregate, stream_id)
);

CREATE TABLE {s}.checkpoints (
    name     text PRIMARY KEY,
    position bigint NOT NULL
);

-- Appends a group of batches in one transaction, one round trip. Batch i is
-- a_aggregate[i]/a_id[i], expecting version a_expected[i] (-1: any), with
-- a_count[i] events taken in order from the e_* arrays. A batch whose stream
-- is elsewhere is skipped and reported (new_version NULL); the others commit.
-- One statement for the whole group (one lookup of each stream's version
-- through its index, one INSERT), not one per batch. Two batches of one
-- stream in a group both see the version before the group, so the second
-- fails the unique (stream, version) key and aborts the group; the store
-- then appends each batch alone, which reports it correctly. The statement
-- is planned once per session (a custom plan per call cost more than the
-- append), and JIT is off: the planner's row estimates for the arrays make
-- it compile (tens of ms) a statement that touches a few rows.
CREATE FUNCTION {s}.append_group(
    lock_key bigint,
    channel text,
    a_aggregate text[],
    a_id text[],
    a_expected bigint[],
    a_count integer[],
    e_event_id uuid[],
    e_event_name text[],
    e_schema_version integer[],
    e_payload text[],
    e_metadata text[],
    e_timestamp bigint[]
) RETURNS TABLE (actual bigint, first_position bigint, last_position bigint, new_version bigint)
LANGUAGE plpgsql VOLATILE SET jit = off SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    head bigint;
BEGIN
    -- Serializes appends: positions are allocated under this lock, and it is
    -- released only after the commit is visible, so positions become visible
    -- in increasing order and a reader never skips one.
    PERFORM pg_advisory_xact_lock(lock_key);
    FOR actual, first_position, last_position, new_version IN
        WITH batch AS (
            SELECT i, a_aggregate[i] AS agg, a_id[i] AS sid, a_expected[i] AS expected,
                a_count[i] AS cnt,
                -- Events of the batches before this one.
                coalesce(sum(a_count[i]) OVER (ORDER BY i
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS done,
                -- The newest version, one index row (`max(version)` would
                -- visit every row of the stream).
                coalesce((SELECT ev.version FROM {s}.events ev
                    WHERE ev.stream_aggregate = a_aggregate[i] AND ev.stream_id = a_id[i]
                    ORDER BY ev.version DESC LIMIT 1), 0) AS cur
            FROM generate_subscripts(a_aggregate, 1) AS i
        ),
        inserted AS (
            INSERT INTO {s}.events (stream_aggregate, stream_id, version, event_id,
                event_name, schema_version, payload, metadata, timestamp_us)
            SELECT b.agg, b.sid, b.cur + (e.ord - b.done), e.event_id, e.event_name,
                e.schema_version, e.payload::jsonb, e.metadata::jsonb, e.timestamp_us
            -- unnest, not e_payload[k]: subscripting an array of text walks it
            -- from the start, so one append of 10,000 events cost 10,000^2.
            -- Each event finds its batch by range (events x batches, and a
            -- group has either few batches or small ones).
            FROM unnest(e_event_id, e_event_name, e_schema_version, e_payload, e_metadata,
                    e_timestamp)
                WITH ORDINALITY AS e(event_id, event_name, schema_version, payload, metadata,
                    timestamp_us, ord)
            JOIN batch b ON e.ord > b.done AND e.ord <= b.done + b.cnt
            WHERE b.expected < 0 OR b.expected = b.cur
            ORDER BY e.ord
            RETURNING position, stream_aggregate, stream_id
        )
        -- A stream's rows belong to its one batch that passed the check (two
        -- that pass abort the group, see above). A plain aggregate per batch,
        -- not a hash join: the planner sizes hash tables from its guess of
        -- the arrays' length (1,000), which costs more than the whole append.
        SELECT b.cur, s.f, s.l, CASE WHEN s.f IS NULL THEN NULL ELSE b.cur + b.cnt END
        FROM batch b LEFT JOIN LATERAL (
            SELECT min(r.position) AS f, max(r.position) AS l
            FROM inserted r
            WHERE r.stream_aggregate = b.agg AND r.stream_id = b.sid
                AND (b.expected < 0 OR b.expected = b.cur)
        ) s ON true
        ORDER BY b.i
    LOOP
        head := greatest(head, last_position);
        RETURN NEXT;
    END LOOP;
    IF head IS NOT NULL THEN
        PERFORM pg_notify(channel, head::text);
    END IF;
END
$fn$;
"#,
    ),
    (
        2,
        r#"
CREATE TABLE {s}.documents (
    projection text NOT NULL,
    collection text NOT NULL,
    key        text NOT NULL,
    body       jsonb NOT NULL,
    PRIMARY KEY (projection, collection, key)
);
COMMENT ON TABLE {s}.documents IS
    'Durable read models: one row per document, saved with the projection''s row in checkpoints';
"#,
    ),
    (
        3,
        r#"
-- Appends one batch: what append_group does for a group of one, without its
-- window and joins over the group, which cost more than the insert itself
-- when there is a single batch (a lone writer, or little concurrency).
-- Same lock, same check, same result row; each statement takes its own
-- snapshot, so the version is read after the lock is held.
CREATE FUNCTION {s}.append_one(
    lock_key bigint,
    channel text,
    agg text,
    sid text,
    expected bigint,
    e_event_id uuid[],
    e_event_name text[],
    e_schema_version integer[],
    e_payload text[],
    e_metadata text[],
    e_timestamp bigint[]
) RETURNS TABLE (actual bigint, first_position bigint, last_position bigint, new_version bigint)
LANGUAGE plpgsql VOLATILE SET jit = off SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    actual := coalesce((SELECT ev.version FROM {s}.events ev
        WHERE ev.stream_aggregate = agg AND ev.stream_id = sid
        ORDER BY ev.version DESC LIMIT 1), 0);
    IF expected >= 0 AND expected <> actual THEN
        -- The stream moved on: reported, nothing written.
        RETURN NEXT;
        RETURN;
    END IF;
    WITH inserted AS (
        INSERT INTO {s}.events (stream_aggregate, stream_id, version, event_id,
            event_name, schema_version, payload, metadata, timestamp_us)
        SELECT agg, sid, actual + e.ord, e.event_id, e.event_name, e.schema_version,
            e.payload::jsonb, e.metadata::jsonb, e.timestamp_us
        FROM unnest(e_event_id, e_event_name, e_schema_version, e_payload, e_metadata,
                e_timestamp)
            WITH ORDINALITY AS e(event_id, event_name, schema_version, payload, metadata,
                timestamp_us, ord)
        ORDER BY e.ord
        RETURNING position
    )
    SELECT min(position), max(position) INTO first_position, last_position FROM inserted;
    new_version := actual + cardinality(e_event_id);
    PERFORM pg_notify(channel, last_position::text);
    RETURN NEXT;
END
$fn$;
"#,
    ),
    (
        4,
        r#"
-- Leases: one holder at a time may commit for a consumer name. Each new
-- holder gets a larger token; a commit carries its holder's token and is
-- refused once the lease has moved on. Times are the server's clock.
CREATE TABLE {s}.leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    token      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Takes or renews the lease: granted when free, expired, or already the
-- asker's (a renewal keeps the token). The row lock makes a takeover wait
-- for a commit under way with the old token (which holds the row FOR SHARE).
CREATE FUNCTION {s}.acquire_lease(p_name text, p_holder text, p_ttl_us bigint)
RETURNS TABLE (held boolean, holder text, token bigint, expires_in_us bigint)
LANGUAGE plpgsql VOLATILE SET jit = off AS $fn$
DECLARE
    l {s}.leases%ROWTYPE;
    now_ts timestamptz;
    term interval := make_interval(secs => p_ttl_us::float8 / 1e6);
BEGIN
    INSERT INTO {s}.leases (name, holder, token, expires_at)
    VALUES (p_name, '', 0, '-infinity') ON CONFLICT (name) DO NOTHING;
    SELECT * INTO l FROM {s}.leases WHERE name = p_name FOR UPDATE;
    now_ts := clock_timestamp();
    IF l.holder = p_holder THEN
        UPDATE {s}.leases SET expires_at = now_ts + term WHERE name = p_name;
        RETURN QUERY SELECT true, p_holder, l.token, p_ttl_us;
    ELSIF l.holder = '' OR l.expires_at <= now_ts THEN
        UPDATE {s}.leases SET holder = p_holder, token = l.token + 1, expires_at = now_ts + term
        WHERE name = p_name;
        RETURN QUERY SELECT true, p_holder, l.token + 1, p_ttl_us;
    ELSE
        RETURN QUERY SELECT false, l.holder, l.token,
            (extract(epoch FROM (l.expires_at - now_ts)) * 1e6)::bigint;
    END IF;
END
$fn$;

-- The current token of a lease, for a write that carries p_token: NULL
-- when it may go on, else 'fenced' with the token now (NULL: released).
-- FOR SHARE: a takeover (FOR UPDATE) waits until this transaction ends, or
-- this one sees the takeover.
CREATE FUNCTION {s}.check_fence(p_name text, p_token bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    l_holder text;
    l_token bigint;
BEGIN
    SELECT l.holder, l.token INTO l_holder, l_token FROM {s}.leases l
    WHERE l.name = p_name FOR SHARE;
    IF l_holder IS NULL OR l_holder = '' THEN
        RETURN -1;
    ELSIF l_token <> p_token THEN
        RETURN l_token;
    END IF;
    RETURN NULL;
END
$fn$;

-- Commits a read model: the document changes (parallel arrays, a NULL body
-- deleting) and the checkpoint, both or neither. Refused, nothing written,
-- when p_token (if given) is not the lease's token ('fenced'), or when the
-- checkpoint is not after the saved one ('behind').
CREATE FUNCTION {s}.commit_read_model(
    p_name text,
    p_collections text[],
    p_keys text[],
    p_bodies text[],
    p_checkpoint bigint,
    p_token bigint
) RETURNS TABLE (outcome text, saved bigint, current_token bigint)
LANGUAGE plpgsql VOLATILE SET jit = off SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    refused bigint;
    stored bigint;
BEGIN
    IF p_token IS NOT NULL THEN
        refused := {s}.check_fence(p_name, p_token);
        IF refused IS NOT NULL THEN
            RETURN QUERY SELECT 'fenced'::text, NULL::bigint, nullif(refused, -1);
            RETURN;
        END IF;
    END IF;
    -- Locks the checkpoint row; moves it only forward.
    INSERT INTO {s}.checkpoints AS c (name, position) VALUES (p_name, p_checkpoint)
    ON CONFLICT (name) DO UPDATE SET position = excluded.position
    WHERE c.position < excluded.position
    RETURNING c.position INTO stored;
    IF NOT FOUND THEN
        SELECT c.position INTO stored FROM {s}.checkpoints c WHERE c.name = p_name;
        RETURN QUERY SELECT 'behind'::text, stored, NULL::bigint;
        RETURN;
    END IF;
    DELETE FROM {s}.documents AS d
    USING unnest(p_collections, p_keys, p_bodies) AS c(collection, key, body)
    WHERE d.projection = p_name AND d.collection = c.collection
      AND d.key = c.key AND c.body IS NULL;
    INSERT INTO {s}.documents (projection, collection, key, body)
    SELECT p_name, c.collection, c.key, c.body::jsonb
    FROM unnest(p_collections, p_keys, p_bodies) AS c(collection, key, body)
    WHERE c.body IS NOT NULL
    ORDER BY c.collection, c.key
    ON CONFLICT (projection, collection, key) DO UPDATE SET body = excluded.body;
    RETURN QUERY SELECT 'ok'::text, p_checkpoint, NULL::bigint;
END
$fn$;

-- Deletes a read model's documents and checkpoint; refused like a commit
-- when p_token is not the lease's token.
CREATE FUNCTION {s}.reset_read_model(p_name text, p_token bigint)
RETURNS TABLE (outcome text, current_token bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    refused bigint;
BEGIN
    IF p_token IS NOT NULL THEN
        refused := {s}.check_fence(p_name, p_token);
        IF refused IS NOT NULL THEN
            RETURN QUERY SELECT 'fenced'::text, nullif(refused, -1);
            RETURN;
        END IF;
    END IF;
    DELETE FROM {s}.documents WHERE projection = p_name;
    DELETE FROM {s}.checkpoints WHERE name = p_name;
    RETURN QUERY SELECT 'ok'::text, NULL::bigint;
END
$fn$;
"#,
    ),
    (
        5,
        r#"
-- The migrations of read models kept in SQL tables of their own: which of
-- a projection's own statements ran.
CREATE TABLE {s}.read_model_migrations (
    projection text NOT NULL,
    version    integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, version)
);
"#,
    ),
    (
        6,
        r#"
-- An inline projection's write inside an append's transaction: as
-- commit_read_model without a fence, but raising when refused, so that the
-- COMMIT sent with it rolls the whole transaction back.
CREATE FUNCTION {s}.commit_inline_read_model(
    p_name text,
    p_collections text[],
    p_keys text[],
    p_bodies text[],
    p_checkpoint bigint
) RETURNS void
LANGUAGE plpgsql VOLATILE SET jit = off SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
    INSERT INTO {s}.checkpoints AS c (name, position) VALUES (p_name, p_checkpoint)
    ON CONFLICT (name) DO UPDATE SET position = excluded.position
    WHERE c.position < excluded.position;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the checkpoint of % is not before %', p_name, p_checkpoint
            USING ERRCODE = 'P0001';
    END IF;
    DELETE FROM {s}.documents AS d
    USING unnest(p_collections, p_keys, p_bodies) AS c(collection, key, body)
    WHERE d.projection = p_name AND d.collection = c.collection
      AND d.key = c.key AND c.body IS NULL;
    INSERT INTO {s}.documents (projection, collection, key, body)
    SELECT p_name, c.collection, c.key, c.body::jsonb
    FROM unnest(p_collections, p_keys, p_bodies) AS c(collection, key, body)
    WHERE c.body IS NOT NULL
    ORDER BY c.collection, c.key
    ON CONFLICT (projection, collection, key) DO UPDATE SET body = excluded.body;
END
$fn$;
"#,
    ),
    (
        7,
        r#"
-- Idempotency keys: at most one append per stream and key. The key travels
-- in the events' metadata; a statement trigger records it from the rows
-- one INSERT wrote (every append function inserts a batch with one
-- statement), in the append's transaction. A key the stream already has
-- breaks the primary key and rolls the append back.
CREATE TABLE {s}.idempotency_keys (
    stream_aggregate text NOT NULL,
    stream_id        text NOT NULL,
    key              text NOT NULL,
    version          bigint NOT NULL,
    first_position   bigint NOT NULL,
    last_position    bigint NOT NULL,
    events           bigint NOT NULL,
    CONSTRAINT idempotency_keys_stream_key PRIMARY KEY (stream_aggregate, stream_id, key)
);

CREATE FUNCTION {s}.record_idempotency_keys() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO {s}.idempotency_keys (stream_aggregate, stream_id, key, version,
        first_position, last_position, events)
    SELECT n.stream_aggregate, n.stream_id, n.metadata->>'idempotency_key', max(n.version),
        min(n.position), max(n.position), count(*)
    FROM inserted n
    WHERE n.metadata ? 'idempotency_key'
    GROUP BY n.stream_aggregate, n.stream_id, n.metadata->>'idempotency_key';
    RETURN NULL;
END
$fn$;

CREATE TRIGGER events_idempotency_keys AFTER INSERT ON {s}.events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION {s}.record_idempotency_keys();
"#,
    ),
];

/// Applies the missing migrations, in one transaction under an advisory lock
/// so that processes starting together migrate once.
pub(super) async fn migrate(client: &mut Client, schema: &SchemaName) -> Result<(), StoreError> {
    let fail = |e| pg_error(format!("cannot migrate PostgreSQL schema {schema}"), e);
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&schema.lock_key("cqrs.migrate")],
    )
    .await
    .map_err(fail)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(fail)?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .map_err(fail)?
        .get(0);
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > latest {
        return Err(StoreError::NewerSchema {
            database: format!("PostgreSQL schema {schema}"),
            found: i64::from(current),
            supported: i64::from(latest),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(&sql.replace("{s}", &schema.to_string()))
            .await
            .map_err(fail)?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"),
            &[version],
        )
        .await
        .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}

/// The columns of an event row, in the order `record_from_row` reads them.
const EVENT_COLUMNS: &str = "position, stream_aggregate, stream_id, version, event_id, \
     event_name, schema_version, payload::text, metadata::text, timestamp_us";

/// The SQL text of every statement, for one schema.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) append_group: String,
    pub(super) append_one: String,
    pub(super) append_lone: String,
    pub(super) append_lone_group: String,
    pub(super) read_stream: String,
    pub(super) read_log: String,
    pub(super) head: String,
    pub(super) load_snapshot: String,
    pub(super) save_snapshot: String,
    pub(super) load_checkpoint: String,
    pub(super) save_checkpoint: String,
    pub(super) load_read_model: String,
    pub(super) commit_read_model: String,
    pub(super) reset_read_model: String,
    pub(super) acquire_lease: String,
    pub(super) release_lease: String,
    pub(super) read_range: String,
    pub(super) commit_inline_read_model: String,
    pub(super) find_key: String,
}

impl Sql {
    pub(super) fn new(s: &SchemaName) -> Self {
        Self {
            append_group: format!(
                "SELECT actual, first_position, last_position, new_version
                 FROM {s}.append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            append_one: format!(
                "SELECT actual, first_position, last_position, new_version
                 FROM {s}.append_one($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            // What `append_one` does for a single event, as one plain
            // statement: no function call, and one executor instead of one
            // per statement of the function, whose set-up cost about as much
            // as the insert itself. The lock is taken in the subquery each row comes out
            // of, so positions are still allocated under it. But the
            // statement's snapshot is taken before the lock is held: a
            // commit to the stream by another process during the wait is
            // not seen by the check, and the insert breaks the unique
            // (stream, version) key instead. The writer then asks
            // `append_one`, which reads after the lock; it does so too when
            // no row comes back (the check failed), for the actual version.
            append_lone: format!(
                "INSERT INTO {s}.events (stream_aggregate, stream_id, version, event_id,
                     event_name, schema_version, payload, metadata, timestamp_us)
                 SELECT $3, $4, c.actual + 1, $6, $7, $8, $9::text::jsonb, $10::text::jsonb, $11
                 FROM (
                     SELECT pg_advisory_xact_lock($1) AS locked,
                         coalesce((SELECT ev.version FROM {s}.events ev
                             WHERE ev.stream_aggregate = $3 AND ev.stream_id = $4
                             ORDER BY ev.version DESC LIMIT 1), 0) AS actual
                 ) c
                 WHERE $5::bigint < 0 OR $5::bigint = c.actual
                 RETURNING position, version, pg_notify($2::text, position::text)"
            ),
            // `append_lone` for a group of one-event appends: one row per
            // append, the lock taken before the first row is inserted, each
            // row's check against its stream's newest version. A row comes
            // back with its event id for each append that passed; an append
            // whose check failed gets none (the writer settles it alone);
            // two appends to one stream, or a commit by another
            // process while the group waited for the lock, break the unique
            // (stream, version) key and abort the group, as in
            // `append_group`. `OFFSET 0` keeps the lookup from being pulled
            // up into both the check and the version, which ran it twice.
            append_lone_group: format!(
                "INSERT INTO {s}.events (stream_aggregate, stream_id, version, event_id,
                     event_name, schema_version, payload, metadata, timestamp_us)
                 SELECT b.agg, b.sid, c.actual + 1, b.event_id, b.event_name, b.schema_version,
                     b.payload::jsonb, b.metadata::jsonb, b.ts
                 FROM (SELECT pg_advisory_xact_lock($1) AS locked) l,
                     unnest($2::text[], $3::text[], $4::bigint[], $5::uuid[], $6::text[],
                         $7::integer[], $8::text[], $9::text[], $10::bigint[])
                         WITH ORDINALITY AS b(agg, sid, expected, event_id, event_name,
                             schema_version, payload, metadata, ts, ord),
                     LATERAL (
                         SELECT coalesce((SELECT ev.version FROM {s}.events ev
                             WHERE ev.stream_aggregate = b.agg AND ev.stream_id = b.sid
                             ORDER BY ev.version DESC LIMIT 1), 0) AS actual
                         OFFSET 0
                     ) c
                 WHERE b.expected < 0 OR b.expected = c.actual
                 ORDER BY b.ord
                 RETURNING position, event_id, version, pg_notify($11::text, position::text)"
            ),
            read_stream: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events
                 WHERE stream_aggregate = $1 AND stream_id = $2 AND version >= $3
                 ORDER BY version"
            ),
            // The head and the page in one statement, so one snapshot: every
            // position up to that head is settled (see `PostgresStore`), and
            // none above it is visible. The page walks the primary key in
            // order from $1 and stops at $4 matches or at position $5 (the
            // caller's window). Only the `position > $1` condition can use an
            // index: with the filter as an index condition, or a bounded
            // range the planner misjudges (a table not yet analyzed gets a
            // guess of 0.5 %), it collects and sorts every candidate in the
            // window instead of stopping early, so a catch-up cost the square
            // of the log's length. No sort after the join either: the page
            // comes out of the primary key in position order already, and a
            // sort would hold every row back until the last one is found,
            // where without it rows stream to the client while the server
            // finds the next ones. The reader checks the order as it decodes
            // the rows (see `PostgresStore::read_page`). $6 and $7 are the
            // aggregates and known names of `LogFilter::unknown`.
            read_log: format!(
                "WITH h AS (SELECT coalesce(max(position), 0) AS head FROM {s}.events)
                 SELECT h.head, {EVENT_COLUMNS_E}
                 FROM h LEFT JOIN LATERAL (
                     SELECT * FROM {s}.events
                     WHERE position > $1 AND (position + 0) <= $5
                       AND ((($2::text[] IS NULL OR (event_name || '') = ANY($2))
                             AND ($3::text[] IS NULL OR (stream_aggregate || '') = ANY($3)))
                         OR ($6::text[] IS NOT NULL AND (stream_aggregate || '') = ANY($6)
                             AND NOT (event_name || '') = ANY($7::text[])))
                     ORDER BY position
                     LIMIT $4
                 ) e ON true",
                EVENT_COLUMNS_E = EVENT_COLUMNS
                    .split(", ")
                    .map(|c| format!("e.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            head: format!("SELECT coalesce(max(position), 0) FROM {s}.events"),
            load_snapshot: format!(
                "SELECT version, state, taken_at_us FROM {s}.snapshots
                 WHERE stream_aggregate = $1 AND stream_id = $2"
            ),
            save_snapshot: format!(
                "INSERT INTO {s}.snapshots AS t (stream_aggregate, stream_id, version, state, taken_at_us)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (stream_aggregate, stream_id) DO UPDATE
                 SET version = excluded.version, state = excluded.state, taken_at_us = excluded.taken_at_us
                 WHERE t.version < excluded.version"
            ),
            load_checkpoint: format!("SELECT position FROM {s}.checkpoints WHERE name = $1"),
            find_key: format!(
                "SELECT version, first_position, last_position, events FROM {s}.idempotency_keys
                 WHERE stream_aggregate = $1 AND stream_id = $2 AND key = $3"
            ),
            save_checkpoint: format!(
                "INSERT INTO {s}.checkpoints (name, position) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position"
            ),
            // One statement, so one snapshot: the checkpoint and the documents
            // of the same commit. At least one row; the document columns are
            // NULL when there is none.
            load_read_model: format!(
                "SELECT c.position, d.collection, d.key, d.body::text
                 FROM (SELECT $1::text AS name) AS p
                 LEFT JOIN {s}.checkpoints AS c ON c.name = p.name
                 LEFT JOIN {s}.documents AS d ON d.projection = p.name
                 ORDER BY d.collection, d.key"
            ),
            // The whole commit in one call of a function: one round trip,
            // one implicit transaction, so a failure anywhere (a body that
            // is not JSON) saves none of it; a refused fence or checkpoint
            // writes nothing. $2, $3, $4 are parallel arrays, one element
            // per document, a NULL body deleting it; each document appears
            // once (`PostgresStore::commit_read_model` keeps the last change
            // of each), so no row is touched twice.
            commit_read_model: format!(
                "SELECT outcome, saved, current_token
                 FROM {s}.commit_read_model($1, $2, $3, $4, $5, $6)"
            ),
            reset_read_model: format!(
                "SELECT outcome, current_token FROM {s}.reset_read_model($1, $2)"
            ),
            acquire_lease: format!(
                "SELECT held, holder, token, expires_in_us FROM {s}.acquire_lease($1, $2, $3)"
            ),
            release_lease: format!(
                "UPDATE {s}.leases SET holder = '' WHERE name = $1 AND token = $2"
            ),
            commit_inline_read_model: format!(
                "SELECT {s}.commit_inline_read_model($1, $2, $3, $4, $5)"
            ),
            // The events of a filter in ($1, $2], for an inline projection
            // inside an append's transaction (which holds the append lock:
            // the range is settled). Parameters as in `read_log`.
            read_range: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events
                 WHERE position > $1 AND position <= $2
                   AND ((($3::text[] IS NULL OR event_name = ANY($3))
                         AND ($4::text[] IS NULL OR stream_aggregate = ANY($4)))
                     OR ($5::text[] IS NOT NULL AND stream_aggregate = ANY($5)
                         AND NOT event_name = ANY($6::text[])))
                 ORDER BY position"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SchemaName;

    #[test]
    fn schema_names_are_validated() {
        for ok in ["cqrs", "_x", "a1_b2", &"a".repeat(63)] {
            assert!(SchemaName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "A",
            "a-b",
            "a b",
            "a\"b",
            "pg_catalog",
            "é",
            &"a".repeat(64),
        ] {
            assert!(SchemaName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SchemaName::parse("cqrs").unwrap().to_string(), "\"cqrs\"");
    }

    #[test]
    fn lock_keys_differ_by_schema_and_purpose() {
        let a = SchemaName::parse("a").unwrap();
        let b = SchemaName::parse("b").unwrap();
        assert_ne!(a.lock_key("append"), b.lock_key("append"));
        assert_ne!(a.lock_key("append"), a.lock_key("migrate"));
        assert_eq!(a.lock_key("append"), a.lock_key("append"));
    }
}
