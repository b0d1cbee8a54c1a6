//! The subscription loop itself: restore, read, handle, commit, follow,
//! retry, report; with or without a lease.

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use super::lease::{Keeping, LeaseKeeper, Role};
use super::{Backoff, Feed, RunState, Source};
use crate::error::{Error, StoreError};
use crate::store::{Fence, LogFilter, LogSlice};

/// What a subscription does with the events it reads: the part that
/// differs between a projection, the relay and a process manager.
pub(crate) trait Handler: Send + 'static {
    /// Whether its effect is shared with other processes, so that only the
    /// holder of its lease may commit.
    fn needs_lease(&self) -> bool;

    /// Whether it keeps reading while another process holds the lease,
    /// without committing (a projection, so queries here stay answered);
    /// if not, it waits for the lease before it reads at all.
    fn follows_in_standby(&self) -> bool;

    /// Loads what was saved and returns the position it includes.
    fn restore(&mut self) -> impl Future<Output = Result<u64, Failure>> + Send;

    /// Takes in a batch read after position `from` (not yet committed).
    fn apply(
        &mut self,
        from: u64,
        slice: &LogSlice,
    ) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Commits everything taken in so far, with checkpoint `through`.
    /// Called again with the same `through` after a transient failure.
    fn commit(
        &mut self,
        through: u64,
        fence: Option<&Fence>,
    ) -> impl Future<Output = Result<(), Failure>> + Send;

    /// A retried commit found its checkpoint saved: the earlier attempt
    /// landed, so what it took in is committed.
    fn landed(&mut self);

    /// Forgets what it holds in memory (not what is saved): what it
    /// restored is not to be served.
    fn discard(&mut self);

    /// Forgets everything, saved and not, for a rebuild from position 0.
    fn reset(&mut self, fence: Option<&Fence>) -> impl Future<Output = Result<(), Failure>> + Send;

    /// The `tracing` span of one batch (named after what the handler is:
    /// `projection_batch`, `relay_batch`, ..).
    fn batch_span(&self, from: u64, slice: &LogSlice) -> tracing::Span;

    /// The checkpoint saved now (by whichever process), read when this one
    /// takes the lease over.
    fn saved_checkpoint(&mut self) -> impl Future<Output = Result<Option<u64>, Failure>> + Send;
}

/// Why a handler's step did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// May pass (a lost connection): retried with backoff.
    Transient(String),
    /// Cannot pass by retrying: the subscription stops, its state including
    /// everything up to `position`.
    Permanent { position: u64, reason: String },
    /// The lease moved to another holder: this one stands by.
    Fenced(String),
    /// The store already holds a commit through exactly this checkpoint:
    /// on a retried commit, the attempt that seemed to fail (a connection
    /// lost before the answer) landed.
    Landed(String),
}

impl Failure {
    /// A store error, as the subscription treats it; `position` is where a
    /// permanent one leaves the state.
    pub(crate) fn from_store(error: &StoreError, position: u64) -> Self {
        match error {
            StoreError::Fenced { .. } => Self::Fenced(error.to_string()),
            StoreError::CheckpointNotAfter {
                saved, attempted, ..
            } if saved == attempted => Self::Landed(error.to_string()),
            e if e.is_transient() => Self::Transient(e.to_string()),
            e => Self::Permanent {
                position,
                reason: e.to_string(),
            },
        }
    }
}

/// How far a subscription got and what it is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Progress {
    /// The global position its state includes.
    pub(crate) position: u64,
    /// The source's head when this was published.
    pub(crate) head: u64,
    /// What it is doing.
    pub(crate) state: RunState,
    /// The last failure it met, even if it recovered since.
    pub(crate) last_error: Option<String>,
}

/// How far a [`Rebuild`](crate::Rebuild) got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RebuildProgress {
    /// The position the rebuilt state includes.
    pub position: u64,
    /// The log head when the rebuild started: done when reached.
    pub target: u64,
    /// Events handled so far.
    pub events: u64,
    /// Whether it reached the target.
    pub done: bool,
}

