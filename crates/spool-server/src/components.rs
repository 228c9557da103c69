//! Handlers of registered components (`/api/v1/components`).

use axum::extract::{Extension, State};
use serde::Deserialize;
use spool_api_types as api;
use spool_control::Caller;

use crate::AppState;
use crate::audit::Note;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path as UrlPath, Query};
use crate::respond::{Created, NoContent};

pub async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    Json(body): Json<api::CreateComponent>,
) -> ApiResult<Created<api::ComponentView>> {
    let spec: spool_spec::component::ComponentSpec =
        serde_json::from_value(body.spec).map_err(|e| {
            ApiError::bad_request("spec", format!("the component spec is malformed: {e}"))
        })?;
    if let Some(name) = &spec.name {
        note.target(name);
    }
    let view = state.control.create_component(&user, spec).await?;
    note.target(format!("{}:{}", view.name, view.version));
    Ok(Created(view))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Archived versions (and names) too.
    #[serde(default)]
    include_archived: bool,
    /// Every version, not only the latest of each name.
    #[serde(default)]
    all_versions: bool,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<api::ComponentList>> {
    Ok(Json(
        state
            .control
            .components(&user, query.include_archived, query.all_versions)
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    #[serde(default)]
    version: Option<String>,
    /// `latest` (or `default`).
    #[serde(default)]
    label: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<ShowQuery>,
) -> ApiResult<Json<api::ComponentView>> {
    Ok(Json(
        state
            .control
            .component(
                &user,
                &name,
                query.version.as_deref(),
                query.label.as_deref(),
            )
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveQuery {
    /// One version; without it, the name with all its versions.
    #[serde(default)]
    version: Option<String>,
}

async fn set_archived(
    state: AppState,
    user: Caller,
    note: Note,
    name: String,
    version: Option<String>,
    archived: bool,
) -> ApiResult<NoContent> {
    note.target(match &version {
        Some(version) => format!("{name}:{version}"),
        None => name.clone(),
    });
    state
        .control
        .set_component_archived(&user, &name, version.as_deref(), archived)
        .await?;
    Ok(NoContent)
}

pub async fn archive(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<ArchiveQuery>,
) -> ApiResult<NoContent> {
    set_archived(state, user, note, name, query.version, true).await
}

pub async fn restore(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<ArchiveQuery>,
) -> ApiResult<NoContent> {
    set_archived(state, user, note, name, query.version, false).await
}
