//! Dispatch by name: a command or query named by a string with a JSON body,
//! the seam for HTTP adapters and command lines.
//!
//! Each `#[derive(Command)]` and `#[derive(Query)]` registers a function
//! pointer (below) that decodes the body into its type and runs it; the
//! [`Engine`] finds it by name in its [`Registry`](crate::Registry).

mod body;

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::body::{Fields, decode, longer_than};
use crate::BoxFuture;
use crate::command::{Command, Receipt};
use crate::engine::Engine;
use crate::error::{BodyError, Error};
use crate::query::Query;
use crate::record::{Metadata, Shown};
use crate::registry::{CommandDescriptor, QueryDescriptor};

/// A JSON body given by name: a parsed value, or JSON text to parse.
///
/// # What a body must be
///
/// - At most [`EngineBuilder::max_body_size`](crate::EngineBuilder::max_body_size)
///   bytes of JSON text (default 1 MiB), checked before parsing when the
///   body is given as text ([`Engine::execute_json_bytes`]).
/// - For a struct with named fields, a JSON object: an array is refused
///   even where serde would read the fields by position. A unit struct
///   takes `{}` or `null`; a tuple struct keeps serde's form (an array, or
///   the one field's value for a newtype).
/// - Only fields the type has, at any depth: a misspelt `"amuont": 500`
///   is refused instead of dropped, unless the type opts out with
///   `#[command(allow_unknown_fields)]` or `#[query(allow_unknown_fields)]`
///   (a field the type itself ignores with serde attributes counts as
///   unknown too).
///
/// A refusal is [`Error::InvalidBody`], whose message names the field path
/// and the reason (``at `account`: invalid type: integer `5`, expected a
/// string``), since HTTP and command-line users see only the message.
#[derive(Debug)]
pub enum JsonBody<'a> {
    /// A parsed value ([`Engine::execute_json`], [`Engine::query_json`]).
    Value(serde_json::Value),
    /// JSON text, not parsed yet ([`Engine::execute_json_bytes`],
    /// [`Engine::query_json_bytes`]).
    Text(&'a [u8]),
}

/// Runs a command given as JSON.
pub type ExecuteJsonFn =
    for<'a> fn(&'a Engine, JsonBody<'a>, Metadata) -> BoxFuture<'a, Result<Receipt, Error>>;
/// Answers a query given as JSON, as JSON; once its projection includes
/// the position given, if one is.
pub type QueryJsonFn = for<'a> fn(
    &'a Engine,
    JsonBody<'a>,
    Option<u64>,
) -> BoxFuture<'a, Result<serde_json::Value, Error>>;

impl Engine {
    /// Runs the command named `name` with a JSON body (for HTTP or a CLI);
    /// see [the rules for bodies](crate::registry::JsonBody#what-a-body-must-be).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownCommand`], [`Error::InvalidBody`], or what
    /// [`execute`](Self::execute) returns, the domain error boxed in
    /// [`Error::Domain`].
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// # use cqrs_core::prelude::*;
    /// # use cqrs_core::{BodyError, Error};
    /// # use serde_json::json;
    /// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    /// # pub struct Deposited { pub amount: u64 }
    /// #[derive(Command, Deserialize)]
    /// #[command(aggregate = Account)]
    /// pub struct Deposit { #[id] pub account: String, pub amount: u64 }
    /// # #[derive(Aggregate, Default)]
    /// # #[aggregate(events(Deposited), commands(Deposit), error = std::io::Error)]
    /// # pub struct Account;
    /// # impl Apply<Deposited> for Account { fn apply(&mut self, _: &Deposited) {} }
    /// # impl Handle<Deposit> for Account {
    /// #     fn handle(&self, c: &Deposit) -> Result<Events<Self>, std::io::Error> {
    /// #         Ok(events![Deposited { amount: c.amount }])
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cqrs_core::Error> {
    /// let engine = Engine::builder().build().await?;
    /// engine.execute_json("Deposit", json!({ "account": "a-1", "amount": 5 })).await?;
    ///
    /// let typo = engine.execute_json("Deposit", json!({ "account": "a-1", "amuont": 5 })).await;
    /// let Err(Error::InvalidBody { reason: BodyError::UnknownFields { fields, .. }, .. }) = typo else {
    ///     panic!("a misspelt field is refused");
    /// };
    /// assert_eq!(fields, ["amuont"]);
    ///
    /// let wrong = engine.execute_json("Deposit", json!({ "account": 5, "amount": 5 })).await;
    /// let message = wrong.unwrap_err().to_string();
    /// assert_eq!(
    ///     message,
    ///     "body of command `Deposit` refused: at `account`: invalid type: integer `5`, expected a string",
    /// );
    /// # Ok(()) }
    /// ```
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
        let command = self.command_named(name)?;
        let body = self.within_limit("command", command.name, JsonBody::Value(body))?;
        (command.execute_json)(self, body, metadata).await
    }

