//! Inline projections: a read model whose changes commit in the same
//! transaction as the events of every command ([`Placement::Inline`]).
//!
//! The store folds the projection inside each append's transaction (see
//! [`store::inline`](crate::store::inline)): a command's receipt means its
//! effect on the read model is saved, and a query right after it sees it
//! without waiting. Queries take the projection's gate, so they never see
//! a fold whose transaction may still fail.
//!
//! A follower runs too, as for an async projection: at start it restores
//! the saved read model and folds what the log holds after it; then it
//! follows events appended by other processes, so this process answers
//! with them too, and commits what it folded (the next append here would
//! otherwise write it) with a checkpoint that only moves forward.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::Projection;
use super::runner::{FoldError, ProjectionHost, RunningProjection, Skipped, fold, log_filter};
use crate::record::RecordedEvent;
use crate::store::inline::{Gate, InlineProjection};
use crate::store::{CheckpointStore, DocumentChange, Fence, LogFilter, LogSlice, SavedReadModel};
use crate::subscription::RunState;
use crate::subscription::runner::{Failure, Handler, Progress, Runner};

/// Projection `P` as stores fold it inline, and as its follower and its
/// queries share it.
pub(crate) struct Inlined<P> {
    state: Arc<RwLock<P>>,
    gate: Arc<tokio::sync::Mutex<Gate>>,
    filter: LogFilter,
    known: Option<Arc<HashSet<&'static str>>>,
    skipped: Arc<Skipped>,
    durable: bool,
    progress: Arc<watch::Sender<Progress>>,
}

