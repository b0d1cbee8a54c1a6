//! Following the global log of a store: catch-up first, then live.

use std::sync::Arc;

use tokio::sync::watch;

use super::read_ahead::ReadAhead;
use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::{GlobalLog, LogFilter, LogSlice};

/// How many reads of the log a catch-up keeps under way: the next page, and
/// a guess at the one after it (see [`ReadAhead`]): two pages read at once
/// while the caller projects a third.
pub(crate) const READS_AHEAD: usize = 2;

/// Follows the global log: catch-up first, then live, in batches.
///
/// While the caller works on one batch, the next ones are already being read
/// (when the log has more), and the records of batches handed back with
/// [`recycle`](Self::recycle) are reused for new ones.
///
/// # Examples
///
/// ```
/// # use cqrs_core::store::*;
/// # use cqrs_core::subscription::Tail;
/// # use std::sync::Arc;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cqrs_core::StoreError> {
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let mut tail = Tail::new(store, 0, LogFilter::all(), 256);
/// // `tail.next().await` waits until events exist after position 0.
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Tail {
    pages: ReadAhead<'static>,
    head: watch::Receiver<u64>,
}

impl Tail {
    /// Follows `store` from after position `after`.
    pub fn new(store: Arc<dyn GlobalLog>, after: u64, filter: LogFilter, batch: usize) -> Self {
        let head = store.watch_head();
        let filter = Arc::new(filter);
        // The reads own what they use, so one can run ahead of `next`.
        let pages = ReadAhead::with(after, batch, move |after, limit, spent| {
            let store = Arc::clone(&store);
            let filter = Arc::clone(&filter);
            Box::pin(async move { store.read_log_recycling(after, &filter, limit, spent).await })
        });
        Self { pages, head }
    }

    /// The position this tail has read through.
    pub fn position(&self) -> u64 {
        self.pages.position()
    }

    /// The next non-empty step: waits for new events when caught up. Returns a
    /// slice whose `through` moved, even if no event in it matched.
    ///
    /// # Errors
    ///
    /// A backend failure; the tail stays where it was and may be retried.
    pub async fn next(&mut self) -> Result<LogSlice, StoreError> {
        loop {
            let head = *self.head.borrow_and_update();
            let from = self.pages.position();
            if head > from {
                let slice = self.pages.next_page().await?;
                if slice.through > from {
                    let head = *self.head.borrow();
                    self.pages.read_ahead(READS_AHEAD, head).await;
                    return Ok(slice);
                }
            }
            if self.head.changed().await.is_err() {
                return Err(StoreError::Backend {
                    message: String::from("the store stopped publishing its head position"),
                    source: None,
                });
            }
        }
    }

    /// Hands back the events of a batch the caller is done with, so reading
    /// the next batches can reuse their memory.
    pub fn recycle(&mut self, events: Vec<Arc<RecordedEvent>>) {
        self.pages.recycle(events);
    }
}
