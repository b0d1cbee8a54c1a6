//! The append path: one task commits waiting appends together (group commit).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::tokio_postgres::{self, Row};
use deadpool_postgres::{Client, Pool};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::{Counters, acquire, describe, event_row, publish, saved_read_model, to_i64, to_u64};
use crate::error::StoreError;
use crate::record::{NewEvent, StreamId};
use crate::store::inline::{Gate, InlineSet, lock_gates};
use crate::store::memory::refused;
use crate::store::{AppendOutcome, ExpectedVersion};

/// One append waiting for the writer.
#[derive(Debug)]
pub(super) struct AppendJob {
    pub(super) stream: StreamId,
    pub(super) expected: ExpectedVersion,
    pub(super) events: Vec<NewEvent>,
    /// Projections to commit with it, in its transaction.
    pub(super) inline: Option<InlineSet>,
    pub(super) reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// The statements of the inline path.
pub(super) struct InlineSql {
    pub(super) read_range: String,
    pub(super) load_read_model: String,
    pub(super) commit_read_model: String,
}

/// The writer task's state.
pub(super) struct Writer {
    pub(super) pool: Pool,
    /// `append_group`, for a group of several appends.
    pub(super) group_sql: String,
    /// `append_one`: a lone append of several events, and what settles a
    /// one-event append that `lone_sql` could not.
    pub(super) one_sql: String,
    /// `append_one` for one event as a plain statement, cheaper still;
    /// `one_sql` settles what it cannot (see `Sql::append_lone`).
    pub(super) lone_sql: String,
    /// `append_lone` for a group of one-event appends.
    pub(super) lone_group_sql: String,
    pub(super) inline_sql: InlineSql,
    pub(super) lock_key: i64,
    pub(super) channel: String,
    pub(super) jobs: mpsc::Receiver<AppendJob>,
    pub(super) head: Arc<watch::Sender<u64>>,
    pub(super) stats: Arc<Counters>,
    pub(super) max_group: usize,
}

type Outcome = Result<AppendOutcome, StoreError>;

/// About how much payload one group carries at most (a single larger append
/// still goes alone).
const GROUP_BYTES: usize = 8 * 1024 * 1024;

fn payload_bytes(job: &AppendJob) -> usize {
    job.events.iter().map(|e| e.payload.len()).sum()
}

/// The longest a group waits for the callers of the previous one.
const MAX_PATIENCE: Duration = Duration::from_millis(1);

impl Writer {
    /// Commits waiting appends in groups until every store clone is dropped.
    pub(super) async fn run(mut self) {
        let mut next = None;
        // The size of the last group and how long its commit took.
        let mut last_group = 1;
        let mut last_commit = Duration::ZERO;
        loop {
            let first = match next.take() {
                Some(job) => job,
                None => match self.jobs.recv().await {
                    Some(job) => job,
                    None => return,
                },
            };
            let mut bytes = payload_bytes(&first);
            let mut group = vec![first];
            let mut full = self.gather(&mut group, &mut bytes, &mut next);
            // The callers of the last group were just answered and are likely
            // appending again. Without waiting for them, N concurrent writers
            // split into two alternating groups of N/2, each paying a commit;
            // a short wait (yielding, a quarter of a commit at most) lets them
            // share this group's commit. A lone writer (groups of one) never
            // waits.
            if !full && group.len() < last_group {
                let patience = (last_commit / 4).min(MAX_PATIENCE);
                let started = Instant::now();
                while !full && group.len() < last_group && started.elapsed() < patience {
                    tokio::task::yield_now().await;
                    full = self.gather(&mut group, &mut bytes, &mut next);
                }
            }
            last_group = group.len();
            let started = Instant::now();
            self.commit(group).await;
            last_commit = started.elapsed();
        }
    }

