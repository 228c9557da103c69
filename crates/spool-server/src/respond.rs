//! Success responses whose status is not `200 OK`; with `error.rs`, the only place that picks
//! HTTP status codes, so handlers name none.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `201 Created` with the new thing as JSON.
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, axum::Json(self.0)).into_response()
    }
}

/// `201 Created` with a `Location` header, as Livy answers a new session, statement or batch.
pub struct CreatedAt<T> {
    /// The new thing's path, e.g. `/sessions/3`.
    pub location: String,
    pub body: T,
}

impl<T: Serialize> IntoResponse for CreatedAt<T> {
    fn into_response(self) -> Response {
        (
            StatusCode::CREATED,
            [(header::LOCATION, self.location)],
            axum::Json(self.body),
        )
            .into_response()
    }
}

/// `204 No Content`: done, nothing to show.
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}
