//! Reading the global log ahead of its reader.
//!
//! A catch-up alternates two kinds of work: reading a page (the store's
//! work: a query, decoding rows) and folding it (the projection's work).
//! Done strictly in turn, each waits for the other. [`ReadAhead`] starts the
//! read of the next page before handing out the current one, so a store
//! whose read runs on its own once started (SQLite on tokio's blocking pool,
//! PostgreSQL on a task of its own) reads while the caller projects.
//!
//! Reading is most of a catch-up's cost, and one page's read cannot start
//! before the page before it ends: where it ends is where the next begins.
//! So [`ReadAhead`] also guesses: a page after the next is read from where
//! the next would end if it spans as many positions as the last full page
//! did (exactly right on a log every event of which the reader wants). A
//! guess that overlaps the page before it is trimmed; one that leaves a gap
//! is dropped, its work wasted, never its events handed out.
//!
//! It also hands the records of a page the caller is done with back to the
//! store ([`GlobalLog::read_log_recycling`]), which may refill them instead
//! of allocating a new record, and new strings, for every event.
//!
//! [`Tail`](super::Tail) and [`replay`](crate::replay) (and through `Tail`,
//! every projection runner) read the log through it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::mem;
use std::sync::Arc;
use std::task::Poll;

use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::GlobalLog;
use crate::store::{LogFilter, LogSlice};

/// Starts the read of the page of at most a number of events after a
/// position, reusing spent records.
type StartRead<'a> = Box<
    dyn Fn(u64, usize, Vec<Arc<RecordedEvent>>) -> BoxFuture<'a, Result<LogSlice, StoreError>>
        + Send
        + Sync
        + 'a,
>;

/// The size of the first page a [`ReadAhead`] reads; each next one is twice
/// the one before, up to the page size asked for. Nothing overlaps the read
/// of the first page: a small one lets the caller start sooner.
const FIRST_PAGE: usize = 256;

/// Reads the global log page by page from a position, keeping reads of the
/// next pages under way while the caller works on the current one.
///
/// It never skips or repeats an event: a page handed out covers every
/// matching event from the position the pages before it reached, as
/// reading in turn would; reads started ahead only start earlier.
pub(crate) struct ReadAhead<'a> {
    start_read: StartRead<'a>,
    /// The most events a page holds.
    page: usize,
    /// The most events the next read started asks for (growing to `page`).
    limit: usize,
    /// Every matching event up to this position has been handed out.
    after: u64,
    /// Reads under way (or done and not yet collected), in the order their
    /// pages are handed out: the first starts at `after` or before, each
    /// other where the one before it is guessed to end.
    reads: VecDeque<Read<'a>>,
    /// How many positions the last full page spanned, and how many events
    /// it held: to guess where a page ends.
    span: Option<(u64, usize)>,
    /// Records handed back, for the next read to refill.
    spent: Vec<Arc<RecordedEvent>>,
}

/// A read of the page of at most `limit` events after position `from`.
struct Read<'a> {
    from: u64,
    limit: usize,
    page: BoxFuture<'a, Result<LogSlice, StoreError>>,
}

impl Read<'_> {
    /// Where the page is guessed to end, if it spans positions as the last
    /// full page did.
    fn guessed_end(&self, (positions, events): (u64, usize)) -> u64 {
        let guess = u128::from(positions) * self.limit as u128 / events.max(1) as u128;
        self.from
            .saturating_add(u64::try_from(guess).unwrap_or(u64::MAX))
    }
}

