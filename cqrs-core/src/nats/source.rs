//! Reading the stream on a read side: a durable pull consumer per
//! subscription, from the first message after its checkpoint.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_core::Stream as _;
use tokio::sync::watch;

use super::message::{self, header};
use super::{JetStream, backend};
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::{LogFilter, LogSlice};
use crate::subscription::{Feed, Source};

/// How often the stream's newest position is read, for status and lag.
const HEAD_POLL: Duration = Duration::from_millis(250);

/// A read side's [`Source`]: the JetStream stream a relay fills.
#[derive(Debug)]
pub struct JetStreamSource {
    js: JetStream,
    /// Names this read side's consumers: `<name>_<subscription>_<instance>`.
    name: String,
    /// Tells this process's consumers from those of another process
    /// running the same read side (a standby follows too).
    instance: String,
    head: Arc<watch::Sender<u64>>,
    unavailable: Arc<watch::Sender<Option<String>>>,
    /// The stream's last sequence, as last read (0: not yet).
    sequence: Arc<AtomicU64>,
    /// The task that follows the stream's head, started by the first watch.
    poller: OnceLock<()>,
}

impl JetStreamSource {
    pub(crate) fn new(js: JetStream, name: &str) -> Self {
        Self {
            js,
            name: name.to_owned(),
            instance: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            head: Arc::new(watch::Sender::new(0)),
            unavailable: Arc::new(watch::Sender::new(None)),
            sequence: Arc::new(AtomicU64::new(0)),
            poller: OnceLock::new(),
        }
    }

    /// The durable consumer of subscription `subscription` in this process.
    fn consumer_name(&self, subscription: &str) -> String {
        format!("{}_{}_{}", self.name, subscription, self.instance)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn start_poller(&self) {
        self.poller.get_or_init(|| {
            let js = self.js.clone();
            let head = Arc::downgrade(&self.head);
            let unavailable = Arc::downgrade(&self.unavailable);
            let sequence = Arc::downgrade(&self.sequence);
            tokio::spawn(async move {
                let mut seen = None;
                let mut first = true;
                loop {
                    if !std::mem::take(&mut first) {
                        tokio::time::sleep(HEAD_POLL).await;
                    }
                    let (Some(head), Some(unavailable), Some(sequence)) =
                        (head.upgrade(), unavailable.upgrade(), sequence.upgrade())
                    else {
                        return;
                    };
                    let newest = newest(&js, &mut seen).await;
                    if let Some(seen) = seen {
                        sequence.store(seen, Ordering::Relaxed);
                    }
                    match newest {
                        Ok(Some(position)) => {
                            unavailable.send_if_modified(|u| u.take().is_some());
                            raise(&head, position);
                        }
                        Ok(None) => {
                            unavailable.send_if_modified(|u| u.take().is_some());
                        }
                        Err(e) => {
                            let why = e.to_string();
                            unavailable.send_if_modified(|u| {
                                let changed = u.as_deref() != Some(why.as_str());
                                *u = Some(why.clone());
                                changed
                            });
                        }
                    }
                }
            });
        });
    }
}

/// The position of the stream's newest message, read when its last
/// sequence changed since `seen` (`None`: nothing new, or empty).
async fn newest(js: &JetStream, seen: &mut Option<u64>) -> Result<Option<u64>, StoreError> {
    let stream = js.stream().await?;
    // Read with the stream: fresh.
    let info = stream.cached_info();
    let last = info.state.last_sequence;
    if info.state.messages == 0 || *seen == Some(last) {
        return Ok(None);
    }
    // The newest message that carries a position: a message that is not a
    // relay's (which stops the consumer that meets it) does not hide the
    // head from the status.
    let floor = last
        .saturating_sub(NEWEST_SCAN)
        .max(info.state.first_sequence);
    let mut sequence = last;
    let position = loop {
        match position_at(&stream, sequence).await {
            Ok(position) => break position,
            Err(StoreError::Refused { .. }) if sequence > floor => sequence -= 1,
            Err(e) => return Err(e),
        }
    };
    *seen = Some(last);
    Ok(Some(position))
}

/// Moves the head watched by subscriptions up to `position`, never down.
fn raise(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|h| {
        let moved = position > *h;
        *h = (*h).max(position);
        moved
    });
}

