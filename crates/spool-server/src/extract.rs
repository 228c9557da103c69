//! axum's extractors with rejections in the API's own error shape: `Json`, `Query` and `Path`
//! answer `{"error": ...}` (`ApiError`) on native routes, `LivyQuery` and `LivyPath` Livy's
//! `{"msg": ...}` (`LivyError`), instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, LivyError};

/// A JSON body (`axum::Json`) whose rejection is an `ApiError`; as a response, plain JSON.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Json(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string (`axum::extract::Query`) whose rejection is an `ApiError`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// Path parameters (`axum::extract::Path`) whose rejection is an `ApiError`.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// A query string whose rejection is a `LivyError`.
pub struct LivyQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for LivyQuery<T> {
    type Rejection = LivyError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, LivyError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(LivyQuery(value))
    }
}

/// Path parameters whose rejection is a `LivyError`.
pub struct LivyPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for LivyPath<T> {
    type Rejection = LivyError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, LivyError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(LivyPath(value))
    }
}
