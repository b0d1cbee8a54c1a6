//! Subscriptions: the one loop behind everything that reads the event log
//! and keeps an effect of it.
//!
//! Projections, the relay to a message log, read sides in other processes
//! and process managers all do the same thing, differing only in what they
//! do with a batch of events. A subscription:
//!
//! 1. **restores** its checkpoint (and, for a durable read model, its saved
//!    state) from where its effect is kept;
//! 2. **reads** from a [`Source`] (the store's global log, or a message log)
//!    from that position: catch-up first, then live;
//! 3. **handles** each batch and **commits** the effect together with the
//!    checkpoint (the last global position it includes), so a crash between
//!    two commits replays the batch and every event counts once;
//! 4. **retries** what may pass (a lost connection) with jittered
//!    exponential [`Backoff`], and stops on what cannot (an event that does
//!    not decode), saying why, until told to rebuild or restart;
//! 5. **reports** its status: position, head, lag, state, last error.
//!
//! # Leases
//!
//! A subscription whose effect is shared (a durable read model, the relay)
//! may run in several processes at once, but only one of them may commit:
//! the one holding the **lease** on its name, in the store that keeps its
//! checkpoint ([`CheckpointStore::acquire_lease`](crate::store::CheckpointStore::acquire_lease)).
//! The others stand by and take over when the holder stops renewing it,
//! within the lease's term plus one retry interval ([`LeaseOptions`]).
//!
//! Every commit carries the holder's **fencing token**, and the store
//! refuses a commit whose token is no longer the lease's: a holder that was
//! paused past its term (a long GC-like stall, `SIGSTOP`, a partition) and
//! wakes up cannot write over its successor; it learns it lost the lease
//! and stands by. A commit whose checkpoint is not after the saved one is
//! refused too, lease or not, so nothing can move a read model back.
//!
//! A projection that stands by keeps following the log in memory without
//! committing, so queries in its process are answered (and can wait for a
//! receipt's position) as in the holder's; when it takes over, it commits
//! everything it folded since its last saved state.

mod backoff;
pub(crate) mod lease;
pub(crate) mod read_ahead;
mod relay;
pub(crate) mod runner;
mod source;
mod tail;

use std::time::Duration;

use serde::Serialize;

pub use backoff::Backoff;
pub use relay::{Relay, RelayOptions, RelayStatus, Sink};
pub use source::{Feed, Source, StoreSource};
pub(crate) use tail::READS_AHEAD;
pub use tail::Tail;

/// What a subscription's runner is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunState {
    /// Loading its saved state.
    Starting,
    /// Another process holds its lease; this one waits to take over (a
    /// projection keeps following the log meanwhile, without committing).
    Standby(String),
    /// Reading events that were stored before it caught up.
    CatchingUp,
    /// Caught up; following the log as it grows.
    Live,
    /// Reading, committing or reaching the store failed in a way that may
    /// pass; it retries with backoff.
    Retrying(String),
    /// Something that retrying cannot fix (an event that does not decode, a
    /// checkpoint ahead of the log): it stopped there, and waits for a
    /// rebuild or a restart.
    Failed(String),
    /// The engine shut down.
    Stopped,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunState::Starting => f.write_str("starting"),
            RunState::Standby(why) => write!(f, "standby: {why}"),
            RunState::CatchingUp => f.write_str("catching up"),
            RunState::Live => f.write_str("live"),
            RunState::Retrying(reason) => write!(f, "retrying after: {reason}"),
            RunState::Failed(reason) => write!(f, "failed: {reason}"),
            RunState::Stopped => f.write_str("stopped"),
        }
    }
}

/// How a subscription holds its lease.
///
/// A standby takes over at most `ttl + retry_every` after the holder last
/// renewed; the holder renews every `renew_every`, so it keeps the lease
/// through `ttl / renew_every - 1` failed renewals in a row.
///
/// # Examples
///
/// ```
/// use cqrs_core::subscription::LeaseOptions;
/// use std::time::Duration;
///
/// let options = LeaseOptions::new().ttl(Duration::from_secs(3));
/// assert_eq!(options.takeover_bound(), Duration::from_secs(3) + options.retry_every_value());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseOptions {
    ttl: Duration,
    renew_every: Duration,
    retry_every: Duration,
}

impl LeaseOptions {
    /// The defaults: a 5 s term renewed every 1.5 s; a standby asks every
    /// second, so it takes over within 6 s of the holder's last renewal.
    pub fn new() -> Self {
        Self {
            ttl: Duration::from_secs(5),
            renew_every: Duration::from_millis(1_500),
            retry_every: Duration::from_secs(1),
        }
    }

    /// The term of a lease: how long a holder that stopped renewing keeps
    /// it. Renewals and a standby's attempts are scaled to it (a third and
    /// a fifth of it) unless set after.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(50));
        self.renew_every = self.ttl / 3;
        self.retry_every = self.ttl / 5;
        self
    }

    /// How often the holder renews (at most a half of the term).
    #[must_use]
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = every.clamp(Duration::from_millis(10), self.ttl / 2);
        self
    }

    /// How often a standby asks for the lease.
    #[must_use]
    pub fn retry_every(mut self, every: Duration) -> Self {
        self.retry_every = every.max(Duration::from_millis(10));
        self
    }

    /// The term.
    pub fn ttl_value(&self) -> Duration {
        self.ttl
    }

    /// How often a standby asks.
    pub fn retry_every_value(&self) -> Duration {
        self.retry_every
    }

    /// How long after the holder's last renewal a standby has taken over
    /// at the latest.
    pub fn takeover_bound(&self) -> Duration {
        self.ttl + self.retry_every
    }
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self::new()
    }
}
