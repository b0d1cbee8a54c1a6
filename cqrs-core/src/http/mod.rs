//! An HTTP adapter on [axum](https://docs.rs/axum) (feature `http`): a
//! router built from the registry, for the engine's commands, queries,
//! event feed and status.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /commands/{name}` | runs the command named `name` with the JSON body; answers its [`Receipt`](crate::Receipt) |
//! | `POST /queries/{name}` | answers the query named `name` (JSON body; `GET` for a query without fields); `?after=<position>` or header `X-Read-After` waits until its projection includes that position (read-your-writes) |
//! | `GET /events` | the global log as Server-Sent Events, `id` = global position; `?aggregate=a,b`, `?event=x,y`; resumes after `Last-Event-ID` (or `?after=`) |
//! | `GET /projections` | every projection's status: position, head (the lag is their difference), state, last error |
//! | `GET /processes` | every process manager's status |
//! | `GET /catalog` | everything registered |
//! | `GET /dashboard` | a live page: projections and their lag, process managers, the event feed, the catalog, a form that sends a command |
//! | `GET /openapi.json` | an OpenAPI 3.1 document of these routes, each command's and query's body (and each answer) as JSON Schema |
//!
//! A command takes its metadata from the request: `Idempotency-Key` (a
//! retry with the same key gets the first receipt, see
//! [`Engine::execute_with`](crate::Engine::execute_with)), `X-Correlation-Id`
//! (a UUID), `traceparent` (W3C trace context; the command continues that
//! trace, see [`telemetry`](crate::telemetry)), and the actor from an [`Actor`] extension that the
//! application's own authentication layer sets, or else an `X-Actor`
//! header. Every error is `application/problem+json` ([`Problem`]).
//!
//! ```no_run
//! # async fn serve(engine: cqrs_core::Engine) -> std::io::Result<()> {
//! let app = cqrs_core::http::router(engine, cqrs_core::http::HttpOptions::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! cqrs_core::http::axum::serve(listener, app).await
//! # }
//! ```
//!
//! The router is a plain `axum::Router`: nest it in the application's own
//! router and wrap it in its own tower layers (authentication, rate
//! limits). [`HttpOptions::authorize`] decides per command.

mod events;
mod openapi;
mod problem;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use axum;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
pub use problem::Problem;

use crate::engine::Engine;
use crate::record::Metadata;

/// Who sends a request, as the application's authentication layer found
/// out: put it in the request's extensions and commands carry it as their
/// actor (it wins over an `X-Actor` header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor(pub String);

/// A command about to run, as [`HttpOptions::authorize`] sees it.
#[derive(Debug)]
pub struct CommandRequest<'a> {
    /// The command's name.
    pub name: &'a str,
    /// Who sends it, if known.
    pub actor: Option<&'a str>,
    /// The request's headers.
    pub headers: &'a HeaderMap,
}