impl<P> std::fmt::Debug for Inlined<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inlined")
            .field("filter", &self.filter)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl<P: Projection> Inlined<P> {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, P> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Folds `events`, returning the documents they changed.
    fn fold_events(
        &self,
        from: u64,
        events: &[Arc<RecordedEvent>],
    ) -> Result<Vec<DocumentChange>, (u64, String)> {
        let mut state = self.write();
        fold(
            &mut *state,
            from,
            events,
            self.known.as_deref(),
            &self.skipped,
        )
        .map_err(|(position, e): (u64, FoldError)| (position, e.to_string()))?;
        let mut changes = Vec::new();
        for (collection, docs) in state.document_collections() {
            let taken = docs.take_changes().map_err(|e| {
                (
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

    /// Replaces the state by `saved` (or an empty one).
    fn restore(&self, saved: Option<SavedReadModel>) -> Result<(), String> {
        let mut state = P::default();
        if let Some(saved) = saved {
            let mut collections = state.document_collections();
            for (collection, key, body) in saved.documents {
                let Some((_, target)) =
                    collections.iter_mut().find(|(name, _)| *name == collection)
                else {
                    continue;
                };
                target.restore(key.clone(), &body).map_err(|e| {
                    format!("saved document `{collection}/{key}` does not decode: {e}")
                })?;
            }
        }
        *self.write() = state;
        Ok(())
    }
}

impl<P: Projection> InlineProjection for Inlined<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn filter(&self) -> &LogFilter {
        &self.filter
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn gate(&self) -> &Arc<tokio::sync::Mutex<Gate>> {
        &self.gate
    }

    fn reload(&self, saved: Option<SavedReadModel>) -> Result<(), String> {
        self.restore(saved)
    }

    fn fold(&self, events: &[Arc<RecordedEvent>]) -> Result<Vec<DocumentChange>, String> {
        let from = events.first().map_or(0, |e| e.position.saturating_sub(1));
        self.fold_events(from, events).map_err(|(_, reason)| reason)
    }

    fn published(&self, position: u64) {
        self.progress.send_modify(|p| {
            p.position = p.position.max(position);
            p.head = p.head.max(position);
            if matches!(p.state, RunState::CatchingUp | RunState::Starting) && p.position >= p.head
            {
                p.state = RunState::Live;
            }
        });
    }
}

/// The follower of an inline projection: restores, catches up, follows
/// other processes' appends, commits what it folded.
struct Follower<P> {
    inlined: Arc<Inlined<P>>,
    read: Arc<dyn CheckpointStore>,
}

impl<P: Projection> Handler for Follower<P> {
    fn needs_lease(&self) -> bool {
        // Commits are serialized by the store and only move forward: a
        // commit behind the saved checkpoint is dropped (see `commit`).
        false
    }

    fn follows_in_standby(&self) -> bool {
        true
    }

    async fn restore(&mut self) -> Result<u64, Failure> {
        let mut gate = self.inlined.gate.lock().await;
        let saved = if self.inlined.durable {
            Some(
                self.read
                    .load_read_model(P::NAME)
                    .await
                    .map_err(|e| Failure::from_store(&e, 0))?,
            )
        } else {
            None
        };
        let at = saved.as_ref().and_then(|s| s.checkpoint).unwrap_or(0);
        self.inlined
            .restore(saved)
            .map_err(|reason| Failure::Permanent {
                position: at,
                reason,
            })?;
        gate.reloaded(at);
        Ok(at)
    }

    async fn apply(&mut self, from: u64, slice: &LogSlice) -> Result<(), Failure> {
        let mut gate = self.inlined.gate.lock().await;
        let Some(at) = gate.position() else {
            // An append failed after folding: the next append reloads the
            // state; these events are folded then.
            return Ok(());
        };
        let fresh: Vec<Arc<RecordedEvent>> = slice
            .events
            .iter()
            .filter(|e| e.position > at)
            .cloned()
            .collect();
        if slice.through <= at {
            return Ok(());
        }
        match self.inlined.fold_events(from.max(at), &fresh) {
            Ok(changes) => {
                gate.keep(changes, slice.through);
                Ok(())
            }
            Err((position, reason)) => {
                gate.invalidate();
                Err(Failure::Permanent { position, reason })
            }
        }
    }

    async fn commit(&mut self, _: u64, _: Option<&Fence>) -> Result<(), Failure> {
        if !self.inlined.durable {
            return Ok(());
        }
        // Not under the gate: a store's writer may be waiting for the gate
        // to fold an append (SQLite's writer thread), and this write waits
        // for that writer.
        let (at, changes) = {
            let gate = self.inlined.gate.lock().await;
            let Some(at) = gate.position() else {
                return Ok(());
            };
            (at, gate.changes(Vec::new()))
        };
        if changes.is_empty() {
            return Ok(());
        }
        match self
            .read
            .commit_read_model(P::NAME, changes, at, None)
            .await
        {
            // Committed, or another commit went further from the same
            // events (an append here or elsewhere, which wrote them too).
            Ok(()) | Err(crate::StoreError::CheckpointNotAfter { .. }) => {
                let mut gate = self.inlined.gate.lock().await;
                if gate.position() == Some(at) {
                    gate.committed(at);
                }
                Ok(())
            }
            Err(e) => Err(Failure::from_store(&e, at)),
        }
    }

    fn landed(&mut self) {}

    fn discard(&mut self) {
        *self.inlined.write() = P::default();
    }

    async fn reset(&mut self, fence: Option<&Fence>) -> Result<(), Failure> {
        // Appends meanwhile reload what is saved (see `commit` on why the
        // store is not written under the gate).
        self.inlined.gate.lock().await.invalidate();
        if self.inlined.durable {
            self.read
                .reset_read_model(P::NAME, fence)
                .await
                .map_err(|e| Failure::from_store(&e, 0))?;
        }
        let mut gate = self.inlined.gate.lock().await;
        *self.inlined.write() = P::default();
        self.inlined.skipped.clear();
        gate.reloaded(0);
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

/// Starts projection `P` inline: its follower, and what the engine hands
/// every append.
pub(crate) fn start_inline<P: Projection>(
    host: &ProjectionHost,
) -> (RunningProjection, Arc<dyn InlineProjection>) {
    let mut initial = P::default();
    let durable = !initial.document_collections().is_empty();
    let state = Arc::new(RwLock::new(initial));
    let (progress_tx, progress) = watch::channel(Progress {
        position: 0,
        head: *host.source.watch_head().borrow(),
        state: RunState::Starting,
        last_error: None,
    });
    let progress_tx = Arc::new(progress_tx);
    let (filter, known) = log_filter::<P>(&host.registry);
    let inlined = Arc::new(Inlined::<P> {
        state: Arc::clone(&state),
        // Reloaded by the follower's restore, or the first append.
        gate: Arc::new(tokio::sync::Mutex::new(Gate::default())),
        filter: filter.clone(),
        known,
        skipped: Arc::default(),
        durable,
        progress: Arc::clone(&progress_tx),
    });
    let (control, control_rx) = mpsc::channel(4);
    let runner = Runner {
        name: P::NAME.to_owned(),
        source: Arc::clone(&host.source),
        filter,
        batch: host.batch_size,
        lease: None,
        backoff: host.backoff,
        progress: progress_tx,
        handler: Follower::<P> {
            inlined: Arc::clone(&inlined),
            read: Arc::clone(&host.read),
        },
    };
    let span = tracing::info_span!("projection", projection = P::NAME);
    let task = tokio::spawn(
        runner
            .run(host.shutdown.clone(), control_rx)
            .instrument(span),
    );
    let running = RunningProjection {
        name: P::NAME,
        state,
        durable,
        progress,
        control,
        gate: Some(Arc::clone(&inlined.gate)),
        skipped: Arc::clone(&inlined.skipped),
        task: std::sync::Mutex::new(Some(task)),
    };
    (running, inlined)
}
