//! Queries: questions answered from a projection's state, changing nothing.

use crate::projection::Projection;

/// A question one projection answers.
///
/// Implemented by `#[derive(Query)]`; the answer comes from an [`Answer`] impl
/// on the projection.
pub trait Query: Send + Sync + 'static {
    /// The query name used by [`Engine::query_json`](crate::Engine::query_json)
    /// (`#[query(name = "..")]`, default: the type name).
    const NAME: &'static str;
    /// The projection that answers it (`#[query(projection = P)]`).
    type Projection: Projection;
    /// What the answer is (`#[query(output = T)]`).
    type Output: Send + 'static;

    /// Answers from the projection's state (generated: calls [`Answer`]).
    #[doc(hidden)]
    fn answer_from(projection: &Self::Projection, query: &Self) -> Self::Output;
}

/// Answers query `Q` from this projection's state.
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` does not answer query `{Q}`",
    label = "missing `impl Answer<{Q}> for {Self}`",
    note = "add `impl Answer<{Q}> for {Self} {{ fn answer(&self, query: &{Q}) -> <{Q} as Query>::Output {{ .. }} }}`"
)]
pub trait Answer<Q: Query> {
    /// The answer; reads the state, changes nothing.
    fn answer(&self, query: &Q) -> Q::Output;
}
