//! `ApiError`: the only place that picks HTTP status codes for the native API.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use spool_api_types::{ErrorBody, ErrorDetail};
use spool_control::ControlError;

/// An error as the native API returns it: a status and `{"error": {"code", "message", "target"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub target: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            target: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> ApiError {
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
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{kind} `{name}` not found"),
        )
        .target(name)
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound { kind, name } => ApiError::not_found(kind, &name),
            ControlError::Invalid { target, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).target(target)
            }
            ControlError::Conflict { target, message } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message).target(target)
            }
            ControlError::TooLarge { message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "exceeds_capacity",
                message,
            )
            .target("conf"),
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
