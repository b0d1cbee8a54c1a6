//! Dispatch by name: a command or query named by a string with a JSON body,
//! the seam for HTTP adapters and command lines.
//!
//! Each `#[derive(Command)]` and `#[derive(Query)]` registers a function
//! pointer (below) that decodes the body into its type and runs it; the
//! [`Engine`] finds it by name in its [`Registry`](crate::Registry).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BoxFuture;
use crate::command::{Command, Receipt};
use crate::engine::Engine;
use crate::error::Error;
use crate::query::Query;
use crate::record::Metadata;

/// Runs a command given as JSON.
pub type ExecuteJsonFn =
    for<'a> fn(&'a Engine, serde_json::Value, Metadata) -> BoxFuture<'a, Result<Receipt, Error>>;
/// Answers a query given as JSON, as JSON.
pub type QueryJsonFn =
    for<'a> fn(&'a Engine, serde_json::Value) -> BoxFuture<'a, Result<serde_json::Value, Error>>;

impl Engine {
    /// Runs the command named `name` with a JSON body (for HTTP or a CLI).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownCommand`], [`Error::InvalidBody`], or what
    /// [`execute`](Self::execute) returns, the domain error boxed in
    /// [`Error::Domain`].
    pub async fn execute_json(
        &self,
        name: &str,
        body: serde_json::Value,
    ) -> Result<Receipt, Error> {
        self.execute_json_with(name, body, Metadata::new()).await
    }

    /// [`execute_json`](Self::execute_json) with metadata.
    ///
    /// # Errors
    ///
    /// As [`execute_json`](Self::execute_json).
    pub async fn execute_json_with(
        &self,
        name: &str,
        body: serde_json::Value,
        metadata: Metadata,
    ) -> Result<Receipt, Error> {
        let command = self
            .registry()
            .command(name)
            .ok_or_else(|| Error::UnknownCommand {
                name: name.to_owned(),
                known: self.registry().commands().iter().map(|c| c.name).collect(),
            })?;
        (command.execute_json)(self, body, metadata).await
    }

    /// Answers the query named `name` with a JSON body, as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownQuery`], [`Error::InvalidBody`], or what the query
    /// returns.
    pub async fn query_json(
        &self,
        name: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        let query = self
            .registry()
            .query(name)
            .ok_or_else(|| Error::UnknownQuery {
                name: name.to_owned(),
                known: self.registry().queries().iter().map(|q| q.name).collect(),
            })?;
        (query.query_json)(self, body).await
    }
}

/// The JSON entry point of command `C`.
pub fn execute_json<'a, C: Command + DeserializeOwned>(
    engine: &'a Engine,
    body: serde_json::Value,
    metadata: Metadata,
) -> BoxFuture<'a, Result<Receipt, Error>> {
    Box::pin(async move {
        let command: C = serde_json::from_value(body).map_err(|source| Error::InvalidBody {
            kind: "command",
            name: C::NAME,
            source,
        })?;
        engine
            .execute_with(command, metadata)
            .await
            .map_err(Error::from)
    })
}

/// The JSON entry point of query `Q`.
pub fn query_json<'a, Q>(
    engine: &'a Engine,
    body: serde_json::Value,
) -> BoxFuture<'a, Result<serde_json::Value, Error>>
where
    Q: Query + DeserializeOwned,
    Q::Output: Serialize,
{
    Box::pin(async move {
        let query: Q = serde_json::from_value(body).map_err(|source| Error::InvalidBody {
            kind: "query",
            name: Q::NAME,
            source,
        })?;
        let answer = engine.query(query).await?;
        serde_json::to_value(answer).map_err(|source| Error::Encode {
            name: Q::NAME,
            source,
        })
    })
}
