//! The read side: projections fold the global log into read models.
//!
//! # Consistency
//!
//! Each projection runs on its own task inside the [`Engine`](crate::Engine):
//! it catches up from its checkpoint, then follows the log live. Its state is
//! therefore a little behind the write side; [`ProjectionStatus`] shows by how
//! much, and [`QueryRequest::after`](crate::QueryRequest::after) waits until a
//! given command is visible.

mod documents;
mod envelope;
pub(crate) mod inline;
pub(crate) mod runner;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod tables;

use std::sync::Arc;

use serde::Serialize;

pub use documents::{Changes, DocumentCollection, Documents, Entry};
pub use envelope::Envelope;
pub use runner::{ProjectionHost, ProjectionStatus, Rebuild, RebuildProgress, RunningProjection};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use tables::RowsError;
#[cfg(feature = "postgres")]
pub use tables::{
    PostgresRows, PostgresTables, ProjectPostgres, start_postgres_tables, write_postgres,
};
#[cfg(feature = "sqlite")]
pub use tables::{
    ProjectSqlite, SqliteReader, SqliteRows, SqliteTables, start_sqlite_tables, write_sqlite,
};

use crate::error::DecodeError;
use crate::record::RecordedEvent;
use crate::registry::Registry;
use crate::store::Store;
use crate::subscription::READS_AHEAD;
pub use crate::subscription::RunState;
use crate::subscription::read_ahead::ReadAhead;

/// Where a projection runs: configuration, not code
/// ([`EngineBuilder::placement`](crate::EngineBuilder::placement)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Placement {
    /// On a task of its own in this engine, following the log: a little
    /// behind the write side, read-your-writes with
    /// [`QueryRequest::after`](crate::QueryRequest::after).
    #[default]
    Async,
    /// Not in this process: a read side elsewhere runs it. This engine
    /// neither runs nor answers it.
    Remote,
    /// In the same transaction as each command's events: a receipt means
    /// the read model includes the command, for every query right after.
    /// Needs its read model in the event store's database (no read store
    /// of its own) and a store that runs inline projections (all three
    /// do). Costs every append the fold and the write of the changed
    /// documents (see [`store::inline`](crate::store::inline)).
    Inline,
}

/// A read model built from events of any aggregates.
///
/// Implemented by `#[derive(Projection)]`; users write one [`Project`] impl per
/// consumed event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a projection",
    label = "not a projection",
    note = "derive it: `#[derive(Projection, Default)]` with `#[projection(events(..))]`"
)]
pub trait Projection: Default + Send + Sync + 'static {
    /// The projection name (`#[projection(name = "..")]`, default: the type name).
    const NAME: &'static str;
    /// The names of the events it consumes; the runner reads only those
    /// (and their [aliases](crate::Event::ALIASES)).
    const EVENTS: &'static [&'static str];
    /// What it does with an event it does not know
    /// (`#[projection(unknown_events = skip)]`; default: stop on it).
    const UNKNOWN_EVENTS: UnknownEvents = UnknownEvents::Fail;
    /// The events it consumes as they registered: names, aliases, versions
    /// (generated, in the order of `EVENTS`).
    #[doc(hidden)]
    const EVENT_DESCRIPTORS: &'static [crate::registry::EventDescriptor] = &[];

    /// Whether a stored event of this name is one it consumes: the name or
    /// an alias of one of its events.
    #[doc(hidden)]
    fn consumes(name: &str) -> bool {
        consumes(Self::EVENTS, Self::EVENT_DESCRIPTORS, name)
    }

    /// Decodes one recorded event and folds it in, if it is one the projection
    /// consumes (generated: dispatches to [`Project`]).
    ///
    /// # Errors
    ///
    /// When a consumed event does not decode.
    #[doc(hidden)]
    fn project_recorded(&mut self, record: &Arc<RecordedEvent>) -> Result<(), DecodeError>;

    /// The `#[document]` fields, by name (generated). A projection with any
    /// is durable: the store keeps its documents with its checkpoint, and it
    /// resumes from there; one without is rebuilt from the log at start.
    #[doc(hidden)]
    fn document_collections(&mut self) -> Vec<(&'static str, &mut dyn DocumentCollection)> {
        Vec::new()
    }
}

/// Whether a stored event named `name` is one of `events`, by its name or
/// an alias: what a projection or a process manager reads.
pub(crate) fn consumes(
    events: &[&str],
    descriptors: &[crate::registry::EventDescriptor],
    name: &str,
) -> bool {
    events.contains(&name) || descriptors.iter().any(|e| e.aliases.contains(&name))
}

/// What a projection does with a stored event this build does not know: a
/// name no registered event has (nor as an alias) in a stream it reads, or
/// a consumed event of a schema version newer than the code reads.
///
/// Set with `#[projection(.., unknown_events = skip)]`, for read sides that
/// deploy before or after the writers. Aggregates never skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnknownEvents {
    /// Stop on it with a [`DecodeError`] naming the event and where it is
    /// (the default): the projection fails until the code knows it.
    #[default]
    Fail,
    /// Skip it, counted in [`ProjectionStatus::skipped`] with a warning in
    /// [`ProjectionStatus::warning`] and in the log. An event that is known
    /// but does not decode still stops the projection.
    Skip,
}