    /// Moves waiting appends into `group`, up to `max_group` appends or about
    /// `GROUP_BYTES` of payload (keeping one statement's parameters a
    /// sensible size); an append over the limit waits in `next`. Returns
    /// whether the group is full.
    fn gather(
        &mut self,
        group: &mut Vec<AppendJob>,
        bytes: &mut usize,
        next: &mut Option<AppendJob>,
    ) -> bool {
        while group.len() < self.max_group {
            let Ok(job) = self.jobs.try_recv() else {
                return false;
            };
            *bytes += payload_bytes(&job);
            if *bytes > GROUP_BYTES {
                *next = Some(job);
                return true;
            }
            group.push(job);
        }
        true
    }

    async fn commit(&self, group: Vec<AppendJob>) {
        if let Some(set) = group.iter().find_map(|job| job.inline.clone()) {
            return self.commit_inline(group, set).await;
        }
        let outcomes = match self.call(&group).await {
            Ok(outcomes) => {
                self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                outcomes
            }
            // A statement error (a payload that is not JSON, a duplicate
            // event id, two appends to one stream) aborted the whole group:
            // retry each append alone so only the faulty one fails.
            Err(e) if e.as_db_error().is_some() && group.len() > 1 => {
                let mut outcomes = Vec::with_capacity(group.len());
                for job in &group {
                    let outcome = match self.call(std::slice::from_ref(job)).await {
                        Ok(mut one) => {
                            self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                            one.pop().unwrap_or_else(|| Err(missing_row(job)))
                        }
                        Err(e) => Err(append_error(job, &e)),
                    };
                    outcomes.push(outcome);
                }
                outcomes
            }
            Err(e) => group.iter().map(|job| Err(append_error(job, &e))).collect(),
        };
        let appended = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
        self.stats.appends.fetch_add(appended, Ordering::Relaxed);
        if let Some(head) = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().map(|o| o.last_position))
            .max()
        {
            publish(&self.head, head);
        }
        for (job, outcome) in group.into_iter().zip(outcomes) {
            // A caller that stopped waiting no longer needs the answer.
            let _ = job.reply.send(outcome);
        }
    }

