//! Runs one projection on its own task: catch-up, then live, checkpointed.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tracing::Instrument;

use super::Projection;
use crate::store::{LogFilter, Store, Tail};

/// Where a projection is and whether it is healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    /// The projection name.
    pub name: &'static str,
    /// The global position its state includes.
    pub position: u64,
    /// The log head when the status was read.
    pub head: u64,
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
    /// Reading events that were stored before it caught up.
    CatchingUp,
    /// Caught up; following the log as it grows.
    Live,
    /// Reading the log failed; it retries.
    Retrying(String),
    /// A stored event could not be projected; it stopped there.
    Failed(String),
    /// The engine shut down.
    Stopped,
}

/// What a projection runner gets from the engine.
#[derive(Clone, Debug)]
pub struct ProjectionHost {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) batch_size: usize,
}

/// A started projection: its shared state and its status.
#[derive(Debug)]
pub struct RunningProjection {
    pub(crate) name: &'static str,
    /// An `Arc<RwLock<P>>`, typed again by queries.
    pub(crate) state: Arc<dyn Any + Send + Sync>,
    pub(crate) status: watch::Receiver<ProjectionStatus>,
}

/// Starts projection `P` on its own task.
pub(crate) fn start<P: Projection>(host: &ProjectionHost) -> RunningProjection {
    let state = Arc::new(RwLock::new(P::default()));
    let (status_tx, status) = watch::channel(ProjectionStatus {
        name: P::NAME,
        position: 0,
        head: 0,
        state: RunState::CatchingUp,
    });
    let span = tracing::info_span!("projection", projection = P::NAME);
    tokio::spawn(run::<P>(host.clone(), Arc::clone(&state), status_tx).instrument(span));
    RunningProjection {
        name: P::NAME,
        state,
        status,
    }
}

async fn run<P: Projection>(
    host: ProjectionHost,
    state: Arc<RwLock<P>>,
    status: watch::Sender<ProjectionStatus>,
) {
    let ProjectionHost {
        store,
        mut shutdown,
        batch_size,
    } = host;
    let filter = LogFilter::events(P::EVENTS.iter().copied());
    let mut head = store.watch_head();
    // The state lives in memory, so it is rebuilt from the start of the log;
    // the saved checkpoint tells operators how far it got.
    let mut tail = Tail::new(Arc::clone(&store), 0, filter, batch_size);
    let mut backoff = Duration::from_millis(50);
    loop {
        let from = tail.position();
        let next = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            next = tail.next() => next,
        };
        let slice = match next {
            Ok(slice) => slice,
            Err(e) => {
                tracing::warn!(error = %e, "reading the log failed; retrying");
                status.send_modify(|s| s.state = RunState::Retrying(e.to_string()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let span = tracing::info_span!(
            "projection_batch",
            projection = P::NAME,
            from,
            through = slice.through,
            events = slice.events.len(),
        );
        let outcome = span.in_scope(|| {
            let mut guard = state.write().unwrap_or_else(PoisonError::into_inner);
            // A panicking `Project` impl stops this projection, not the process.
            std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), (u64, String)> {
                let mut done = from;
                for record in &slice.events {
                    guard
                        .project_recorded(record)
                        .map_err(|e| (done, e.to_string()))?;
                    done = record.position;
                }
                Ok(())
            }))
            .unwrap_or_else(|panic| Err((from, panic_message(&panic))))
        });
        if let Err((position, reason)) = outcome {
            tracing::error!(%reason, position, "projection stopped");
            status.send_modify(|s| {
                s.position = position;
                s.state = RunState::Failed(reason);
            });
            return;
        }
        if let Err(e) = store.save_checkpoint(P::NAME, slice.through).await {
            tracing::warn!(error = %e, "saving the checkpoint failed");
        }
        let head_now = *head.borrow_and_update();
        status.send_modify(|s| {
            s.position = slice.through;
            s.head = head_now.max(slice.through);
            s.state = if slice.through >= head_now {
                RunState::Live
            } else {
                RunState::CatchingUp
            };
        });
    }
    status.send_modify(|s| s.state = RunState::Stopped);
}

fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("(no message)"));
    format!("a `Project` impl panicked: {text}")
}