/// Requests a running subscription accepts.
#[derive(Debug)]
pub(crate) enum Control {
    /// Forget everything and start from position 0, reporting progress.
    Rebuild {
        progress: watch::Sender<RebuildProgress>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Restore from what is saved and go on (after a failure was fixed).
    Restart {
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

/// One subscription: its source, handler, lease and status.
pub(crate) struct Runner<H> {
    pub(crate) name: String,
    pub(crate) source: Arc<dyn Source>,
    pub(crate) filter: LogFilter,
    pub(crate) batch: usize,
    /// Set when the handler needs a lease.
    pub(crate) lease: Option<LeaseKeeper>,
    pub(crate) backoff: Backoff,
    pub(crate) progress: Arc<watch::Sender<Progress>>,
    pub(crate) handler: H,
}

/// Why one run of the loop ended.
enum Exit {
    Shutdown,
    Failed {
        position: u64,
        reason: String,
    },
    /// Start over from the saved state, first resetting it for a rebuild.
    Again(Option<watch::Sender<RebuildProgress>>),
}

/// A rebuild under way: where it reports.
struct Rebuilding {
    progress: watch::Sender<RebuildProgress>,
    now: RebuildProgress,
}

impl<H: Handler> Runner<H> {
    /// Runs until the engine shuts down.
    pub(crate) async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
        mut control: mpsc::Receiver<Control>,
    ) {
        let keeping: Option<Keeping> = match self.lease.take() {
            Some(keeper) if self.handler.needs_lease() => Some(keeper.spawn()),
            _ => None,
        };
        let mut role = keeping.as_ref().map(|k| k.role.clone());
        let mut rebuild = None;
        'run: loop {
            match self
                .run_once(&mut shutdown, &mut control, role.as_mut(), rebuild.take())
                .await
            {
                Exit::Shutdown => break 'run,
                Exit::Again(next) => rebuild = next,
                Exit::Failed { position, reason } => {
                    tracing::error!(subscription = %self.name, %reason, position, "stopped");
                    self.progress.send_modify(|p| {
                        p.position = position;
                        p.state = RunState::Failed(reason.clone());
                        p.last_error = Some(reason);
                    });
                    // Stays here, answering, until told to try again.
                    loop {
                        let request = tokio::select! {
                            biased;
                            _ = shutdown.changed() => break 'run,
                            request = control.recv() => match request {
                                None => break 'run,
                                Some(request) => request,
                            },
                        };
                        let current = role.as_ref().map(|r| r.borrow().clone());
                        match current {
                            Some(Role::Active(_)) | None => {
                                if let Exit::Again(next) = accept(request) {
                                    rebuild = next;
                                }
                                break;
                            }
                            Some(other) => refuse_in_standby(request, &self.name, Some(&other)),
                        }
                    }
                }
            }
        }
        self.progress.send_modify(|p| p.state = RunState::Stopped);
        if let Some(keeping) = keeping {
            keeping.release().await;
        }
    }

    async fn run_once(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        control: &mut mpsc::Receiver<Control>,
        mut role: Option<&mut watch::Receiver<Role>>,
        rebuild: Option<watch::Sender<RebuildProgress>>,
    ) -> Exit {
        self.set_state(RunState::Starting);
        let mut current = match role.as_deref_mut() {
            Some(role) => match wait_known(role, shutdown).await {
                Some(current) => Some(current),
                None => return Exit::Shutdown,
            },
            None => None,
        };
        // A handler that does not follow in standby waits for the lease
        // before it restores: what it would restore is not its to keep.
        if !self.handler.follows_in_standby()
            && let Some(role) = role.as_deref_mut()
        {
            loop {
                match current {
                    Some(Role::Active(_)) => break,
                    Some(Role::Standby(ref why)) => self.set_state(RunState::Standby(why.clone())),
                    _ => {}
                }
                tokio::select! {
                    biased;
                    _ = shutdown.changed() => return Exit::Shutdown,
                    request = control.recv() => match request {
                        None => return Exit::Shutdown,
                        Some(request) => refuse_in_standby(request, &self.name, current.as_ref()),
                    },
                    changed = role.changed() => {
                        if changed.is_err() {
                            return Exit::Shutdown;
                        }
                        current = Some(role.borrow_and_update().clone());
                    }
                }
            }
        }
        let fence = |current: &Option<Role>| match current {
            Some(Role::Active(fence)) => Some(fence.clone()),
            _ => None,
        };
        // A rebuild is only started by whoever may commit (see `control`).
        let mut rebuilding = None;
        if let Some(progress) = rebuild {
            let fence = fence(&current);
            if role.is_some() && fence.is_none() {
                // The lease moved on since the request was accepted: the
                // rebuild is the new holder's to make. Dropping `progress`
                // tells the caller it did not happen.
                drop(progress);
                return Exit::Again(None);
            }
            let mut attempt = 0;
            loop {
                match self.handler.reset(fence.as_ref()).await {
                    Ok(()) => break,
                    Err(Failure::Transient(why) | Failure::Fenced(why)) => {
                        if self.pause(&why, &mut attempt, shutdown).await.is_err() {
                            return Exit::Shutdown;
                        }
                    }
                    Err(Failure::Permanent { position, reason }) => {
                        return Exit::Failed { position, reason };
                    }
                    // Only a commit lands.
                    Err(Failure::Landed(reason)) => {
                        return Exit::Failed {
                            position: 0,
                            reason,
                        };
                    }
                }
            }
            let target = *self.source.watch_head().borrow();
            let now = RebuildProgress {
                position: 0,
                target,
                events: 0,
                done: target == 0,
            };
            progress.send_replace(now);
            self.progress.send_modify(|p| p.position = 0);
            if !now.done {
                rebuilding = Some(Rebuilding { progress, now });
            }
        }
        let mut attempt = 0;
        let restored = loop {
            match self.handler.restore().await {
                Ok(position) => break position,
                Err(Failure::Transient(why) | Failure::Fenced(why)) => {
                    if self.pause(&why, &mut attempt, shutdown).await.is_err() {
                        return Exit::Shutdown;
                    }
                }
                Err(Failure::Permanent { position, reason }) => {
                    return Exit::Failed { position, reason };
                }
                Err(Failure::Landed(reason)) => {
                    return Exit::Failed {
                        position: 0,
                        reason,
                    };
                }
            }
        };
        // What the state includes now: a restart may restore less than the
        // last run reached.
        self.progress.send_modify(|p| p.position = restored);
        let mut head = self.source.watch_head();
        head.borrow_and_update();
        let mut attempt = 0;
        let known_head = loop {
            match self.source.head().await {
                Ok(known) => break known,
                Err(e) if e.is_transient() => {
                    if self
                        .pause(&e.to_string(), &mut attempt, shutdown)
                        .await
                        .is_err()
                    {
                        return Exit::Shutdown;
                    }
                }
                Err(e) => {
                    return Exit::Failed {
                        position: restored,
                        reason: e.to_string(),
                    };
                }
            }
        };
        if restored > known_head {
            self.handler.discard();
            return Exit::Failed {
                position: 0,
                reason: format!(
                    "its saved checkpoint {restored} is ahead of the log, whose head is {known_head}: \
                     the read model belongs to another event store (or the log lost events); \
                     nothing was changed"
                ),
            };
        }
        let mut position = restored;
        let mut attempt = 0;
        let mut feed: Box<dyn Feed> = loop {
            match Arc::clone(&self.source)
                .open(&self.name, position, self.filter.clone(), self.batch)
                .await
            {
                Ok(feed) => break feed,
                Err(e) if e.is_transient() => {
                    if self
                        .pause(&e.to_string(), &mut attempt, shutdown)
                        .await
                        .is_err()
                    {
                        return Exit::Shutdown;
                    }
                }
                Err(e) => {
                    return Exit::Failed {
                        position,
                        reason: e.to_string(),
                    };
                }
            }
        };
        let mut unavailable = self.source.watch_unavailable();
        let mut unreachable = unavailable
            .as_mut()
            .and_then(|u| u.borrow_and_update().clone());
        // After taking the lease over from another process: its saved
        // checkpoint, which a commit must pass.
        let mut floor: Option<u64> = match &current {
            Some(Role::Active(_)) => match self.saved_floor(restored, shutdown).await {
                Ok(floor) => floor,
                Err(exit) => return exit,
            },
            _ => None,
        };
        // The fence a commit was refused with: standing by until the
        // keeper hands out another.
        let mut refused: Option<Fence> = None;
        self.publish(
            position,
            *head.borrow(),
            &current,
            unreachable.as_deref(),
            &refused,
        );
        let mut attempt = 0;
        loop {
            let from = position;
            let event = tokio::select! {
                biased;
                _ = shutdown.changed() => return Exit::Shutdown,
                request = control.recv() => match request {
                    None => return Exit::Shutdown,
                    Some(request) => {
                        let active = role.is_none() || active_fence(&current, &refused).is_some();
                        if active {
                            return accept(request);
                        }
                        refuse_in_standby(request, &self.name, current.as_ref());
                        continue;
                    }
                },
                Some(changed) = changed_role(role.as_deref_mut()) => Event::Role(changed),
                Some(now) = changed_unavailable(unavailable.as_mut()) => Event::Unavailable(now),
                Ok(()) = head.changed() => Event::Head,
                next = feed.next() => Event::Batch(next),
            };
            let slice = match event {
                Event::Head => {
                    self.publish(
                        position,
                        *head.borrow(),
                        &current,
                        unreachable.as_deref(),
                        &refused,
                    );
                    continue;
                }
                Event::Unavailable(now) => {
                    unreachable = now;
                    self.publish(
                        position,
                        *head.borrow(),
                        &current,
                        unreachable.as_deref(),
                        &refused,
                    );
                    continue;
                }
                Event::Role(None) => return Exit::Shutdown,
                Event::Role(Some(next)) => {
                    let before = active_fence(&current, &refused);
                    if let (Role::Active(fence), Some(old)) = (&next, &refused)
                        && fence != old
                    {
                        refused = None;
                    }
                    current = Some(next);
                    let after = active_fence(&current, &refused);
                    if before != after {
                        if !self.handler.follows_in_standby() {
                            // Lost it, or got it: start over from what is saved.
                            return Exit::Again(None);
                        }
                        if after.is_some() {
                            floor = match self.saved_floor(restored, shutdown).await {
                                Ok(floor) => floor,
                                Err(exit) => return exit,
                            };
                            if floor.is_none_or(|f| position > f) {
                                match self.commit(position, &current, shutdown).await {
                                    Ok(()) => floor = None,
                                    Err(Committed::Refused(fence)) => refused = Some(fence),
                                    Err(Committed::Exit(exit)) => return exit,
                                }
                            }
                        }
                    }
                    self.publish(
                        position,
                        *head.borrow(),
                        &current,
                        unreachable.as_deref(),
                        &refused,
                    );
                    continue;
                }
                Event::Batch(Ok(slice)) => {
                    attempt = 0;
                    slice
                }
                Event::Batch(Err(e)) => {
                    if !e.is_transient() {
                        return Exit::Failed {
                            position,
                            reason: e.to_string(),
                        };
                    }
                    if self
                        .pause(&e.to_string(), &mut attempt, shutdown)
                        .await
                        .is_err()
                    {
                        return Exit::Shutdown;
                    }
                    continue;
                }
            };
            let span = self.handler.batch_span(from, &slice);
            if !span.is_disabled() {
                crate::telemetry::link_events(&span, &slice.events);
            }
            if let Err(failure) = self
                .handler
                .apply(from, &slice)
                .instrument(span.clone())
                .await
            {
                return match failure {
                    Failure::Permanent {
                        position: at,
                        reason,
                    } => {
                        // What the batch held before the failure is kept:
                        // committed through the last event that applied.
                        let may_commit =
                            role.is_none() || active_fence(&current, &refused).is_some();
                        if may_commit
                            && at > from
                            && floor.is_none_or(|f| at > f)
                            && self.commit(at, &current, shutdown).await.is_ok()
                            && let Err(e) = feed.committed(at).await
                        {
                            tracing::warn!(subscription = %self.name, error = %e, "acknowledging failed");
                        }
                        Exit::Failed {
                            position: at,
                            reason,
                        }
                    }
                    // A step that may pass (a process manager's command
                    // met a lost connection): after a pause, everything
                    // since the last commit is read again from what is
                    // saved.
                    Failure::Transient(reason) => {
                        self.handler.discard();
                        let mut attempt = 1;
                        if self.pause(&reason, &mut attempt, shutdown).await.is_err() {
                            return Exit::Shutdown;
                        }
                        Exit::Again(None)
                    }
                    Failure::Fenced(reason) | Failure::Landed(reason) => Exit::Failed {
                        position: from,
                        reason,
                    },
                };
            }
            position = slice.through;
            let may_commit = role.is_none() || active_fence(&current, &refused).is_some();
            if may_commit && floor.is_none_or(|f| position > f) {
                match self
                    .commit(position, &current, shutdown)
                    .instrument(span)
                    .await
                {
                    Ok(()) => {
                        floor = None;
                        if let Err(e) = feed.committed(position).await {
                            tracing::warn!(subscription = %self.name, error = %e, "acknowledging failed");
                        }
                    }
                    Err(Committed::Refused(fence)) => {
                        if !self.handler.follows_in_standby() {
                            return Exit::Again(None);
                        }
                        refused = Some(fence);
                    }
                    Err(Committed::Exit(exit)) => return exit,
                }
            } else if !may_commit {
                // Standing by, following without committing: the source
                // need not keep these for this runner (a restart restores
                // from what is saved and reads from there).
                if let Err(e) = feed.committed(position).await {
                    tracing::warn!(subscription = %self.name, error = %e, "acknowledging failed");
                }
            }
            self.publish(
                position,
                *head.borrow(),
                &current,
                unreachable.as_deref(),
                &refused,
            );
            if let Some(mut rebuild) = rebuilding.take() {
                rebuild.now.position = position;
                rebuild.now.events += slice.events.len() as u64;
                rebuild.now.done = position >= rebuild.now.target;
                rebuild.progress.send_replace(rebuild.now);
                if !rebuild.now.done {
                    rebuilding = Some(rebuild);
                }
            }
            feed.recycle(slice.events);
        }
    }

    /// The checkpoint saved by the previous holder, after taking its lease;
    /// starts over (a full restore) when it is below what this runner
    /// restored: the read model was rebuilt meanwhile, and what this one
    /// folded since its restore is not all that is missing.
    async fn saved_floor(
        &mut self,
        restored: u64,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<u64>, Exit> {
        let mut attempt = 0;
        loop {
            match self.handler.saved_checkpoint().await {
                Ok(saved) => {
                    if saved.unwrap_or(0) < restored {
                        return Err(Exit::Again(None));
                    }
                    return Ok(saved);
                }
                Err(Failure::Transient(why) | Failure::Fenced(why)) => {
                    if self.pause(&why, &mut attempt, shutdown).await.is_err() {
                        return Err(Exit::Shutdown);
                    }
                }
                Err(Failure::Permanent { position, reason }) => {
                    return Err(Exit::Failed { position, reason });
                }
                Err(Failure::Landed(reason)) => {
                    return Err(Exit::Failed {
                        position: restored,
                        reason,
                    });
                }
            }
        }
    }

    /// Commits through `position`, retrying what may pass.
    async fn commit(
        &mut self,
        position: u64,
        current: &Option<Role>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Committed> {
        let fence = match current {
            Some(Role::Active(fence)) => Some(fence),
            _ => None,
        };
        let mut attempt = 0;
        loop {
            match self.handler.commit(position, fence).await {
                Ok(()) => return Ok(()),
                Err(Failure::Landed(_)) if attempt > 0 => {
                    tracing::info!(subscription = %self.name, position, "the commit retried had landed");
                    self.handler.landed();
                    return Ok(());
                }
                Err(Failure::Landed(reason)) => {
                    return Err(Committed::Exit(Exit::Failed { position, reason }));
                }
                Err(Failure::Transient(why)) => {
                    if self.pause(&why, &mut attempt, shutdown).await.is_err() {
                        return Err(Committed::Exit(Exit::Shutdown));
                    }
                }
                Err(Failure::Fenced(why)) => {
                    tracing::warn!(subscription = %self.name, %why, "commit refused: the lease moved on");
                    self.progress
                        .send_modify(|p| p.last_error = Some(format!("commit refused: {why}")));
                    return match fence {
                        Some(fence) => Err(Committed::Refused(fence.clone())),
                        None => Err(Committed::Exit(Exit::Failed {
                            position,
                            reason: why,
                        })),
                    };
                }
                Err(Failure::Permanent { position, reason }) => {
                    return Err(Committed::Exit(Exit::Failed { position, reason }));
                }
            }
        }
    }

    /// Waits before retrying, saying why; `Err` on shutdown.
    async fn pause(
        &self,
        why: &str,
        attempt: &mut u32,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ()> {
        tracing::warn!(subscription = %self.name, error = %why, "retrying");
        self.progress.send_modify(|p| {
            p.state = RunState::Retrying(why.to_owned());
            p.last_error = Some(why.to_owned());
        });
        let delay = self.backoff.delay(*attempt);
        *attempt = attempt.saturating_add(1);
        tokio::select! {
            biased;
            _ = shutdown.changed() => Err(()),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    fn set_state(&self, state: RunState) {
        self.progress.send_modify(|p| p.state = state);
    }

    fn publish(
        &self,
        position: u64,
        head: u64,
        role: &Option<Role>,
        unreachable: Option<&str>,
        refused: &Option<Fence>,
    ) {
        let state = if let Some(why) = unreachable {
            RunState::Retrying(format!("the store cannot be reached: {why}"))
        } else if refused.is_some() {
            RunState::Standby(String::from(
                "its commit was refused: another process took the lease over",
            ))
        } else if let Some(Role::Standby(why)) = role {
            RunState::Standby(why.clone())
        } else if position >= head {
            RunState::Live
        } else {
            RunState::CatchingUp
        };
        self.progress.send_if_modified(|p| {
            // Others may publish further positions on this watch (an inline
            // projection's commits): only a rebuild moves it back.
            let position = position.max(p.position);
            let next = Progress {
                position,
                head: head.max(position),
                state,
                last_error: p.last_error.clone(),
            };
            let changed = *p != next;
            *p = next;
            changed
        });
    }
}

/// How a commit ended, when it did not succeed.
enum Committed {
    /// The store refused this fence: stand by.
    Refused(Fence),
    /// The loop ends.
    Exit(Exit),
}

/// What woke the loop.
enum Event {
    Head,
    Unavailable(Option<String>),
    /// The lease keeper's new role; `None` when it stopped.
    Role(Option<Role>),
    Batch(Result<LogSlice, StoreError>),
}

/// The fence this runner commits with now, if it may commit under a lease.
fn active_fence(current: &Option<Role>, refused: &Option<Fence>) -> Option<Fence> {
    match current {
        Some(Role::Active(fence)) if refused.is_none() => Some(fence.clone()),
        _ => None,
    }
}

/// A request accepted by whoever may commit.
fn accept(request: Control) -> Exit {
    match request {
        Control::Rebuild { progress, reply } => {
            let _ = reply.send(Ok(()));
            Exit::Again(Some(progress))
        }
        Control::Restart { reply } => {
            let _ = reply.send(Ok(()));
            Exit::Again(None)
        }
    }
}

/// A request to a runner that does not hold the lease: only the holder may
/// rebuild or restart the shared effect.
fn refuse_in_standby(request: Control, name: &str, role: Option<&Role>) {
    let why = match role {
        Some(Role::Standby(why)) => why.clone(),
        _ => String::from("another process holds its lease"),
    };
    let error = Error::Standby {
        name: name.to_owned(),
        reason: why,
    };
    match request {
        Control::Rebuild { reply, .. } | Control::Restart { reply } => {
            let _ = reply.send(Err(error));
        }
    }
}

/// Waits until the keeper's first answer; `None` on shutdown.
async fn wait_known(
    role: &mut watch::Receiver<Role>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Role> {
    loop {
        let now = role.borrow_and_update().clone();
        if now != Role::Unknown {
            return Some(now);
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => return None,
            changed = role.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
        }
    }
}

/// The next role, when there is a keeper (pending forever without one);
/// `Some(None)` when the keeper stopped.
async fn changed_role(role: Option<&mut watch::Receiver<Role>>) -> Option<Option<Role>> {
    match role {
        Some(role) => Some(match role.changed().await {
            Ok(()) => Some(role.borrow_and_update().clone()),
            Err(_) => None,
        }),
        None => std::future::pending().await,
    }
}

/// The next reachability report, when the source gives them (pending
/// forever without, or once its sender is gone).
async fn changed_unavailable(
    watch: Option<&mut watch::Receiver<Option<String>>>,
) -> Option<Option<String>> {
    match watch {
        Some(watch) => match watch.changed().await {
            Ok(()) => Some(watch.borrow_and_update().clone()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}
