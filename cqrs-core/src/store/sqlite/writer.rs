//! The writer thread: every write, committed in groups, each job in a
//! savepoint of its own.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot, watch};

use super::log::Page;
use super::rows::Payload;
use super::{Counters, backend, backend_message, lock, to_i64, to_u64};
use crate::error::StoreError;
use crate::record::{NewEvent, StreamId, Timestamp};
use crate::store::decode::Spent;
use crate::store::inline::{Gate, InlineSet, lock_gates_blocking};
use crate::store::memory::refused;
use crate::store::{
    AppendOutcome, DocumentChange, ExpectedVersion, Fence, KeptAppend, LeaseGrant, Snapshot,
    append_key, check_forward,
};

/// A write request for the writer thread.
pub(super) enum Job {
    Append {
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        /// Projections to commit with it, in its savepoint.
        inline: Option<InlineSet>,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    Snapshot {
        stream: StreamId,
        snapshot: Snapshot,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Checkpoint {
        name: String,
        position: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A read model's document changes and its checkpoint, both or neither.
    CommitReadModel {
        name: String,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
        fence: Option<Fence>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Deletes a read model's documents and checkpoint.
    ResetReadModel {
        name: String,
        fence: Option<Fence>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Takes or renews a lease.
    AcquireLease {
        name: String,
        holder: String,
        ttl: Duration,
        reply: oneshot::Sender<Result<LeaseGrant, StoreError>>,
    },
    /// Gives a lease up.
    ReleaseLease {
        fence: Fence,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Runs code of a read model's own (its SQL tables) in a savepoint.
    Run {
        work: Option<Work>,
        reply: oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
    },
}

/// What a [`Job::Run`] runs on the writer's connection.
pub(super) type Work =
    Box<dyn FnOnce(&Connection) -> Result<Box<dyn Any + Send>, StoreError> + Send>;

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) conn: Arc<Mutex<Connection>>,
    pub(super) jobs: mpsc::Receiver<Job>,
    pub(super) head: Arc<watch::Sender<u64>>,
    pub(super) stats: Arc<Counters>,
    pub(super) max_group: usize,
}

/// What one job did inside the group transaction, answered after commit.
enum Done {
    Append(Result<AppendOutcome, StoreError>),
    Lease(Result<LeaseGrant, StoreError>),
    Unit(Result<(), StoreError>),
    Ran(Result<Box<dyn Any + Send>, StoreError>),
}

impl Writer {
    /// Commits waiting jobs in groups until every store clone is dropped.
    pub(super) fn run(mut self) {
        while let Some(first) = self.jobs.blocking_recv() {
            let mut group = vec![first];
            while group.len() < self.max_group {
                match self.jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&self, mut group: Vec<Job>) {
        // Inline projections: their gates are held from before the first
        // fold to after the commit (see `store::inline`).
        let inline = group_inline(&group);
        let mut gates = inline.as_ref().map(|set| InlineRun {
            gates: lock_gates_blocking(set),
            set: Arc::clone(set),
            dirty: false,
        });
        let conn = lock(&self.conn);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let message = format!("cannot start a SQLite write transaction: {e}");
            for job in group {
                let done = Done::failed(&job, &message);
                job.answer(done);
            }
            return;
        }
        let mut done = Vec::with_capacity(group.len());
        let mut aborted = None;
        for job in &mut group {
            if aborted.is_some() {
                done.push(Done::failed(job, "the write transaction was aborted"));
                continue;
            }
            done.push(run_in_savepoint(&conn, job, gates.as_mut()));
            // Some errors (I/O, disk full) make SQLite roll back the whole
            // transaction; what ran before is gone, what follows must not run
            // outside a transaction.
            if conn.is_autocommit() {
                aborted = Some(String::from("SQLite rolled back the write transaction"));
            }
        }
        let committed = match aborted {
            Some(reason) => Err(reason),
            None => conn
                .execute_batch("COMMIT")
                .map_err(|e| format!("cannot commit the SQLite write transaction: {e}")),
        };
        if let Some(run) = &mut gates {
            run.finish(committed.is_ok());
        }
        if let Err(reason) = committed {
            if !conn.is_autocommit() {
                // Best effort: the connection is unusable if this fails too.
                let _ = conn.execute_batch("ROLLBACK");
            }
            for (job, done) in group.into_iter().zip(done) {
                let done = if done.is_ok() {
                    Done::failed(&job, &reason)
                } else {
                    done
                };
                job.answer(done);
            }
            return;
        }
        drop(conn);
        let writes = done.iter().filter(|d| d.is_ok()).count() as u64;
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        self.stats.writes.fetch_add(writes, Ordering::Relaxed);
        let head = done
            .iter()
            .filter_map(|d| match d {
                Done::Append(Ok(outcome)) => Some(outcome.last_position),
                _ => None,
            })
            .max();
        if let Some(head) = head {
            self.head.send_if_modified(|h| {
                let moved = head > *h;
                if moved {
                    *h = head;
                }
                moved
            });
        }
        for (job, done) in group.into_iter().zip(done) {
            job.answer(done);
        }
    }
}

impl Done {
    fn is_ok(&self) -> bool {
        match self {
            Self::Append(r) => r.is_ok(),
            Self::Lease(r) => r.is_ok(),
            Self::Unit(r) => r.is_ok(),
            Self::Ran(r) => r.is_ok(),
        }
    }

    fn failed(job: &Job, reason: &str) -> Self {
        let error = || StoreError::Backend {
            message: reason.to_owned(),
            source: None,
        };
        match job {
            Job::Append { .. } => Self::Append(Err(error())),
            Job::AcquireLease { .. } => Self::Lease(Err(error())),
            Job::Run { .. } => Self::Ran(Err(error())),
            Job::Snapshot { .. }
            | Job::Checkpoint { .. }
            | Job::CommitReadModel { .. }
            | Job::ResetReadModel { .. }
            | Job::ReleaseLease { .. } => Self::Unit(Err(error())),
        }
    }
}

impl Job {
    fn answer(self, done: Done) {
        // A caller that stopped waiting no longer needs the answer.
        match (self, done) {
            (Job::Append { reply, .. }, Done::Append(r)) => {
                let _ = reply.send(r);
            }
            (Job::AcquireLease { reply, .. }, Done::Lease(r)) => {
                let _ = reply.send(r);
            }
            (Job::Run { reply, .. }, Done::Ran(r)) => {
                let _ = reply.send(r);
            }
            (
                Job::Snapshot { reply, .. }
                | Job::Checkpoint { reply, .. }
                | Job::CommitReadModel { reply, .. }
                | Job::ResetReadModel { reply, .. }
                | Job::ReleaseLease { reply, .. },
                Done::Unit(r),
            ) => {
                let _ = reply.send(r);
            }
            _ => unreachable!("each job is answered with its own kind of result"),
        }
    }
}

/// The inline projections of a group, their gates held.
pub(super) struct InlineRun<'g> {
    set: InlineSet,
    gates: Vec<tokio::sync::MutexGuard<'g, Gate>>,
    /// Whether a fold was undone (its savepoint rolled back): the state is
    /// then not what the transaction saves.
    dirty: bool,
}

impl InlineRun<'_> {
    /// The group's transaction ended: each gate moved on with it (set as
    /// each append committed its fold), or invalidated.
    fn finish(&mut self, committed: bool) {
        if !committed || self.dirty {
            self.gates.iter_mut().for_each(|gate| gate.invalidate());
        }
    }

    /// Commits the inline projections for an append that inserted events
    /// through `last`: reload if needed, read the gap, fold, write.
    fn fold_and_write(&mut self, conn: &Connection, last: u64) -> Result<(), StoreError> {
        for (projection, gate) in self.set.iter().zip(self.gates.iter_mut()) {
            let name = projection.name();
            if gate.position().is_none() {
                let saved = if projection.durable() {
                    Some(super::load_read_model_rows(conn, name)?)
                } else {
                    None
                };
                let at = saved.as_ref().and_then(|s| s.checkpoint).unwrap_or(0);
                projection
                    .reload(saved)
                    .map_err(|reason| refused(name, &reason))?;
                gate.reloaded(at);
            }
            let from = gate.position().unwrap_or(0);
            let mut page = Page {
                records: Vec::new(),
                spent: Spent::default(),
                limit: usize::MAX,
            };
            page.read(conn, projection.filter(), from, last)
                .map_err(|e| e.into_store(|| format!("cannot read the log for `{name}`")))?;
            // From here on the state is folded: undone unless this commits.
            self.dirty = true;
            let changes = projection
                .fold(&page.records)
                .map_err(|reason| refused(name, &reason))?;
            if projection.durable() {
                commit_read_model_rows(conn, name, &gate.changes(changes), last)?;
            }
            gate.committed(last);
            self.dirty = false;
        }
        Ok(())
    }
}

/// The inline projections of the first append of `group` that has any
/// (an engine hands every append the same set).
fn group_inline(group: &[Job]) -> Option<InlineSet> {
    group.iter().find_map(|job| match job {
        Job::Append {
            inline: Some(set), ..
        } => Some(Arc::clone(set)),
        _ => None,
    })
}

/// Runs one job in a savepoint, so its failure undoes it alone.
fn run_in_savepoint(conn: &Connection, job: &mut Job, inline: Option<&mut InlineRun<'_>>) -> Done {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        return Done::failed(job, &format!("cannot open a SQLite savepoint: {e}"));
    }
    let done =
        match job {
            Job::Append {
                stream,
                expected,
                events,
                inline: wanted,
                ..
            } => Done::Append(append_rows(conn, stream, *expected, events).and_then(
                |outcome| match (wanted, inline) {
                    (Some(_), Some(run)) => {
                        run.fold_and_write(conn, outcome.last_position)?;
                        Ok(outcome)
                    }
                    _ => Ok(outcome),
                },
            )),
            Job::Snapshot {
                stream, snapshot, ..
            } => Done::Unit(save_snapshot_row(conn, stream, snapshot)),
            Job::Checkpoint { name, position, .. } => {
                Done::Unit(save_checkpoint_row(conn, name, *position))
            }
            Job::CommitReadModel {
                name,
                changes,
                checkpoint,
                fence,
                ..
            } => Done::Unit(
                check_fence(conn, name, fence.as_ref())
                    .and_then(|()| commit_read_model_rows(conn, name, changes, *checkpoint)),
            ),
            Job::ResetReadModel { name, fence, .. } => Done::Unit(
                check_fence(conn, name, fence.as_ref())
                    .and_then(|()| reset_read_model_rows(conn, name)),
            ),
            Job::AcquireLease {
                name, holder, ttl, ..
            } => Done::Lease(acquire_lease_row(conn, name, holder, *ttl)),
            Job::ReleaseLease { fence, .. } => Done::Unit(release_lease_row(conn, fence)),
            Job::Run { work, .. } => Done::Ran(match work.take() {
                Some(work) => work(conn),
                None => Err(backend_message("a read model's work was run twice")),
            }),
        };
    let end = if done.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch(end)
    {
        return Done::failed(job, &format!("cannot close a SQLite savepoint: {e}"));
    }
    done
}

fn append_rows(
    conn: &Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendOutcome, StoreError> {
    let fail = |e| backend(format!("cannot append to stream {stream}"), e);
    let key = append_key(stream, events)?;
    let current: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(version), 0) FROM events
             WHERE stream_aggregate = ?1 AND stream_id = ?2",
        )
        .and_then(|mut s| s.query_row(params![stream.aggregate, stream.id], |r| r.get(0)))
        .map_err(fail)?;
    let current = to_u64(current);
    if let ExpectedVersion::Exact(expected) = expected
        && expected != current
    {
        return Err(StoreError::Conflict {
            stream: stream.clone(),
            expected,
            actual: current,
        });
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (stream_aggregate, stream_id, version, event_id, event_name,
                                 schema_version, payload, metadata, timestamp_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(fail)?;
    let mut version = current;
    let mut first_position = 0;
    let mut last_position = 0;
    for event in events {
        version += 1;
        let metadata = serde_json::to_string(&event.metadata).map_err(|e| {
            backend(
                format!("cannot encode the metadata of an event of {stream}"),
                e,
            )
        })?;
        insert
            .execute(params![
                stream.aggregate,
                stream.id,
                to_i64(version),
                event.event_id.hyphenated().to_string(),
                event.event_name,
                event.schema_version,
                Payload(&event.payload),
                metadata,
                event.timestamp.as_micros(),
            ])
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::InvalidAppend {
                    stream: stream.clone(),
                    reason: format!(
                        "event id {} is already stored ({e})",
                        event.event_id.hyphenated()
                    ),
                },
                _ => fail(e),
            })?;
        last_position = to_u64(conn.last_insert_rowid());
        if first_position == 0 {
            first_position = last_position;
        }
    }
    let outcome = AppendOutcome {
        version,
        first_position,
        last_position,
    };
    if let Some(key) = key {
        record_key(conn, stream, key, &outcome, events.len())?;
    }
    Ok(outcome)
}

/// Records idempotency key `key` with the append it came with, in the
/// append's savepoint: a key `stream` already has fails the append.
fn record_key(
    conn: &Connection,
    stream: &StreamId,
    key: &str,
    outcome: &AppendOutcome,
    events: usize,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (stream_aggregate, stream_id, key, version,
                                       first_position, last_position, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            stream.aggregate,
            stream.id,
            key,
            to_i64(outcome.version),
            to_i64(outcome.first_position),
            to_i64(outcome.last_position),
            to_i64(events as u64),
        ])
    })
    .map(drop)
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::DuplicateKey {
            stream: stream.clone(),
            key: key.to_owned(),
        },
        _ => backend(format!("cannot record an idempotency key of {stream}"), e),
    })
}