    /// Commits `group` with inline projections: one explicit transaction
    /// (the append lock, taken by the append function, is held until its
    /// end), the projections' gates held throughout (see `store::inline`).
    async fn commit_inline(&self, group: Vec<AppendJob>, set: InlineSet) {
        let mut gates = lock_gates(&set).await;
        let outcomes = match self.inline_transaction(&group, &set, &mut gates).await {
            Ok(outcomes) => outcomes,
            Err(e) if e.as_db_error().is_some() && group.len() > 1 => {
                let mut outcomes = Vec::with_capacity(group.len());
                for job in &group {
                    let alone = std::slice::from_ref(job);
                    outcomes.push(
                        match self.inline_transaction(alone, &set, &mut gates).await {
                            Ok(mut one) => one.pop().unwrap_or_else(|| Err(missing_row(job))),
                            Err(e) => Err(append_error(job, &e)),
                        },
                    );
                }
                outcomes
            }
            Err(e) => group.iter().map(|job| Err(append_error(job, &e))).collect(),
        };
        drop(gates);
        let appended = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
        self.stats.appends.fetch_add(appended, Ordering::Relaxed);
        if let Some(head) = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().map(|o| o.last_position))
            .max()
        {
            publish(&self.head, head);
        }
        for (job, outcome) in group.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }

    /// One transaction: the appends, then each inline projection's fold and
    /// write, then the commit. Two round trips in the usual case: `BEGIN`
    /// goes with the appends, and `COMMIT` with the last write (a write that
    /// fails raises, so that `COMMIT` rolls back); the events to fold are
    /// the appended ones when nothing came between (else they are read).
    /// On any failure the gates are invalidated: what was folded is not
    /// what is saved.
    async fn inline_transaction(
        &self,
        group: &[AppendJob],
        set: &InlineSet,
        gates: &mut [tokio::sync::MutexGuard<'_, Gate>],
    ) -> Result<Vec<Outcome>, CallError> {
        let client = acquire(&self.pool).await.map_err(CallError::Connect)?;
        // The append lock first, in the same round trip: each statement
        // after it takes its snapshot with the lock held, so the plain
        // one-event statements see every earlier commit (see
        // `Sql::append_lone`). The key is this store's own integer.
        let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({})", self.lock_key);
        let (began, appended) =
            tokio::join!(client.batch_execute(&begin), self.call_on(&client, group));
        let done = match (began, appended) {
            (Ok(()), Ok(outcomes)) => self
                .fold_and_commit(&client, group, &outcomes, set, gates)
                .await
                .map(|last| (outcomes, last)),
            (Err(e), _) => Err(CallError::Postgres(e)),
            (Ok(()), Err(e)) => Err(e),
        };
        match done {
            Ok((outcomes, last)) => {
                if let Some(last) = last {
                    gates.iter_mut().for_each(|gate| gate.committed(last));
                }
                Ok(outcomes)
            }
            Err(e) => {
                // Best effort: a closed connection is dropped from the pool.
                let _ = client.batch_execute("ROLLBACK").await;
                gates.iter_mut().for_each(|gate| gate.invalidate());
                Err(e)
            }
        }
    }

    /// Folds and writes each inline projection after `outcomes`, and
    /// commits; returns the last position appended (`None`: nothing was).
    async fn fold_and_commit(
        &self,
        client: &Client,
        group: &[AppendJob],
        outcomes: &[Outcome],
        set: &InlineSet,
        gates: &mut [tokio::sync::MutexGuard<'_, Gate>],
    ) -> Result<Option<u64>, CallError> {
        let Some(last) = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().map(|o| o.last_position))
            .max()
        else {
            // Nothing appended (every check failed): nothing to fold.
            client
                .batch_execute("COMMIT")
                .await
                .map_err(CallError::Postgres)?;
            return Ok(None);
        };
        let appended = appended_records(group, outcomes);
        let mut writes = Vec::new();
        for (projection, gate) in set.iter().zip(gates.iter_mut()) {
            let name = projection.name();
            if gate.position().is_none() {
                let saved = if projection.durable() {
                    let statement = client
                        .prepare_cached(&self.inline_sql.load_read_model)
                        .await
                        .map_err(CallError::Postgres)?;
                    let rows = client
                        .query(&statement, &[&name])
                        .await
                        .map_err(CallError::Postgres)?;
                    Some(saved_read_model(&rows))
                } else {
                    None
                };
                let at = saved.as_ref().and_then(|s| s.checkpoint).unwrap_or(0);
                projection
                    .reload(saved)
                    .map_err(|reason| CallError::Refused(refused(name, &reason)))?;
                gate.reloaded(at);
            }
            let from = gate.position().unwrap_or(0);
            let filter = projection.filter();
            let records = match &appended {
                // Nothing between the gate and this group's events.
                Some(records) if records.first().map(|r| r.position) == Some(from + 1) => records
                    .iter()
                    .filter(|r| filter.matches(r))
                    .cloned()
                    .collect(),
                _ => self.read_range(client, filter, from, last).await?,
            };
            let changes = projection
                .fold(&records)
                .map_err(|reason| CallError::Refused(refused(name, &reason)))?;
            if projection.durable() {
                writes.push((name, gate.changes(changes)));
            }
        }
        let statement = client
            .prepare_cached(&self.inline_sql.commit_read_model)
            .await
            .map_err(CallError::Postgres)?;
        let mut pending = writes.into_iter().peekable();
        while let Some((name, changes)) = pending.next() {
            let mut collections = Vec::with_capacity(changes.len());
            let mut keys = Vec::with_capacity(changes.len());
            let mut bodies: Vec<Option<String>> = Vec::with_capacity(changes.len());
            for change in changes {
                collections.push(change.collection);
                keys.push(change.key);
                // Documents are JSON text (`Documents` encodes them so).
                bodies.push(change.body.map(|b| {
                    String::from_utf8(b)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                }));
            }
            let checkpoint = to_i64(last);
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                [&name, &collections, &keys, &bodies, &checkpoint];
            let write = client.execute(&statement, &params);
            if pending.peek().is_some() {
                write.await.map_err(CallError::Postgres)?;
            } else {
                let (written, committed) = tokio::join!(write, client.batch_execute("COMMIT"));
                written.map_err(CallError::Postgres)?;
                committed.map_err(CallError::Postgres)?;
                return Ok(Some(last));
            }
        }
        client
            .batch_execute("COMMIT")
            .await
            .map_err(CallError::Postgres)?;
        Ok(Some(last))
    }

    /// The events of `filter` in `(from, last]`, read inside the append's
    /// transaction (which holds the append lock: the range is settled).
    async fn read_range(
        &self,
        client: &Client,
        filter: &crate::store::LogFilter,
        from: u64,
        last: u64,
    ) -> Result<Vec<Arc<crate::record::RecordedEvent>>, CallError> {
        let events = (!filter.events.is_empty()).then_some(&filter.events);
        let aggregates = (!filter.aggregates.is_empty()).then_some(&filter.aggregates);
        let unknown_in = filter.unknown.as_ref().map(|u| &u.aggregates);
        let known = filter.unknown.as_ref().map(|u| &u.known);
        let statement = client
            .prepare_cached(&self.inline_sql.read_range)
            .await
            .map_err(CallError::Postgres)?;
        let rows = client
            .query(
                &statement,
                &[
                    &to_i64(from),
                    &to_i64(last),
                    &events,
                    &aggregates,
                    &unknown_in,
                    &known,
                ],
            )
            .await
            .map_err(CallError::Postgres)?;
        rows.iter()
            .map(|row| event_row(row, 0).map(|row| Arc::new(row.into_record())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CallError::Refused)
    }

    /// Appends `group` in one call of `append_group` (or `append_one` for a
    /// single append): one round trip, one transaction.
    async fn call(&self, group: &[AppendJob]) -> Result<Vec<Outcome>, CallError> {
        let client = acquire(&self.pool).await.map_err(CallError::Connect)?;
        self.call_on(&client, group).await
    }

    /// [`call`](Self::call) on `client` (also inside a transaction).
    async fn call_on(
        &self,
        client: &Client,
        group: &[AppendJob],
    ) -> Result<Vec<Outcome>, CallError> {
        if let [job] = group {
            return self
                .call_one(client, job)
                .await
                .map(|outcome| vec![outcome]);
        }
        if group.iter().all(|job| job.events.len() == 1) {
            return self.call_lone_group(client, group).await;
        }
        let statement = client
            .prepare_cached(&self.group_sql)
            .await
            .map_err(CallError::Postgres)?;
        let streams = StreamColumns::of(group);
        let a_count: Vec<i32> = group
            .iter()
            .map(|job| i32::try_from(job.events.len()).unwrap_or(i32::MAX))
            .collect();
        let columns = EventColumns::of(group);
        let rows = client
            .query(
                &statement,
                &[
                    &self.lock_key,
                    &self.channel,
                    &streams.aggregate,
                    &streams.id,
                    &streams.expected,
                    &a_count,
                    &columns.event_id,
                    &columns.event_name,
                    &columns.schema_version,
                    &columns.payload,
                    &columns.metadata,
                    &columns.timestamp,
                ],
            )
            .await
            .map_err(CallError::Postgres)?;
        if rows.len() != group.len() {
            return Err(CallError::Other(format!(
                "append_group answered {} rows for {} appends",
                rows.len(),
                group.len()
            )));
        }
        Ok(group
            .iter()
            .zip(rows)
            .map(|(job, row)| outcome(job, &row))
            .collect())
    }

    /// Appends a group of one-event jobs with `append_lone_group`; a job
    /// whose check failed is then settled by `append_one`, in a transaction
    /// of its own.
    async fn call_lone_group(
        &self,
        client: &Client,
        group: &[AppendJob],
    ) -> Result<Vec<Outcome>, CallError> {
        let statement = client
            .prepare_cached(&self.lone_group_sql)
            .await
            .map_err(CallError::Postgres)?;
        let streams = StreamColumns::of(group);
        let columns = EventColumns::of(group);
        let rows = client
            .query(
                &statement,
                &[
                    &self.lock_key,
                    &streams.aggregate,
                    &streams.id,
                    &streams.expected,
                    &columns.event_id,
                    &columns.event_name,
                    &columns.schema_version,
                    &columns.payload,
                    &columns.metadata,
                    &columns.timestamp,
                    &self.channel,
                ],
            )
            .await
            .map_err(CallError::Postgres)?;
        let mut outcomes = Vec::with_capacity(group.len());
        for (job, event_id) in group.iter().zip(&columns.event_id) {
            // By event id: two appends to one stream can be in the group
            // when one of them failed its check.
            let row = rows.iter().find(|row| row.get::<_, Uuid>(1) == *event_id);
            outcomes.push(match row {
                Some(row) => {
                    let position = to_u64(row.get(0));
                    Ok(AppendOutcome {
                        version: to_u64(row.get(2)),
                        first_position: position,
                        last_position: position,
                    })
                }
                None => {
                    // Straight to the function: the plain statement would
                    // only fail the same check again.
                    let outcome = self.call_function(client, job).await;
                    if outcome.as_ref().is_ok_and(Result::is_ok) {
                        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                    }
                    outcome.unwrap_or_else(|e| Err(append_error(job, &e)))
                }
            });
        }
        Ok(outcomes)
    }

    /// Appends one job: a single event with the `append_lone` statement,
    /// falling back to the `append_one` function when that statement cannot
    /// tell (see `Sql::append_lone`); several events with the function.
    async fn call_one(&self, client: &Client, job: &AppendJob) -> Result<Outcome, CallError> {
        if let [event] = job.events.as_slice() {
            match self.call_lone(client, job, event).await {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => {}
                Err(CallError::Postgres(e))
                    if e.as_db_error().is_some_and(|db| {
                        *db.code() == SqlState::UNIQUE_VIOLATION
                            && db.constraint() == Some("events_stream_version")
                    }) => {}
                Err(e) => return Err(e),
            }
        }
        self.call_function(client, job).await
    }

    /// Appends one job with the `append_one` function, which reads the
    /// stream's version after taking the lock.
    async fn call_function(&self, client: &Client, job: &AppendJob) -> Result<Outcome, CallError> {
        let statement = client
            .prepare_cached(&self.one_sql)
            .await
            .map_err(CallError::Postgres)?;
        let columns = EventColumns::of(std::slice::from_ref(job));
        let row = client
            .query_one(
                &statement,
                &[
                    &self.lock_key,
                    &self.channel,
                    &job.stream.aggregate,
                    &job.stream.id,
                    &expected(job),
                    &columns.event_id,
                    &columns.event_name,
                    &columns.schema_version,
                    &columns.payload,
                    &columns.metadata,
                    &columns.timestamp,
                ],
            )
            .await
            .map_err(CallError::Postgres)?;
        Ok(outcome(job, &row))
    }

    /// One event with `append_lone`: `None` when it wrote nothing because
    /// the stream was not at the expected version.
    async fn call_lone(
        &self,
        client: &Client,
        job: &AppendJob,
        event: &NewEvent,
    ) -> Result<Option<Outcome>, CallError> {
        let statement = client
            .prepare_cached(&self.lone_sql)
            .await
            .map_err(CallError::Postgres)?;
        let rows = client
            .query(
                &statement,
                &[
                    &self.lock_key,
                    &self.channel,
                    &job.stream.aggregate,
                    &job.stream.id,
                    &expected(job),
                    &event.event_id,
                    &&*event.event_name,
                    &i32::try_from(event.schema_version).unwrap_or(i32::MAX),
                    &payload_text(event),
                    &metadata_text(event),
                    &event.timestamp.as_micros(),
                ],
            )
            .await
            .map_err(CallError::Postgres)?;
        Ok(rows.first().map(|row| {
            let position = to_u64(row.get(0));
            Ok(AppendOutcome {
                version: to_u64(row.get(1)),
                first_position: position,
                last_position: position,
            })
        }))
    }
}

/// The streams of some appends, one element per append, as the group
/// statements take them.
struct StreamColumns<'a> {
    aggregate: Vec<&'a str>,
    id: Vec<&'a str>,
    expected: Vec<i64>,
}

