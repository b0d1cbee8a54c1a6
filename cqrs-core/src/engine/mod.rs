//! The engine: runs commands against aggregates, projections from the log,
//! and queries against projections.

mod builder;
mod cache;
mod panic;
mod query;

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

pub use builder::EngineBuilder;
pub use query::QueryRequest;

use self::cache::{AggregateCache, Loaded};
use crate::aggregate::Aggregate;
use crate::command::{Command, Receipt};
use crate::error::{CommandError, Error, EventLocation, PanicSite, StoreError};
use crate::event::EventSet;
use crate::process::{ProcessInstance, ProcessStatus, RunningProcess};
use crate::projection::{ProjectionStatus, Rebuild, RebuildProgress, RunningProjection};
use crate::query::Query;
use crate::record::{Metadata, NewEvent, Shown, StreamId, Timestamp};
use crate::registry::{Catalog, Registry};
use crate::store::inline::InlineSet;
use crate::store::{ExpectedVersion, Snapshot, Store};
use crate::subscription::runner::Control;
use crate::subscription::{Backoff, Relay, RelayStatus, Source};

/// Runs a domain: commands in, events stored, projections updated, queries
/// answered. Cheap to clone; clones share everything.
///
/// # Examples
///
/// ```standalone_crate
/// use cqrs_core::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct Incremented { pub by: u64 }
///
/// #[derive(Command, Deserialize)]
/// #[command(aggregate = Counter)]
/// pub struct Increment { #[id] pub counter: String, pub by: u64 }
///
/// #[derive(Aggregate, Default)]
/// #[aggregate(name = "counter", events(Incremented), commands(Increment), error = std::io::Error)]
/// pub struct Counter { value: u64 }
///
/// impl Apply<Incremented> for Counter {
///     fn apply(&mut self, e: &Incremented) { self.value += e.by; }
/// }
/// impl Handle<Increment> for Counter {
///     fn handle(&self, c: &Increment) -> Result<Events<Self>, std::io::Error> {
///         Ok(events![Incremented { by: c.by }])
///     }
/// }
///
/// #[derive(Projection, Default)]
/// #[projection(events(Incremented))]
/// pub struct Totals { total: u64 }
///
/// impl Project<Incremented> for Totals {
///     fn project(&mut self, e: &Envelope<Incremented>) { self.total += e.by; }
/// }
///
/// #[derive(Query, Deserialize)]
/// #[query(projection = Totals, output = u64)]
/// pub struct Total;
///
/// impl Answer<Total> for Totals {
///     fn answer(&self, _: &Total) -> u64 { self.total }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cqrs_core::Error> {
/// let engine = Engine::builder().build().await?;
/// let receipt = engine.execute(Increment { counter: "c-1".into(), by: 5 }).await?;
/// assert_eq!(receipt.version, 1);
/// assert_eq!(engine.query(Total).after(&receipt).await?, 5);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Engine {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    store: Arc<dyn Store>,
    /// Where the projections read: the store's log, or a message log.
    source: Arc<dyn Source>,
    registry: Registry,
    services: TypeMap<Arc<dyn Any + Send + Sync>>,
    /// One `AggregateCache<A>` per registered aggregate, by name, made on
    /// first use.
    registered_caches: Box<[(&'static str, ErasedCache)]>,
    /// The same for aggregates the registry does not list, by type.
    caches: RwLock<TypeMap<Arc<dyn Any + Send + Sync>>>,
    projections: HashMap<&'static str, RunningProjection>,
    /// The inline projections every append commits (empty: none).
    inline: InlineSet,
    relays: Vec<Relay>,
    /// The process managers this engine runs, started once the engine
    /// exists (they send their commands through it).
    processes: OnceLock<HashMap<&'static str, RunningProcess>>,
    config: Config,
    shutdown: watch::Sender<bool>,
}

/// An `AggregateCache<A>` with its type erased, made on first use.
type ErasedCache = OnceLock<Box<dyn Any + Send + Sync>>;

/// An aggregate's cache: borrowed from the engine when the aggregate is
/// registered, shared otherwise.
enum CacheRef<'a, A> {
    Registered(&'a AggregateCache<A>),
    Other(Arc<AggregateCache<A>>),
}

impl<A> std::ops::Deref for CacheRef<'_, A> {
    type Target = AggregateCache<A>;

    fn deref(&self) -> &AggregateCache<A> {
        match self {
            Self::Registered(cache) => cache,
            Self::Other(cache) => cache,
        }
    }
}