/// The append of `stream` that recorded `key`, if any.
pub(super) fn find_key_row(
    conn: &Connection,
    stream: &StreamId,
    key: &str,
) -> Result<Option<KeptAppend>, StoreError> {
    conn.prepare_cached(
        "SELECT version, first_position, last_position, events FROM idempotency_keys
         WHERE stream_aggregate = ?1 AND stream_id = ?2 AND key = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![stream.aggregate, stream.id, key], |r| {
            Ok(KeptAppend {
                outcome: AppendOutcome {
                    version: to_u64(r.get(0)?),
                    first_position: to_u64(r.get(1)?),
                    last_position: to_u64(r.get(2)?),
                },
                events: to_u64(r.get(3)?),
            })
        })
        .optional()
    })
    .map_err(|e| backend(format!("cannot look up an idempotency key of {stream}"), e))
}

fn save_snapshot_row(
    conn: &Connection,
    stream: &StreamId,
    snapshot: &Snapshot,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO snapshots (stream_aggregate, stream_id, version, state, taken_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (stream_aggregate, stream_id) DO UPDATE
         SET version = excluded.version, state = excluded.state, taken_at_us = excluded.taken_at_us
         WHERE excluded.version > snapshots.version",
    )
    .and_then(|mut s| {
        s.execute(params![
            stream.aggregate,
            stream.id,
            to_i64(snapshot.version),
            snapshot.state,
            snapshot.taken_at.as_micros(),
        ])
    })
    .map(drop)
    .map_err(|e| backend(format!("cannot save the snapshot of {stream}"), e))
}