/// How long a read waits to fill its batch while the server has more
/// messages pending for the consumer.
const FILL_WAIT: Duration = Duration::from_millis(10);

/// How many messages back from the last one the head is looked for.
const NEWEST_SCAN: u64 = 64;

/// The position the message at stream sequence `sequence` carries.
async fn position_at(
    stream: &async_nats::jetstream::stream::Stream,
    sequence: u64,
) -> Result<u64, StoreError> {
    let message = stream
        .get_raw_message(sequence)
        .await
        .map_err(|e| backend(format!("cannot read message {sequence} of the stream"), e))?;
    message
        .headers
        .get(header::POSITION)
        .and_then(|v| v.as_str().parse().ok())
        .ok_or_else(|| StoreError::Refused {
            message: format!(
                "message {sequence} of the stream has no `{}` header: the stream must hold relayed events only",
                header::POSITION
            ),
            source: None,
        })
}

/// Where a consumer starts reading.
enum Start {
    /// At this sequence: the first whose event is after the checkpoint.
    At(u64),
    /// After the stream's last message: nothing after the checkpoint yet.
    End,
    /// At the stream's first message, skipping what the checkpoint
    /// includes: the stream holds a message without a position (not a
    /// relay's), so it cannot be searched.
    Scan,
}

/// Where to read the events after position `after`, on a stream holding
/// sequences `first` to `last`.
async fn start_after(
    stream: &async_nats::jetstream::stream::Stream,
    first: u64,
    last: u64,
    after: u64,
) -> Result<Start, StoreError> {
    if first == 0 || last < first {
        return Ok(Start::End);
    }
    let searched = async {
        if position_at(stream, last).await? <= after {
            return Ok(Start::End);
        }
        // Positions grow with sequences (the relay publishes in order): the
        // first sequence past `after`, by bisection.
        let (mut low, mut high) = (first, last);
        while low < high {
            let middle = low + (high - low) / 2;
            if position_at(stream, middle).await? > after {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Ok(Start::At(low))
    };
    match searched.await {
        Err(StoreError::Refused { .. }) => Ok(Start::Scan),
        other => other,
    }
}

impl Source for JetStreamSource {
    fn open(
        self: Arc<Self>,
        subscription: &str,
        after: u64,
        filter: LogFilter,
        batch: usize,
    ) -> BoxFuture<'static, Result<Box<dyn Feed>, StoreError>> {
        self.start_poller();
        let consumer = self.consumer_name(subscription);
        Box::pin(async move {
            let mut feed = JetStreamFeed {
                js: self.js.clone(),
                consumer,
                filter,
                batch: batch.max(1),
                position: after,
                messages: None,
                gathered: Vec::new(),
                gap_reread: false,
                fill_until: None,
                to_ack: None,
                head: Arc::clone(&self.head),
                broken: None,
                skipping: false,
            };
            feed.connect().await?;
            Ok(Box::new(feed) as Box<dyn Feed>)
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut seen = None;
            let position = newest(&self.js, &mut seen).await?.unwrap_or(0);
            if let Some(seen) = seen {
                self.sequence.fetch_max(seen, Ordering::Relaxed);
            }
            raise(&self.head, position);
            Ok(position)
        })
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.start_poller();
        self.head.subscribe()
    }

    fn watch_unavailable(&self) -> Option<watch::Receiver<Option<String>>> {
        Some(self.unavailable.subscribe())
    }

    fn last_sequence(&self) -> Option<u64> {
        self.start_poller();
        Some(self.sequence.load(Ordering::Relaxed))
    }
}

/// A subscription's read of the stream.
struct JetStreamFeed {
    js: JetStream,
    consumer: String,
    filter: LogFilter,
    batch: usize,
    /// The last position delivered (the checkpoint, at first).
    position: u64,
    /// The consumer's messages; `None` after a failure, until reopened.
    messages: Option<pull::Stream>,
    /// Messages delivered and not yet handed out: kept here, not in a
    /// read's future, so a read cancelled while it fills loses none.
    gathered: Vec<async_nats::jetstream::Message>,
    /// A gap was met and the consumer reopened to read it again: met again
    /// before any message is taken, it is the stream's.
    gap_reread: bool,
    /// When the read filling `gathered` stops waiting for more.
    fill_until: Option<tokio::time::Instant>,
    /// The newest message delivered and not yet acknowledged.
    to_ack: Option<(u64, async_nats::jetstream::Message)>,
    head: Arc<watch::Sender<u64>>,
    /// A message that broke the stream's order, met after others of its
    /// batch: returned by the next read.
    broken: Option<StoreError>,
    /// Reading from the stream's start, skipping what the checkpoint
    /// includes, until past it.
    skipping: bool,
}

impl std::fmt::Debug for JetStreamFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamFeed")
            .field("consumer", &self.consumer)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl JetStreamFeed {
    /// (Re)creates the durable consumer at the first message after the
    /// position, checking the stream still holds everything after it.
    async fn connect(&mut self) -> Result<(), StoreError> {
        let stream = self.js.stream().await?;
        // Read with the stream: fresh.
        let info = stream.cached_info().state.clone();
        self.skipping = false;
        let start_sequence = match start_after(
            &stream,
            info.first_sequence,
            info.last_sequence,
            self.position,
        )
        .await?
        {
            Start::At(sequence) => sequence,
            Start::End => info.last_sequence + 1,
            Start::Scan => {
                self.skipping = true;
                info.first_sequence
            }
        };
        // What this consumer delivered before (another run of this
        // subscription) is not what it must deliver now: made anew.
        let _ = stream.delete_consumer(&self.consumer).await;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(self.consumer.clone()),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 100_000,
                // Gone with its process: the server removes it.
                inactive_threshold: self.js.options.consumer_inactive,
                ..Default::default()
            })
            .await
            .map_err(|e| backend(format!("cannot create the consumer `{}`", self.consumer), e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.batch.clamp(1, 4096))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| {
                backend(
                    format!("cannot read with the consumer `{}`", self.consumer),
                    e,
                )
            })?;
        self.messages = Some(messages);
        // The new consumer delivers them again, after the position.
        self.gathered.clear();
        self.fill_until = None;
        self.to_ack = None;
        Ok(())
    }

    /// Takes in one delivered message: `Some` event when it is new and
    /// selected, an error when it breaks the stream's order.
    fn take(
        &mut self,
        message: async_nats::jetstream::Message,
        events: &mut Vec<Arc<RecordedEvent>>,
    ) -> Result<(), StoreError> {
        let (sequence, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(_) => (0, 1),
        };
        let carried = message::event(message.headers.as_ref(), &message.payload, sequence)?;
        let position = carried.event.position;
        if position <= self.position {
            if delivered > 1 || self.skipping {
                // Redelivered (not acknowledged in time): skipped by position.
                return Ok(());
            }
            return Err(StoreError::Refused {
                message: format!(
                    "the stream went backwards: message {sequence} carries position {position}, \
                     after position {} was delivered; the consumer stops here",
                    self.position
                ),
                source: None,
            });
        }
        if carried.previous > self.position && !self.gap_reread {
            // Delivered to this consumer and lost on the way (a server
            // failed over while the messages were in flight): the server
            // counts them delivered, and acknowledging a later one would
            // cover them. Read again from the position, once; a gap still
            // there is one of the stream.
            self.gap_reread = true;
            self.messages = None;
            return Err(StoreError::Backend {
                message: format!(
                    "the consumer `{}` delivered position {position} after position {}: \
                     reading again from position {}",
                    self.consumer,
                    self.position,
                    self.position + 1
                ),
                source: None,
            });
        }
        if carried.previous != self.position {
            return Err(StoreError::Refused {
                message: if carried.previous > self.position {
                    format!(
                        "the stream no longer holds the events from position {} through position {} \
                         (its message {sequence}, at position {position}, follows position {}): they \
                         aged out, or were never relayed; the consumer stops here, before the first \
                         missing position {}",
                        self.position + 1,
                        carried.previous,
                        carried.previous,
                        self.position + 1
                    )
                } else {
                    format!(
                        "message {sequence} (position {position}) follows position {}, not position {} \
                         delivered before it: the stream is not one relay's log",
                        carried.previous, self.position
                    )
                },
                source: None,
            });
        }
        self.skipping = false;
        self.gap_reread = false;
        self.position = position;
        raise(&self.head, position);
        if self.filter.matches(&carried.event) {
            events.push(carried.event);
        }
        self.to_ack = Some((position, message));
        Ok(())
    }
}