impl<'a> StreamColumns<'a> {
    fn of(group: &'a [AppendJob]) -> Self {
        Self {
            aggregate: group.iter().map(|job| &*job.stream.aggregate).collect(),
            id: group.iter().map(|job| job.stream.id.as_str()).collect(),
            expected: group.iter().map(expected).collect(),
        }
    }
}

/// The events of some appends, column by column, as the functions take them.
struct EventColumns<'a> {
    event_id: Vec<Uuid>,
    event_name: Vec<&'a str>,
    schema_version: Vec<i32>,
    payload: Vec<&'a str>,
    metadata: Vec<String>,
    timestamp: Vec<i64>,
}

impl<'a> EventColumns<'a> {
    fn of(group: &'a [AppendJob]) -> Self {
        let events = group.iter().map(|j| j.events.len()).sum();
        let mut columns = Self {
            event_id: Vec::with_capacity(events),
            event_name: Vec::with_capacity(events),
            schema_version: Vec::with_capacity(events),
            payload: Vec::with_capacity(events),
            metadata: Vec::with_capacity(events),
            timestamp: Vec::with_capacity(events),
        };
        for event in group.iter().flat_map(|job| &job.events) {
            columns.event_id.push(event.event_id);
            columns.event_name.push(&*event.event_name);
            columns
                .schema_version
                .push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
            columns.payload.push(payload_text(event));
            columns.metadata.push(metadata_text(event));
            columns.timestamp.push(event.timestamp.as_micros());
        }
        columns
    }
}