pub(super) fn save_checkpoint_row(
    conn: &Connection,
    name: &str,
    position: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (name, position) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    )
    .and_then(|mut s| s.execute(params![name, to_i64(position)]))
    .map(drop)
    .map_err(|e| backend(format!("cannot save the checkpoint of `{name}`"), e))
}

/// Applies `changes` to the documents of `name` in order, then sets its
/// checkpoint. Runs inside the job's savepoint: a failing statement (a body
/// the `json_valid` check refuses, an I/O error) rolls all of it back.
pub(super) fn commit_read_model_rows(
    conn: &Connection,
    name: &str,
    changes: &[DocumentChange],
    checkpoint: u64,
) -> Result<(), StoreError> {
    let fail = |e| backend(format!("cannot commit the read model `{name}`"), e);
    let saved: Option<i64> = conn
        .prepare_cached("SELECT position FROM checkpoints WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(fail)?;
    check_forward(name, saved.map(to_u64), checkpoint)?;
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO documents (projection, collection, key, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (projection, collection, key) DO UPDATE SET body = excluded.body",
        )
        .map_err(fail)?;
    let mut delete = conn
        .prepare_cached(
            "DELETE FROM documents WHERE projection = ?1 AND collection = ?2 AND key = ?3",
        )
        .map_err(fail)?;
    for change in changes {
        let DocumentChange {
            collection,
            key,
            body,
        } = change;
        match body {
            Some(body) => upsert.execute(params![name, collection, key, Payload(body)]),
            None => delete.execute(params![name, collection, key]),
        }
        .map_err(|e| {
            let what = format!("document `{collection}/{key}` of the read model `{name}`");
            match e.sqlite_error_code() {
                // The only constraint a write can break: `json_valid(body)`.
                Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    backend(format!("cannot save {what}: the body is not JSON text"), e)
                }
                _ => backend(format!("cannot save {what}"), e),
            }
        })?;
    }
    save_checkpoint_row(conn, name, checkpoint)
}

