//! Errors as `application/problem+json` (RFC 9457).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{CommandError, Error, StoreError};

/// An error as an HTTP response: `application/problem+json` with a status,
/// a title per kind of error, and the error's own message as the detail.
///
/// ```
/// use cqrs_core::http::Problem;
/// use cqrs_core::http::axum::http::StatusCode;
///
/// let problem = Problem::new(StatusCode::FORBIDDEN, "forbidden", "tellers may not close accounts");
/// assert_eq!(problem.status, 403);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` unless set).
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status.
    pub status: u16,
    /// A short summary of the kind of problem, the same for every
    /// occurrence (`"command refused"`, `"unknown command"`, ..).
    pub title: String,
    /// What went wrong this time.
    pub detail: String,
    /// A refused command's domain error as JSON, when its type is
    /// `Serialize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

impl Problem {
    /// A problem with `status`, `title` and `detail`.
    pub fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: String::from("about:blank"),
            status: status.as_u16(),
            title: title.into(),
            detail: detail.into(),
            error: None,
        }
    }

    /// The problem an engine error is: a refused command 422, a stream
    /// that kept changing 409, an unknown name 404, a body that does not
    /// decode 400 (naming the field), a projection that did not catch up
    /// in time 504, a store that cannot be reached 503, anything else 500.
    ///
    /// A panic in the application's code is a 500 that says where it
    /// struck but not the panic's message, which may hold anything the
    /// code had at hand: that goes to the server's log (`tracing`, level
    /// `error`).
    pub fn from_error(error: &Error) -> Self {
        let hidden = match error {
            Error::CommandPanicked {
                command,
                stream,
                site,
                ..
            } => Some(format!(
                "command `{command}` on stream {stream} panicked in {site}; nothing was stored"
            )),
            Error::ApplyPanicked { event, at, .. } => {
                Some(format!("applying stored event `{event}` at {at} panicked"))
            }
            _ => None,
        };
        if let Some(detail) = hidden {
            tracing::error!(error = %error, "a request met a panic");
            return Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                format!("{detail} (the panic's message is in the server's log)"),
            );
        }
        let (status, title) = match error {
            Error::Domain(_) => (StatusCode::UNPROCESSABLE_ENTITY, "command refused"),
            Error::TooManyConflicts { .. } => (StatusCode::CONFLICT, "conflict"),
            Error::UnknownCommand { .. } => (StatusCode::NOT_FOUND, "unknown command"),
            Error::UnknownQuery { .. } => (StatusCode::NOT_FOUND, "unknown query"),
            Error::UnknownProjection { .. } => (StatusCode::NOT_FOUND, "unknown projection"),
            Error::UnknownProcess { .. } => (StatusCode::NOT_FOUND, "unknown process manager"),
            Error::InvalidBody { .. } => (StatusCode::BAD_REQUEST, "invalid body"),
            Error::Store(StoreError::InvalidStreamId(_) | StoreError::InvalidAppend { .. }) => {
                (StatusCode::BAD_REQUEST, "invalid request")
            }
            Error::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "read model not caught up"),
            Error::Store(e) if e.is_transient() => {
                (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
            }
            Error::ProjectionFailed { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "read model stopped")
            }
            Error::Shutdown => (StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        };
        Self::new(status, title, error.to_string())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<CommandError<E>> for Problem {
    fn from(error: CommandError<E>) -> Self {
        Self::from_error(&Error::from(error))
    }
}

impl From<Error> for Problem {
    fn from(error: Error) -> Self {
        Self::from_error(&error)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A `Problem` is plain strings and a number: it always encodes.
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BodyError;
    use crate::record::StreamId;

    #[test]
    fn each_kind_of_error_has_its_status() {
        let cases: Vec<(Error, u16)> = vec![
            (Error::Domain("overdrawn".into()), 422),
            (
                Error::TooManyConflicts {
                    command: "Deposit",
                    stream: StreamId::new("account", "a"),
                    attempts: 16,
                },
                409,
            ),
            (
                Error::UnknownCommand {
                    name: "Nope".into(),
                    known: vec!["Deposit"],
                },
                404,
            ),
            (
                Error::UnknownQuery {
                    name: "Nope".into(),
                    known: vec![],
                },
                404,
            ),
            (
                Error::InvalidBody {
                    kind: "command",
                    name: "Deposit",
                    reason: BodyError::TooLarge { limit: 1 },
                },
                400,
            ),
            (
                Error::Timeout {
                    projection: "balances",
                    wanted: 9,
                    reached: 3,
                    waited_ms: 5,
                },
                504,
            ),
            (
                Error::Store(StoreError::Backend {
                    message: "connection lost".into(),
                    source: None,
                }),
                503,
            ),
            (Error::Shutdown, 503),
        ];
        for (error, status) in cases {
            let problem = Problem::from_error(&error);
            assert_eq!(problem.status, status, "{error}");
            assert_eq!(problem.detail, error.to_string());
        }
    }

    #[test]
    fn a_problem_is_problem_json() {
        let response = Problem::new(StatusCode::CONFLICT, "conflict", "again").into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