fn payload_text(event: &NewEvent) -> &str {
    // `PostgresStore::append` checked that payloads are UTF-8.
    std::str::from_utf8(&event.payload).unwrap_or_default()
}

fn metadata_text(event: &NewEvent) -> String {
    serde_json::to_string(&event.metadata).unwrap_or_else(|_| String::from("{}"))
}

/// The events `outcomes` appended, as records, in position order, when they
/// are contiguous (one group's, under the append lock); `None` otherwise.
fn appended_records(
    group: &[AppendJob],
    outcomes: &[Outcome],
) -> Option<Vec<Arc<crate::record::RecordedEvent>>> {
    let mut records = Vec::new();
    let mut batches: Vec<(&AppendJob, &AppendOutcome)> = group
        .iter()
        .zip(outcomes)
        .filter_map(|(job, o)| o.as_ref().ok().map(|o| (job, o)))
        .collect();
    batches.sort_by_key(|(_, o)| o.first_position);
    for (job, outcome) in batches {
        let count = job.events.len() as u64;
        if outcome.last_position + 1 - outcome.first_position != count
            || records
                .last()
                .is_some_and(|r: &Arc<crate::record::RecordedEvent>| {
                    r.position + 1 != outcome.first_position
                })
        {
            return None;
        }
        let stream = Arc::new(job.stream.clone());
        for (i, event) in (0..).zip(&job.events) {
            records.push(Arc::new(crate::record::RecordedEvent {
                event_id: event.event_id,
                stream: Arc::clone(&stream),
                version: outcome.version + 1 - count + i,
                position: outcome.first_position + i,
                event_name: event.event_name.clone(),
                schema_version: event.schema_version,
                payload: event.payload.clone(),
                metadata: event.metadata.clone(),
                timestamp: event.timestamp,
            }));
        }
    }
    Some(records)
}