/// Deletes the documents and the checkpoint of `name`, in the job's savepoint.
fn reset_read_model_rows(conn: &Connection, name: &str) -> Result<(), StoreError> {
    let fail = |e| backend(format!("cannot reset the read model `{name}`"), e);
    for sql in [
        "DELETE FROM documents WHERE projection = ?1",
        "DELETE FROM checkpoints WHERE name = ?1",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([name]))
            .map_err(fail)?;
    }
    Ok(())
}

/// Refuses a write carrying `fence` unless it is the current token of the
/// lease on `name`.
pub(super) fn check_fence(
    conn: &Connection,
    name: &str,
    fence: Option<&Fence>,
) -> Result<(), StoreError> {
    let Some(fence) = fence else { return Ok(()) };
    let current: Option<(String, i64)> = conn
        .prepare_cached("SELECT holder, token FROM leases WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| backend(format!("cannot read the lease of `{name}`"), e))?;
    let current = current
        .filter(|(holder, _)| !holder.is_empty())
        .map(|(_, token)| to_u64(token));
    if current == Some(fence.token) {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            name: name.to_owned(),
            token: fence.token,
            current,
        })
    }
}

/// Takes or renews the lease on `name` for `holder`, by this machine's clock
/// (every process sharing a SQLite file runs on one machine).
fn acquire_lease_row(
    conn: &Connection,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<LeaseGrant, StoreError> {
    let fail = |e| backend(format!("cannot take the lease of `{name}`"), e);
    let now = Timestamp::now().as_micros();
    let term = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
    let current: Option<(String, i64, i64)> = conn
        .prepare_cached("SELECT holder, token, expires_at_us FROM leases WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(fail)?;
    let token = match current {
        Some((current, token, _)) if current == holder => token.max(1),
        Some((current, _, expires)) if !current.is_empty() && expires > now => {
            return Ok(LeaseGrant::Taken {
                holder: current,
                expires_in: Duration::from_micros(to_u64(expires - now)),
            });
        }
        Some((_, token, _)) => token + 1,
        None => 1,
    };
    conn.prepare_cached(
        "INSERT INTO leases (name, holder, token, expires_at_us) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE
         SET holder = excluded.holder, token = excluded.token, expires_at_us = excluded.expires_at_us",
    )
    .and_then(|mut s| s.execute(params![name, holder, token, now.saturating_add(term)]))
    .map_err(fail)?;
    Ok(LeaseGrant::Held(Fence {
        name: name.to_owned(),
        token: to_u64(token),
    }))
}

/// Gives up the lease `fence` holds, keeping its token (the next holder's is
/// larger still).
fn release_lease_row(conn: &Connection, fence: &Fence) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE leases SET holder = '' WHERE name = ?1 AND token = ?2")
        .and_then(|mut s| s.execute(params![fence.name, to_i64(fence.token)]))
        .map(drop)
        .map_err(|e| backend(format!("cannot release the lease of `{}`", fence.name), e))
}

/// Refuses, before the writer, a document body that cannot be JSON text.
pub(super) fn check_utf8_bodies(name: &str, changes: &[DocumentChange]) -> Result<(), StoreError> {
    for change in changes {
        if let Some(body) = &change.body
            && let Err(e) = std::str::from_utf8(body)
        {
            return Err(backend(
                format!(
                    "document `{}/{}` of the read model `{name}` is not UTF-8 JSON text",
                    change.collection, change.key
                ),
                e,
            ));
        }
    }
    Ok(())
}
