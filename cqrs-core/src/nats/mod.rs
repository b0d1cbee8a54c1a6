//! NATS JetStream between the write side and read sides in other processes
//! (feature `nats`).
//!
//! ```text
//!  write side                          message log                   read side(s)
//!  Engine + event store  --relay-->  JetStream stream  -->  ReadSide + read store
//!  (memory/SQLite/PG)     (lease,    (one subject per       (durable pull consumer per
//!   global log, no skips)  checkpoint  event, dedup by       projection, checkpoint with
//!                          after ack)  event id)             the read model)
//! ```
//!
//! - **The relay** ([`EngineBuilder::relay`](crate::EngineBuilder::relay), or
//!   [`Relay::start`](crate::subscription::Relay::start) in a process of its
//!   own) follows the event store's global log and publishes every event to
//!   the stream, on `<prefix>.<stream type>.<stream id>.<event name>` (each
//!   part encoded as one subject token, see [`encode_token`]), with
//!   `Nats-Msg-Id` = the event id and headers for its position, stream,
//!   version, name, schema version, timestamp and metadata (and
//!   `traceparent`, the W3C trace context, see [`crate::telemetry`]); the payload is
//!   the stored JSON. Publishes are pipelined, each expecting the previous
//!   one as the stream's last message (`Nats-Expected-Last-Msg-Id`), so a
//!   lost publish is never overtaken by a later one: the stream's order is
//!   the global order. Its checkpoint moves only to what was acknowledged;
//!   one relay per source runs, by its lease.
//! - **A read side** ([`ReadSide`](crate::ReadSide) with a [`JetStreamSource`])
//!   runs the same `#[derive(Projection)]` types in a process without an
//!   event store. Each projection reads with a durable pull consumer of its
//!   own, from the first message after its checkpoint; a message is
//!   acknowledged only after the read model's transaction committed, and a
//!   redelivered one is skipped by position. Each message also names the
//!   position of the event before it, so a read side that would start after
//!   events the stream no longer holds (retention) stops with an error
//!   naming the missing positions instead of starting from the middle.
//!
//! # Guarantees
//!
//! At-least-once delivery into JetStream and out of it; exactly-once effect
//! on each read model (its checkpoint commits with it, by position); the
//! global order, and so the order of every stream, end to end;
//! read-your-writes across processes, by waiting on a receipt's position
//! (a [`Receipt`](crate::Receipt) serializes to JSON). Not guaranteed: that
//! a read side is current (it is as far behind as the relay and itself
//! are; its status says by how much), and that events older than the
//! stream's retention can be read from it.

mod message;
mod sink;
mod source;
mod subject;

use std::time::Duration;

use async_nats::jetstream::{self, stream};

pub use sink::JetStreamSink;
pub use source::JetStreamSource;
pub use subject::{decode_token, encode_token};

use crate::error::StoreError;

/// How to reach and shape the JetStream stream.
///
/// # Examples
///
/// ```
/// use cqrs_core::nats::JetStreamOptions;
/// use std::time::Duration;
///
/// let options = JetStreamOptions::new()
///     .stream("BANK")
///     .subject_prefix("bank")
///     .replicas(3)
///     .max_age(Duration::from_secs(7 * 24 * 3600));
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct JetStreamOptions {
    stream: String,
    prefix: String,
    replicas: usize,
    max_age: Duration,
    max_bytes: i64,
    duplicate_window: Duration,
    memory: bool,
    timeout: Duration,
    consumer_inactive: Duration,
}

impl JetStreamOptions {
    /// Stream `CQRS` on subjects `cqrs.>`, one replica, kept forever, file
    /// storage, a 2-minute duplicate window, 10 s to wait for an answer.
    pub fn new() -> Self {
        Self {
            stream: String::from("CQRS"),
            prefix: String::from("cqrs"),
            replicas: 1,
            max_age: Duration::ZERO,
            max_bytes: -1,
            duplicate_window: Duration::from_secs(120),
            memory: false,
            timeout: Duration::from_secs(10),
            consumer_inactive: Duration::from_secs(300),
        }
    }

    /// The stream's name.
    #[must_use]
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The first token of every subject (`<prefix>.<stream type>..`).
    #[must_use]
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Replicas of the stream (3 on a 3-node cluster: it survives a node).
    #[must_use]
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    /// How long messages are kept (zero: forever).
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How many bytes the stream keeps at most (the oldest go first).
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self
    }

    /// The window in which JetStream drops a message whose id it has seen.
    #[must_use]
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Keeps the stream in memory (tests and benchmarks; lost on restart).
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.memory = true;
        self
    }

    /// How long the server keeps a read side's consumer that no one reads
    /// from (default 5 minutes): each read side process makes consumers of
    /// its own, and those of a process that is gone are removed after this.
    #[must_use]
    pub fn consumer_inactive(mut self, after: Duration) -> Self {
        self.consumer_inactive = after;
        self
    }

    /// How long to wait for JetStream's answers.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A connection to NATS and the stream the relay publishes to.
