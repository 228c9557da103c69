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

/// A page of a driver's Spark UI, passed through with the driver's own status, type and
/// redirect.
pub struct UiPage(pub spool_control::spark_ui::UiPage);

impl IntoResponse for UiPage {
    fn into_response(self) -> Response {
        let page = self.0;
        let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = (status, page.body).into_response();
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_TYPE, page.content_type),
            (header::LOCATION, page.location),
        ] {
            if let Some(value) = value.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// `303 See Other` to a path: where a studio form or page sends the browser next.
pub struct SeeOther(pub String);

impl IntoResponse for SeeOther {
    fn into_response(self) -> Response {
        (StatusCode::SEE_OTHER, [(header::LOCATION, self.0)]).into_response()
    }
}
