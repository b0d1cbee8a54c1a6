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
pub(crate) mod runner;

use std::sync::Arc;

pub use documents::{Changes, DocumentCollection, Documents, Entry};
pub use envelope::Envelope;
pub use runner::{ProjectionStatus, Rebuild, RebuildProgress, RunState};

use crate::error::DecodeError;
use crate::event::Event;
use crate::record::RecordedEvent;
use crate::store::{LogFilter, ReadAhead, Store};

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
    /// The names of the events it consumes; the runner reads only those.
    const EVENTS: &'static [&'static str];

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

/// Folds event `E`, with its envelope, into the projection's state.
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` lists event `{E}` but does not project it",
    label = "missing `impl Project<{E}> for {Self}`",
    note = "add `impl Project<{E}> for {Self} {{ fn project(&mut self, event: &Envelope<{E}>) {{ .. }} }}`"
)]
pub trait Project<E: Event> {
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
/// The next page of the log is read while the current one is projected.
///
/// # Errors
///
/// [`Error::Store`](crate::Error::Store) when reading fails,
/// [`Error::Decode`](crate::Error::Decode) when a consumed event does not decode.
pub async fn replay<P: Projection>(store: &dyn Store) -> Result<P, crate::Error> {
    let filter = LogFilter::events(P::EVENTS.iter().copied());
    let head = store.head().await?;
    let mut state = P::default();
    let mut pages = ReadAhead::new(store, 0, &filter, REPLAY_PAGE);
    while pages.position() < head {
        let from = pages.position();
        let slice = pages.next_page().await?;
        if slice.through <= from {
            break;
        }
        if slice.through < head {
            pages.read_ahead().await;
        }
        for record in &slice.events {
            state.project_recorded(record)?;
        }
        pages.recycle(slice.events);
    }
    Ok(state)
}
