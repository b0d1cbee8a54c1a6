//! A projection as a subscription: the handler that folds the log into its
//! state and commits a durable read model with its checkpoint.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use super::{Projection, UnknownEvents};
use crate::error::{DecodeError, Error};
use crate::record::RecordedEvent;
use crate::registry::Registry;
use crate::store::{CheckpointStore, DocumentChange, Fence, LogFilter, LogSlice};
use crate::subscription::lease::{LeaseKeeper, holder_id};
use crate::subscription::runner::{Control, Failure, Handler, Progress, Runner};
use crate::subscription::{Backoff, LeaseOptions, RunState, Source};

pub use crate::subscription::runner::RebuildProgress;

/// Where a projection is and whether it is healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    /// The projection name.
    pub name: &'static str,
    /// The global position its state includes.
    pub position: u64,
    /// The log head when the status was read (the store's, not only what
    /// this process wrote).
    pub head: u64,
    /// Whether its state survives a restart (it has `#[document]` fields).
    pub durable: bool,
    /// The state of its runner.
    pub state: RunState,
    /// The last failure it met, even if it recovered since.
    pub last_error: Option<String>,
    /// How many events it skipped as unknown to this build
    /// (`#[projection(unknown_events = skip)]`), since it started or was
    /// rebuilt.
    pub skipped: u64,
    /// What it skipped last, when it skipped any: the event, its version
    /// and where it is in the log.
    pub warning: Option<String>,
    /// The newest message's number in the source's own numbering, for a
    /// source that numbers messages apart from global positions (a NATS
    /// JetStream stream's last sequence); `None` for the event store.
    pub source_sequence: Option<u64>,
}

impl ProjectionStatus {
    /// How many positions it is behind the head.
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.position)
    }
}

/// A rebuild under way: follow its progress, or wait for the end.
#[derive(Debug)]
pub struct Rebuild {
    pub(crate) projection: &'static str,
    pub(crate) progress: watch::Receiver<RebuildProgress>,
}

impl Rebuild {
    /// The latest progress.
    pub fn progress(&self) -> RebuildProgress {
        *self.progress.borrow()
    }

    /// A channel that changes with every batch.
    pub fn subscribe(&self) -> watch::Receiver<RebuildProgress> {
        self.progress.clone()
    }

    /// Waits until the projection has caught up with the log as it was when
    /// the rebuild started.
    ///
    /// # Errors
    ///
    /// [`Error::ProjectionFailed`] when the runner stopped before that.
    pub async fn finished(mut self) -> Result<RebuildProgress, Error> {
        loop {
            let now = *self.progress.borrow_and_update();
            if now.done {
                return Ok(now);
            }
            if self.progress.changed().await.is_err() {
                return Err(Error::ProjectionFailed {
                    projection: self.projection,
                    position: now.position,
                    reason: String::from("the runner stopped during the rebuild"),
                });
            }
        }
    }
}

/// What a projection runner gets from the engine.
#[derive(Clone, Debug)]
pub struct ProjectionHost {
    /// Where it reads events.
    pub(crate) source: Arc<dyn Source>,
    /// Where its read model and checkpoint live, and its lease.
    pub(crate) read: Arc<dyn CheckpointStore>,
    /// What else is registered: which events the streams it reads may hold.
    pub(crate) registry: Registry,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) batch_size: usize,
    pub(crate) lease: LeaseOptions,
    pub(crate) backoff: Backoff,
}