/// A map keyed by type, looked up on every command. A `TypeId` is already a
/// hash, so it is used as is rather than hashed again with SipHash; no user
/// input reaches these keys.
type TypeMap<V> = HashMap<TypeId, V, BuildHasherDefault<TypeIdHasher>>;

#[derive(Debug, Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `TypeId` (it writes one `u64`), but correct for any input.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Debug)]
struct Config {
    max_retries: u32,
    conflict_backoff: Backoff,
    max_body_size: usize,
    cache_capacity: usize,
    query_timeout: Duration,
    projection_batch: usize,
    run_projections: bool,
    /// The lease term, bounding how long `stop` waits for a runner.
    lease_ttl: Duration,
    run_processes: bool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl Engine {
    /// Starts configuring an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Runs a command with empty metadata (a fresh correlation id).
    ///
    /// # Errors
    ///
    /// [`CommandError::Domain`] with the aggregate's own error when the handler
    /// refuses; [`CommandError::Engine`] when the stream id breaks the rule
    /// of [`StreamId::check`] ([`StoreError::InvalidStreamId`]), the store
    /// fails, a stored event does not decode, every retry met a concurrency
    /// conflict ([`Error::TooManyConflicts`]), or user code panicked: the
    /// handler or an `Apply` on the new events ([`Error::CommandPanicked`],
    /// nothing stored) or an `Apply` on a stored event
    /// ([`Error::ApplyPanicked`]). A panic never reaches the caller.
    pub async fn execute<C: Command>(
        &self,
        command: C,
    ) -> Result<Receipt, CommandError<<C::Aggregate as Aggregate>::Error>> {
        self.execute_with(command, Metadata::new()).await
    }

    /// Runs a command; every event it appends carries `metadata` (a
    /// correlation id is generated when it has none).
    ///
    /// # Idempotency
    ///
    /// With an [idempotency key](Metadata::idempotency_key), the command
    /// runs at most once per stream: when a command with the same key has
    /// already appended to the same stream, the handler is not called and
    /// the answer is that command's receipt (its version, position and
    /// event count; `retries` 0). The store records the key in the
    /// append's transaction, so this holds across restarts and between
    /// processes: of two commands with one key sent at once, one appends
    /// and both get its receipt. A command that appended nothing (refused,
    /// or no events) records no key and runs again when repeated. A key is
    /// 1 to [`MAX_IDEMPOTENCY_KEY`](crate::store::MAX_IDEMPOTENCY_KEY)
    /// bytes without control characters; another is refused before any
    /// I/O ([`StoreError::InvalidAppend`]).
    ///
    /// This is what a client retrying over HTTP needs: it sends the same
    /// `Idempotency-Key` header on every retry of one request, the adapter
    /// puts it in the metadata, and a retry after a lost response gets the
    /// receipt of the request that went through instead of a second
    /// deposit. Keys are per stream: make them unique per intended change
    /// (a UUID made by the client, or the request id).
    ///
    /// ```standalone_crate
    /// # use cqrs_core::prelude::*;
    /// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    /// # pub struct Incremented { pub by: u64 }
    /// # #[derive(Command, Deserialize)]
    /// # #[command(aggregate = Counter)]
    /// # pub struct Increment { #[id] pub counter: String, pub by: u64 }
    /// # #[derive(Aggregate, Default)]
    /// # #[aggregate(name = "counter", events(Incremented), commands(Increment), error = std::io::Error)]
    /// # pub struct Counter { value: u64 }
    /// # impl Apply<Incremented> for Counter { fn apply(&mut self, e: &Incremented) { self.value += e.by; } }
    /// # impl Handle<Increment> for Counter {
    /// #     fn handle(&self, c: &Increment) -> Result<Events<Self>, std::io::Error> { Ok(events![Incremented { by: c.by }]) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cqrs_core::Error> {
    /// # let engine = Engine::builder().build().await?;
    /// let key = || Metadata::new().idempotency_key("request-5f1c");
    /// let first = engine.execute_with(Increment { counter: "c-1".into(), by: 5 }, key()).await?;
    /// // The response was lost; the client sends the same request again.
    /// let again = engine.execute_with(Increment { counter: "c-1".into(), by: 5 }, key()).await?;
    /// assert_eq!(again, first);
    /// assert_eq!(engine.events::<Counter>("c-1").await?.len(), 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn execute_with<C: Command>(
        &self,
        command: C,
        metadata: Metadata,
    ) -> Result<Receipt, CommandError<<C::Aggregate as Aggregate>::Error>> {
        self.execute_ref(&command, metadata).await
    }