    /// Runs the command named `name` with a body of JSON text, as an HTTP
    /// request carries it: its size is checked before it is parsed, and it
    /// is decoded straight into the command, with no `serde_json::Value` in
    /// between.
    ///
    /// # Errors
    ///
    /// As [`execute_json`](Self::execute_json); text that is not JSON is
    /// [`Error::InvalidBody`] with [`BodyError::Decode`].
    pub async fn execute_json_bytes(&self, name: &str, body: &[u8]) -> Result<Receipt, Error> {
        self.execute_json_bytes_with(name, body, Metadata::new())
            .await
    }

    /// [`execute_json_bytes`](Self::execute_json_bytes) with metadata.
    ///
    /// # Errors
    ///
    /// As [`execute_json_bytes`](Self::execute_json_bytes).
    pub async fn execute_json_bytes_with(
        &self,
        name: &str,
        body: &[u8],
        metadata: Metadata,
    ) -> Result<Receipt, Error> {
        let command = self.command_named(name)?;
        let body = self.within_limit("command", command.name, JsonBody::Text(body))?;
        (command.execute_json)(self, body, metadata).await
    }

    /// Answers the query named `name` with a JSON body, as JSON; see
    /// [the rules for bodies](crate::registry::JsonBody#what-a-body-must-be) (a unit
    /// query takes `{}` or `null`).
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
        let query = self.query_named(name)?;
        let body = self.within_limit("query", query.name, JsonBody::Value(body))?;
        (query.query_json)(self, body, None).await
    }

    /// Answers the query named `name` with a body of JSON text, as JSON: its
    /// size is checked before it is parsed.
    ///
    /// # Errors
    ///
    /// As [`query_json`](Self::query_json).
    pub async fn query_json_bytes(
        &self,
        name: &str,
        body: &[u8],
    ) -> Result<serde_json::Value, Error> {
        self.query_json_bytes_at_least(name, body, None).await
    }

    /// [`query_json_bytes`](Self::query_json_bytes), answered once the
    /// query's projection includes global position `position` (when
    /// given): read-your-writes by name, with a position from a
    /// [`Receipt`].
    ///
    /// # Errors
    ///
    /// As [`query_json`](Self::query_json); [`Error::Timeout`] when the
    /// projection does not get there within the query timeout.
    pub async fn query_json_bytes_at_least(
        &self,
        name: &str,
        body: &[u8],
        position: Option<u64>,
    ) -> Result<serde_json::Value, Error> {
        let query = self.query_named(name)?;
        let body = self.within_limit("query", query.name, JsonBody::Text(body))?;
        (query.query_json)(self, body, position).await
    }

    fn command_named(&self, name: &str) -> Result<&'static CommandDescriptor, Error> {
        self.registry()
            .command(name)
            .ok_or_else(|| Error::UnknownCommand {
                name: Shown(name).to_string(),
                known: self.registry().commands().iter().map(|c| c.name).collect(),
            })
    }

    fn query_named(&self, name: &str) -> Result<&'static QueryDescriptor, Error> {
        self.registry()
            .query(name)
            .ok_or_else(|| Error::UnknownQuery {
                name: Shown(name).to_string(),
                known: self.registry().queries().iter().map(|q| q.name).collect(),
            })
    }

    /// `body`, if it is within the size limit.
    fn within_limit<'a>(
        &self,
        kind: &'static str,
        name: &'static str,
        body: JsonBody<'a>,
    ) -> Result<JsonBody<'a>, Error> {
        let limit = self.max_body_size();
        let over = match &body {
            JsonBody::Value(value) => longer_than(value, limit),
            JsonBody::Text(text) => text.len() > limit,
        };
        if over {
            return Err(Error::InvalidBody {
                kind,
                name,
                reason: BodyError::TooLarge { limit },
            });
        }
        Ok(body)
    }
}

