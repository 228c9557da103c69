//! Error responses, and with `respond.rs` the only place that picks HTTP status codes:
//! `ApiError` renders the native API's `{"error": {"code", "message", "target"}}`, `LivyError`
//! Livy's `{"msg": ...}`. Both also render the rejections of the extractors in `extract.rs`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use spool_api_types::{ErrorBody, ErrorDetail};
use spool_control::ControlError;

/// An error as the native API returns it: a status and `{"error": {"code", "message", "target"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    target: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            target: None,
        }
    }

    fn target(mut self, target: impl Into<String>) -> ApiError {
        self.target = Some(target.into());
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).target("Authorization")
    }

    pub fn bad_request(target: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).target(target)
    }

    pub fn not_found(kind: &str, name: &str) -> ApiError {
        ApiError::not_found_because(name, format!("{kind} `{name}` not found"))
    }

    /// A 404 about `target` that says why.
    pub fn not_found_because(target: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message).target(target)
    }

    /// A path no route serves.
    pub fn no_route(path: &str) -> ApiError {
        ApiError::not_found_because(path, format!("no route for `{path}`"))
    }

    /// A failure with no detail for the client; the cause is logged here, where it is handled.
    pub fn internal(error: impl Into<anyhow::Error>) -> ApiError {
        ApiError::from(ControlError::Internal(error.into()))
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound { kind, name } => ApiError::not_found(kind, &name),
            ControlError::Invalid { target, message } => ApiError::bad_request(&target, message),
            ControlError::Conflict { target, message } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message).target(target)
            }
            ControlError::TooLarge { message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "exceeds_capacity",
                message,
            )
            .target("conf"),
            ControlError::Forbidden { message } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            ControlError::Internal(e) => {
                // Logged here, where it is handled; the client gets no internals.
                tracing::error!(error = format!("{e:#}"), "request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

/// What serde said about a body, query or path, without axum's prefix.
fn cause(rejection: &dyn std::error::Error) -> String {
    rejection
        .source()
        .map_or_else(|| rejection.to_string(), ToString::to_string)
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match &rejection {
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
                "body",
                format!("the request body is not valid JSON: {}", cause(e)),
            ),
            JsonRejection::JsonDataError(e) => ApiError::bad_request(
                "body",
                format!("the request body has the wrong shape: {}", cause(e)),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::bad_request(
                "Content-Type",
                "the request body must be JSON, sent with `Content-Type: application/json`",
            ),
            // The body could not be read (e.g. it is larger than the limit).
            _ => ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
                .target("body"),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(
            "query",
            format!("the query string is invalid: {}", cause(&rejection)),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match &rejection {
            PathRejection::FailedToDeserializePathParams(e)
                if e.status() == StatusCode::BAD_REQUEST =>
            {
                ApiError::bad_request("path", format!("the path is invalid: {}", e.kind()))
            }
            // A route whose parameters do not fit its handler: a bug, not the client's fault.
            _ => ApiError::internal(anyhow::anyhow!(rejection.body_text())),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                target: self.target,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A Livy error: a status and `{"msg": ...}`, with Livy's texts.
#[derive(Debug)]
pub struct LivyError {
    status: StatusCode,
    msg: String,
}

impl LivyError {
    pub fn bad_request(msg: impl Into<String>) -> LivyError {
        LivyError {
            status: StatusCode::BAD_REQUEST,
            msg: msg.into(),
        }
    }

    pub fn not_found(msg: impl Into<String>) -> LivyError {
        LivyError {
            status: StatusCode::NOT_FOUND,
            msg: msg.into(),
        }
    }

    pub fn forbidden(msg: impl Into<String>) -> LivyError {
        LivyError {
            status: StatusCode::FORBIDDEN,
            msg: msg.into(),
        }
    }

    /// Livy's answer for a session id or name that the caller has no session by.
    pub fn no_session(key: &str) -> LivyError {
        LivyError::not_found(format!("Session '{key}' not found."))
    }
}

impl From<ControlError> for LivyError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound {
                kind: "session",
                name,
            } => LivyError::no_session(&name),
            ControlError::NotFound {
                kind: "statement", ..
            } => LivyError::not_found("Statement not found"),
            ControlError::NotFound { kind, name } => {
                LivyError::not_found(format!("{kind} '{name}' not found."))
            }
            ControlError::Invalid { message, .. } => {
                LivyError::bad_request(format!("Rejected, Reason: {message}"))
            }
            ControlError::Conflict { message, .. } => LivyError::bad_request(message),
            ControlError::TooLarge { message } => LivyError::bad_request(message),
            ControlError::Forbidden { message } => LivyError::forbidden(message),
            ControlError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "livy request failed");
                LivyError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    msg: "internal error; see the server log".into(),
                }
            }
        }
    }
}

impl From<QueryRejection> for LivyError {
    fn from(rejection: QueryRejection) -> Self {
        LivyError::bad_request(rejection.body_text())
    }
}

impl From<PathRejection> for LivyError {
    fn from(rejection: PathRejection) -> Self {
        match &rejection {
            PathRejection::FailedToDeserializePathParams(e)
                if e.status() == StatusCode::BAD_REQUEST =>
            {
                LivyError::bad_request(e.body_text())
            }
            _ => LivyError::from(ControlError::Internal(anyhow::anyhow!(
                rejection.body_text()
            ))),
        }
    }
}

impl IntoResponse for LivyError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({"msg": self.msg}))).into_response()
    }
}

pub type LivyResult<T> = Result<T, LivyError>;