/// A started projection: its shared state, its status and its controls.
#[derive(Debug)]
pub struct RunningProjection {
    pub(crate) name: &'static str,
    /// An `Arc<RwLock<P>>`, typed again by queries.
    pub(crate) state: Arc<dyn Any + Send + Sync>,
    pub(crate) durable: bool,
    pub(crate) progress: watch::Receiver<Progress>,
    pub(crate) control: mpsc::Sender<Control>,
    /// An inline projection's gate: queries take it (see `projection::inline`).
    pub(crate) gate: Option<Arc<tokio::sync::Mutex<crate::store::inline::Gate>>>,
    /// The events it skipped as unknown.
    pub(crate) skipped: Arc<Skipped>,
    /// Its runner, until [`Engine::stop`](crate::Engine::stop) waited for it.
    pub(crate) task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The events a projection skipped as unknown to this build
/// (`unknown_events = skip`), for its status.
#[derive(Debug, Default)]
pub(crate) struct Skipped {
    count: AtomicU64,
    last: Mutex<Option<String>>,
}

impl Skipped {
    /// Counts one skipped event, and warns.
    fn record(&self, projection: &'static str, error: &DecodeError) {
        tracing::warn!(projection, %error, "skipped an event this build does not know");
        self.count.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
    }

    /// Forgets what was skipped: the log is read again from the start.
    pub(crate) fn clear(&self) {
        self.count.store(0, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn warning(&self) -> Option<String> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref().map(|last| {
            let n = self.count();
            let events = if n == 1 { "event" } else { "events" };
            format!("skipped {n} {events} this build does not know; the last: {last}")
        })
    }
}

impl RunningProjection {
    /// Its status now.
    pub(crate) fn status(&self) -> ProjectionStatus {
        let progress = self.progress.borrow();
        ProjectionStatus {
            name: self.name,
            position: progress.position,
            head: progress.head,
            durable: self.durable,
            state: progress.state.clone(),
            last_error: progress.last_error.clone(),
            skipped: self.skipped.count(),
            warning: self.skipped.warning(),
            source_sequence: None,
        }
    }

    /// Sends a request and waits for its answer.
    pub(crate) async fn request(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<(), Error>>) -> Control,
    ) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.control
            .send(request(reply))
            .await
            .map_err(|_| Error::Shutdown)?;
        answer.await.map_err(|_| Error::Shutdown)?
    }
}

/// Starts projection `P` on its own task.
pub(crate) fn start<P: Projection>(host: &ProjectionHost) -> RunningProjection {
    let mut initial = P::default();
    let durable = !initial.document_collections().is_empty();
    let state = Arc::new(RwLock::new(initial));
    let (progress_tx, progress) = watch::channel(Progress {
        position: 0,
        head: *host.source.watch_head().borrow(),
        state: RunState::Starting,
        last_error: None,
    });
    let (control, control_rx) = mpsc::channel(4);
    let (filter, known) = log_filter::<P>(&host.registry);
    let skipped = Arc::new(Skipped::default());
    let handler = ProjectionHandler::<P> {
        state: Arc::clone(&state),
        read: Arc::clone(&host.read),
        durable,
        known,
        skipped: Arc::clone(&skipped),
        pending: BTreeMap::new(),
    };
    let lease = durable.then(|| LeaseKeeper {
        store: Arc::clone(&host.read),
        name: P::NAME.to_owned(),
        holder: holder_id(),
        options: host.lease,
    });
    let runner = Runner {
        name: P::NAME.to_owned(),
        source: Arc::clone(&host.source),
        filter,
        batch: host.batch_size,
        lease,
        backoff: host.backoff,
        progress: Arc::new(progress_tx),
        handler,
    };
    let span = tracing::info_span!("projection", projection = P::NAME);
    let task = tokio::spawn(
        runner
            .run(host.shutdown.clone(), control_rx)
            .instrument(span),
    );
    RunningProjection {
        name: P::NAME,
        state,
        durable,
        progress,
        control,
        gate: None,
        skipped,
        task: std::sync::Mutex::new(Some(task)),
    }
}

