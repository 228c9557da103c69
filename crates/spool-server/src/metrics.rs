//! `GET /metrics` (Prometheus' text exposition) and the middleware that counts and times every
//! answered request by its route.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use spool_control::Action;

use crate::AppState;
use crate::error::ApiError;

/// Where the metrics are served (outside `/api/v1`, where scrapers look by default).
pub const ROUTE: &str = "/metrics";

/// The route label of requests no route matched: unknown paths must not become label values.
const UNMATCHED: &str = "unmatched";

pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if state.control.config().metrics_auth {
        crate::auth::caller(&state, &headers, None)
            .await?
            .require(Action::ViewMetrics)?;
    }
    let text = state.control.render_metrics().await?;
    Ok(([(CONTENT_TYPE, spool_control::metrics::CONTENT_TYPE)], text).into_response())
}

/// Counts each answer by method, route template and status, and times it to its head (a
/// streamed body, a download or a log, goes on after).
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    state.control.metrics().http_request(
        method.as_str(),
        route.as_ref().map_or(UNMATCHED, |r| r.as_str()),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