type Authorize = Arc<dyn Fn(&CommandRequest<'_>) -> Result<(), Problem> + Send + Sync>;

/// How the router behaves.
#[derive(Clone)]
pub struct HttpOptions {
    body_limit: Option<usize>,
    timeout: Duration,
    authorize: Option<Authorize>,
    title: String,
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("body_limit", &self.body_limit)
            .field("timeout", &self.timeout)
            .field("authorize", &self.authorize.is_some())
            .field("title", &self.title)
            .finish()
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpOptions {
    /// The defaults: bodies up to the engine's `max_body_size`, requests
    /// answered within 30 s, every command allowed.
    pub fn new() -> Self {
        Self {
            body_limit: None,
            timeout: Duration::from_secs(30),
            authorize: None,
            title: String::from("cqrs application"),
        }
    }

    /// The title of the OpenAPI document (default `cqrs application`).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The largest body read, in bytes (default: the engine's
    /// `max_body_size`); a larger one is refused with 413 before it is
    /// read whole.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    /// How long a command or query may take before the answer is a 503
    /// problem (default 30 s); a query's wait for its projection is also
    /// bounded by the engine's query timeout (a 504 problem).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Decides whether a command may run: `Err(problem)` refuses it with
    /// that problem (a 403, say) before it is decoded.
    ///
    /// ```
    /// use cqrs_core::http::axum::http::StatusCode;
    /// use cqrs_core::http::{HttpOptions, Problem};
    ///
    /// let options = HttpOptions::new().authorize(|request| {
    ///     if request.name == "CloseAccount" && request.actor != Some("manager") {
    ///         return Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "only a manager closes accounts"));
    ///     }
    ///     Ok(())
    /// });
    /// # drop(options);
    /// ```
    pub fn authorize(
        mut self,
        authorize: impl Fn(&CommandRequest<'_>) -> Result<(), Problem> + Send + Sync + 'static,
    ) -> Self {
        self.authorize = Some(Arc::new(authorize));
        self
    }
}

/// What every handler shares.
struct Shared {
    engine: Engine,
    options: HttpOptions,
    /// Built once: the registry does not change while the router serves.
    openapi: serde_json::Value,
}

/// The router over `engine`'s registry (see the [module](self)).
pub fn router(engine: Engine, options: HttpOptions) -> Router {
    let openapi = openapi::document(&engine, &options.title);
    let shared = Arc::new(Shared {
        engine,
        options,
        openapi,
    });
    Router::new()
        .route("/commands/{name}", post(command))
        .route("/queries/{name}", get(query).post(query))
        .route("/events", get(events::feed))
        .route("/projections", get(projections))
        .route("/processes", get(processes))
        .route("/catalog", get(catalog))
        .route("/openapi.json", get(openapi_json))
        .route("/dashboard", get(dashboard))
        .with_state(shared)
}

async fn command(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let actor = parts
        .extensions
        .get::<Actor>()
        .map(|a| a.0.clone())
        .or_else(|| text_header(&parts.headers, "x-actor").map(str::to_owned));
    if let Some(authorize) = &shared.options.authorize {
        let request = CommandRequest {
            name: &name,
            actor: actor.as_deref(),
            headers: &parts.headers,
        };
        if let Err(problem) = authorize(&request) {
            return problem.into_response();
        }
    }
    let mut metadata = Metadata::new();
    metadata.actor = actor;
    if let Some(key) = text_header(&parts.headers, "idempotency-key") {
        metadata.idempotency_key = Some(key.to_owned());
    }
    if let Some(parent) = text_header(&parts.headers, "traceparent") {
        metadata = metadata.traceparent(parent);
    }
    if let Some(id) = parts.headers.get("x-correlation-id") {
        match id
            .to_str()
            .ok()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
        {
            Some(id) => metadata.correlation_id = Some(id),
            None => {
                return Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid request",
                    "`X-Correlation-Id` must be a UUID",
                )
                .into_response();
            }
        }
    }
    let body = match read_body(&shared, body).await {
        Ok(body) => body,
        Err(problem) => return problem.into_response(),
    };
    let run = shared
        .engine
        .execute_json_bytes_with(&name, &body, metadata);
    match tokio::time::timeout(shared.options.timeout, run).await {
        Ok(Ok(receipt)) => {
            let mut response = axum::Json(&receipt).into_response();
            if let Some(position) = receipt.position
                && let Ok(value) = HeaderValue::from_str(&position.to_string())
            {
                response.headers_mut().insert("x-position", value);
            }
            response
        }
        Ok(Err(error)) => {
            let mut problem = Problem::from_error(&error);
            if let crate::Error::Domain(refusal) = &error
                && let Some(command) = shared.engine.registry().command(&name)
            {
                problem.error = (command.error_json)(&**refusal);
            }
            problem.into_response()
        }
        Err(_) => timed_out(&shared).into_response(),
    }
}

async fn query(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let after = params
        .get("after")
        .map(String::as_str)
        .or_else(|| text_header(&parts.headers, "x-read-after"));
    let after = match position(after, "`after` (or `X-Read-After`)") {
        Ok(after) => after,
        Err(problem) => return problem.into_response(),
    };
    let body = match read_body(&shared, body).await {
        Ok(body) if body.is_empty() => Bytes::from_static(b"null"),
        Ok(body) => body,
        Err(problem) => return problem.into_response(),
    };
    let run = shared.engine.query_json_bytes_at_least(&name, &body, after);
    match tokio::time::timeout(shared.options.timeout, run).await {
        Ok(Ok(answer)) => axum::Json(answer).into_response(),
        Ok(Err(error)) => Problem::from_error(&error).into_response(),
        Err(_) => timed_out(&shared).into_response(),
    }
}

async fn projections(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.engine.projections()).into_response()
}

async fn processes(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.engine.processes()).into_response()
}

/// The live page: plain HTML and JavaScript shipped in the crate, talking
/// to the routes next to it.
async fn dashboard() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("dashboard.html"))
}

async fn openapi_json(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(&shared.openapi).into_response()
}

async fn catalog(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.engine.catalog()).into_response()
}

/// The body, if within the limit.
async fn read_body(shared: &Shared, body: axum::body::Body) -> Result<Bytes, Problem> {
    let limit = shared
        .options
        .body_limit
        .unwrap_or_else(|| shared.engine.max_body_size());
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large",
            format!("the body is over the limit of {limit} bytes, or was cut off"),
        )
    })
}

fn timed_out(shared: &Shared) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timed out",
        format!(
            "the request took longer than {} ms",
            shared.options.timeout.as_millis()
        ),
    )
}

/// A global position given as text (a parameter or a header), if given.
fn position(text: Option<&str>, what: &str) -> Result<Option<u64>, Problem> {
    text.map(|text| {
        text.parse().map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid request",
                format!("{what} must be a global position (an integer), not `{text}`"),
            )
        })
    })
    .transpose()
}

/// A header's value as text, if it is there and is text.
fn text_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