/// The JSON entry point of command `C`: refuses fields `C` does not have.
pub fn execute_json<'a, C: Command + DeserializeOwned>(
    engine: &'a Engine,
    body: JsonBody<'a>,
    metadata: Metadata,
) -> BoxFuture<'a, Result<Receipt, Error>> {
    execute_decoded::<C>(engine, body, metadata, Fields::Known)
}

/// The JSON entry point of command `C` marked
/// `#[command(allow_unknown_fields)]`: ignores fields `C` does not have.
pub fn execute_json_lenient<'a, C: Command + DeserializeOwned>(
    engine: &'a Engine,
    body: JsonBody<'a>,
    metadata: Metadata,
) -> BoxFuture<'a, Result<Receipt, Error>> {
    execute_decoded::<C>(engine, body, metadata, Fields::AnyExtra)
}

fn execute_decoded<'a, C: Command + DeserializeOwned>(
    engine: &'a Engine,
    body: JsonBody<'a>,
    metadata: Metadata,
    fields: Fields,
) -> BoxFuture<'a, Result<Receipt, Error>> {
    Box::pin(async move {
        let command: C = decode("command", C::NAME, body, fields)?;
        engine
            .execute_with(command, metadata)
            .await
            .map_err(Error::from)
    })
}

/// The JSON entry point of query `Q`: refuses fields `Q` does not have.
pub fn query_json<'a, Q>(
    engine: &'a Engine,
    body: JsonBody<'a>,
    at_least: Option<u64>,
) -> BoxFuture<'a, Result<serde_json::Value, Error>>
where
    Q: Query + DeserializeOwned,
    Q::Output: Serialize,
{
    query_decoded::<Q>(engine, body, Fields::Known, at_least)
}

/// The JSON entry point of query `Q` marked
/// `#[query(allow_unknown_fields)]`: ignores fields `Q` does not have.
pub fn query_json_lenient<'a, Q>(
    engine: &'a Engine,
    body: JsonBody<'a>,
    at_least: Option<u64>,
) -> BoxFuture<'a, Result<serde_json::Value, Error>>
where
    Q: Query + DeserializeOwned,
    Q::Output: Serialize,
{
    query_decoded::<Q>(engine, body, Fields::AnyExtra, at_least)
}

fn query_decoded<'a, Q>(
    engine: &'a Engine,
    body: JsonBody<'a>,
    fields: Fields,
    at_least: Option<u64>,
) -> BoxFuture<'a, Result<serde_json::Value, Error>>
where
    Q: Query + DeserializeOwned,
    Q::Output: Serialize,
{
    Box::pin(async move {
        let query: Q = decode("query", Q::NAME, body, fields)?;
        let mut request = engine.query(query);
        if let Some(position) = at_least {
            request = request.at_least(position);
        }
        let answer = request.await?;
        serde_json::to_value(answer).map_err(|source| Error::Encode {
            name: Q::NAME,
            source,
        })
    })
}
