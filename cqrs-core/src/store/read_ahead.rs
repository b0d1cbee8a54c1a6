//! Reading the global log one page ahead of its reader.
//!
//! A catch-up alternates two kinds of work: reading a page (the store's
//! work: a query, decoding rows) and folding it (the projection's work).
//! Done strictly in turn, each waits for the other. [`ReadAhead`] starts the
//! read of the next page before handing out the current one, so a store
//! whose read runs on its own once started (SQLite on tokio's blocking pool,
//! PostgreSQL on a task of its own) reads while the caller projects.
//!
//! It also hands the records of a page the caller is done with back to the
//! store ([`GlobalLog::read_log_recycling`]), which may refill them instead
//! of allocating a new record, and new strings, for every event.
//!
//! [`Tail`](super::Tail) and [`replay`](crate::replay) (and through `Tail`,
//! every projection runner) read the log through it.

use std::future::poll_fn;
use std::mem;
use std::sync::Arc;
use std::task::Poll;

use super::GlobalLog;
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::{LogFilter, LogSlice};

/// Starts the read of the page after a position, reusing spent records.
type StartRead<'a> = Box<
    dyn Fn(u64, Vec<Arc<RecordedEvent>>) -> BoxFuture<'a, Result<LogSlice, StoreError>>
        + Send
        + Sync
        + 'a,
>;

/// Reads the global log page by page from a position, keeping the read of the
/// next page under way while the caller works on the current one.
///
/// It never skips or repeats an event: every read starts after the `through`
/// of the page before it, exactly as reading in turn would; a read started
/// ahead only starts earlier.
pub(crate) struct ReadAhead<'a> {
    start_read: StartRead<'a>,
    /// Every matching event up to this position has been handed out.
    after: u64,
    /// The read of the page after `after`, if one is under way (or done and
    /// not yet collected).
    ahead: Option<BoxFuture<'a, Result<LogSlice, StoreError>>>,
    /// Records handed back, for the next read to refill.
    spent: Vec<Arc<RecordedEvent>>,
}

impl std::fmt::Debug for ReadAhead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead")
            .field("after", &self.after)
            .field("reading_ahead", &self.ahead.is_some())
            .field("spent", &self.spent.len())
            .finish_non_exhaustive()
    }
}

impl<'a> ReadAhead<'a> {
    /// Reads `log` from after position `after`, pages of `page` events.
    pub(crate) fn new<L>(log: &'a L, after: u64, filter: &'a LogFilter, page: usize) -> Self
    where
        L: GlobalLog + ?Sized,
    {
        let page = page.max(1);
        Self::with(after, move |after, spent| {
            log.read_log_recycling(after, filter, page, spent)
        })
    }

    /// Reads through `start_read`, a function that begins the read of the
    /// page after a position (for readers that own their store).
    pub(crate) fn with(
        after: u64,
        start_read: impl Fn(u64, Vec<Arc<RecordedEvent>>) -> BoxFuture<'a, Result<LogSlice, StoreError>>
        + Send
        + Sync
        + 'a,
    ) -> Self {
        Self {
            start_read: Box::new(start_read),
            after,
            ahead: None,
            spent: Vec::new(),
        }
    }

    /// The position every page handed out so far reaches.
    pub(crate) fn position(&self) -> u64 {
        self.after
    }

    /// The page after [`position`](Self::position): the one read ahead if
    /// any, else one read now. Moves the position to the page's `through`.
    ///
    /// Cancel-safe: dropped while waiting, the read stays under way and the
    /// next call picks it up.
    pub(crate) async fn next_page(&mut self) -> Result<LogSlice, StoreError> {
        let read = self
            .ahead
            .get_or_insert_with(|| (self.start_read)(self.after, mem::take(&mut self.spent)));
        let result = read.await;
        self.ahead = None;
        let slice = result?;
        // A store never reports less than asked; if one did, reading on
        // from its `through` would hand out events twice.
        self.after = self.after.max(slice.through);
        Ok(slice)
    }

    /// Starts reading the page after [`position`](Self::position) now, so it
    /// runs while the caller works on the page it just got. Does nothing if
    /// that read is already under way.
    pub(crate) async fn read_ahead(&mut self) {
        if self.ahead.is_some() {
            return;
        }
        let mut read = (self.start_read)(self.after, mem::take(&mut self.spent));
        // One poll is what sets the read going: the stores' reads are
        // futures that do nothing until polled, then run on their own.
        if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
            read = Box::pin(std::future::ready(result));
        }
        self.ahead = Some(read);
    }

    /// Hands back the records of a page the caller is done with, for the next
    /// read to refill (those the caller still shares elsewhere are only
    /// released).
    pub(crate) fn recycle(&mut self, mut events: Vec<Arc<RecordedEvent>>) {
        if self.spent.is_empty() {
            self.spent = events;
        } else {
            self.spent.append(&mut events);
        }
    }
}
