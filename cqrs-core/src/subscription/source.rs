//! Where a subscription reads events: the store's global log, or a message
//! log carrying it to another process.

use std::fmt::Debug;
use std::sync::Arc;

use tokio::sync::watch;

use super::tail::Tail;
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::{GlobalLog, LogFilter, LogSlice};

/// A log of events in global-position order that a subscription can follow.
///
/// Implemented for the event store ([`StoreSource`]); a transport (a
/// message log such as NATS JetStream) implements it to feed read sides
/// in other processes with the same subscriptions.
pub trait Source: Send + Sync + Debug + 'static {
    /// Starts reading, for the subscription named `subscription`, the
    /// events that `filter` selects with a global position after `after`,
    /// in batches of up to `batch`. A source that keeps a cursor per reader
    /// (a message log's durable consumer) names it after `subscription`.
    ///
    /// # Errors
    ///
    /// When the source cannot be read from there (unreachable, or the
    /// events after `after` are gone).
    fn open(
        self: Arc<Self>,
        subscription: &str,
        after: u64,
        filter: LogFilter,
        batch: usize,
    ) -> BoxFuture<'static, Result<Box<dyn Feed>, StoreError>>;

    /// The highest global position the source can deliver now, read from
    /// it (not from a cached watch).
    ///
    /// # Errors
    ///
    /// When the source cannot be reached.
    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// The highest global position the source can deliver, live.
    fn watch_head(&self) -> watch::Receiver<u64>;

    /// `Some` reason while the source cannot be reached (see
    /// [`GlobalLog::watch_unavailable`]).
    fn watch_unavailable(&self) -> Option<watch::Receiver<Option<String>>> {
        None
    }

    /// The number of the newest message in the source's own numbering, as
    /// last seen, for a source that numbers messages apart from global
    /// positions (a JetStream stream's sequence); `None` by default.
    fn last_sequence(&self) -> Option<u64> {
        None
    }
}

/// An open read of a [`Source`].
pub trait Feed: Send + Debug {
    /// The next batch: waits while there is nothing new. A batch's
    /// `through` is after the one before, even when none of its events
    /// matched.
    ///
    /// The future must be cancel-safe: the runner drops it when something
    /// else needs attention first (the head moved, the lease changed hands,
    /// a shutdown), and calls `next` again. Whatever it had taken from the
    /// source by then must come back from that next call.
    ///
    /// # Errors
    ///
    /// What the source reports; a transient failure may be retried with
    /// another call.
    fn next(&mut self) -> BoxFuture<'_, Result<LogSlice, StoreError>>;

    /// The subscription committed its effect through `through`: a source
    /// that must acknowledge deliveries (a message log) does it now, never
    /// before.
    ///
    /// # Errors
    ///
    /// When the acknowledgement fails; the events are then delivered again
    /// and skipped by position.
    fn committed(&mut self, through: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = through;
        Box::pin(std::future::ready(Ok(())))
    }

    /// Hands back the events of a batch the caller is done with, so the
    /// next reads may reuse their memory.
    fn recycle(&mut self, events: Vec<Arc<RecordedEvent>>) {
        drop(events);
    }
}

/// The event store's global log as a [`Source`].
#[derive(Clone, Debug)]
pub struct StoreSource {
    log: Arc<dyn GlobalLog>,
}

impl StoreSource {
    /// Reads `log`.
    pub fn new(log: Arc<dyn GlobalLog>) -> Self {
        Self { log }
    }
}

impl Source for StoreSource {
    fn open(
        self: Arc<Self>,
        subscription: &str,
        after: u64,
        filter: LogFilter,
        batch: usize,
    ) -> BoxFuture<'static, Result<Box<dyn Feed>, StoreError>> {
        let _ = subscription;
        let tail = Tail::new(Arc::clone(&self.log), after, filter, batch);
        Box::pin(std::future::ready(Ok(Box::new(tail) as Box<dyn Feed>)))
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.log.head()
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.log.watch_head()
    }

    fn watch_unavailable(&self) -> Option<watch::Receiver<Option<String>>> {
        self.log.watch_unavailable()
    }
}

impl Feed for Tail {
    fn next(&mut self) -> BoxFuture<'_, Result<LogSlice, StoreError>> {
        Box::pin(Tail::next(self))
    }

    fn recycle(&mut self, events: Vec<Arc<RecordedEvent>>) {
        Tail::recycle(self, events);
    }
}
