//! Error responses, and with `respond.rs` the only place that picks HTTP status codes:
//! `ApiError` renders the native API's `{"error": {"code", "message", "target"}}`, `LivyError`
//! Livy's `{"msg": ...}`. Both also render the rejections of the extractors in `extract.rs`.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
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

    /// The HTTP status the error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the error says, without its code or target.
    pub fn message(&self) -> &str {
        &self.message
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

    /// A route that exists, called with a method it does not serve.
    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "`{path}` does not serve `{method}`; see `/api/v1/openapi.json` for its methods"
            ),
        )
        .target("method")
    }

    /// A body over its route's limit.
    pub fn too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            TOO_LARGE,
        )
        .target("body")
    }

    /// A failure with no detail for the client; the cause is logged here, where it is handled.
    pub fn internal(error: impl Into<anyhow::Error>) -> ApiError {
        ApiError::from(ControlError::Internal(error.into()))
    }

    /// What a handler that panicked answers (`CatchPanicLayer`); the panic is logged here.
    pub fn panicked(panic: &(dyn std::any::Any + Send)) -> ApiError {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        tracing::error!(panic = message, "request handler panicked");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

/// Why a body was refused for its size; the limits are those of `lib.rs`.
const TOO_LARGE: &str = "the request body is larger than this route accepts: 1 MiB for JSON, 4 MiB for jobs and statements, `max_upload` under `[server]` in the server's config.toml for uploads";

/// Whether a body could not be read because it is over the route's limit.
fn over_limit(rejection: &BytesRejection) -> bool {
    rejection.status() == StatusCode::PAYLOAD_TOO_LARGE
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound { kind, name } => ApiError::not_found(kind, &name),
            ControlError::Missing { target, message } => {
                ApiError::not_found_because(&target, message)
            }
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
            JsonRejection::BytesRejection(e) => ApiError::from_bytes_rejection(e),
            _ => ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
                .target("body"),
        }
    }
}

impl ApiError {
    fn from_bytes_rejection(rejection: &BytesRejection) -> ApiError {
        if over_limit(rejection) {
            return ApiError::too_large();
        }
        // Otherwise the client stopped sending or sent a broken body.
        ApiError::bad_request(
            "body",
            format!("the request body could not be read: {}", cause(rejection)),
        )
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        ApiError::from_bytes_rejection(&rejection)
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

    /// A path no Livy route serves.
    pub fn no_route(path: &str) -> LivyError {
        LivyError::not_found(format!("no route for `{path}`"))
    }

    /// A Livy route called with a method it does not serve.
    pub fn method_not_allowed(method: &str, path: &str) -> LivyError {
        LivyError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            msg: format!("`{path}` does not serve `{method}`"),
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
            ControlError::Missing { message, .. } => LivyError::not_found(message),
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

impl From<BytesRejection> for LivyError {
    fn from(rejection: BytesRejection) -> Self {
        if over_limit(&rejection) {
            return LivyError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                msg: TOO_LARGE.into(),
            };
        }
        LivyError::bad_request(format!(
            "the request body could not be read: {}",
            cause(&rejection)
        ))
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

/// An error of a Spool Studio page: a sign-in redirect, or an HTML page with the status and
/// the message the API would give.
#[derive(Debug)]
pub enum StudioError {
    /// No valid studio session: to the sign-in form, which returns to `next`.
    SignIn {
        next: String,
    },
    /// A refused sign-in, with the form to try again.
    Unauthorized(crate::studio::Html),
    Page {
        status: StatusCode,
        message: String,
    },
}

impl StudioError {
    pub fn forbidden(message: impl Into<String>) -> StudioError {
        StudioError::Page {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> StudioError {
        StudioError::Page {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> StudioError {
        tracing::error!(error = %error, "render a studio page");
        StudioError::Page {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the page could not be rendered; the server's log says why".into(),
        }
    }
}

impl From<ApiError> for StudioError {
    fn from(e: ApiError) -> StudioError {
        StudioError::Page {
            status: e.status,
            message: e.message,
        }
    }
}

impl From<ControlError> for StudioError {
    fn from(e: ControlError) -> StudioError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for StudioError {
    fn into_response(self) -> Response {
        match self {
            // The sign-in form in place of the page, which it returns to.
            StudioError::SignIn { next } => match crate::studio::signin_answer(&next) {
                Ok((jar, page)) => (StatusCode::UNAUTHORIZED, jar, page).into_response(),
                Err(e) => e.into_response(),
            },
            StudioError::Unauthorized(page) => (StatusCode::UNAUTHORIZED, page).into_response(),
            StudioError::Page { status, message } => {
                match crate::studio::error_page(status, &message) {
                    Ok(page) => (status, page).into_response(),
                    Err(_) => (status, message).into_response(),
                }
            }
        }
    }
}
