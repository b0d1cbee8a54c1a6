//! Configures and starts an [`Engine`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::{Config, Engine, Shared, TypeMap};
use crate::error::{Error, RegistryError};
use crate::process::runner::ProcessHost;
use crate::process::{Clock, SystemClock};
use crate::projection::{Placement, ProjectionHost};
use crate::registry::Registry;
use crate::store::{CheckpointStore, MemoryStore, Store};
use crate::subscription::{Backoff, LeaseOptions, Relay, RelayOptions, Sink, Source, StoreSource};

/// How long a command waits before retry `n` after a concurrency conflict
/// (see [`EngineBuilder::conflict_backoff`]).
const DEFAULT_CONFLICT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(2), Duration::from_millis(250));

/// Builds an [`Engine`]: the store, the registry, services and limits.
///
/// # Examples
///
/// ```standalone_crate
/// # use cqrs_core::prelude::*;
/// # use std::time::Duration;
/// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// # pub struct Pinged;
/// # #[derive(Command, Deserialize)]
/// # #[command(aggregate = Probe)]
/// # pub struct Ping { #[id] pub id: u32 }
/// # #[derive(Aggregate, Default)]
/// # #[aggregate(events(Pinged), commands(Ping), error = std::io::Error)]
/// # pub struct Probe;
/// # impl Apply<Pinged> for Probe { fn apply(&mut self, _: &Pinged) {} }
/// # impl Handle<Ping> for Probe {
/// #     fn handle(&self, _: &Ping) -> Result<Events<Self>, std::io::Error> { Ok(events![Pinged]) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cqrs_core::Error> {
/// let engine = Engine::builder()
///     .store(MemoryStore::new())
///     .max_retries(10)
///     .query_timeout(Duration::from_secs(2))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "an EngineBuilder does nothing until `build` is awaited"]
pub struct EngineBuilder {
    store: Option<Arc<dyn Store>>,
    registry: Option<Registry>,
    services: TypeMap<Arc<dyn Any + Send + Sync>>,
    read_store: Option<Arc<dyn CheckpointStore>>,
    projection_stores: HashMap<String, Arc<dyn CheckpointStore>>,
    placements: HashMap<String, Placement>,
    lease: LeaseOptions,
    relays: Vec<(String, Arc<dyn Sink>, RelayOptions)>,
    /// Where projections read events (default: the event store's log); a
    /// read side sets it to a message log.
    pub(crate) source: Option<Arc<dyn Source>>,
    /// Which projections run (default: all that are not remote).
    pub(crate) only: Option<Vec<String>>,
    clock: Option<Arc<dyn Clock>>,
    config: Config,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            store: None,
            registry: None,
            services: TypeMap::default(),
            read_store: None,
            projection_stores: HashMap::new(),
            placements: HashMap::new(),
            lease: LeaseOptions::new(),
            relays: Vec::new(),
            source: None,
            only: None,
            clock: None,
            config: Config {
                max_retries: 16,
                conflict_backoff: DEFAULT_CONFLICT_BACKOFF,
                max_body_size: 1024 * 1024,
                cache_capacity: 10_000,
                query_timeout: Duration::from_secs(5),
                projection_batch: 512,
                run_projections: true,
                lease_ttl: LeaseOptions::new().ttl_value(),
                run_processes: true,
            },
        }
    }
}

