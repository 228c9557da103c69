//! Native session handlers (`/api/v1/sessions`).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use spool_api_types as api;
use spool_control::SessionSettings;
use spool_core::StatementState;
use spool_store::{SessionRow, StatementRow, UserRow};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

pub fn session_view(row: &SessionRow) -> api::SessionView {
    api::SessionView {
        id: row.id,
        name: row.name.clone(),
        kind: row.kind.clone(),
        state: row.state,
        state_reason: row.state_reason.clone(),
        owner: row.owner_name.clone(),
        runtime: row.runtime.clone(),
        compute: row.compute.clone(),
        identity: row.identity.clone(),
        timeout_minutes: row.idle_timeout_s as f64 / 60.0,
        cluster_id: row.cluster_id,
        spark_app_id: row.spark_app_id.clone(),
        spark_ui_url: row.spark_ui_url.clone(),
        created_at: row.created_at.clone(),
        last_activity_at: row.last_activity_at.clone(),
        ended_at: row.ended_at.clone(),
        phases: row
            .phases()
            .into_iter()
            .map(|p| api::PhaseView {
                status: p.status,
                at: p.at,
            })
            .collect(),
    }
}

pub fn statement_view(row: &StatementRow) -> api::StatementView {
    api::StatementView {
        id: row.seq,
        kind: row.kind.clone(),
        code: row.code.clone(),
        state: row.state,
        output: row
            .output_json
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .filter(|_| {
                matches!(
                    row.state,
                    StatementState::Available | StatementState::Cancelled
                )
            }),
        progress: row.progress,
        started: row.started_ms,
        completed: row.completed_ms,
    }
}

/// Finds a session by id or name.
async fn find(state: &AppState, user: &UserRow, key: &str) -> ApiResult<SessionRow> {
    let id = match key.parse::<i64>() {
        Ok(id) => id,
        Err(_) => {
            state
                .control
                .store()
                .session_by_name(key)
                .await
                .map_err(|e| ApiError::from(spool_control::ControlError::from(e)))?
                .ok_or_else(|| ApiError::not_found("session", key))?
                .id
        }
    };
    state
        .control
        .session(user, id)
        .await
        .map_err(|_| ApiError::not_found("session", key))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<UserRow>,
    Json(body): Json<api::CreateSession>,
) -> ApiResult<(StatusCode, Json<api::SessionView>)> {
    let settings = SessionSettings {
        kind: Some(body.kind.unwrap_or_else(|| "pyspark".into())),
        name: body.name,
        runtime_version: body.runtime_version,
        driver_memory: body.driver_memory,
        driver_cores: body.driver_cores,
        executor_memory: body.executor_memory,
        executor_cores: body.executor_cores,
        num_executors: body.executors,
        dynamic_allocation: match (body.min_executors, body.max_executors) {
            (None, None) => None,
            (min, max) => {
                let min = min.unwrap_or(1);
                Some((min, max.unwrap_or(min)))
            }
        },
        instance_type: body.instance_type,
        conf: body.conf,
        idle_timeout_minutes: body.timeout_minutes,
        compute: body.compute,
        conda_file: body.conda_file.map(|text| {
            (
                body.conda_file_name
                    .unwrap_or_else(|| "conda_file".to_string()),
                text,
            )
        }),
    };
    let row = state.control.create_session(&user, settings).await?;
    Ok((StatusCode::CREATED, Json(session_view(&row))))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<UserRow>,
) -> ApiResult<Json<api::SessionList>> {
    let rows = state.control.sessions(&user).await?;
    Ok(Json(api::SessionList {
        sessions: rows.iter().rev().map(session_view).collect(),
    }))
}

pub async fn show(
    State(state): State<AppState>,
    Extension(user): Extension<UserRow>,
    Path(key): Path<String>,
) -> ApiResult<Json<api::SessionView>> {
    Ok(Json(session_view(&find(&state, &user, &key).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<UserRow>,
    Path(key): Path<String>,
) -> ApiResult<Json<api::SessionView>> {
    let session = find(&state, &user, &key).await?;
    let row = state.control.delete_session(&user, session.id).await?;
    Ok(Json(session_view(&row)))
}

pub async fn create_statement(
    State(state): State<AppState>,
    Extension(user): Extension<UserRow>,
    Path(key): Path<String>,
    Json(body): Json<api::CreateStatement>,
) -> ApiResult<(StatusCode, Json<api::StatementView>)> {
    let session = find(&state, &user, &key).await?;
    let row = state
        .control
        .submit_statement(&user, session.id, &body.code, body.kind.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(statement_view(&row))))
}

pub async fn show_statement(
    State(state): State<AppState>,
    Extension(user): Extension<UserRow>,
    Path((key, seq)): Path<(String, i64)>,
) -> ApiResult<Json<api::StatementView>> {
    let session = find(&state, &user, &key).await?;
    Ok(Json(statement_view(
        &state.control.statement(&user, session.id, seq).await?,
    )))
}

pub async fn cancel_statement(
    State(state): State<AppState>,
    Extension(user): Extension<UserRow>,
    Path((key, seq)): Path<(String, i64)>,
) -> ApiResult<Json<api::StatementView>> {
    let session = find(&state, &user, &key).await?;
    state
        .control
        .cancel_statement(&user, session.id, seq)
        .await?;
    Ok(Json(statement_view(
        &state.control.statement(&user, session.id, seq).await?,
    )))
}
