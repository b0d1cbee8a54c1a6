//! Commands: requests to change one aggregate, and the receipt of a change.

use std::borrow::Cow;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::event::Events;

/// A request to change one aggregate instance, named by its `#[id]` field.
///
/// Implemented by `#[derive(Command)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command",
    label = "not a command",
    note = "derive it: `#[derive(Command, Deserialize)]` with `#[command(aggregate = ..)]`"
)]
pub trait Command: Send + Sync + 'static {
    /// The command name used by [`Engine::execute_json`](crate::Engine::execute_json)
    /// (`#[command(name = "..")]`, default: the type name).
    const NAME: &'static str;

    /// The aggregate this command targets (`#[command(aggregate = X)]`).
    type Aggregate: Aggregate;

    /// The id of the target stream: the `#[id]` field, formatted with `Display`.
    fn aggregate_id(&self) -> String;

    /// Runs the aggregate's handler for this command (generated: calls
    /// [`Handle`](crate::Handle) or [`HandleAsync`](crate::HandleAsync)).
    #[doc(hidden)]
    fn dispatch<'a>(
        state: &'a Self::Aggregate,
        command: &'a Self,
        services: &'a <Self::Aggregate as Aggregate>::Services,
    ) -> impl Future<Output = Result<Events<Self::Aggregate>, <Self::Aggregate as Aggregate>::Error>>
    + Send
    + 'a;
}

/// What a successful command left behind: where its events went.
///
/// Pass it to [`QueryRequest::after`](crate::QueryRequest::after) to read your
/// own writes. It travels as JSON, so a read side in another process can
/// wait for the same position:
///
/// ```
/// # use cqrs_core::Receipt;
/// let json = r#"{"aggregate":"account","id":"7","version":3,"position":42,"events":1,"retries":0}"#;
/// let receipt: Receipt = serde_json::from_str(json)?;
/// assert_eq!(receipt.position, Some(42));
/// assert_eq!(serde_json::to_string(&receipt)?, json);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The aggregate (stream type) name.
    pub aggregate: Cow<'static, str>,
    /// The aggregate instance id.
    pub id: String,
    /// The stream version after the command (unchanged if it emitted nothing).
    pub version: u64,
    /// The global position of the last event appended, `None` if none was.
    pub position: Option<u64>,
    /// How many events the command appended.
    pub events: usize,
    /// How many times the command was retried after a concurrency conflict.
    pub retries: u32,
}
