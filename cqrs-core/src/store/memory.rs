//! The in-memory store: the default, for tests, examples and single-process apps.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::inline::{Gate, InlineSet, lock_gates};
use super::{
    AppendOutcome, CheckpointStore, DocumentChange, EventStore, ExpectedVersion, Fence, GlobalLog,
    KeptAppend, LeaseGrant, LogFilter, LogSlice, SavedReadModel, Snapshot, SnapshotStore,
    append_key, check_forward,
};
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::{NewEvent, RecordedEvent, StreamId};

/// Keeps everything in memory; gone when the process ends.
///
/// Clones share the same data.
///
/// # Examples
///
/// ```
/// use cqrs_core::store::{EventStore, ExpectedVersion, MemoryStore};
/// use cqrs_core::{NewEvent, StreamId};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cqrs_core::StoreError> {
/// let store = MemoryStore::new();
/// let stream = StreamId::new("account", "a-1");
/// let event = NewEvent::new("Opened", "{}");
/// let outcome = store.append(&stream, ExpectedVersion::Exact(0), vec![event]).await?;
/// assert_eq!((outcome.version, outcome.last_position), (1, 1));
/// assert_eq!(store.read_stream(&stream, 1).await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    head: Arc<watch::Sender<u64>>,
}

#[derive(Debug, Default)]
struct Inner {
    log: Vec<Arc<RecordedEvent>>,
    /// Per stream, its shared id and its events. Hashed with foldhash
    /// (randomly seeded): looked up on every append.
    streams: HashMap<StreamId, StreamLog, foldhash::fast::RandomState>,
    snapshots: HashMap<StreamId, Snapshot>,
    checkpoints: HashMap<String, u64>,
    /// Per projection, (collection, key) -> document.
    documents: HashMap<String, BTreeMap<(String, String), Vec<u8>>>,
    /// Per consumer name, its lease.
    leases: HashMap<String, Lease>,
    /// Per stream and idempotency key, the append that recorded it.
    keys: HashMap<(StreamId, String), KeptAppend>,
}