/// Folds event `E`, with its envelope, into the projection's state.
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` lists event `{E}` but does not project it",
    label = "missing `impl Project<{E}> for {Self}`",
    note = "add `impl Project<{E}> for {Self} {{ fn project(&mut self, event: &Envelope<{E}>) {{ .. }} }}`"
)]
pub trait Project<E> {
    /// Updates the read model for one event.
    fn project(&mut self, event: &Envelope<E>);
}

/// How many events [`replay`] reads per page: big enough that the cost of a
/// query is spread over many events, small enough that the first page (the
/// one read before there is anything to project) is a small part of a long
/// catch-up.
const REPLAY_PAGE: usize = 4096;

/// Builds projection `P` from scratch by reading the whole log of `store`,
/// without touching any running copy: the reference a live projection can be
/// compared with, and the way to inspect a read model offline.
///
/// It reads what a running projection reads (see the registry's aggregates,
/// [`Registry::from_inventory`]), so a stored event with a name no code
/// knows, in a stream the projection reads, is an error here too.
///
/// The next pages of the log are read while the current one is projected.
///
/// # Errors
///
/// [`Error::Store`](crate::Error::Store) when reading fails,
/// [`Error::Decode`](crate::Error::Decode) when an event it reads does not
/// decode (its location named), [`Error::ProjectionFailed`](crate::Error::ProjectionFailed)
/// when a `Project` impl panics.
pub async fn replay<P: Projection>(store: &dyn Store) -> Result<P, crate::Error> {
    replay_with::<P>(store, &Registry::from_inventory()).await
}

/// [`replay`] with the definitions of `registry` instead of every one
/// linked into the program.
///
/// # Errors
///
/// As [`replay`].
pub async fn replay_with<P: Projection>(
    store: &dyn Store,
    registry: &Registry,
) -> Result<P, crate::Error> {
    let (filter, known) = runner::log_filter::<P>(registry);
    let head = store.head().await?;
    let mut state = P::default();
    // Skipped events (`unknown_events = skip`) are counted nowhere here,
    // only warned about.
    let skipped = runner::Skipped::default();
    let mut pages = ReadAhead::new(store, 0, &filter, REPLAY_PAGE);
    while pages.position() < head {
        let from = pages.position();
        let slice = pages.next_page().await?;
        if slice.through <= from {
            break;
        }
        pages.read_ahead(READS_AHEAD, head).await;
        runner::fold(&mut state, from, &slice.events, known.as_deref(), &skipped).map_err(
            |(position, e)| match e {
                runner::FoldError::Decode(e) => crate::Error::Decode(e),
                runner::FoldError::Panic(_) => crate::Error::ProjectionFailed {
                    projection: P::NAME,
                    position,
                    reason: e.to_string(),
                },
            },
        )?;
        pages.recycle(slice.events);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{NewEvent, StreamId, Timestamp};
    use crate::store::{EventStore, ExpectedVersion, GlobalLog, LogFilter, MemoryStore};

    /// Keeps the positions of the events it consumes, in the order seen.
    #[derive(Default)]
    struct Positions(Vec<u64>);

    impl Projection for Positions {
        const NAME: &'static str = "positions";
        const EVENTS: &'static [&'static str] = &["kept", "also-kept"];

        fn project_recorded(&mut self, record: &Arc<RecordedEvent>) -> Result<(), DecodeError> {
            // The runner's filter reads only the listed events.
            assert!(Self::EVENTS.contains(&&*record.event_name));
            self.0.push(record.position);
            Ok(())
        }
    }

    /// A replay over many pages (and pages whose events are sparse) folds
    /// every consumed event once, in log order: what folding the log one
    /// event at a time gives.
    #[tokio::test]
    async fn replay_across_many_pages_folds_every_event_once() {
        let store = MemoryStore::new();
        let events = REPLAY_PAGE * 6 + 17;
        // Dense, then sparse, then dense again: a page ends nowhere near
        // where the page before it suggests.
        let name = |i: usize| match (i * 3 / events, i % 10) {
            (1, 0 | 1) | (0 | 2, 0..=5) => "kept",
            (0 | 2, 6) => "also-kept",
            _ => "other",
        };
        for chunk in 0..events.div_ceil(100) {
            let batch = (chunk * 100..((chunk + 1) * 100).min(events))
                .map(|i| NewEvent {
                    timestamp: Timestamp(0),
                    ..NewEvent::new(name(i), "{}")
                })
                .collect();
            store
                .append(
                    &StreamId::new("s", chunk.to_string()),
                    ExpectedVersion::Exact(0),
                    batch,
                )
                .await
                .unwrap();
        }
        let all = store
            .read_log(0, &LogFilter::all(), events)
            .await
            .unwrap()
            .events;
        let mut by_one = Positions::default();
        for record in &all {
            if Positions::EVENTS.contains(&&*record.event_name) {
                by_one.project_recorded(record).unwrap();
            }
        }
        assert!(by_one.0.len() > REPLAY_PAGE, "too few events consumed");

        let replayed = replay::<Positions>(&store).await.unwrap();
        assert_eq!(replayed.0, by_one.0);
    }
}
