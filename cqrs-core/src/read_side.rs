//! A read side: projections and their queries in a process without an
//! event store, fed by a [`Source`] (a message log a relay fills).

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, EngineBuilder, QueryRequest};
use crate::error::Error;
use crate::projection::{ProjectionStatus, Rebuild};
use crate::query::Query;
use crate::registry::{Catalog, Registry};
use crate::store::CheckpointStore;
use crate::subscription::{LeaseOptions, Source};

/// Projections run away from the write side: the same
/// `#[derive(Projection)]` types, fed from a [`Source`] instead of the
/// event store's log, with their read models in a read store of this
/// process (default: in memory). Queries work as on an [`Engine`],
/// read-your-writes included: a [`Receipt`](crate::Receipt) from the write
/// side, sent over as JSON, makes [`QueryRequest::after`] wait until this
/// read side has reached its position.
///
/// It has no commands: it reads only.
///
/// # Examples
///
/// A read side needs a source; without one, building says so:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use cqrs_core::{Error, MemoryStore, ReadSide};
///
/// let built = ReadSide::builder().read_store(MemoryStore::new()).build().await;
/// assert!(matches!(built, Err(Error::NoSource)));
/// # }
/// ```
///
/// With the `nats` feature, `JetStream::connect(..).await?.source("reads")`
/// is one; see [`nats`](crate::nats).
#[derive(Clone, Debug)]
pub struct ReadSide {
    engine: Engine,
}

impl ReadSide {
    /// Starts configuring a read side.
    pub fn builder() -> ReadSideBuilder {
        ReadSideBuilder::default()
    }

    /// Starts a query; `.await` it for the answer as of now, or chain
    /// [`after`](QueryRequest::after) with the write side's receipt to
    /// wait for its events.
    pub fn query<Q: Query>(&self, query: Q) -> QueryRequest<'_, Q> {
        self.engine.query(query)
    }

    /// Answers the query named `name` with a JSON body, as JSON (see
    /// [`Engine::query_json`]).
    ///
    /// # Errors
    ///
    /// As [`Engine::query_json`].
    pub async fn query_json(
        &self,
        name: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        self.engine.query_json(name, body).await
    }

    /// Answers the query named `name` with a body of JSON text (see
    /// [`Engine::query_json_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`Engine::query_json`].
    pub async fn query_json_bytes(
        &self,
        name: &str,
        body: &[u8],
    ) -> Result<serde_json::Value, Error> {
        self.engine.query_json_bytes(name, body).await
    }

    /// Where projection `name` is; its `head` is the source's newest
    /// position (for JetStream: the position of the stream's last message).
    pub fn projection_status(&self, name: &str) -> Option<ProjectionStatus> {
        self.engine.projection_status(name)
    }

    /// The status of every projection this read side runs, by name.
    pub fn projections(&self) -> Vec<ProjectionStatus> {
        self.engine.projections()
    }

    /// Rebuilds projection `name` from the start of the source (see
    /// [`Engine::rebuild`]); a source that no longer holds its first events
    /// fails the projection with an error naming the missing positions.
    ///
    /// # Errors
    ///
    /// As [`Engine::rebuild`].
    pub async fn rebuild(&self, name: &str) -> Result<Rebuild, Error> {
        self.engine.rebuild(name).await
    }

    /// Restarts a failed projection from its saved state (see
    /// [`Engine::restart_projection`]).
    ///
    /// # Errors
    ///
    /// As [`Engine::rebuild`].
    pub async fn restart_projection(&self, name: &str) -> Result<(), Error> {
        self.engine.restart_projection(name).await
    }

    /// Everything registered, printable as a table.
    pub fn catalog(&self) -> Catalog {
        self.engine.catalog()
    }

    /// The definitions this read side runs.
    pub fn registry(&self) -> &Registry {
        self.engine.registry()
    }

    /// Stops the projections (queries answer from the state they had).
    pub fn shutdown(&self) {
        self.engine.shutdown();
    }

    /// [`shutdown`](Self::shutdown), then waits until every runner has
    /// stopped and given up its lease (see [`Engine::stop`]).
    pub async fn stop(&self) {
        self.engine.stop().await;
    }
}

/// Builds a [`ReadSide`].
#[derive(Debug, Default)]
#[must_use = "a ReadSideBuilder does nothing until `build` is awaited"]
pub struct ReadSideBuilder {
    engine: EngineBuilder,
}

impl ReadSideBuilder {
    /// Where events come from (required).
    pub fn source<S: Source>(self, source: S) -> Self {
        self.shared_source(Arc::new(source))
    }

    /// [`source`](Self::source), shared with other owners.
    pub fn shared_source(mut self, source: Arc<dyn Source>) -> Self {
        self.engine.source = Some(source);
        self
    }

    /// The definitions to run (default: [`Registry::from_inventory`]).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.engine = self.engine.registry(registry);
        self
    }

    /// Runs only these projections (default: every registered one).
    /// Several read sides can split a domain's projections between them,
    /// each with consumers of its own on one stream.
    pub fn projections<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.engine.only = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Where durable read models, their checkpoints and leases live
    /// (default: a new [`MemoryStore`](crate::MemoryStore), gone with the
    /// process).
    pub fn read_store<S: CheckpointStore>(mut self, store: S) -> Self {
        self.engine = self.engine.read_store(store);
        self
    }

    /// [`read_store`](Self::read_store), shared with other owners.
    pub fn shared_read_store(mut self, store: Arc<dyn CheckpointStore>) -> Self {
        self.engine = self.engine.shared_read_store(store);
        self
    }

    /// Where projection `name` keeps its read model, checkpoint and lease.
    pub fn projection_store<S: CheckpointStore>(mut self, name: &str, store: S) -> Self {
        self.engine = self.engine.projection_store(name, store);
        self
    }

    /// [`projection_store`](Self::projection_store), shared with other owners.
    pub fn shared_projection_store(mut self, name: &str, store: Arc<dyn CheckpointStore>) -> Self {
        self.engine = self.engine.shared_projection_store(name, store);
        self
    }

    /// How projections hold their leases: one process of the read sides
    /// sharing a read store runs each projection, the others stand by.
    pub fn lease(mut self, options: LeaseOptions) -> Self {
        self.engine = self.engine.lease(options);
        self
    }

    /// How long [`QueryRequest::after`] waits by default (5 s).
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.engine = self.engine.query_timeout(timeout);
        self
    }

    /// How many events a projection takes per batch, and per read-model
    /// transaction (default 512).
    pub fn projection_batch_size(mut self, events: usize) -> Self {
        self.engine = self.engine.projection_batch_size(events);
        self
    }

    /// The largest JSON body query dispatch by name accepts (1 MiB).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.engine = self.engine.max_body_size(bytes);
        self
    }

    /// Checks the registry and starts the projections.
    ///
    /// # Errors
    ///
    /// [`Error::NoSource`] without a source; otherwise as
    /// [`EngineBuilder::build`].
    pub async fn build(self) -> Result<ReadSide, Error> {
        if self.engine.source.is_none() {
            return Err(Error::NoSource);
        }
        // The engine's own store stays empty: a read side appends nothing
        // and reads only its source.
        let engine = self.engine.build().await?;
        Ok(ReadSide { engine })
    }
}