impl EngineBuilder {
    /// The event store (default: a new [`MemoryStore`]).
    pub fn store<S: Store>(mut self, store: S) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// An event store shared with other owners.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The definitions to run (default: [`Registry::from_inventory`]).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Services handed to the handlers of every aggregate declaring
    /// `services = T`.
    pub fn services<T: Send + Sync + 'static>(mut self, services: T) -> Self {
        self.services.insert(TypeId::of::<T>(), Arc::new(services));
        self
    }

    /// How many times a command is retried after a concurrency conflict with
    /// another writer (default 16), each after a wait of
    /// [`conflict_backoff`](Self::conflict_backoff); then it fails with
    /// [`Error::TooManyConflicts`].
    ///
    /// Conflicts come from other processes only (commands of one process on
    /// one stream take turns), and they come in streaks: while one process
    /// holds the store's write lock, the other's appends wait and fall
    /// behind together. With two processes of 4 writers each on ten
    /// streams, streaks of up to 9 conflicts in a row showed; the default
    /// leaves room to spare, with about 2.5 s of waiting at most.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.config.max_retries = retries;
        self
    }

    /// How long a command waits before it reloads and retries after a
    /// concurrency conflict: retry `n` waits [`Backoff::delay`]`(n)`,
    /// doubling from the backoff's initial wait up to its maximum, each
    /// drawn at random from the upper half, so that writers that collided
    /// do not retry in step. Default: 2 ms doubling up to 250 ms, at most
    /// 2.5 s in all over the default 16 retries.
    ///
    /// ```
    /// # use cqrs_core::{Engine, subscription::Backoff};
    /// # use std::time::Duration;
    /// let builder = Engine::builder()
    ///     .max_retries(12)
    ///     .conflict_backoff(Backoff::new(Duration::from_millis(5), Duration::from_millis(500)));
    /// ```
    pub fn conflict_backoff(mut self, backoff: Backoff) -> Self {
        self.config.conflict_backoff = backoff;
        self
    }

    /// The largest JSON body that dispatch by name accepts, in bytes of
    /// JSON text (default 1 MiB): [`Engine::execute_json_bytes`] and
    /// [`Engine::query_json_bytes`] check it before parsing,
    /// [`Engine::execute_json`] and [`Engine::query_json`] before decoding,
    /// by the length of the value's compact JSON text. A larger body is
    /// refused with [`BodyError::TooLarge`](crate::BodyError::TooLarge).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.config.max_body_size = bytes;
        self
    }

    /// How many loaded aggregates to keep between commands (default 10,000;
    /// 0 reloads from the store every time).
    pub fn cache_capacity(mut self, aggregates: usize) -> Self {
        self.config.cache_capacity = aggregates;
        self
    }

    /// How long [`QueryRequest::after`](crate::QueryRequest::after) waits by
    /// default (5 s).
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.config.query_timeout = timeout;
        self
    }

    /// How many events a projection reads per batch (default 512).
    pub fn projection_batch_size(mut self, events: usize) -> Self {
        self.config.projection_batch = events.max(1);
        self
    }

    /// Do not run projections in this engine (a write-only process).
    pub fn without_projections(mut self) -> Self {
        self.config.run_projections = false;
        self
    }

    /// Where durable read models (and their checkpoints and leases) live,
    /// for every projection without a [`projection_store`](Self::projection_store)
    /// of its own (default: the event store). It may be another database
    /// than the events': a SQLite file beside a PostgreSQL event store, say.
    /// Its documents and checkpoint still commit in one transaction of it,
    /// so every event counts exactly once across crashes.
    pub fn read_store<S: CheckpointStore>(mut self, store: S) -> Self {
        self.read_store = Some(Arc::new(store));
        self
    }

    /// [`read_store`](Self::read_store), shared with other owners.
    pub fn shared_read_store(mut self, store: Arc<dyn CheckpointStore>) -> Self {
        self.read_store = Some(store);
        self
    }

    /// Where projection `name` keeps its read model, checkpoint and lease.
    pub fn projection_store<S: CheckpointStore>(mut self, name: &str, store: S) -> Self {
        self.projection_stores
            .insert(name.to_owned(), Arc::new(store));
        self
    }

    /// [`projection_store`](Self::projection_store), shared with other owners.
    pub fn shared_projection_store(mut self, name: &str, store: Arc<dyn CheckpointStore>) -> Self {
        self.projection_stores.insert(name.to_owned(), store);
        self
    }

    /// Where projection `name` runs (default [`Placement::Async`]).
    pub fn placement(mut self, name: &str, placement: Placement) -> Self {
        self.placements.insert(name.to_owned(), placement);
        self
    }

    /// How durable projections hold their leases (see
    /// [`subscription`](crate::subscription#leases)).
    pub fn lease(mut self, options: LeaseOptions) -> Self {
        self.lease = options;
        self.config.lease_ttl = options.ttl_value();
        self
    }

    /// Relays every event of the store to `sink` (a message log that read
    /// sides in other processes consume: see [`nats`](crate::nats) with the
    /// `nats` feature), as a subscription of this engine named `name`: its
    /// checkpoint and lease are kept in the event store, so one relay of
    /// that name runs across all processes on the store, and the others
    /// stand by. Its status: [`Engine::relays`].
    pub fn relay<S: Sink>(self, name: &str, sink: S, options: RelayOptions) -> Self {
        self.shared_relay(name, Arc::new(sink), options)
    }

    /// [`relay`](Self::relay), with a sink shared with other owners.
    pub fn shared_relay(mut self, name: &str, sink: Arc<dyn Sink>, options: RelayOptions) -> Self {
        self.relays.push((name.to_owned(), sink, options));
        self
    }

    /// The clock process managers set and fire their deadlines by
    /// (default: [`SystemClock`]); a [`ManualClock`](crate::process::ManualClock)
    /// lets a test move time.
    ///
    /// ```
    /// use cqrs_core::process::ManualClock;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let builder = cqrs_core::Engine::builder().clock(clock.clone());
    /// // Later, in the test: the deadlines due within five minutes fire.
    /// clock.advance(Duration::from_secs(300));
    /// # drop(builder);
    /// ```
    pub fn clock<C: Clock>(mut self, clock: C) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Runs no process managers in this engine: for a process that only
    /// serves commands and queries while another runs the workflows (the
    /// lease already keeps one runner per manager across processes; this
    /// keeps the others from standing by).
    pub fn without_process_managers(mut self) -> Self {
        self.config.run_processes = false;
        self
    }

    /// This builder for an admin tool: no projection, process manager or
    /// relay runs in it; answers where each one's checkpoint lives.
    #[cfg(feature = "admin")]
    pub(crate) fn for_admin(mut self) -> (Self, crate::admin::Stores) {
        let stores = crate::admin::Stores {
            read: self.read_store.clone(),
            projections: self.projection_stores.clone(),
            relays: self.relays.drain(..).map(|(name, _, _)| name).collect(),
        };
        self.config.run_projections = false;
        self.config.run_processes = false;
        (self, stores)
    }

    /// This builder running only projection `name` (for a rebuild).
    #[cfg(feature = "admin")]
    pub(crate) fn only_projection(mut self, name: &str) -> Self {
        self.only = Some(vec![name.to_owned()]);
        self.config.run_projections = true;
        self.config.run_processes = false;
        self.relays.clear();
        self
    }

    /// Checks the registry and starts the projections.
    ///
    /// Must be called inside a Tokio runtime: projections run on its tasks.
    ///
    /// # Errors
    ///
    /// [`RegistryError`] when the registry is empty or inconsistent, or an
    /// aggregate's services are missing.
    pub async fn build(self) -> Result<Engine, Error> {
        let Self {
            store,
            registry,
            services,
            read_store,
            projection_stores,
            placements,
            lease,
            relays,
            source,
            only,
            clock,
            config,
        } = self;
        let registry = registry.unwrap_or_else(Registry::from_inventory);
        registry.validate()?;
        // A read side (its own source) runs no commands: the services of
        // the aggregates it links are not its business.
        let commands = source.is_none();
        for aggregate in registry.aggregates().iter().filter(|_| commands) {
            let needed = (aggregate.services_type_id)();
            if needed != TypeId::of::<()>() && !services.contains_key(&needed) {
                return Err(RegistryError::MissingServices {
                    aggregate: aggregate.name,
                    services: aggregate.services_type,
                }
                .into());
            }
        }
        let known: Vec<&'static str> = {
            let mut names: Vec<_> = registry.projections().iter().map(|p| p.name).collect();
            names.sort_unstable();
            names
        };
        for name in projection_stores
            .keys()
            .chain(placements.keys())
            .chain(only.iter().flatten())
        {
            if !known.contains(&name.as_str()) {
                return Err(Error::UnknownProjection {
                    name: name.clone(),
                    known,
                });
            }
        }
        let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let source: Arc<dyn Source> =
            source.unwrap_or_else(|| Arc::new(StoreSource::new(store.clone())));
        let has_read_store = read_store.is_some();
        let default_read: Arc<dyn CheckpointStore> = read_store.unwrap_or_else(|| store.clone());
        let host_for = |read: Arc<dyn CheckpointStore>| ProjectionHost {
            source: Arc::clone(&source),
            read,
            registry: registry.clone(),
            shutdown: shutdown_rx.clone(),
            batch_size: config.projection_batch,
            lease,
            backoff: Backoff::default(),
        };
        let mut projections = HashMap::new();
        let mut inline = Vec::new();
        if config.run_projections {
            for descriptor in registry.projections() {
                if only
                    .as_ref()
                    .is_some_and(|only| !only.iter().any(|n| n == descriptor.name))
                {
                    continue;
                }
                let placement = placements.get(descriptor.name).copied().unwrap_or_default();
                if placement == Placement::Remote {
                    continue;
                }
                let own = projection_stores.get(descriptor.name).cloned();
                if placement == Placement::Inline {
                    let refuse = |reason: &str| Error::Placement {
                        projection: descriptor.name.to_owned(),
                        placement: "inline",
                        reason: reason.to_owned(),
                    };
                    if own.is_some() || has_read_store {
                        return Err(refuse(
                            "its read model must be in the event store's database, to commit in \
                             the append's transaction; it has a read store of its own",
                        ));
                    }
                    if !store.supports_inline() {
                        return Err(refuse("the event store does not run inline projections"));
                    }
                    let Some(start) = descriptor.start_inline else {
                        return Err(refuse(
                            "it keeps its read model in SQL tables of its own, written in the read \
                             store's transactions; run it async",
                        ));
                    };
                    let host = host_for(Arc::clone(&default_read));
                    let (running, hook) = start(&host);
                    inline.push(hook);
                    projections.insert(descriptor.name, running);
                    continue;
                }
                let read = own.unwrap_or_else(|| Arc::clone(&default_read));
                projections.insert(descriptor.name, (descriptor.start)(&host_for(read)));
            }
        }
        let relays = relays
            .into_iter()
            .map(|(name, sink, options)| {
                Relay::start(name, store.clone(), sink, options, shutdown_rx.clone())
            })
            .collect();
        let registered_caches = registry
            .aggregates()
            .iter()
            .map(|a| (a.name, OnceLock::new()))
            .collect();
        let run_processes = config.run_processes && commands;
        let shared = Arc::new(Shared {
            store,
            source,
            registry,
            services,
            registered_caches,
            caches: RwLock::new(TypeMap::default()),
            projections,
            inline: inline.into(),
            relays,
            processes: OnceLock::new(),
            config,
            shutdown,
        });
        // Started once the engine exists: they send their commands through
        // it, holding it weakly so that dropping the engine stops them.
        let mut processes = HashMap::new();
        if run_processes {
            let host = ProcessHost {
                source: Arc::clone(&shared.source),
                store: Arc::clone(&shared.store),
                engine: Arc::downgrade(&shared),
                clock: clock.unwrap_or_else(|| Arc::new(SystemClock)),
                shutdown: shutdown_rx.clone(),
                batch_size: shared.config.projection_batch,
                lease,
                backoff: Backoff::default(),
            };
            for descriptor in shared.registry.processes() {
                processes.insert(descriptor.name, (descriptor.start)(&host));
            }
        }
        let _ = shared.processes.set(processes);
        Ok(Engine { shared })
    }
}
