//! axum's extractors with rejections in the API's own error shape: `Json`, `Query` and `Path`
//! answer `{"error": ...}` (`ApiError`) on native routes, `LivyQuery` and `LivyPath` Livy's
//! `{"msg": ...}` (`LivyError`), instead of axum's plain text.
//!
//! Each is axum's own extractor with the rejection converted (`axum::extract::FromRequest`'s
//! derive, `via` and `rejection`); nothing here parses anything itself.

use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, LivyError};

/// A JSON body (`axum::Json`) whose rejection is an `ApiError`; as a response, plain JSON.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string (`axum::extract::Query`) whose rejection is an `ApiError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters (`axum::extract::Path`) whose rejection is an `ApiError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// A query string whose rejection is a `LivyError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(LivyError))]
pub struct LivyQuery<T>(pub T);

/// Path parameters whose rejection is a `LivyError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(LivyError))]
pub struct LivyPath<T>(pub T);