    /// [`execute_with`](Self::execute_with) on a borrowed command.
    pub(crate) async fn execute_ref<C: Command>(
        &self,
        command: &C,
        mut metadata: Metadata,
    ) -> Result<Receipt, CommandError<<C::Aggregate as Aggregate>::Error>> {
        let stream = StreamId::of(<C::Aggregate as Aggregate>::NAME, command.aggregate_id());
        let correlation = *metadata
            .correlation_id
            .get_or_insert_with(uuid::Uuid::new_v4);
        let span = tracing::info_span!(
            "command",
            aggregate = <C::Aggregate as Aggregate>::NAME,
            id = %Shown(&stream.id),
            command = C::NAME,
            correlation_id = %correlation,
            causation_id = tracing::field::Empty,
            actor = tracing::field::Empty,
            version = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        if !span.is_disabled() {
            if let Some(causation) = metadata.causation_id {
                span.record("causation_id", tracing::field::display(causation));
            }
            if let Some(actor) = metadata.actor.as_deref() {
                span.record("actor", tracing::field::display(Shown(actor)));
            }
            crate::telemetry::continue_trace(&span, &mut metadata);
        }
        // Not wrapped when no subscriber wants the span: the wrapper would
        // move the whole command future (about a kilobyte) once more.
        let result = if span.is_disabled() {
            self.run_command(command, stream, metadata).await
        } else {
            self.run_command(command, stream, metadata)
                .instrument(span.clone())
                .await
        };
        match &result {
            Ok(receipt) => {
                span.record("version", receipt.version);
                span.record("outcome", "ok");
            }
            Err(CommandError::Domain(_)) => {
                span.record("outcome", "refused");
            }
            Err(CommandError::Engine(_)) => {
                span.record("outcome", "failed");
            }
        }
        result
    }

    async fn run_command<C: Command>(
        &self,
        command: &C,
        stream: StreamId,
        metadata: Metadata,
    ) -> Result<Receipt, CommandError<<C::Aggregate as Aggregate>::Error>> {
        // Before any I/O, and before the cache keeps a copy of the id.
        stream
            .check()
            .map_err(StoreError::from)
            .map_err(Error::from)?;
        if let Some(key) = metadata.idempotency_key.as_deref() {
            crate::store::check_key(&stream, key).map_err(Error::from)?;
        }
        let services = self.services::<C::Aggregate>()?;
        let cache = self.cache::<C::Aggregate>();
        let slot = cache.slot(&stream.id);
        // Uncontended (the usual case), the lock is taken without a future.
        let mut guard = match slot.try_lock() {
            Ok(guard) => guard,
            Err(_) => slot.lock().await,
        };
        let mut attempt = 0;
        loop {
            // Looked up under the stream's lock and on every attempt: a
            // command with the same key that ran meanwhile (here, or in
            // another process that made this one's append conflict) is
            // answered with its receipt, not run again.
            if let Some(key) = metadata.idempotency_key.as_deref()
                && let Some(receipt) = self.kept_receipt::<C>(&stream, key).await?
            {
                return Ok(receipt);
            }
            let loaded = match guard.take() {
                Some(loaded) => loaded,
                None if attempt == 0 => self.load::<C::Aggregate>(&stream).await?,
                None => {
                    // A retry reloads the whole stream (the state it had
                    // was folded with the refused events), which takes a
                    // while on a long stream: what was appended meanwhile
                    // is read once more, so that the window in which
                    // another writer can get in first again is one short
                    // read, not the whole reload.
                    let mut loaded = self.load::<C::Aggregate>(&stream).await?;
                    self.catch_up(&stream, &mut loaded).await?;
                    loaded
                }
            };
            let dispatched = panic::catch_future(|| C::dispatch(&loaded.state, command, services));
            let events = match dispatched.await {
                Ok(Ok(events)) => events,
                Ok(Err(refusal)) => {
                    if cache.keeps_state() {
                        *guard = Some(loaded);
                    }
                    return Err(CommandError::Domain(refusal));
                }
                // The state is dropped with the panic: the next command reloads.
                Err(message) => {
                    return Err(Error::CommandPanicked {
                        command: C::NAME,
                        stream,
                        site: PanicSite::Handler,
                        message,
                    }
                    .into());
                }
            };
            if events.is_empty() {
                let version = loaded.version;
                if cache.keeps_state() {
                    *guard = Some(loaded);
                }
                return Ok(self.receipt::<C>(stream, version, None, 0, attempt));
            }
            // Folded before the append: an `Apply` that panics refuses the
            // command with nothing stored, instead of failing after the
            // append and on every later load of the stream. Whatever goes
            // wrong from here on, the state is dropped and reloaded.
            let Loaded {
                mut state,
                version: before,
                stale_snapshot,
            } = loaded;
            if let Err((event, message)) = apply_all(&mut state, events.as_slice()) {
                return Err(Error::CommandPanicked {
                    command: C::NAME,
                    stream,
                    site: PanicSite::Applying { event },
                    message,
                }
                .into());
            }
            let mut new_events = encode(events.as_slice(), &metadata)?;
            let store = &self.shared.store;
            let expected = ExpectedVersion::Exact(before);
            let inline = !self.shared.inline.is_empty();
            let now = if inline {
                None
            } else {
                store.append_now(&stream, expected, &mut new_events)
            };
            let appended = match now {
                Some(appended) => {
                    // A command that emitted thousands of events does not
                    // pin their list's memory to the thread.
                    if new_events.capacity() <= 64 {
                        ENCODED.set(new_events);
                    }
                    appended
                }
                None if inline => {
                    store
                        .append_inline(&stream, expected, new_events, &self.shared.inline)
                        .await
                }
                None => store.append(&stream, expected, new_events).await,
            };
            match appended {
                Ok(outcome) => {
                    let loaded = Loaded {
                        state,
                        version: outcome.version,
                        stale_snapshot: false,
                    };
                    // Checked here, not in the async fn: no future to set up
                    // for the commands that take no snapshot (nearly all).
                    if stale_snapshot || snapshot_due::<C::Aggregate>(before, loaded.version) {
                        self.take_snapshot(&stream, &loaded).await;
                    }
                    if cache.keeps_state() {
                        *guard = Some(loaded);
                    }
                    return Ok(self.receipt::<C>(
                        stream,
                        outcome.version,
                        Some(outcome.last_position),
                        events.len(),
                        attempt,
                    ));
                }
                Err(StoreError::Conflict { .. }) if attempt < self.shared.config.max_retries => {
                    // Another process wrote to the stream: reload and decide
                    // again, after a jittered wait that grows with each
                    // attempt, so that writers that collided do not collide
                    // again at once. The stream's lock is let go meanwhile:
                    // held, it would stall every command of this process on
                    // the stream behind the wait, while the other process
                    // goes on writing to it. A command that ran meanwhile
                    // leaves its state in the slot, fresh to decide on.
                    let wait = self.shared.config.conflict_backoff.delay(attempt);
                    attempt += 1;
                    tracing::debug!(attempt, ?wait, "concurrency conflict; retrying");
                    drop(guard);
                    tokio::time::sleep(wait).await;
                    guard = slot.lock().await;
                }
                Err(StoreError::Conflict { .. }) => {
                    return Err(Error::TooManyConflicts {
                        command: C::NAME,
                        stream,
                        attempts: attempt + 1,
                    }
                    .into());
                }
                // Another command with the key got in between the look-up
                // and the append: its receipt is the answer.
                Err(StoreError::DuplicateKey { stream: _, key }) => {
                    return match self.kept_receipt::<C>(&stream, &key).await? {
                        Some(receipt) => Ok(receipt),
                        None => Err(Error::from(StoreError::DuplicateKey { stream, key }).into()),
                    };
                }
                // The cached state is dropped: whether the append landed is unknown.
                Err(e) => return Err(Error::from(e).into()),
            }
        }
    }

    /// The receipt of the command that recorded idempotency key `key` on
    /// `stream`, if one did: its version, position and event count as
    /// they were, with no retries.
    async fn kept_receipt<C: Command>(
        &self,
        stream: &StreamId,
        key: &str,
    ) -> Result<Option<Receipt>, Error> {
        let kept = self.shared.store.find_key(stream, key).await?;
        Ok(kept.map(|kept| {
            self.receipt::<C>(
                stream.clone(),
                kept.outcome.version,
                Some(kept.outcome.last_position),
                usize::try_from(kept.events).unwrap_or(usize::MAX),
                0,
            )
        }))
    }

    fn receipt<C: Command>(
        &self,
        stream: StreamId,
        version: u64,
        position: Option<u64>,
        events: usize,
        retries: u32,
    ) -> Receipt {
        Receipt {
            aggregate: Cow::Borrowed(<C::Aggregate as Aggregate>::NAME),
            id: stream.id,
            version,
            position,
            events,
            retries,
        }
    }

    /// Loads an aggregate from its latest snapshot and the events after it.
    ///
    /// A snapshot taken by another shape of the state (its fingerprint
    /// differs: an older build), or one that does not decode, is ignored:
    /// the state is rebuilt from the events, and a new snapshot taken.
    async fn load<A: Aggregate>(&self, stream: &StreamId) -> Result<Loaded<A>, Error> {
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
            stale_snapshot: false,
        };
        let mut stale = None;
        if A::SNAPSHOT_EVERY.is_some()
            && let Some(snapshot) = self.shared.store.load_snapshot(stream).await?
        {
            match A::decode_snapshot(&snapshot.state) {
                Some(Ok(state)) => {
                    loaded = Loaded {
                        state,
                        version: snapshot.version,
                        stale_snapshot: false,
                    }
                }
                // A snapshot is only a shortcut: replay from the start instead.
                Some(Err(e)) => {
                    tracing::info!(%stream, error = %e, "snapshot not used; replaying the stream");
                    stale = Some(snapshot.version);
                }
                None => {}
            }
        }
        self.catch_up(stream, &mut loaded).await?;
        // A snapshot is replaced only by a newer one: at the same version,
        // the next append takes it.
        match stale {
            Some(version) if loaded.version > version => {
                self.take_snapshot(stream, &loaded).await;
            }
            Some(_) => loaded.stale_snapshot = true,
            None => {}
        }
        Ok(loaded)
    }