/// Every name the events of `P` are stored under: their names and aliases.
pub(crate) fn stored_names(
    events: &[&'static str],
    descriptors: &[crate::registry::EventDescriptor],
) -> Vec<&'static str> {
    let aliases = descriptors.iter().flat_map(|e| e.aliases.iter());
    let mut names: Vec<&'static str> = events.iter().chain(aliases).copied().collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The events a projection reads, and the names its streams may hold.
///
/// It reads its events by name (and by their aliases). When every one of
/// them belongs to a registered aggregate, it also reads any event in those
/// aggregates' streams whose name no registered event has (as its name or
/// an alias), so a stored name that no code knows is seen and refused (or
/// skipped, see [`UnknownEvents`]) rather than filtered out unseen; the
/// second value then lists the names the registry knows. An event that
/// moved to another aggregate is known, wherever its old events are.
pub(crate) fn log_filter<P: Projection>(
    registry: &Registry,
) -> (LogFilter, Option<Arc<HashSet<&'static str>>>) {
    let by_name = LogFilter::events(stored_names(P::EVENTS, P::EVENT_DESCRIPTORS));
    let owners: Vec<_> = registry
        .aggregates()
        .iter()
        .filter(|a| a.events.iter().any(|e| P::EVENTS.contains(&e.name)))
        .collect();
    let all_owned = P::EVENTS.iter().all(|name| {
        owners
            .iter()
            .any(|a| a.events.iter().any(|e| e.name == *name))
    });
    if P::EVENTS.is_empty() || !all_owned {
        return (by_name, None);
    }
    let known: HashSet<&'static str> = registry.event_names().collect();
    let filter = by_name.or_unknown_in(owners.iter().map(|a| a.name), known.iter().copied());
    (filter, Some(Arc::new(known)))
}

/// Whether `P` skips `error` (an event this build does not know) rather
/// than stopping on it; counted in `skipped` if so.
pub(crate) fn skips<P: Projection>(error: &DecodeError, skipped: &Skipped) -> bool {
    let skip = P::UNKNOWN_EVENTS == UnknownEvents::Skip && error.is_unknown_to_this_build();
    if skip {
        skipped.record(P::NAME, error);
    }
    skip
}

/// An event of a stream `P` reads whose name nothing registered knows,
/// when `known` says which names are known.
pub(crate) fn unknown_in_stream(
    record: &RecordedEvent,
    known: Option<&HashSet<&'static str>>,
) -> Option<DecodeError> {
    known
        .filter(|known| !known.contains(&*record.event_name))
        .map(|_| crate::codec::unknown_event(&record.event_name, record.schema_version).at(record))
}

/// Folds `events` into `state` in order; on the first one that cannot be
/// projected (an unknown name in a stream it reads or a newer version,
/// unless it skips those, a payload that does not decode, a panicking
/// `Project` impl), stops with the position before it and why.
pub(crate) fn fold<P: Projection>(
    state: &mut P,
    from: u64,
    events: &[Arc<RecordedEvent>],
    known: Option<&HashSet<&'static str>>,
    skipped: &Skipped,
) -> Result<(), (u64, FoldError)> {
    // A panicking `Project` impl stops this projection, not the process.
    let mut done = from;
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        for record in events {
            let outcome = if P::consumes(&record.event_name) {
                state.project_recorded(record)
            } else {
                // Another event of the streams it reads, or an unknown one.
                unknown_in_stream(record, known).map_or(Ok(()), Err)
            };
            match outcome {
                Err(e) if !skips::<P>(&e, skipped) => return Err((done, FoldError::Decode(e))),
                _ => done = record.position,
            }
        }
        Ok(())
    }))
    .unwrap_or_else(|panic| Err((done, FoldError::Panic(panic_message(&*panic)))))
}

/// Why an event could not be projected.
#[derive(Debug)]
pub(crate) enum FoldError {
    Decode(DecodeError),
    Panic(String),
}

impl std::fmt::Display for FoldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Decode(e) => e.fmt(f),
            Self::Panic(message) => write!(f, "a `Project` impl panicked: {message}"),
        }
    }
}

/// Folds events into the shared state; commits the documents that changed
/// (durable) with the checkpoint.
struct ProjectionHandler<P> {
    state: Arc<RwLock<P>>,
    read: Arc<dyn CheckpointStore>,
    durable: bool,
    known: Option<Arc<HashSet<&'static str>>>,
    skipped: Arc<Skipped>,
    /// Documents changed since the last commit (the last change of each),
    /// by collection and key: what the next commit writes. Kept while
    /// standing by, so taking over commits all of it.
    pending: BTreeMap<(&'static str, String), Option<Vec<u8>>>,
}

impl<P: Projection> ProjectionHandler<P> {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, P> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: Projection> Handler for ProjectionHandler<P> {
    fn needs_lease(&self) -> bool {
        self.durable
    }