impl Inner {
    /// Refuses an append whose idempotency key `stream` already recorded.
    fn check_key(&self, stream: &StreamId, key: Option<&str>) -> Result<(), StoreError> {
        match key {
            Some(key) if self.keys.contains_key(&(stream.clone(), key.to_owned())) => {
                Err(StoreError::DuplicateKey {
                    stream: stream.clone(),
                    key: key.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// A lease on a consumer name (an empty holder: released).
#[derive(Debug)]
struct Lease {
    holder: String,
    token: u64,
    expires: Instant,
}

thread_local! {
    /// What a record points at until the store gives it its stream's id.
    static PLACEHOLDER: Arc<StreamId> = Arc::new(StreamId::of("", ""));
}

/// One stream's events.
#[derive(Debug)]
struct StreamLog {
    /// The id every event of the stream shares.
    id: Arc<StreamId>,
    /// The indices of its events in `log`, by version.
    indices: Vec<usize>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            head: Arc::new(watch::Sender::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic cannot leave `Inner` half-written: every mutation below is
        // computed before the first write.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append_events(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &mut Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        stream.check()?;
        if events.is_empty() {
            return Err(StoreError::InvalidAppend {
                stream: stream.clone(),
                reason: String::from("no events to append"),
            });
        }
        let key = append_key(stream, events)?.map(str::to_owned);
        // The records are built outside the lock, which then only checks
        // and numbers them and gives them the stream's shared id (its first
        // event's): with many tasks appending, the critical section stays
        // short. Until then they point at a per-thread placeholder.
        let placeholder = PLACEHOLDER.with(Arc::clone);
        let count = events.len();
        // The first record apart: a single event (the usual case) needs no list.
        let (mut first, mut rest) = (None, Vec::new());
        for mut event in events.drain(..) {
            // Kept for the life of the store: drop any spare capacity (a
            // no-op for the engine's exactly sized payloads).
            event.payload.shrink_to_fit();
            let record = Arc::new(RecordedEvent {
                event_id: event.event_id,
                stream: Arc::clone(&placeholder),
                version: 0,
                position: 0,
                event_name: event.event_name,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
                timestamp: event.timestamp,
            });
            match first {
                None => first = Some(record),
                Some(_) => rest.push(record),
            }
        }
        drop(placeholder);
        let mut inner = self.lock();
        inner.check_key(stream, key.as_deref())?;
        let Inner {
            log, streams, keys, ..
        } = &mut *inner;
        // One hash lookup, and the stream id is cloned as a key only for a
        // new stream.
        let mut new_stream = None;
        let StreamLog { id, indices } = match streams.get_mut(stream) {
            Some(known) => known,
            None => new_stream.insert(StreamLog {
                id: Arc::new(stream.clone()),
                indices: Vec::new(),
            }),
        };
        let current = indices.len() as u64;
        if let ExpectedVersion::Exact(expected) = expected
            && expected != current
        {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: current,
            });
        }
        let first_position = log.len() as u64 + 1;
        let mut version = current;
        log.reserve(count);
        for mut record in first.into_iter().chain(rest) {
            version += 1;
            indices.push(log.len());
            // The record's only owner until it is pushed.
            if let Some(record) = Arc::get_mut(&mut record) {
                record.stream = Arc::clone(id);
                record.version = version;
                record.position = log.len() as u64 + 1;
            }
            log.push(record);
        }
        if let Some(new_stream) = new_stream {
            streams.insert(stream.clone(), new_stream);
        }
        let last_position = log.len() as u64;
        if let Some(key) = key {
            let outcome = AppendOutcome {
                version,
                first_position,
                last_position,
            };
            let events = count as u64;
            keys.insert((stream.clone(), key), KeptAppend { outcome, events });
        }
        // Published under the lock so the head never moves backwards. With
        // no receiver (a write-only engine) nobody is woken: the value is
        // still updated for `borrow`, and `watch_head` subscribes under the
        // same lock, so a new receiver never misses a change.
        let listened = self.head.receiver_count() > 0;
        self.head.send_if_modified(|head| {
            *head = last_position;
            listened
        });
        Ok(AppendOutcome {
            version,
            first_position,
            last_position,
        })
    }
}

impl MemoryStore {
    /// What each inline projection writes for `records` (the gap since
    /// its gate, then the new events), folded in order.
    fn fold_inline(
        inner: &Inner,
        records: &[Arc<RecordedEvent>],
        last_position: u64,
        inline: &InlineSet,
        gates: &mut [tokio::sync::MutexGuard<'_, Gate>],
    ) -> Result<Vec<Vec<DocumentChange>>, StoreError> {
        let mut writes = Vec::with_capacity(inline.len());
        for (projection, gate) in inline.iter().zip(gates.iter_mut()) {
            if gate.position().is_none() {
                let saved = projection.durable().then(|| inner.saved(projection.name()));
                let at = saved.as_ref().and_then(|s| s.checkpoint).unwrap_or(0);
                projection
                    .reload(saved)
                    .map_err(|reason| refused(projection.name(), &reason))?;
                gate.reloaded(at);
            }
            let from = usize::try_from(gate.position().unwrap_or(0)).unwrap_or(usize::MAX);
            let filter = projection.filter();
            let gap = inner
                .log
                .get(from.min(inner.log.len())..)
                .unwrap_or_default();
            let folded: Vec<Arc<RecordedEvent>> = gap
                .iter()
                .chain(records)
                .filter(|r| filter.matches(r))
                .cloned()
                .collect();
            let changes = match projection.fold(&folded) {
                Ok(changes) => gate.changes(changes),
                Err(reason) => return Err(refused(projection.name(), &reason)),
            };
            if projection.durable() {
                let saved = inner.checkpoints.get(projection.name()).copied();
                check_forward(projection.name(), saved, last_position)?;
            }
            writes.push(changes);
        }
        Ok(writes)
    }

    /// An append that also commits `inline` projections: checked, numbered,
    /// folded and written under the store's lock, then made visible, so a
    /// projection that cannot fold the events leaves nothing behind.
    fn append_inline_locked(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        inline: &InlineSet,
        gates: &mut [tokio::sync::MutexGuard<'_, Gate>],
    ) -> Result<AppendOutcome, StoreError> {
        stream.check()?;
        if events.is_empty() {
            return Err(StoreError::InvalidAppend {
                stream: stream.clone(),
                reason: String::from("no events to append"),
            });
        }
        let key = append_key(stream, &events)?.map(str::to_owned);
        let mut inner = self.lock();
        let current = inner
            .streams
            .get(stream)
            .map_or(0, |s| s.indices.len() as u64);
        if let ExpectedVersion::Exact(expected) = expected
            && expected != current
        {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: current,
            });
        }
        inner.check_key(stream, key.as_deref())?;
        let id = inner
            .streams
            .get(stream)
            .map_or_else(|| Arc::new(stream.clone()), |s| Arc::clone(&s.id));
        let first_position = inner.log.len() as u64 + 1;
        let records: Vec<Arc<RecordedEvent>> = events
            .into_iter()
            .zip(0..)
            .map(|(event, i)| {
                Arc::new(RecordedEvent {
                    event_id: event.event_id,
                    stream: Arc::clone(&id),
                    version: current + 1 + i,
                    position: first_position + i,
                    event_name: event.event_name,
                    schema_version: event.schema_version,
                    payload: event.payload,
                    metadata: event.metadata,
                    timestamp: event.timestamp,
                })
            })
            .collect();
        let last_position = first_position + records.len() as u64 - 1;
        // Every projection folds (and its documents are computed) before
        // anything is written; if one cannot, what the others folded is not
        // what is saved: all reload.
        let writes = match Self::fold_inline(&inner, &records, last_position, inline, gates) {
            Ok(writes) => writes,
            Err(e) => {
                gates.iter_mut().for_each(|gate| gate.invalidate());
                return Err(e);
            }
        };
        for ((projection, gate), changes) in inline.iter().zip(gates.iter_mut()).zip(writes) {
            if projection.durable() {
                let docs = inner
                    .documents
                    .entry(projection.name().to_owned())
                    .or_default();
                for change in changes {
                    let key = (change.collection, change.key);
                    match change.body {
                        Some(body) => docs.insert(key, body),
                        None => docs.remove(&key),
                    };
                }
                inner
                    .checkpoints
                    .insert(projection.name().to_owned(), last_position);
            }
            gate.committed(last_position);
        }
        let Inner { log, streams, .. } = &mut *inner;
        let entry = streams.entry(stream.clone()).or_insert_with(|| StreamLog {
            id: Arc::clone(&id),
            indices: Vec::new(),
        });
        for record in &records {
            entry.indices.push(log.len());
            log.push(Arc::clone(record));
        }
        let version = current + records.len() as u64;
        if let Some(key) = key {
            let outcome = AppendOutcome {
                version,
                first_position,
                last_position,
            };
            let events = records.len() as u64;
            inner
                .keys
                .insert((stream.clone(), key), KeptAppend { outcome, events });
        }
        let listened = self.head.receiver_count() > 0;
        self.head.send_if_modified(|head| {
            *head = last_position;
            listened
        });
        drop(inner);
        for projection in inline.iter() {
            projection.published(last_position);
        }
        Ok(AppendOutcome {
            version,
            first_position,
            last_position,
        })
    }
}

impl Inner {
    /// The saved read model of `name`.
    fn saved(&self, name: &str) -> SavedReadModel {
        SavedReadModel {
            checkpoint: self.checkpoints.get(name).copied(),
            documents: self.documents.get(name).map_or_else(Vec::new, |docs| {
                docs.iter()
                    .map(|((c, k), body)| (c.clone(), k.clone(), body.clone()))
                    .collect()
            }),
        }
    }
}

/// An append refused because inline projection `name` could not take it.
pub(crate) fn refused(name: &str, reason: &str) -> StoreError {
    StoreError::Refused {
        message: format!("inline projection `{name}` refused the events: {reason}"),
        source: None,
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStore for MemoryStore {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<AppendOutcome, StoreError>> {
        let mut events = events;
        let result = self.append_events(stream, expected, &mut events);
        Box::pin(std::future::ready(result))
    }

    fn append_now(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &mut Vec<NewEvent>,
    ) -> Option<Result<AppendOutcome, StoreError>> {
        Some(self.append_events(stream, expected, events))
    }

    fn supports_inline(&self) -> bool {
        true
    }

    fn append_inline<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        inline: &'a InlineSet,
    ) -> BoxFuture<'a, Result<AppendOutcome, StoreError>> {
        Box::pin(async move {
            let mut gates = lock_gates(inline).await;
            self.append_inline_locked(stream, expected, events, inline, &mut gates)
        })
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
    ) -> BoxFuture<'a, Result<Vec<Arc<RecordedEvent>>, StoreError>> {
        if let Err(invalid) = stream.check() {
            return Box::pin(std::future::ready(Err(invalid.into())));
        }
        let inner = self.lock();
        let events = inner.streams.get(stream).map_or_else(Vec::new, |s| {
            let skip = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
            s.indices
                .iter()
                .skip(skip)
                .map(|&i| Arc::clone(&inner.log[i]))
                .collect()
        });
        Box::pin(std::future::ready(Ok(events)))
    }

    fn find_key<'a>(
        &'a self,
        stream: &'a StreamId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeptAppend>, StoreError>> {
        let kept = self
            .lock()
            .keys
            .get(&(stream.clone(), key.to_owned()))
            .copied();
        Box::pin(std::future::ready(Ok(kept)))
    }
}

impl GlobalLog for MemoryStore {
    fn read_log<'a>(
        &'a self,
        after: u64,
        filter: &'a LogFilter,
        limit: usize,
    ) -> BoxFuture<'a, Result<LogSlice, StoreError>> {
        let inner = self.lock();
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(inner.log.len());
        let mut events = Vec::new();
        let mut through = after.max(start as u64);
        // Bounds the time the lock is held when few records match.
        let scan_limit = limit.max(1).saturating_mul(64);
        for record in inner.log[start..].iter().take(scan_limit) {
            if events.len() >= limit.max(1) {
                break;
            }
            through = record.position;
            if filter.matches(record) {
                events.push(Arc::clone(record));
            }
        }
        Box::pin(std::future::ready(Ok(LogSlice { events, through })))
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        let head = self.lock().log.len() as u64;
        Box::pin(std::future::ready(Ok(head)))
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        // Under the store lock: see `append_now` on skipped notifications.
        let _inner = self.lock();
        self.head.subscribe()
    }
}