    /// The events of aggregate `A`'s stream `id`, decoded (old names and
    /// versions upcast), each with its version, position, timestamp and
    /// metadata.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidStreamId`] for an id that breaks the rule of
    /// [`StreamId::check`], [`Error::Store`] when reading fails,
    /// [`Error::Decode`] naming the event that does not decode and where.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// # use cqrs_core::prelude::*;
    /// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    /// # pub struct Incremented { pub by: u64 }
    /// # #[derive(Command, Deserialize)]
    /// # #[command(aggregate = Counter)]
    /// # pub struct Increment { #[id] pub counter: String, pub by: u64 }
    /// # #[derive(Aggregate, Default)]
    /// # #[aggregate(name = "counter", events(Incremented), commands(Increment), error = std::io::Error)]
    /// # pub struct Counter { value: u64 }
    /// # impl Apply<Incremented> for Counter { fn apply(&mut self, e: &Incremented) { self.value += e.by; } }
    /// # impl Handle<Increment> for Counter {
    /// #     fn handle(&self, c: &Increment) -> Result<Events<Self>, std::io::Error> { Ok(events![Incremented { by: c.by }]) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cqrs_core::Error> {
    /// # let engine = Engine::builder().build().await?;
    /// engine.execute(Increment { counter: "c-1".into(), by: 5 }).await?;
    /// for e in engine.events::<Counter>("c-1").await? {
    ///     let CounterEvent::Incremented(incremented) = e.event();
    ///     println!("{} at version {}, position {}: by {}", e.event_name(), e.version(), e.position(), incremented.by);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn events<A: Aggregate>(
        &self,
        id: impl std::fmt::Display,
    ) -> Result<Vec<crate::Envelope<A::Event>>, Error> {
        let stream = StreamId::of(A::NAME, id.to_string());
        stream.check().map_err(StoreError::from)?;
        let records = self.shared.store.read_stream(&stream, 1).await?;
        records
            .into_iter()
            .map(|record| {
                A::Event::decode(&record.event_name, record.schema_version, &record.payload)
                    .map(|event| crate::Envelope::new(event, Arc::clone(&record)))
                    .map_err(|e| Error::Decode(e.at(&record)))
            })
            .collect()
    }

    /// Folds the events of `stream` after `loaded.version` into `loaded`.
    async fn catch_up<A: Aggregate>(
        &self,
        stream: &StreamId,
        loaded: &mut Loaded<A>,
    ) -> Result<(), Error> {
        for record in self
            .shared
            .store
            .read_stream(stream, loaded.version + 1)
            .await?
        {
            let event =
                A::Event::decode(&record.event_name, record.schema_version, &record.payload)
                    .map_err(|e| e.at(&record))?;
            // A panic here would strike every command on the stream: it is
            // an error naming the event instead.
            if let Err(message) = panic::catch(|| loaded.state.apply_event(&event)) {
                return Err(Error::ApplyPanicked {
                    event: record.event_name.to_string(),
                    at: EventLocation::of(&record),
                    message,
                });
            }
            loaded.version = record.version;
        }
        Ok(())
    }

    async fn take_snapshot<A: Aggregate>(&self, stream: &StreamId, loaded: &Loaded<A>) {
        match loaded.state.encode_snapshot() {
            Some(Ok(state)) => {
                let snapshot = Snapshot {
                    version: loaded.version,
                    state,
                    taken_at: Timestamp::now(),
                };
                if let Err(e) = self.shared.store.save_snapshot(stream, snapshot).await {
                    tracing::warn!(%stream, error = %e, "saving a snapshot failed");
                }
            }
            Some(Err(e)) => tracing::warn!(%stream, error = %e, "encoding a snapshot failed"),
            None => {}
        }
    }

    fn services<A: Aggregate>(&self) -> Result<&A::Services, Error> {
        if let Some(unit) = crate::aggregate::unit_services::<A::Services>() {
            return Ok(unit);
        }
        self.shared
            .services
            .get(&TypeId::of::<A::Services>())
            .and_then(|s| s.downcast_ref::<A::Services>())
            .ok_or_else(|| {
                crate::error::RegistryError::MissingServices {
                    aggregate: A::NAME,
                    services: std::any::type_name::<A::Services>(),
                }
                .into()
            })
    }

    fn cache<A: Aggregate>(&self) -> CacheRef<'_, A> {
        // A registered aggregate's cache: found by name among a handful,
        // then read without a lock or a reference count, so that concurrent
        // commands share no written memory here.
        if let Some((_, cell)) = self
            .shared
            .registered_caches
            .iter()
            .find(|(name, _)| *name == A::NAME)
        {
            let cache = cell.get_or_init(|| {
                Box::new(AggregateCache::<A>::new(self.shared.config.cache_capacity))
            });
            // Another type under the same name (registered elsewhere) falls
            // through to the map below.
            if let Some(cache) = cache.downcast_ref::<AggregateCache<A>>() {
                return CacheRef::Registered(cache);
            }
        }
        // Read-locked on every command, write-locked once per aggregate type.
        let existing = self
            .shared
            .caches
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&TypeId::of::<A>())
            .map(Arc::clone);
        let entry = match existing {
            Some(entry) => entry,
            None => Arc::clone(
                self.shared
                    .caches
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(TypeId::of::<A>())
                    .or_insert_with(|| {
                        Arc::new(AggregateCache::<A>::new(self.shared.config.cache_capacity))
                    }),
            ),
        };
        CacheRef::Other(match entry.downcast::<AggregateCache<A>>() {
            Ok(cache) => cache,
            // Keyed by `TypeId::of::<A>()`, so the entry is always an `AggregateCache<A>`.
            Err(_) => Arc::new(AggregateCache::new(self.shared.config.cache_capacity)),
        })
    }

    /// Starts a query; `.await` it for the answer as of now, or chain
    /// [`after`](QueryRequest::after) to read your own writes.
    pub fn query<Q: Query>(&self, query: Q) -> QueryRequest<'_, Q> {
        QueryRequest::new(self, query)
    }

    /// Where projection `name` is, and how far behind the log head.
    pub fn projection_status(&self, name: &str) -> Option<ProjectionStatus> {
        let running = self.shared.projections.get(name)?;
        let mut status = running.status();
        status.head = status.head.max(*self.shared.source.watch_head().borrow());
        status.source_sequence = self.shared.source.last_sequence();
        Some(status)
    }

    /// Rebuilds projection `name` from zero: forgets its state (and, for a
    /// durable projection, its saved documents and checkpoint), then replays
    /// the whole log. Queries meanwhile see the partial state. Follow the
    /// returned [`Rebuild`] for progress, or await [`Rebuild::finished`].
    ///
    /// Works on a projection that failed, too: after the data or the code
    /// was fixed, it starts over from position 0.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownProjection`] for a name this engine does not run,
    /// [`Error::Standby`] when another process holds its lease (rebuild it
    /// there), [`Error::Shutdown`] when the engine shut down.
    pub async fn rebuild(&self, name: &str) -> Result<Rebuild, Error> {
        let running = self.running(name)?;
        let (progress, watcher) = watch::channel(RebuildProgress {
            position: 0,
            target: 0,
            events: 0,
            done: false,
        });
        running
            .request(|reply| Control::Rebuild { progress, reply })
            .await?;
        Ok(Rebuild {
            projection: running.name,
            progress: watcher,
        })
    }

    /// Restarts projection `name` from its saved state: after it failed and
    /// the cause was fixed (a stored event repaired), it resumes from its
    /// checkpoint without a rebuild.
    ///
    /// # Errors
    ///
    /// As [`rebuild`](Self::rebuild).
    pub async fn restart_projection(&self, name: &str) -> Result<(), Error> {
        self.running(name)?
            .request(|reply| Control::Restart { reply })
            .await
    }

    fn running(&self, name: &str) -> Result<&RunningProjection, Error> {
        self.shared
            .projections
            .get(name)
            .ok_or_else(|| Error::UnknownProjection {
                name: name.to_owned(),
                known: self.projection_names(),
            })
    }

    fn projection_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.shared.projections.values().map(|p| p.name).collect();
        names.sort_unstable();
        names
    }

    /// The status of every projection this engine runs, by name.
    pub fn projections(&self) -> Vec<ProjectionStatus> {
        let mut names: Vec<_> = self.shared.projections.values().map(|p| p.name).collect();
        names.sort_unstable();
        names
            .into_iter()
            .filter_map(|n| self.projection_status(n))
            .collect()
    }

    /// The status of every relay this engine runs (see
    /// [`EngineBuilder::relay`]).
    pub fn relays(&self) -> Vec<RelayStatus> {
        self.shared.relays.iter().map(Relay::status).collect()
    }

    /// Everything registered, printable as a table.
    pub fn catalog(&self) -> Catalog {
        self.shared.registry.catalog()
    }

    /// The definitions this engine runs.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// The largest body dispatch by name accepts.
    pub(crate) fn max_body_size(&self) -> usize {
        self.shared.config.max_body_size
    }

    /// The store this engine writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The engine that `shared` belongs to.
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn process(&self, name: &str) -> Option<&RunningProcess> {
        self.shared.processes.get().and_then(|p| p.get(name))
    }

    /// The status of process manager `name` (`None`: this engine does not
    /// run it): where it is in the log, what its runner does, and how many
    /// of its instances are running, completed and failed.
    pub fn process_status(&self, name: &str) -> Option<ProcessStatus> {
        self.process(name).map(RunningProcess::status)
    }

    /// The status of every process manager this engine runs, by name.
    pub fn processes(&self) -> Vec<ProcessStatus> {
        let mut all: Vec<_> = self
            .shared
            .processes
            .get()
            .map(|p| p.values().map(RunningProcess::status).collect())
            .unwrap_or_default();
        all.sort_by_key(|p| p.name);
        all
    }

    /// Restarts process manager `name` from its saved state, after it
    /// stopped on something retrying cannot fix (an event that does not
    /// decode, a reaction that panicked) and the cause was fixed.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownProcess`]; [`Error::Standby`] when another process
    /// holds its lease (restart it there); [`Error::Shutdown`] when the
    /// engine stopped.
    pub async fn restart_process(&self, name: &str) -> Result<(), Error> {
        let Some(process) = self.process(name) else {
            return Err(Error::UnknownProcess {
                name: name.to_owned(),
            });
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        process
            .control
            .send(Control::Restart { reply })
            .await
            .map_err(|_| Error::Shutdown)?;
        answer.await.map_err(|_| Error::Shutdown)?
    }

    /// Instance `key` of process manager `name`: its status, state,
    /// deadlines and history (which input caused which command), as last
    /// committed. `Ok(None)` when there is no such instance.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownProcess`] when this engine does not run `name`; a
    /// store failure when the instance is read from the store (another
    /// process holds the manager's lease).
    pub async fn process_instance(
        &self,
        name: &str,
        key: &str,
    ) -> Result<Option<ProcessInstance>, Error> {
        let Some(process) = self.process(name) else {
            return Err(Error::UnknownProcess {
                name: name.to_owned(),
            });
        };
        process.instance(&*self.shared.store, key).await
    }

    /// Stops the projection runners. Commands still work; queries answer from
    /// the state the projections had. The runners finish on their own
    /// (giving up their leases); [`stop`](Self::stop) also waits for that.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// [`shutdown`](Self::shutdown), then waits until every runner has
    /// stopped and given up its lease, so another process takes over at
    /// once instead of waiting out the lease's term: what to call before a
    /// process exits. Waits at most `LeaseOptions::ttl` for each.
    pub async fn stop(&self) {
        self.shutdown();
        let processes = self
            .shared
            .processes
            .get()
            .into_iter()
            .flat_map(|p| p.values());
        let tasks = self
            .shared
            .projections
            .values()
            .map(|p| &p.task)
            .chain(processes.map(|p| &p.task));
        for task in tasks {
            let task = task.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(task) = task {
                let _ = tokio::time::timeout(self.shared.config.lease_ttl, task).await;
            }
        }
        for relay in &self.shared.relays {
            relay.stopped(self.shared.config.lease_ttl).await;
        }
    }
}

