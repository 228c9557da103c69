//! axum's extractors with rejections in the API's own error shape: `Json`, `Query`, `Path` and
//! `Body` answer `{"error": ...}` (`ApiError`) on native routes, `LivyQuery`, `LivyPath` and
//! `LivyBody` Livy's `{"msg": ...}` (`LivyError`), instead of axum's plain text.
//!
//! Each is axum's own extractor with the rejection converted (`axum::extract::FromRequest`'s
//! derive, `via` and `rejection`, or by hand for `Bytes`); nothing here parses anything itself.

use axum::extract::{FromRequest, FromRequestParts, Request};
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

/// A whole body whose rejection is a `LivyError`.
pub struct LivyBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for LivyBody {
    type Rejection = LivyError;

    async fn from_request(request: Request, state: &S) -> Result<LivyBody, LivyError> {
        axum::body::Bytes::from_request(request, state)
            .await
            .map(LivyBody)
            .map_err(LivyError::from)
    }
}

/// A query string whose rejection is a `LivyError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(LivyError))]
pub struct LivyQuery<T>(pub T);

/// Path parameters whose rejection is a `LivyError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(LivyError))]
pub struct LivyPath<T>(pub T);

/// An upload's body, streamed into a temp file under the data dir (removed when this is
/// dropped), never held in memory; more than the `max_upload` setting is a 413.
pub struct Upload(pub tempfile::TempPath);

impl FromRequest<crate::AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &crate::AppState) -> Result<Upload, ApiError> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let limit = state
            .control
            .config()
            .max_upload
            .0
            .saturating_mul(1024 * 1024);
        let dir = state.control.upload_dir().map_err(ApiError::internal)?;
        let temp = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(&dir)
            .map_err(ApiError::internal)?;
        let (file, path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut written: u64 = 0;
        let mut stream = request.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request("body", format!("read the upload: {e}")))?;
            written = written.saturating_add(chunk.len() as u64);
            if written > limit {
                // `path` is dropped here, which removes what was written.
                return Err(ApiError::too_large());
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        file.flush().await.map_err(ApiError::internal)?;
        Ok(Upload(path))
    }
}