impl SnapshotStore for MemoryStore {
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        let snapshot = self.lock().snapshots.get(stream).cloned();
        Box::pin(std::future::ready(Ok(snapshot)))
    }

    fn save_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        snapshot: Snapshot,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut inner = self.lock();
        match inner.snapshots.get(stream) {
            Some(existing) if existing.version >= snapshot.version => {}
            _ => {
                inner.snapshots.insert(stream.clone(), snapshot);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

impl CheckpointStore for MemoryStore {
    fn load_checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        let position = self.lock().checkpoints.get(name).copied();
        Box::pin(std::future::ready(Ok(position)))
    }

    fn save_checkpoint<'a>(
        &'a self,
        name: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().checkpoints.insert(name.to_owned(), position);
        Box::pin(std::future::ready(Ok(())))
    }

    fn load_read_model<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<SavedReadModel, StoreError>> {
        let inner = self.lock();
        let documents = inner.documents.get(name).map_or_else(Vec::new, |docs| {
            docs.iter()
                .map(|((c, k), body)| (c.clone(), k.clone(), body.clone()))
                .collect()
        });
        let saved = SavedReadModel {
            checkpoint: inner.checkpoints.get(name).copied(),
            documents,
        };
        Box::pin(std::future::ready(Ok(saved)))
    }

    fn commit_read_model<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<DocumentChange>,
        checkpoint: u64,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut inner = self.lock();
        let checked = inner
            .check_fence(name, fence)
            .and_then(|()| check_forward(name, inner.checkpoints.get(name).copied(), checkpoint));
        if let Err(e) = checked {
            return Box::pin(std::future::ready(Err(e)));
        }
        let docs = inner.documents.entry(name.to_owned()).or_default();
        for change in changes {
            let key = (change.collection, change.key);
            match change.body {
                Some(body) => docs.insert(key, body),
                None => docs.remove(&key),
            };
        }
        inner.checkpoints.insert(name.to_owned(), checkpoint);
        Box::pin(std::future::ready(Ok(())))
    }

    fn reset_read_model<'a>(
        &'a self,
        name: &'a str,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut inner = self.lock();
        if let Err(e) = inner.check_fence(name, fence) {
            return Box::pin(std::future::ready(Err(e)));
        }
        inner.documents.remove(name);
        inner.checkpoints.remove(name);
        Box::pin(std::future::ready(Ok(())))
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LeaseGrant, StoreError>> {
        let now = Instant::now();
        let mut inner = self.lock();
        let lease = inner.leases.entry(name.to_owned()).or_insert(Lease {
            holder: String::new(),
            token: 0,
            expires: now,
        });
        let grant = if lease.holder == holder || lease.holder.is_empty() || lease.expires <= now {
            if lease.holder != holder {
                lease.holder = holder.to_owned();
                lease.token += 1;
            }
            lease.expires = now + ttl;
            LeaseGrant::Held(Fence {
                name: name.to_owned(),
                token: lease.token,
            })
        } else {
            LeaseGrant::Taken {
                holder: lease.holder.clone(),
                expires_in: lease.expires - now,
            }
        };
        Box::pin(std::future::ready(Ok(grant)))
    }

    fn release_lease<'a>(&'a self, fence: &'a Fence) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut inner = self.lock();
        if let Some(lease) = inner.leases.get_mut(&fence.name)
            && lease.token == fence.token
        {
            lease.holder.clear();
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Inner {
    /// Whether `fence` (if any) is the current token of the lease on `name`.
    fn check_fence(&self, name: &str, fence: Option<&Fence>) -> Result<(), StoreError> {
        let Some(fence) = fence else { return Ok(()) };
        let current = self
            .leases
            .get(name)
            .filter(|lease| !lease.holder.is_empty())
            .map(|lease| lease.token);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Timestamp;

    fn event(name: &str) -> NewEvent {
        NewEvent::new(name.to_owned(), "{}")
    }

    #[tokio::test]
    async fn the_events_of_a_stream_share_one_copy_of_its_id() {
        let store = MemoryStore::new();
        let (a, b) = (StreamId::new("account", "a"), StreamId::new("account", "b"));
        store
            .append(&a, ExpectedVersion::Exact(0), vec![event("x"), event("y")])
            .await
            .unwrap();
        store
            .append(&b, ExpectedVersion::Any, vec![event("x")])
            .await
            .unwrap();
        store
            .append(&a, ExpectedVersion::Exact(2), vec![event("z")])
            .await
            .unwrap();
        let events = store.read_stream(&a, 1).await.unwrap();
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| *e.stream == a));
        assert!(
            events
                .iter()
                .all(|e| Arc::ptr_eq(&e.stream, &events[0].stream))
        );
        let other = store.read_stream(&b, 1).await.unwrap();
        assert_eq!(*other[0].stream, b);
    }

    #[tokio::test]
    async fn conflicts_name_expected_and_actual() {
        let store = MemoryStore::new();
        let s = StreamId::new("a", "1");
        store
            .append(&s, ExpectedVersion::Exact(0), vec![event("x"), event("y")])
            .await
            .unwrap();
        let err = store
            .append(&s, ExpectedVersion::Exact(1), vec![event("z")])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    expected: 1,
                    actual: 2,
                    ..
                }
            ),
            "{err}"
        );
        let ok = store
            .append(&s, ExpectedVersion::Any, vec![event("z")])
            .await
            .unwrap();
        assert_eq!((ok.version, ok.first_position, ok.last_position), (3, 3, 3));
        assert!(matches!(
            store.append(&s, ExpectedVersion::Any, vec![]).await,
            Err(StoreError::InvalidAppend { .. })
        ));
    }

    #[tokio::test]
    async fn read_log_filters_and_reports_how_far_it_read() {
        let store = MemoryStore::new();
        for i in 0..10 {
            let name = if i % 2 == 0 { "even" } else { "odd" };
            store
                .append(
                    &StreamId::new("n", i.to_string()),
                    ExpectedVersion::Any,
                    vec![event(name)],
                )
                .await
                .unwrap();
        }
        let filter = LogFilter::events(["odd"]);
        let slice = store.read_log(0, &filter, 2).await.unwrap();
        assert_eq!(
            slice.events.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![2, 4]
        );
        assert_eq!(slice.through, 4);
        let rest = store.read_log(4, &filter, 100).await.unwrap();
        assert_eq!(rest.events.len(), 3);
        assert_eq!(
            rest.through, 10,
            "unmatched events at the end count as read"
        );
        let none = store.read_log(10, &filter, 100).await.unwrap();
        assert_eq!((none.events.len(), none.through), (0, 10));
        assert_eq!(*store.watch_head().borrow(), 10);
    }

    #[tokio::test]
    async fn snapshots_only_move_forward_and_checkpoints_persist() {
        let store = MemoryStore::new();
        let s = StreamId::new("a", "1");
        let snap = |version| Snapshot {
            version,
            state: vec![version as u8],
            taken_at: Timestamp::now(),
        };
        store.save_snapshot(&s, snap(5)).await.unwrap();
        store.save_snapshot(&s, snap(3)).await.unwrap();
        assert_eq!(store.load_snapshot(&s).await.unwrap().unwrap().version, 5);
        assert_eq!(store.load_checkpoint("p").await.unwrap(), None);
        store.save_checkpoint("p", 42).await.unwrap();
        assert_eq!(store.load_checkpoint("p").await.unwrap(), Some(42));
    }
}