    fn follows_in_standby(&self) -> bool {
        true
    }

    async fn restore(&mut self) -> Result<u64, Failure> {
        self.pending.clear();
        if !self.durable {
            // The state lives in memory: rebuilt from the start of the log.
            *self.write() = P::default();
            self.skipped.clear();
            return Ok(0);
        }
        let saved = self
            .read
            .load_read_model(P::NAME)
            .await
            .map_err(|e| Failure::from_store(&e, 0))?;
        let checkpoint = saved.checkpoint.unwrap_or(0);
        let mut state = P::default();
        {
            let mut collections = state.document_collections();
            for (collection, key, body) in saved.documents {
                let Some((_, target)) =
                    collections.iter_mut().find(|(name, _)| *name == collection)
                else {
                    // A collection no longer in the code: left in the store, unused.
                    continue;
                };
                if let Err(e) = target.restore(key.clone(), &body) {
                    return Err(Failure::Permanent {
                        position: checkpoint,
                        reason: format!("saved document `{collection}/{key}` does not decode: {e}"),
                    });
                }
            }
        }
        *self.write() = state;
        Ok(checkpoint)
    }

    async fn apply(&mut self, from: u64, slice: &LogSlice) -> Result<(), Failure> {
        let known = self.known.clone();
        let mut guard = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let folded = fold(
            &mut *guard,
            from,
            &slice.events,
            known.as_deref(),
            &self.skipped,
        )
        .map_err(|(position, e)| Failure::Permanent {
            // A panic may have left its event half applied: nothing of
            // the batch is to be committed.
            position: if matches!(e, FoldError::Panic(_)) {
                from
            } else {
                position
            },
            reason: e.to_string(),
        });
        if !self.durable
            || matches!(folded, Err(Failure::Permanent { position, .. }) if position == from)
        {
            return folded;
        }
        for (collection, docs) in guard.document_collections() {
            let taken = docs.take_changes().map_err(|e| Failure::Permanent {
                position: from,
                reason: format!("a document of `{collection}` does not encode: {e}"),
            })?;
            for (key, body) in taken {
                self.pending.insert((collection, key), body);
            }
        }
        // On a failure, what the events before it changed is pending too:
        // the runner commits it through the last event that applied.
        folded
    }

    async fn commit(&mut self, through: u64, fence: Option<&Fence>) -> Result<(), Failure> {
        if !self.durable {
            return Ok(());
        }
        let changes = self
            .pending
            .iter()
            .map(|((collection, key), body)| DocumentChange {
                collection: (*collection).to_owned(),
                key: key.clone(),
                body: body.clone(),
            })
            .collect();
        self.read
            .commit_read_model(P::NAME, changes, through, fence)
            .await
            .map_err(|e| Failure::from_store(&e, through))?;
        self.pending.clear();
        Ok(())
    }

    fn landed(&mut self) {
        self.pending.clear();
    }

    fn discard(&mut self) {
        self.pending.clear();
        *self.write() = P::default();
    }

    async fn reset(&mut self, fence: Option<&Fence>) -> Result<(), Failure> {
        if self.durable {
            self.read
                .reset_read_model(P::NAME, fence)
                .await
                .map_err(|e| Failure::from_store(&e, 0))?;
        }
        self.pending.clear();
        *self.write() = P::default();
        self.skipped.clear();
        Ok(())
    }

    fn batch_span(&self, from: u64, slice: &LogSlice) -> tracing::Span {
        tracing::info_span!(
            "projection_batch",
            projection = P::NAME,
            from,
            through = slice.through,
            events = slice.events.len(),
        )
    }

    async fn saved_checkpoint(&mut self) -> Result<Option<u64>, Failure> {
        self.read
            .load_checkpoint(P::NAME)
            .await
            .map_err(|e| Failure::from_store(&e, 0))
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("(no message)"))
}
