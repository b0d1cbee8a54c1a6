//! Runs one projection on its own task: catch-up, then live, checkpointed.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::Projection;
use crate::error::{Error, StoreError};
use crate::store::{DocumentChange, LogFilter, Store, Tail};

/// Where a projection is and whether it is healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    /// The projection name.
    pub name: &'static str,
    /// The global position its state includes.
    pub position: u64,
    /// The log head when the status was read.
    pub head: u64,
    /// Whether its state survives a restart (it has `#[document]` fields).
    pub durable: bool,
    /// The state of its runner.
    pub state: RunState,
}

impl ProjectionStatus {
    /// How many positions it is behind the head.
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.position)
    }
}

/// What a projection runner is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum RunState {
    /// Loading its saved state.
    Starting,
    /// Reading events that were stored before it caught up.
    CatchingUp,
    /// Caught up; following the log as it grows.
    Live,
    /// Reading the log or saving failed; it retries.
    Retrying(String),
    /// A stored event could not be projected; it stopped there.
    Failed(String),
    /// The engine shut down.
    Stopped,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunState::Starting => f.write_str("starting"),
            RunState::CatchingUp => f.write_str("catching up"),
            RunState::Live => f.write_str("live"),
            RunState::Retrying(reason) => write!(f, "retrying after: {reason}"),
            RunState::Failed(reason) => write!(f, "failed: {reason}"),
            RunState::Stopped => f.write_str("stopped"),
        }
    }
}

/// How far a [`Rebuild`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RebuildProgress {
    /// The position the rebuilt state includes.
    pub position: u64,
    /// The log head when the rebuild started: done when reached.
    pub target: u64,
    /// Events projected so far.
    pub events: u64,
    /// Whether it reached the target.
    pub done: bool,
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

/// Requests a running projection accepts.
#[derive(Debug)]
pub(crate) enum Control {
    Rebuild(watch::Sender<RebuildProgress>),
}

/// What a projection runner gets from the engine.
#[derive(Clone, Debug)]
pub struct ProjectionHost {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) batch_size: usize,
}

/// A started projection: its shared state, its status and its controls.
#[derive(Debug)]
pub struct RunningProjection {
    pub(crate) name: &'static str,
    /// An `Arc<RwLock<P>>`, typed again by queries.
    pub(crate) state: Arc<dyn Any + Send + Sync>,
    pub(crate) status: watch::Receiver<ProjectionStatus>,
    pub(crate) control: mpsc::Sender<Control>,
}

/// Starts projection `P` on its own task.
pub(crate) fn start<P: Projection>(host: &ProjectionHost) -> RunningProjection {
    let mut initial = P::default();
    let durable = !initial.document_collections().is_empty();
    let state = Arc::new(RwLock::new(initial));
    let (status_tx, status) = watch::channel(ProjectionStatus {
        name: P::NAME,
        position: 0,
        head: 0,
        durable,
        state: RunState::Starting,
    });
    let (control, control_rx) = mpsc::channel(4);
    let runner = Runner::<P> {
        store: Arc::clone(&host.store),
        batch_size: host.batch_size,
        state: Arc::clone(&state),
        status: status_tx,
        durable,
    };
    let span = tracing::info_span!("projection", projection = P::NAME);
    tokio::spawn(
        runner
            .run(host.shutdown.clone(), control_rx)
            .instrument(span),
    );
    RunningProjection {
        name: P::NAME,
        state,
        status,
        control,
    }
}

struct Runner<P> {
    store: Arc<dyn Store>,
    batch_size: usize,
    state: Arc<RwLock<P>>,
    status: watch::Sender<ProjectionStatus>,
    durable: bool,
}

/// Why a runner stops.
enum Stop {
    Shutdown,
    Failed(u64, String),
}

impl<P: Projection> Runner<P> {
    async fn run(self, mut shutdown: watch::Receiver<bool>, mut control: mpsc::Receiver<Control>) {
        let stop = match self.run_until_stopped(&mut shutdown, &mut control).await {
            Ok(()) => Stop::Shutdown,
            Err(stop) => stop,
        };
        match stop {
            Stop::Shutdown => self.status.send_modify(|s| s.state = RunState::Stopped),
            Stop::Failed(position, reason) => {
                tracing::error!(%reason, position, "projection stopped");
                self.status.send_modify(|s| {
                    s.position = position;
                    s.state = RunState::Failed(reason);
                });
            }
        }
    }

