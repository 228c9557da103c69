//! Native session handlers (`/api/v1/sessions`).

use axum::extract::{Extension, State};
use spool_api_types as api;
use spool_control::{Caller, Session, SessionSettings, Statement};

use crate::AppState;
use crate::audit::Note;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::respond::Created;

pub fn session_view(state: &AppState, session: Session) -> api::SessionView {
    let given = spool_control::SessionFiles::given;
    api::SessionView {
        jars: given(&session.files.jars),
        py_files: given(&session.files.py_files),
        files: given(&session.files.files),
        archives: given(&session.files.archives),
        connect_url: session
            .connect
            .then(|| crate::connect::url(state, session.id))
            .flatten(),
        id: session.id,
        name: session.name,
        kind: session.kind,
        state: session.state,
        state_reason: session.state_reason,
        owner: session.owner,
        runtime: session.runtime,
        compute: session.compute,
        identity: session.identity,
        timeout_minutes: session.idle_timeout.as_secs_f64() / 60.0,
        cluster_id: session.cluster_id,
        spark_app_id: session.spark_app_id,
        spark_ui_url: session.spark_ui_url,
        created_at: session.created_at,
        last_activity_at: session.last_activity_at,
        ended_at: session.ended_at,
        phases: session
            .phases
            .into_iter()
            .map(|p| api::PhaseView {
                status: p.status,
                at: p.at,
            })
            .collect(),
    }
}

pub fn statement_view(statement: Statement) -> api::StatementView {
    api::StatementView {
        id: statement.seq,
        kind: statement.kind,
        code: statement.code,
        state: statement.state,
        output: statement.output,
        progress: statement.progress,
        started: statement.started_ms,
        completed: statement.completed_ms,
    }
}

/// Finds a session by id or name.
async fn find(state: &AppState, user: &Caller, key: &str) -> ApiResult<Session> {
    Ok(state.control.session_by_key(user, key).await?)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    Json(body): Json<api::CreateSession>,
) -> ApiResult<Created<api::SessionView>> {
    if let Some(name) = &body.name {
        note.target(name);
    }
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
        livy: false,
        files: spool_control::FileLists {
            jars: body.jars,
            py_files: body.py_files,
            files: body.files,
            archives: body.archives,
        },
    };
    let session = state.control.create_session(&user, settings).await?;
    crate::audit::note_session(&note, &session);
    Ok(Created(session_view(&state, session)))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::SessionList>> {
    let sessions = state.control.sessions(&user).await?;
    Ok(Json(api::SessionList {
        sessions: sessions
            .into_iter()
            .rev()
            .map(|s| session_view(&state, s))
            .collect(),
    }))
}

pub async fn show(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(key): Path<String>,
) -> ApiResult<Json<api::SessionView>> {
    Ok(Json(session_view(&state, find(&state, &user, &key).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(key): Path<String>,
) -> ApiResult<Json<api::SessionView>> {
    let session = find(&state, &user, &key).await?;
    let session = state.control.delete_session(&user, session.id).await?;
    Ok(Json(session_view(&state, session)))
}

pub async fn create_statement(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(key): Path<String>,
    Json(body): Json<api::CreateStatement>,
) -> ApiResult<Created<api::StatementView>> {
    let session = find(&state, &user, &key).await?;
    let statement = state
        .control
        .submit_statement(&user, session.id, &body.code, body.kind.as_deref())
        .await?;
    Ok(Created(statement_view(statement)))
}

pub async fn show_statement(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path((key, seq)): Path<(String, i64)>,
) -> ApiResult<Json<api::StatementView>> {
    let session = find(&state, &user, &key).await?;
    Ok(Json(statement_view(
        state.control.statement(&user, session.id, seq).await?,
    )))
}

pub async fn cancel_statement(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path((key, seq)): Path<(String, i64)>,
) -> ApiResult<Json<api::StatementView>> {
    let session = find(&state, &user, &key).await?;
    state
        .control
        .cancel_statement(&user, session.id, seq)
        .await?;
    Ok(Json(statement_view(
        state.control.statement(&user, session.id, seq).await?,
    )))
}