///
/// Reconnects by itself when the server goes away (every call in between
/// fails with [`StoreError::Backend`], which subscriptions retry).
#[derive(Clone)]
pub struct JetStream {
    client: async_nats::Client,
    context: jetstream::Context,
    options: JetStreamOptions,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("stream", &self.options.stream)
            .field("prefix", &self.options.prefix)
            .field("state", &self.client.connection_state())
            .finish_non_exhaustive()
    }
}

impl JetStream {
    /// Connects to the servers at `url` (`nats://host:port`, several
    /// comma-separated, any of a cluster). It returns without waiting for
    /// a server: the client keeps trying to connect (and to reconnect,
    /// later), and every call fails with [`StoreError::Backend`] until one
    /// answers, which subscriptions retry and show in their status.
    ///
    /// The stream is made by the relay's sink, on its first use, if it
    /// does not exist; a read side waits for it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when `url` is not a NATS address.
    pub async fn connect(url: &str, options: JetStreamOptions) -> Result<Self, StoreError> {
        let servers: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(options.timeout)
            .request_timeout(Some(options.timeout))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(servers.as_slice())
            .await
            .map_err(|e| backend(format!("cannot connect to NATS at {url}"), e))?;
        let context = jetstream::ContextBuilder::new()
            .timeout(options.timeout)
            .max_ack_inflight(16_384)
            .build(client.clone());
        Ok(Self {
            client,
            context,
            options,
        })
    }

    /// The stream, made if it does not exist; an existing stream must take
    /// the subjects `<prefix>.>`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when JetStream does not answer or refuses to
    /// make it, [`StoreError::Refused`] when a stream of that name exists for
    /// other subjects.
    pub async fn create_stream(&self) -> Result<(), StoreError> {
        self.stream_or_create().await.map(drop)
    }

    /// [`create_stream`](Self::create_stream), giving the stream.
    pub(crate) async fn stream_or_create(&self) -> Result<stream::Stream, StoreError> {
        match self.find_stream().await? {
            Some(stream) => self.check_subjects(stream),
            None => match self.context.create_stream(self.stream_config()).await {
                Ok(stream) => Ok(stream),
                // Made by another relay meanwhile.
                Err(e) => match self.find_stream().await? {
                    Some(stream) => self.check_subjects(stream),
                    None => Err(backend(
                        format!(
                            "cannot create the JetStream stream `{}`",
                            self.options.stream
                        ),
                        e,
                    )),
                },
            },
        }
    }

    fn check_subjects(&self, stream: stream::Stream) -> Result<stream::Stream, StoreError> {
        let wanted = format!("{}.>", self.options.prefix);
        if stream.cached_info().config.subjects.contains(&wanted) {
            return Ok(stream);
        }
        Err(StoreError::Refused {
            message: format!(
                "the JetStream stream `{}` exists for the subjects {:?}, not `{wanted}`: \
                 choose another stream name or subject prefix",
                self.options.stream,
                stream.cached_info().config.subjects
            ),
            source: None,
        })
    }

    /// The stream with fresh information, `None` when it does not exist.
    async fn find_stream(&self) -> Result<Option<stream::Stream>, StoreError> {
        match self.context.get_stream(&self.options.stream).await {
            Ok(stream) => Ok(Some(stream)),
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(ref js)
                        if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(backend(
                format!(
                    "cannot reach the JetStream stream `{}`",
                    self.options.stream
                ),
                e,
            )),
        }
    }

    fn stream_config(&self) -> stream::Config {
        let options = &self.options;
        stream::Config {
            name: options.stream.clone(),
            subjects: vec![format!("{}.>", options.prefix)],
            num_replicas: options.replicas,
            max_age: options.max_age,
            max_bytes: options.max_bytes,
            duplicate_window: options.duplicate_window,
            storage: if options.memory {
                stream::StorageType::Memory
            } else {
                stream::StorageType::File
            },
            allow_direct: true,
            ..Default::default()
        }
    }

    /// What the relay publishes with.
    pub fn sink(&self) -> JetStreamSink {
        JetStreamSink::new(self.clone())
    }

    /// What a read side named `name` reads with: a durable pull consumer
    /// per projection, `<name>_<projection>_<instance>`, the instance
    /// telling this process from others running the same read side.
    pub fn source(&self, name: &str) -> JetStreamSource {
        JetStreamSource::new(self.clone(), name)
    }

    /// The underlying client, for what this module does not cover.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.options.stream
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.options.prefix
    }

    /// The stream, with fresh information; one that does not exist (yet)
    /// is a [`StoreError::Backend`] a read side retries.
    pub(crate) async fn stream(&self) -> Result<stream::Stream, StoreError> {
        self.find_stream()
            .await?
            .ok_or_else(|| StoreError::Backend {
                message: format!(
                    "the JetStream stream `{}` does not exist: no relay has made it yet",
                    self.options.stream
                ),
                source: None,
            })
    }
}

fn backend(message: String, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend {
        message: format!("{message}: {source}"),
        source: Some(Box::new(source)),
    }
}