    async fn run_until_stopped(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        control: &mut mpsc::Receiver<Control>,
    ) -> Result<(), Stop> {
        let filter = LogFilter::events(P::EVENTS.iter().copied());
        let start = self.restore(shutdown).await?;
        let mut tail = Tail::new(
            Arc::clone(&self.store),
            start,
            filter.clone(),
            self.batch_size,
        );
        let mut head = self.store.watch_head();
        let mut rebuild: Option<(watch::Sender<RebuildProgress>, RebuildProgress)> = None;
        self.publish(start, *head.borrow_and_update());
        loop {
            let from = tail.position();
            let next = tokio::select! {
                biased;
                _ = shutdown.changed() => return Ok(()),
                Some(Control::Rebuild(progress)) = control.recv() => {
                    let target = *head.borrow_and_update();
                    self.reset(shutdown).await?;
                    tail = Tail::new(Arc::clone(&self.store), 0, filter.clone(), self.batch_size);
                    let now = RebuildProgress { position: 0, target, events: 0, done: target == 0 };
                    progress.send_replace(now);
                    rebuild = (!now.done).then_some((progress, now));
                    self.publish(0, target);
                    continue;
                }
                next = tail.next() => next,
            };
            let slice = match next {
                Ok(slice) => slice,
                Err(e) => {
                    self.retry_after(&e, shutdown).await?;
                    continue;
                }
            };
            let span = tracing::info_span!(
                "projection_batch",
                projection = P::NAME,
                from,
                through = slice.through,
                events = slice.events.len(),
            );
            let changes = span.in_scope(|| self.project(from, &slice.events))?;
            self.save(changes, slice.through, shutdown)
                .instrument(span)
                .await?;
            self.publish(slice.through, *head.borrow_and_update());
            if let Some((progress, mut now)) = rebuild.take() {
                now.position = slice.through;
                now.events += slice.events.len() as u64;
                now.done = slice.through >= now.target;
                progress.send_replace(now);
                if !now.done {
                    rebuild = Some((progress, now));
                }
            }
            tail.recycle(slice.events);
        }
    }

    /// Loads a durable projection's saved documents; returns where to resume.
    async fn restore(&self, shutdown: &mut watch::Receiver<bool>) -> Result<u64, Stop> {
        if !self.durable {
            // The state lives in memory: rebuilt from the start of the log.
            return Ok(0);
        }
        let saved = loop {
            match self.store.load_read_model(P::NAME).await {
                Ok(saved) => break saved,
                Err(e) => self.retry_after(&e, shutdown).await?,
            }
        };
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut collections = state.document_collections();
        for (collection, key, body) in saved.documents {
            let Some((_, target)) = collections.iter_mut().find(|(name, _)| *name == collection)
            else {
                // A collection no longer in the code: left in the store, unused.
                continue;
            };
            if let Err(e) = target.restore(key.clone(), &body) {
                let reason = format!("saved document `{collection}/{key}` does not decode: {e}");
                return Err(Stop::Failed(saved.checkpoint.unwrap_or(0), reason));
            }
        }
        Ok(saved.checkpoint.unwrap_or(0))
    }

    /// Forgets the state (and its saved copy) for a rebuild.
    async fn reset(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Stop> {
        if self.durable {
            while let Err(e) = self.store.reset_read_model(P::NAME).await {
                self.retry_after(&e, shutdown).await?;
            }
        }
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = P::default();
        Ok(())
    }

    /// Folds a batch into the state; returns the documents it changed.
    fn project(
        &self,
        from: u64,
        events: &[Arc<crate::RecordedEvent>],
    ) -> Result<Vec<DocumentChange>, Stop> {
        let mut guard = self.state.write().unwrap_or_else(PoisonError::into_inner);
        // A panicking `Project` impl stops this projection, not the process.
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), (u64, String)> {
                let mut done = from;
                for record in events {
                    guard
                        .project_recorded(record)
                        .map_err(|e| (done, e.to_string()))?;
                    done = record.position;
                }
                Ok(())
            }))
            .unwrap_or_else(|panic| Err((from, panic_message(&*panic))));
        outcome.map_err(|(position, reason)| Stop::Failed(position, reason))?;
        let mut changes = Vec::new();
        for (collection, docs) in guard.document_collections() {
            let taken = docs.take_changes().map_err(|e| {
                Stop::Failed(
                    from,
                    format!("a document of `{collection}` does not encode: {e}"),
                )
            })?;
            changes.extend(taken.into_iter().map(|(key, body)| DocumentChange {
                collection: collection.to_owned(),
                key,
                body,
            }));
        }
        Ok(changes)
    }

    /// Saves the changed documents with the checkpoint in one transaction
    /// (durable), or the checkpoint alone; retries until it is saved.
    async fn save(
        &self,
        changes: Vec<DocumentChange>,
        through: u64,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Stop> {
        if !self.durable {
            if let Err(e) = self.store.save_checkpoint(P::NAME, through).await {
                tracing::warn!(error = %e, "saving the checkpoint failed");
            }
            return Ok(());
        }
        // The state already includes the batch, so it must be saved before
        // anything else is read: retry the same changes until they land.
        while let Err(e) = self
            .store
            .commit_read_model(P::NAME, changes.clone(), through)
            .await
        {
            self.retry_after(&e, shutdown).await?;
        }
        Ok(())
    }

    async fn retry_after(
        &self,
        e: &StoreError,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Stop> {
        tracing::warn!(error = %e, "store failed; retrying");
        self.status
            .send_modify(|s| s.state = RunState::Retrying(e.to_string()));
        tokio::select! {
            biased;
            _ = shutdown.changed() => Err(Stop::Shutdown),
            () = tokio::time::sleep(Duration::from_millis(200)) => Ok(()),
        }
    }

    fn publish(&self, position: u64, head: u64) {
        self.status.send_modify(|s| {
            s.position = position;
            s.head = head.max(position);
            s.state = if position >= head {
                RunState::Live
            } else {
                RunState::CatchingUp
            };
        });
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("(no message)"));
    format!("a `Project` impl panicked: {text}")
}