impl std::fmt::Debug for ReadAhead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead")
            .field("page", &self.page)
            .field("after", &self.after)
            .field(
                "reading",
                &self.reads.iter().map(|r| r.from).collect::<Vec<_>>(),
            )
            .field("span", &self.span)
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
        Self::with(after, page, move |after, limit, spent| {
            log.read_log_recycling(after, filter, limit, spent)
        })
    }

    /// Reads pages of up to `page` events through `start_read`, a function
    /// that begins the read of at most a number of events after a position
    /// (for readers that own their store).
    pub(crate) fn with(
        after: u64,
        page: usize,
        start_read: impl Fn(
            u64,
            usize,
            Vec<Arc<RecordedEvent>>,
        ) -> BoxFuture<'a, Result<LogSlice, StoreError>>
        + Send
        + Sync
        + 'a,
    ) -> Self {
        let page = page.max(1);
        Self {
            start_read: Box::new(start_read),
            page,
            limit: page.min(FIRST_PAGE),
            after,
            reads: VecDeque::new(),
            span: None,
            spent: Vec::new(),
        }
    }

    /// The position every page handed out so far reaches.
    pub(crate) fn position(&self) -> u64 {
        self.after
    }

    /// The page after [`position`](Self::position): from a read started
    /// ahead if one fits, else read now. Moves the position to the page's
    /// `through`.
    ///
    /// Cancel-safe: dropped while waiting, the reads stay under way and the
    /// next call picks them up.
    pub(crate) async fn next_page(&mut self) -> Result<LogSlice, StoreError> {
        loop {
            // A read from past `after` would leave the events between out:
            // the guess was wrong, and so are those after it.
            if self
                .reads
                .front()
                .is_some_and(|read| read.from > self.after)
            {
                self.reads.clear();
            }
            let read = match self.reads.front_mut() {
                Some(read) => read,
                None => {
                    let read = self.start(self.after);
                    self.reads.push_back(read);
                    continue;
                }
            };
            let (from, limit) = (read.from, read.limit);
            let result = (&mut read.page).await;
            self.reads.pop_front();
            let mut slice = match result {
                Ok(slice) => slice,
                Err(e) => {
                    // The reads after it were guesses from it.
                    self.reads.clear();
                    return Err(e);
                }
            };
            if slice.events.len() >= limit && slice.through > from {
                self.span = Some((slice.through - from, slice.events.len()));
            }
            if from < self.after {
                // Started early, on a guess: what it shares with the pages
                // handed out goes back, unseen.
                let seen = slice.events.partition_point(|e| e.position <= self.after);
                self.spent.extend(slice.events.drain(..seen));
                if slice.through <= self.after {
                    self.spent.append(&mut slice.events);
                    continue;
                }
            }
            // A store never reports less than asked; if one did, reading on
            // from its `through` would hand out events twice.
            self.after = self.after.max(slice.through);
            return Ok(slice);
        }
    }

    /// Starts reading ahead now, so the reads run while the caller works on
    /// the page it just got: the page after [`position`](Self::position),
    /// and guesses at the pages after it, `reads` in all, none starting at
    /// or past `until` (the head, as far as the caller knows). Reads already
    /// under way count.
    pub(crate) async fn read_ahead(&mut self, reads: usize, until: u64) {
        loop {
            let from = match (self.reads.back(), self.span) {
                (None, _) => self.after,
                (Some(_), _) if self.reads.len() >= reads => return,
                (Some(last), Some(span)) => last.guessed_end(span),
                (Some(_), None) => return,
            };
            if from >= until {
                return;
            }
            let mut read = self.start(from);
            // One poll is what sets the read going: the stores' reads are
            // futures that do nothing until polled, then run on their own.
            if let Poll::Ready(result) =
                poll_fn(|cx| Poll::Ready(read.page.as_mut().poll(cx))).await
            {
                read.page = Box::pin(std::future::ready(result));
            }
            self.reads.push_back(read);
        }
    }

    /// The read of the page after `from`, at the current page size (which
    /// then grows).
    fn start(&mut self, from: u64) -> Read<'a> {
        let limit = self.limit;
        self.limit = limit.saturating_mul(2).min(self.page);
        Read {
            from,
            limit,
            page: (self.start_read)(from, limit, mem::take(&mut self.spent)),
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::record::{NewEvent, StreamId, Timestamp};
    use crate::store::{EventStore, ExpectedVersion, MemoryStore};

    /// A log whose wanted events (`kept`) come in runs of changing length
    /// between runs of others (`other`): pages span ever different numbers
    /// of positions, so guesses overlap the page before them, match it, or
    /// leave gaps.
    async fn uneven_log(events: usize) -> MemoryStore {
        let store = MemoryStore::new();
        let mut written = 0;
        let mut run = 0;
        while written < events {
            run += 1;
            let name = if run % 2 == 0 { "kept" } else { "other" };
            let length = (run * 7919 % 23 + 1).min(events - written);
            let batch = (0..length)
                .map(|_| NewEvent {
                    timestamp: Timestamp(0),
                    ..NewEvent::new(name, "{}")
                })
                .collect();
            let stream = StreamId::new("s", run.to_string());
            store
                .append(&stream, ExpectedVersion::Exact(0), batch)
                .await
                .unwrap();
            written += length;
        }
        store
    }

    /// The positions of the events `filter` wants, read one page at a time.
    async fn in_turn(store: &MemoryStore, filter: &LogFilter) -> Vec<u64> {
        let mut positions = Vec::new();
        let mut after = 0;
        loop {
            let slice = store.read_log(after, filter, 1).await.unwrap();
            if slice.through <= after {
                return positions;
            }
            positions.extend(slice.events.iter().map(|e| e.position));
            after = slice.through;
        }
    }

    /// Reads through `pages` to `head`, as `replay` does; checks every page
    /// is in order and starts after the one before it.
    async fn read_all(pages: &mut ReadAhead<'_>, head: u64, reads: usize) -> Vec<u64> {
        let mut positions: Vec<u64> = Vec::new();
        while pages.position() < head {
            let from = pages.position();
            let slice = pages.next_page().await.unwrap();
            assert!(slice.through > from, "stuck at {from}");
            assert_eq!(pages.position(), slice.through);
            for event in &slice.events {
                assert!(event.position > from && event.position <= slice.through);
                assert!(positions.last().is_none_or(|&p| p < event.position));
                positions.push(event.position);
            }
            pages.read_ahead(reads, head).await;
            pages.recycle(slice.events);
        }
        positions
    }

    /// Whatever the guesses, the pages hold every wanted event once, in
    /// order: the same events as reading one page after the other.
    #[tokio::test]
    async fn guessed_reads_neither_skip_nor_repeat() {
        let store = uneven_log(3_000).await;
        let head = store.head().await.unwrap();
        for filter in [LogFilter::all(), LogFilter::events(["kept"])] {
            let expected = in_turn(&store, &filter).await;
            for (page, reads) in [(1, 2), (7, 2), (16, 3), (50, 4), (5000, 2)] {
                let mut pages = ReadAhead::new(&store, 0, &filter, page);
                let read = read_all(&mut pages, head, reads).await;
                assert_eq!(read, expected, "page {page}, {reads} reads, {filter:?}");
            }
        }
    }

    /// Reads that finish in any order, and callers that give up waiting for
    /// one (a `select!` taking another branch): the pages are the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_and_abandoned_reads_neither_skip_nor_repeat() {
        let store = Arc::new(uneven_log(1_500).await);
        let head = store.head().await.unwrap();
        let filter = Arc::new(LogFilter::events(["kept"]));
        let expected = in_turn(&store, &filter).await;
        let slow = Arc::clone(&store);
        let mut pages = ReadAhead::with(0, 9, move |after, limit, spent| {
            let store = Arc::clone(&slow);
            let filter = Arc::clone(&filter);
            Box::pin(async move {
                // Later reads are often quicker than earlier ones.
                let delay = Duration::from_micros(after * 7919 % 1_500);
                tokio::time::sleep(delay).await;
                store.read_log_recycling(after, &filter, limit, spent).await
            })
        });
        let mut read: Vec<u64> = Vec::new();
        let mut abandoned = 0;
        while pages.position() < head {
            let from = pages.position();
            let slice =
                match tokio::time::timeout(Duration::from_micros(300), pages.next_page()).await {
                    Ok(slice) => slice.unwrap(),
                    Err(_) => {
                        abandoned += 1;
                        assert_eq!(pages.position(), from);
                        continue;
                    }
                };
            for event in &slice.events {
                assert!(event.position > from);
            }
            read.extend(slice.events.iter().map(|e| e.position));
            pages.read_ahead(3, head).await;
        }
        assert_eq!(read, expected);
        assert!(
            abandoned > 0,
            "no read was abandoned: the case tested nothing"
        );
    }
}