thread_local! {
    /// The list `encode` fills, back from a store that appended without
    /// waiting (see `EventStore::append_now`): one allocation less per
    /// command.
    static ENCODED: Cell<Vec<NewEvent>> = const { Cell::new(Vec::new()) };
}

/// Folds a command's new events into `state`; on a panic, the name of the
/// event it struck and its message.
fn apply_all<A: Aggregate>(
    state: &mut A,
    events: &[A::Event],
) -> Result<(), (&'static str, String)> {
    let mut current = 0;
    panic::catch(|| {
        for (i, event) in events.iter().enumerate() {
            current = i;
            state.apply_event(event);
        }
    })
    .map_err(|message| (events[current].event_name(), message))
}

/// Whether a command that moved a stream from version `before` to `after`
/// crossed a multiple of the aggregate's snapshot interval.
fn snapshot_due<A: Aggregate>(before: u64, after: u64) -> bool {
    A::SNAPSHOT_EVERY
        .filter(|n| *n > 0)
        .is_some_and(|every| before / every != after / every)
}

fn encode<E: EventSet>(events: &[E], metadata: &Metadata) -> Result<Vec<NewEvent>, Error> {
    let timestamp = Timestamp::now();
    let mut encoded = ENCODED.take();
    encoded.clear();
    // Sized exactly: collecting through `Result` would start at four.
    encoded.reserve_exact(events.len());
    for event in events {
        let payload = event.encode().map_err(|source| Error::EventEncode {
            event: event.event_name(),
            source,
        })?;
        encoded.push(NewEvent {
            event_id: timestamp.event_id(),
            event_name: Cow::Borrowed(event.event_name()),
            schema_version: event.event_version(),
            payload,
            metadata: metadata.clone(),
            timestamp,
        });
    }
    Ok(encoded)
}

#[cfg(all(test, feature = "derive"))]
mod tests;