/// The version an append expects, as the functions take it (-1: any).
fn expected(job: &AppendJob) -> i64 {
    match job.expected {
        ExpectedVersion::Any => -1,
        ExpectedVersion::Exact(v) => i64::try_from(v).unwrap_or(i64::MAX),
    }
}

/// One result row of `append_group` or `append_one`: `new_version` is NULL
/// when the stream was not at the expected version.
fn outcome(job: &AppendJob, row: &Row) -> Outcome {
    let actual: i64 = row.get(0);
    match row.get::<_, Option<i64>>(3) {
        Some(version) => Ok(AppendOutcome {
            version: to_u64(version),
            first_position: to_u64(row.get(1)),
            last_position: to_u64(row.get(2)),
        }),
        None => Err(StoreError::Conflict {
            stream: job.stream.clone(),
            expected: match job.expected {
                ExpectedVersion::Exact(v) => v,
                ExpectedVersion::Any => 0,
            },
            actual: to_u64(actual),
        }),
    }
}

/// Why a call of `append_group` failed.
#[derive(Debug)]
enum CallError {
    /// No connection could be had.
    Connect(StoreError),
    /// The statement or the connection failed.
    Postgres(deadpool_postgres::tokio_postgres::Error),
    /// Something else, described.
    Other(String),
    /// An inline projection refused the events (or its commit).
    Refused(StoreError),
}

