//! Authentication of every request: `Authorization: Bearer <token>`, or HTTP basic auth with
//! the user's name and their token as password (what Livy clients send).

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;

use crate::AppState;
use crate::error::ApiError;

pub async fn require_user(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(header) = header else {
        return Err(ApiError::unauthorized(
            "missing `Authorization` header; send `Authorization: Bearer <token>`",
        ));
    };
    let (claimed_name, token) = if let Some(token) = header.strip_prefix("Bearer ") {
        (None, token.trim().to_string())
    } else if let Some(encoded) = header.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::unauthorized("malformed basic credentials"))?;
        let (name, token) = decoded
            .split_once(':')
            .ok_or_else(|| ApiError::unauthorized("malformed basic credentials"))?;
        (Some(name.to_string()), token.to_string())
    } else {
        return Err(ApiError::unauthorized(
            "unsupported `Authorization` scheme; use `Bearer <token>`",
        ));
    };
    let user = state
        .control
        .authenticate(&token)
        .await
        .map_err(ApiError::from)?
        .filter(|user| claimed_name.as_deref().is_none_or(|name| name == user.name))
        .ok_or_else(|| ApiError::unauthorized("invalid token"))?;
    request.extensions_mut().insert(user);
    Ok(next.run(request).await)
}
