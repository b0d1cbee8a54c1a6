//! The relay: the event store's global log published, in order, to a
//! message log other processes read (NATS JetStream; the [`Sink`] trait is
//! the seam for others, such as Kafka).
//!
//! It is a subscription like a projection: it reads the log from its
//! checkpoint, publishes each batch, and only once the sink acknowledged
//! every event of it (and all before) commits the checkpoint, fenced by its
//! lease, so one relay per source runs at a time. A relay killed between a
//! publish and its checkpoint publishes the batch again; the sink drops
//! what it already holds (by event id, and by position: see
//! [`Sink::last_position`]), so the message log holds every event once, in
//! global-position order.

use std::fmt::Debug;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::lease::{LeaseKeeper, holder_id};
use super::runner::{Control, Failure, Handler, Progress, Runner};
use super::{Backoff, LeaseOptions, RunState, Source, StoreSource};
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::{Fence, LogFilter, LogSlice, Store};

/// Where a relay publishes: a message log that keeps events in the order
/// they are published and acknowledges each.
pub trait Sink: Send + Sync + Debug + 'static {
    /// The global position of the newest event the sink holds (`None`:
    /// none), read from it: a relay resumes after the later of this and its
    /// checkpoint, so what an earlier relay published but did not
    /// checkpoint is not published again.
    ///
    /// # Errors
    ///
    /// When the sink cannot be reached.
    fn last_position(&self) -> BoxFuture<'_, Result<Option<u64>, StoreError>>;

    /// Publishes `events` in order (many may be in flight), and returns once
    /// every one is acknowledged. Events the sink already holds are skipped
    /// (a retry after a failure publishes the same events again).
    ///
    /// # Errors
    ///
    /// When a publish is not acknowledged ([`StoreError::Backend`]: the
    /// relay retries the batch) or refused for good.
    fn publish<'a>(
        &'a self,
        events: &'a [Arc<RecordedEvent>],
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Where a relay is: the last position the sink acknowledged, the store's
/// head, its state and last error.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RelayStatus {
    /// The relay's name (its checkpoint and lease).
    pub name: String,
    /// The last position relayed (acknowledged and checkpointed).
    pub position: u64,
    /// The store's head.
    pub head: u64,
    /// What it is doing.
    pub state: RunState,
    /// The last failure it met, even if it recovered since.
    pub last_error: Option<String>,
}

impl RelayStatus {
    /// How many positions it is behind the store's head.
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.position)
    }
}

/// A running relay: its status, until the engine shuts down.
#[derive(Debug)]
pub struct Relay {
    name: String,
    progress: watch::Receiver<Progress>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    _control: mpsc::Sender<Control>,
}

impl Relay {
    /// Starts relaying `store` to `sink` under the name `name` (its
    /// checkpoint and lease live in `store`), until `shutdown` turns true.
    pub fn start(
        name: impl Into<String>,
        store: Arc<dyn Store>,
        sink: Arc<dyn Sink>,
        options: RelayOptions,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let name = name.into();
        let (progress_tx, progress) = watch::channel(Progress {
            position: 0,
            head: *store.watch_head().borrow(),
            state: RunState::Starting,
            last_error: None,
        });
        let (control, control_rx) = mpsc::channel(1);
        let source: Arc<dyn Source> = Arc::new(StoreSource::new(store.clone()));
        let runner = Runner {
            name: name.clone(),
            source,
            filter: LogFilter::all(),
            batch: options.batch,
            lease: Some(LeaseKeeper {
                store: store.clone(),
                name: name.clone(),
                holder: holder_id(),
                options: options.lease,
            }),
            backoff: Backoff::default(),
            progress: Arc::new(progress_tx),
            handler: RelayHandler {
                name: name.clone(),
                store,
                sink,
                pending: Vec::new(),
            },
        };
        let span = tracing::info_span!("relay", relay = %name);
        let task = tokio::spawn(runner.run(shutdown, control_rx).instrument(span));
        Self {
            name,
            progress,
            task: std::sync::Mutex::new(Some(task)),
            _control: control,
        }
    }

    /// Where it is now.
    pub fn status(&self) -> RelayStatus {
        let progress = self.progress.borrow();
        RelayStatus {
            name: self.name.clone(),
            position: progress.position,
            head: progress.head,
            state: progress.state.clone(),
            last_error: progress.last_error.clone(),
        }
    }

    /// Waits for its task to end (after the shutdown it was started with),
    /// at most `within`.
    pub async fn stopped(&self, within: std::time::Duration) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(within, task).await;
        }
    }
}

/// How a relay runs.
#[derive(Clone, Copy, Debug)]
pub struct RelayOptions {
    batch: usize,
    lease: LeaseOptions,
}

impl RelayOptions {
    /// 1,024 events per batch, the default lease.
    pub fn new() -> Self {
        Self {
            batch: 1024,
            lease: LeaseOptions::new(),
        }
    }

    /// The most events published before a checkpoint.
    #[must_use]
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// The lease that keeps one relay per source running.
    #[must_use]
    pub fn lease(mut self, lease: LeaseOptions) -> Self {
        self.lease = lease;
        self
    }
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Publishes batches, then checkpoints them.
struct RelayHandler {
    name: String,
    store: Arc<dyn Store>,
    sink: Arc<dyn Sink>,
    /// Read, not yet acknowledged and checkpointed.
    pending: Vec<Arc<RecordedEvent>>,
}

impl Handler for RelayHandler {
    fn needs_lease(&self) -> bool {
        true
    }

    fn follows_in_standby(&self) -> bool {
        false
    }

    async fn restore(&mut self) -> Result<u64, Failure> {
        self.pending.clear();
        Ok(self.saved_checkpoint().await?.unwrap_or(0))
    }

    async fn apply(&mut self, _: u64, slice: &LogSlice) -> Result<(), Failure> {
        self.pending.extend(slice.events.iter().cloned());
        Ok(())
    }

    async fn commit(&mut self, through: u64, fence: Option<&Fence>) -> Result<(), Failure> {
        self.sink
            .publish(&self.pending)
            .await
            .map_err(|e| Failure::from_store(&e, through))?;
        self.pending.clear();
        match self
            .store
            .commit_read_model(&self.name, Vec::new(), through, fence)
            .await
        {
            // Published already; the checkpoint only says so.
            Ok(()) | Err(StoreError::CheckpointNotAfter { .. }) => Ok(()),
            Err(e) => Err(Failure::from_store(&e, through)),
        }
    }

    fn landed(&mut self) {}

    fn discard(&mut self) {
        self.pending.clear();
    }

    async fn reset(&mut self, _: Option<&Fence>) -> Result<(), Failure> {
        Err(Failure::Permanent {
            position: 0,
            reason: String::from("a relay is not rebuilt: what it published stays published"),
        })
    }

    fn batch_span(&self, from: u64, slice: &LogSlice) -> tracing::Span {
        tracing::info_span!(
            "relay_batch",
            relay = %self.name,
            from,
            through = slice.through,
            events = slice.events.len(),
        )
    }

    /// What was relayed: the later of the checkpoint and the newest event
    /// the sink holds (a relay stopped between a publish and its checkpoint
    /// left the sink ahead).
    async fn saved_checkpoint(&mut self) -> Result<Option<u64>, Failure> {
        let saved = self
            .store
            .load_checkpoint(&self.name)
            .await
            .map_err(|e| Failure::from_store(&e, 0))?;
        let published = self
            .sink
            .last_position()
            .await
            .map_err(|e| Failure::from_store(&e, saved.unwrap_or(0)))?;
        Ok(saved.max(published))
    }
}