impl CallError {
    fn as_db_error(&self) -> Option<&deadpool_postgres::tokio_postgres::error::DbError> {
        match self {
            Self::Postgres(e) => e.as_db_error(),
            Self::Connect(_) | Self::Other(_) | Self::Refused(_) => None,
        }
    }
}

fn missing_row(job: &AppendJob) -> StoreError {
    StoreError::Backend {
        message: format!("append_group answered no row for stream {}", job.stream),
        source: None,
    }
}

/// The error one append gets from a failed call (shared by a whole group, so
/// the cause is described in the message rather than moved into `source`).
fn append_error(job: &AppendJob, error: &CallError) -> StoreError {
    let stream = &job.stream;
    let message = match error {
        CallError::Connect(StoreError::Backend { message, .. }) => {
            format!("cannot append to stream {stream}: {message}")
        }
        CallError::Connect(e) => format!("cannot append to stream {stream}: {e}"),
        CallError::Postgres(e) => {
            if let Some(db) = e.as_db_error() {
                let code = db.code();
                // Data exceptions (class 22): a payload that is not JSON, or
                // that `jsonb` cannot hold (U+0000 in a string).
                if code.code().starts_with("22") {
                    return StoreError::InvalidAppend {
                        stream: stream.clone(),
                        reason: format!("PostgreSQL rejected the events: {}", db.message()),
                    };
                }
                if *code == SqlState::UNIQUE_VIOLATION
                    && db.constraint() == Some("idempotency_keys_stream_key")
                    && let Some(key) = job
                        .events
                        .first()
                        .and_then(|e| e.metadata.idempotency_key.clone())
                {
                    return StoreError::DuplicateKey {
                        stream: stream.clone(),
                        key,
                    };
                }
                if *code == SqlState::UNIQUE_VIOLATION
                    && db.constraint() == Some("events_event_id_key")
                {
                    return StoreError::InvalidAppend {
                        stream: stream.clone(),
                        reason: format!("an event id is already stored: {}", db.message()),
                    };
                }
                format!("cannot append to stream {stream}: {}", describe(e))
            } else {
                format!(
                    "the connection to PostgreSQL failed while appending to stream {stream} \
                     (the append may or may not have been committed): {}",
                    describe(e)
                )
            }
        }
        CallError::Other(message) => format!("cannot append to stream {stream}: {message}"),
        CallError::Refused(e) => {
            return match e {
                StoreError::Refused { message, .. } => StoreError::Refused {
                    message: message.clone(),
                    source: None,
                },
                StoreError::Corrupt { at, column, reason } => StoreError::Corrupt {
                    at: at.clone(),
                    column,
                    reason: reason.clone(),
                },
                StoreError::CheckpointNotAfter {
                    name,
                    saved,
                    attempted,
                } => StoreError::CheckpointNotAfter {
                    name: name.clone(),
                    saved: *saved,
                    attempted: *attempted,
                },
                other => StoreError::Refused {
                    message: format!("cannot append to stream {stream}: {other}"),
                    source: None,
                },
            };
        }
    };
    StoreError::Backend {
        message,
        source: None,
    }
}
