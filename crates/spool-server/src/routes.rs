//! Handlers of the native API (`/api/v1`).

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use spool_api_types as api;
use spool_control::{Caller, Control, Job};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path as UrlPath, Query};
use crate::respond::{Created, NoContent};

pub async fn whoami(Extension(user): Extension<Caller>) -> Json<api::WhoAmI> {
    Json(api::WhoAmI {
        name: user.name,
        is_admin: user.is_admin,
    })
}

pub async fn catalog(State(state): State<AppState>) -> ApiResult<Json<api::CatalogView>> {
    Ok(Json(state.control.catalog().await?))
}

pub async fn create_user(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Json(body): Json<api::CreateUser>,
) -> ApiResult<Created<api::UserCreated>> {
    Ok(Created(state.control.create_user(&user, &body.name).await?))
}

pub async fn delete_user(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<NoContent> {
    state.control.delete_user(&user, &name).await?;
    Ok(NoContent)
}

pub async fn rotate_token(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::UserCreated>> {
    Ok(Json(state.control.rotate_token(&user, Some(&name)).await?))
}

pub async fn list_datastores(State(state): State<AppState>) -> ApiResult<Json<api::DatastoreList>> {
    Ok(Json(api::DatastoreList {
        datastores: state.control.datastores().await?,
    }))
}

pub async fn create_datastore(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Json(body): Json<api::CreateDatastore>,
) -> ApiResult<Created<api::DatastoreView>> {
    Ok(Created(
        state.control.create_datastore(&user, &body.name).await?,
    ))
}

pub async fn upload_to_datastore(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    body: Bytes,
) -> ApiResult<Json<api::Uploaded>> {
    Ok(Json(state.control.upload_to_datastore(&name, &body).await?))
}

pub async fn create_snapshot(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Created<api::SnapshotCreated>> {
    let control = state.control.clone();
    let created = tokio::task::spawn_blocking(move || control.store_snapshot(&body))
        .await
        .map_err(ApiError::internal)??;
    Ok(Created(created))
}

pub async fn create_job(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Json(body): Json<api::CreateJob>,
) -> ApiResult<Created<api::JobView>> {
    let spec: spool_spec::JobSpec = serde_json::from_value(body.spec)
        .map_err(|e| ApiError::bad_request("spec", format!("the job spec is malformed: {e}")))?;
    let job = state.control.create_job(&user, spec).await?;
    Ok(Created(job_view(&state.control, job).await?))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default = "default_limit")]
    pub max_results: i64,
}

fn default_limit() -> i64 {
    100
}

pub async fn list_jobs(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<api::JobList>> {
    let found = state
        .control
        .jobs(&user, query.max_results.clamp(1, 10_000))
        .await?;
    let mut jobs = Vec::with_capacity(found.len());
    for job in found {
        jobs.push(job_view(&state.control, job).await?);
    }
    Ok(Json(api::JobList { jobs }))
}

pub async fn show_job(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::JobView>> {
    let job = state.control.job(&user, &name).await?;
    Ok(Json(job_view(&state.control, job).await?))
}

pub async fn cancel_job(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::JobView>> {
    let job = state.control.cancel_job(&user, &name).await?;
    Ok(Json(job_view(&state.control, job).await?))
}

pub async fn job_logs(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::LogList>> {
    let job = state.control.job(&user, &name).await?;
    let mut files = Vec::new();
    collect_files(&job.log_dir, &job.log_dir, &mut files);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Json(api::LogList { files }))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<api::LogFile>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(root, &path, out),
            Ok(t) if t.is_file() => {
                if let Ok(rel) = path.strip_prefix(root) {
                    out.push(api::LogFile {
                        path: rel.display().to_string(),
                        size: entry.metadata().map(|m| m.len()).unwrap_or(0),
                    });
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct OffsetQuery {
    #[serde(default)]
    pub offset: u64,
}

/// Returns a log file from `offset` on; `x-spool-size` tells the file's size, so followers know
/// where to continue.
pub async fn job_log_file(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath((name, path)): UrlPath<(String, String)>,
    Query(query): Query<OffsetQuery>,
) -> ApiResult<Response> {
    let job = state.control.job(&user, &name).await?;
    let file = spool_control::datastore::resolve_inside(&job.log_dir, &path)
        .map_err(|m| ApiError::bad_request("path", m))?;
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        // A log that does not exist yet reads as empty, so followers can start early.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let size = bytes.len() as u64;
    let start = query.offset.min(size) as usize;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("x-spool-size", HeaderValue::from(size));
    Ok((headers, bytes[start..].to_vec()).into_response())
}

/// A tar archive of a job's logs.
pub async fn download_logs(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    let job = state.control.job(&user, &name).await?;
    tar_response(job.log_dir, "logs".into()).await
}

/// A tar archive of one of a job's outputs.
pub async fn download_output(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath((name, output)): UrlPath<(String, String)>,
) -> ApiResult<Response> {
    let job = state.control.job(&user, &name).await?;
    let path = state.control.job_output_path(&job, &output).await?;
    if !path.exists() {
        return Err(ApiError::not_found_because(
            &output,
            format!("output `{output}` of job `{name}` has not been written"),
        ));
    }
    tar_response(path, output).await
}

async fn tar_response(path: PathBuf, name: String) -> ApiResult<Response> {
    let archive = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        if path.is_dir() {
            builder.append_dir_all(&name, &path)?;
        } else if path.is_file() {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(name.clone());
            builder.append_path_with_name(&path, Path::new(&name).join(file_name))?;
        }
        builder.into_inner()
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok((headers, archive).into_response())
}

pub async fn list_clusters(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::ClusterList>> {
    Ok(Json(api::ClusterList {
        clusters: state.control.clusters(&user).await?,
    }))
}

pub async fn events(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<Vec<api::EventView>>> {
    Ok(Json(state.control.events(&user, 200).await?))
}

pub async fn job_view(control: &Control, job: Job) -> ApiResult<api::JobView> {
    let cluster = match job.cluster_id {
        Some(id) => control.cluster(id).await?,
        None => None,
    };
    let spec = job.spec;
    let resources = match job.sizing {
        Some(s) => api::SizingView {
            driver_cores: s.driver_cores,
            driver_memory: s.driver_memory.to_spark(),
            executor_cores: s.executor_cores,
            executor_memory: s.executor_memory.to_spark(),
            executor_instances: s.executor_instances,
            dynamic_allocation: s
                .dynamic_allocation
                .map(|d| (d.min_executors, d.max_executors)),
        },
        None => api::SizingView {
            driver_cores: 0,
            driver_memory: String::new(),
            executor_cores: 0,
            executor_memory: String::new(),
            executor_instances: 0,
            dynamic_allocation: None,
        },
    };
    let tags = spec
        .get("tags")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    Ok(api::JobView {
        outputs: job.outputs,
        phases: job
            .phases
            .into_iter()
            .map(|p| api::PhaseView {
                status: p.status,
                at: p.at,
            })
            .collect(),
        description: spec
            .get("description")
            .and_then(|d| d.as_str())
            .map(str::to_string),
        tags,
        name: job.name,
        display_name: job.display_name,
        experiment_name: job.experiment_name,
        status: job.status,
        status_reason: job.status_reason,
        error: job.error,
        owner: job.owner,
        runtime: job.runtime,
        compute: job.compute,
        identity: job.identity,
        created_at: job.created_at,
        ended_at: job.ended_at,
        resources,
        cluster,
        spark_app_id: job.spark_app_id,
        spark_ui_url: job.spark_ui_url,
        spec,
    })
}

fn epoch_rfc3339(seconds: u64) -> String {
    chrono::DateTime::from_timestamp(seconds as i64, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn environment_view(info: spool_runtime::EnvInfo) -> api::EnvironmentView {
    api::EnvironmentView {
        key: info.env.key,
        runtime: info.env.runtime,
        pyspark: info.env.pyspark,
        requirements: info.env.requirements,
        python: info.env.python.display().to_string(),
        size_bytes: info.size_bytes,
        built_at: epoch_rfc3339(info.env.built_at),
        build_seconds: info.env.build_seconds,
        last_used: epoch_rfc3339(info.last_used),
    }
}

pub async fn list_environments(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<Vec<api::EnvironmentView>>> {
    let envs = state.control.environments(&user).await?;
    Ok(Json(envs.into_iter().map(environment_view).collect()))
}

pub async fn show_environment(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(key): UrlPath<String>,
) -> ApiResult<Json<api::EnvironmentView>> {
    Ok(Json(environment_view(
        state.control.environment(&user, &key).await?,
    )))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// Remove every environment not in use, not only those past the age and size limits.
    #[serde(default)]
    all: bool,
}

pub async fn prune_environments(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Json(body): Json<PruneRequest>,
) -> ApiResult<Json<api::EnvironmentsPruned>> {
    Ok(Json(api::EnvironmentsPruned {
        removed: state.control.prune_environments(&user, body.all).await?,
    }))
}

pub async fn attach_compute(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Json(body): Json<api::AttachCompute>,
) -> ApiResult<Created<api::ComputeView>> {
    let view = state
        .control
        .attach_compute(&user, &body.file, &body.yaml)
        .await?;
    Ok(Created(view))
}

pub async fn list_computes(
    State(state): State<AppState>,
    Extension(_user): Extension<Caller>,
) -> ApiResult<Json<Vec<api::ComputeView>>> {
    Ok(Json(state.control.computes().await?))
}

pub async fn show_compute(
    State(state): State<AppState>,
    Extension(_user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::ComputeView>> {
    Ok(Json(state.control.compute(&name).await?))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetachQuery {
    /// End the pool's running jobs and live sessions first.
    #[serde(default)]
    force: bool,
}

pub async fn detach_compute(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<DetachQuery>,
) -> ApiResult<NoContent> {
    state
        .control
        .detach_compute(&user, &name, query.force)
        .await?;
    Ok(NoContent)
}

pub async fn create_agent(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Json(body): Json<api::CreateAgent>,
) -> ApiResult<Created<api::AgentCreated>> {
    Ok(Created(
        state.control.create_agent(&user, &body.name).await?,
    ))
}

pub async fn list_agents(
    State(state): State<AppState>,
    Extension(_user): Extension<Caller>,
) -> ApiResult<Json<Vec<api::AgentView>>> {
    Ok(Json(state.control.agents().await?))
}

fn agent_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("agents send `Authorization: Bearer <agent token>`"))
}

/// A runtime as a tar, for an agent host that does not have it (agent token).
pub async fn agent_runtime(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(version): UrlPath<String>,
) -> ApiResult<Response> {
    let token = agent_token(&headers)?;
    let archive = match state
        .control
        .runtime_archive_for_agent(token, &version)
        .await
    {
        Ok(archive) => archive,
        Err(spool_control::ControlError::NotFound { .. }) => {
            return Err(ApiError::unauthorized("invalid agent token"));
        }
        Err(e) => return Err(e.into()),
    };
    let file = tokio::fs::File::open(&archive)
        .await
        .map_err(ApiError::internal)?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// An agent's heartbeat, authenticated by the agent's own bearer token.
pub async fn agent_heartbeat(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(report): Json<api::AgentReport>,
) -> ApiResult<Json<api::AgentOrders>> {
    let token = agent_token(&headers)?;
    match state.control.agent_heartbeat(token, report).await {
        Ok(orders) => Ok(Json(orders)),
        Err(spool_control::ControlError::NotFound { .. }) => {
            Err(ApiError::unauthorized("invalid agent token"))
        }
        Err(e) => Err(e.into()),
    }
}