impl Feed for JetStreamFeed {
    fn next(&mut self) -> BoxFuture<'_, Result<LogSlice, StoreError>> {
        Box::pin(async move {
            if let Some(e) = self.broken.take() {
                // Reopened at the same place, it is met again.
                self.messages = None;
                return Err(e);
            }
            if self.messages.is_none() {
                self.connect().await?;
            }
            let Some(messages) = self.messages.as_mut() else {
                return Err(backend_message("no consumer"));
            };
            // The caller may drop this future at any await (the runner
            // selects between it and the head, its lease, a shutdown):
            // what was gathered stays in `self.gathered` for the next call,
            // since the server counts it delivered and a later
            // acknowledgement covers it.
            if self.gathered.is_empty() {
                let first = poll_fn(|cx| Pin::new(&mut *messages).poll_next(cx)).await;
                match first {
                    Some(Ok(message)) => self.gathered.push(message),
                    Some(Err(e)) => {
                        self.messages = None;
                        return Err(backend(
                            format!("the consumer `{}` failed", self.consumer),
                            e,
                        ));
                    }
                    None => {
                        self.messages = None;
                        return Err(backend_message("the consumer's messages ended"));
                    }
                }
            }
            // And whatever else is already here, up to a batch; while the
            // server says more are pending for this consumer (catching up),
            // a short wait for them: one commit for many events instead of
            // one per network read. Following live, nothing is pending and
            // nothing waits. An error met here (a missed heartbeat, a leader
            // change) is not dropped with the consumer left as it is: the
            // next read reopens it after the last message taken.
            let batch = self.batch;
            let deadline = *self
                .fill_until
                .get_or_insert_with(|| tokio::time::Instant::now() + FILL_WAIT);
            let gathered = &mut self.gathered;
            let mut failed = false;
            loop {
                poll_fn(|cx| {
                    while gathered.len() < batch {
                        match Pin::new(&mut *messages).poll_next(cx) {
                            Poll::Ready(Some(Ok(message))) => gathered.push(message),
                            Poll::Ready(Some(Err(_)) | None) => {
                                failed = true;
                                break;
                            }
                            Poll::Pending => break,
                        }
                    }
                    Poll::Ready(())
                })
                .await;
                let pending = gathered
                    .last()
                    .and_then(|m| m.info().ok())
                    .map_or(0, |info| info.pending);
                if failed || gathered.len() >= batch || pending == 0 {
                    break;
                }
                let next = poll_fn(|cx| Pin::new(&mut *messages).poll_next(cx));
                match tokio::time::timeout_at(deadline, next).await {
                    Ok(Some(Ok(message))) => gathered.push(message),
                    Ok(Some(Err(_)) | None) => {
                        failed = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if failed {
                self.messages = None;
            }
            self.fill_until = None;
            let delivered = std::mem::take(&mut self.gathered);
            let mut events = Vec::with_capacity(delivered.len());
            let before = self.position;
            for message in delivered {
                if let Err(e) = self.take(message, &mut events) {
                    if self.position == before {
                        return Err(e);
                    }
                    // What came before it is applied first; the consumer
                    // stops at it on the next read.
                    self.broken = Some(e);
                    break;
                }
            }
            Ok(LogSlice {
                events,
                through: self.position,
            })
        })
    }

    fn committed(&mut self, through: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // One acknowledgement for everything up to it (`AckPolicy::All`).
            if let Some((position, message)) = self.to_ack.take() {
                if position > through {
                    self.to_ack = Some((position, message));
                    return Ok(());
                }
                message.ack().await.map_err(|e| StoreError::Backend {
                    message: format!("cannot acknowledge position {position}: {e}"),
                    source: None,
                })?;
            }
            Ok(())
        })
    }
}

fn backend_message(message: &str) -> StoreError {
    StoreError::Backend {
        message: message.to_owned(),
        source: None,
    }
}
