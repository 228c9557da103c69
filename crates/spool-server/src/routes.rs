//! Handlers of the native API (`/api/v1`).

use std::path::Path;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use spool_api_types as api;
use spool_control::{Caller, Control, Download, Job, UserTree, datastore};

use crate::AppState;
use crate::audit::Note;
use crate::auth::Agent;
use crate::download;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path as UrlPath, Query, Upload};
use crate::respond::{Created, NoContent};
use spool_control::spark_ui::UiOf;

pub async fn whoami(Extension(user): Extension<Caller>) -> Json<api::WhoAmI> {
    Json(api::WhoAmI {
        is_admin: user.sees_everything(),
        role: user.role,
        name: user.name,
    })
}

pub async fn catalog(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::CatalogView>> {
    Ok(Json(state.control.catalog(&user).await?))
}

pub async fn create_user(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    Json(body): Json<api::CreateUser>,
) -> ApiResult<Created<api::UserCreated>> {
    note.target(&body.name);
    Ok(Created(
        state
            .control
            .create_user(&user, &body.name, body.role.as_deref())
            .await?,
    ))
}

pub async fn list_users(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::UserList>> {
    Ok(Json(api::UserList {
        users: state.control.users(&user).await?,
    }))
}

pub async fn show_user(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::UserView>> {
    Ok(Json(state.control.user(&user, &name).await?))
}

/// Changes a user's workspace role (Owners only).
pub async fn update_user(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    Json(body): Json<api::UpdateUser>,
) -> ApiResult<Json<api::UserView>> {
    Ok(Json(
        state.control.update_user(&user, &name, &body.role).await?,
    ))
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

pub async fn list_datastores(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::DatastoreList>> {
    Ok(Json(api::DatastoreList {
        datastores: state.control.datastores(&user).await?,
    }))
}

pub async fn create_datastore(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    Json(body): Json<api::CreateDatastore>,
) -> ApiResult<Created<api::DatastoreView>> {
    note.target(&body.name);
    Ok(Created(
        state
            .control
            .create_datastore(&user, &body.name, body.path.as_deref())
            .await?,
    ))
}

pub async fn upload_to_datastore(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    Upload(body): Upload,
) -> ApiResult<Json<api::Uploaded>> {
    Ok(Json(
        state
            .control
            .upload_to_datastore(&user, &name, body)
            .await?,
    ))
}

pub async fn create_snapshot(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    Upload(body): Upload,
) -> ApiResult<Created<api::SnapshotCreated>> {
    let control = state.control.clone();
    let created = tokio::task::spawn_blocking(move || {
        control.store_snapshot::<std::path::Path>(&user, &body)
    })
    .await
    .map_err(ApiError::internal)??;
    note.target(&created.code);
    Ok(Created(created))
}

pub async fn create_job(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    Json(body): Json<api::CreateJob>,
) -> ApiResult<Created<api::JobView>> {
    let malformed = |e: serde_json::Error| {
        ApiError::bad_request("spec", format!("the job spec is malformed: {e}"))
    };
    if let Some(name) = body.spec.get("name").and_then(|n| n.as_str()) {
        note.target(name);
    }
    // A Spark job's spec has no `type`; other kinds say theirs.
    let job = match body.spec.get("type").and_then(|t| t.as_str()) {
        Some("command") => {
            let spec: spool_spec::CommandSpec =
                serde_json::from_value(body.spec).map_err(malformed)?;
            state.control.create_command_job(&user, spec).await?
        }
        Some("pipeline") => {
            let mut body_spec = body.spec;
            if let Some(map) = body_spec.as_object_mut() {
                map.remove("type");
            }
            let spec: spool_spec::pipeline::PipelineSpec =
                serde_json::from_value(body_spec).map_err(malformed)?;
            state.control.create_pipeline(&user, spec).await?
        }
        None => {
            let spec: spool_spec::JobSpec = serde_json::from_value(body.spec).map_err(malformed)?;
            state.control.create_job(&user, spec).await?
        }
        Some(other) => {
            return Err(ApiError::bad_request(
                "spec.type",
                format!(
                    "unknown job type `{other}`; accepted: `command`, `pipeline` (a Spark job's spec has no `type`)"
                ),
            ));
        }
    };
    note.target(&job.name);
    if let Some(principal) = &job.principal {
        note.identity(principal);
    }
    Ok(Created(job_view(&state.control, job).await?))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default = "default_limit")]
    pub max_results: i64,
    /// Lists the nodes of this pipeline instead.
    #[serde(default)]
    pub parent_job_name: Option<String>,
}

fn default_limit() -> i64 {
    100
}

pub async fn list_jobs(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<api::JobList>> {
    let found = match &query.parent_job_name {
        Some(parent) => state.control.child_jobs(&user, parent).await?,
        None => {
            state
                .control
                .jobs(&user, query.max_results.clamp(1, 10_000))
                .await?
        }
    };
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
    let files = blocking(move || match UserTree::open(&job.log_dir) {
        Ok(tree) => Ok(tree.files()),
        // No log has been written yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(Json(api::LogList {
        files: files
            .into_iter()
            .map(|(path, size)| api::LogFile { path, size })
            .collect(),
    }))
}

/// Runs filesystem work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)
}

/// Opens `tree`, `None` when it does not exist yet.
fn open_tree(root: &Path) -> std::io::Result<Option<UserTree>> {
    match UserTree::open(root) {
        Ok(tree) => Ok(Some(tree)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct OffsetQuery {
    #[serde(default)]
    pub offset: u64,
}

/// Returns a log file from `offset` on, streamed; `x-spool-size` tells the file's size, so
/// followers know where to continue. The job's code can write into its log folder, so the file
/// is opened through a [`UserTree`]: a symlink in its place or leading out is refused.
pub async fn job_log_file(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath((name, path)): UrlPath<(String, String)>,
    Query(query): Query<OffsetQuery>,
) -> ApiResult<Response> {
    let job = state.control.job(&user, &name).await?;
    let relative = datastore::relative_path(&path).map_err(|m| ApiError::bad_request("path", m))?;
    let opened = blocking(move || -> std::io::Result<Option<(std::fs::File, u64)>> {
        let Some(tree) = open_tree(&job.log_dir)? else {
            return Ok(None);
        };
        match tree.open_file(&relative) {
            Ok(file) => {
                let size = file.metadata()?.len();
                Ok(Some((file, size)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await?
    .map_err(|e| match e {
        e if datastore::refused_link(&e) => ApiError::bad_request(
            "path",
            format!(
                "log `{path}` of job `{name}` is or goes through a symbolic link, which the server does not follow in a job's logs"
            ),
        ),
        e if e.kind() == std::io::ErrorKind::InvalidInput => ApiError::bad_request(
            "path",
            format!("`{path}` is not a log file of job `{name}`; `GET /jobs/{name}/logs` lists them"),
        ),
        e => ApiError::internal(e),
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // A log that does not exist yet reads as empty, so followers can start early.
    let Some((file, size)) = opened else {
        headers.insert("x-spool-size", HeaderValue::from(0));
        return Ok((headers, Vec::new()).into_response());
    };
    headers.insert("x-spool-size", HeaderValue::from(size));
    let start = query.offset.min(size);
    let body = download::streamed(format!("log `{path}` of job `{name}`"), move |out| {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(start))?;
        // Up to the size announced; what the log gains meanwhile is for the next read.
        std::io::copy(&mut file.take(size - start), out)?;
        Ok(())
    });
    Ok((headers, body).into_response())
}

/// A tar archive of a job's logs, streamed.
pub async fn download_logs(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    let job = state.control.job(&user, &name).await?;
    let download = blocking(move || match open_tree(&job.log_dir)? {
        Some(tree) => tree.download(Path::new("")),
        None => Ok(None),
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(tar_response(
        download,
        "logs".into(),
        format!("logs of job `{name}`"),
    ))
}

/// A tar archive of one of a job's outputs, streamed. The job's code wrote the output, so it is
/// read through a [`UserTree`]: no symlink is followed out of the datastore.
pub async fn download_output(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath((name, output)): UrlPath<(String, String)>,
) -> ApiResult<Response> {
    let job = state.control.job(&user, &name).await?;
    let (tree, relative) = state.control.job_output(&user, &job, &output).await?;
    let download = blocking(move || tree.download(&relative))
        .await?
        .map_err(|e| {
            if datastore::refused_link(&e) {
                ApiError::bad_request(
                    &output,
                    format!(
                        "output `{output}` of job `{name}` goes through a symbolic link leading out of its datastore, so it is not downloaded"
                    ),
                )
            } else {
                ApiError::internal(e)
            }
        })?;
    let Some(download) = download else {
        return Err(ApiError::not_found_because(
            &output,
            format!("output `{output}` of job `{name}` has not been written"),
        ));
    };
    let what = format!("output `{output}` of job `{name}`");
    Ok(tar_response(Some(download), output, what))
}

/// Streams `download` (an empty archive for `None`) under `prefix/`.
fn tar_response(download: Option<Download>, prefix: String, what: String) -> Response {
    let body = download::streamed(what, move |out| {
        match download {
            Some(download) => {
                download.write_tar(&prefix, out)?;
            }
            None => {
                tar::Builder::new(out).into_inner()?;
            }
        }
        Ok(())
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    (headers, body).into_response()
}

pub async fn list_clusters(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::ClusterList>> {
    Ok(Json(api::ClusterList {
        clusters: state.control.clusters(&user).await?,
    }))
}

/// A page of a job's or session's driver UI, with the request's query passed on.
async fn ui_page(
    state: &AppState,
    user: &Caller,
    of: UiOf<'_>,
    path: &str,
    uri: &axum::http::Uri,
) -> ApiResult<crate::respond::UiPage> {
    let page = state.control.spark_ui(user, of, path, uri.query()).await?;
    Ok(crate::respond::UiPage(page))
}

pub async fn job_ui_root(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    uri: axum::http::Uri,
) -> ApiResult<crate::respond::UiPage> {
    ui_page(&state, &user, UiOf::Job(&name), "", &uri).await
}

pub async fn job_ui(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath((name, path)): UrlPath<(String, String)>,
    uri: axum::http::Uri,
) -> ApiResult<crate::respond::UiPage> {
    ui_page(&state, &user, UiOf::Job(&name), &path, &uri).await
}

pub async fn session_ui_root(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(key): UrlPath<String>,
    uri: axum::http::Uri,
) -> ApiResult<crate::respond::UiPage> {
    ui_page(&state, &user, UiOf::Session(&key), "", &uri).await
}

pub async fn session_ui(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath((key, path)): UrlPath<(String, String)>,
    uri: axum::http::Uri,
) -> ApiResult<crate::respond::UiPage> {
    ui_page(&state, &user, UiOf::Session(&key), &path, &uri).await
}

pub async fn show_cluster(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(id): UrlPath<i64>,
) -> ApiResult<Json<api::ClusterView>> {
    Ok(Json(
        state
            .control
            .show_cluster(&user, spool_core::ClusterId(id))
            .await?,
    ))
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
    let mut properties = std::collections::BTreeMap::new();
    let mut parent_job_name = None;
    if job.parent_id.is_some()
        && let Some((parent, reused)) = control.node_of(&job).await?
    {
        parent_job_name = Some(parent.clone());
        if let Some(reused) = reused {
            properties.insert("azureml.isreused".to_string(), "true".to_string());
            properties.insert("azureml.reusedrunid".to_string(), reused);
            properties.insert("azureml.rootpipelinerunid".to_string(), parent);
        }
    }
    let nodes = if job.kind == api::JobKind::Pipeline {
        control
            .pipeline_nodes(&job)
            .await?
            .into_iter()
            .map(|n| api::NodeView {
                duration_seconds: node_duration(&n.job),
                node: n.node,
                kind: n.job.kind,
                job_name: n.job.name,
                status: n.job.status,
                status_reason: n.job.status_reason,
                depends_on: n.depends_on,
                reused_job_name: n.reused_job,
            })
            .collect()
    } else {
        Vec::new()
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
        kind: job.kind,
        parent_job_name,
        properties,
        nodes,
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
        principal: job.principal,
        access_enforced: job.access_enforced,
        created_at: job.created_at,
        ended_at: job.ended_at,
        resources,
        cluster,
        spark_app_id: job.spark_app_id,
        spark_ui_url: job.spark_ui_url,
        driver: job
            .driver
            .map(|(path, reason)| api::DriverView { path, reason }),
        start_kind: job.start_kind,
        spec,
    })
}

/// How long a node ran: from its first phase past waiting to its end, or to now.
fn node_duration(job: &spool_control::Job) -> Option<f64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let start = job
        .phases
        .iter()
        .find(|p| !matches!(p.status.as_str(), "NotStarted" | "Queued"))?;
    let start = parse(&start.at)?;
    let end = match &job.ended_at {
        Some(end) => parse(end)?,
        None => chrono::Utc::now().fixed_offset(),
    };
    Some(((end - start).num_milliseconds().max(0) as f64) / 1000.0)
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

/// `GET /api/v1/environments/{key}/log`: what the environment's build printed.
pub async fn environment_log(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(key): UrlPath<String>,
) -> ApiResult<Response> {
    let text = state.control.environment_build_log(&user, &key).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
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
    Extension(note): Extension<Note>,
    Json(body): Json<api::AttachCompute>,
) -> ApiResult<Created<api::ComputeView>> {
    let view = state
        .control
        .attach_compute(&user, &body.file, &body.yaml)
        .await?;
    note.target(&view.name);
    Ok(Created(view))
}

pub async fn list_computes(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<Vec<api::ComputeView>>> {
    Ok(Json(state.control.computes(&user).await?))
}

pub async fn show_compute(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::ComputeView>> {
    Ok(Json(state.control.compute(&user, &name).await?))
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
    Extension(note): Extension<Note>,
    Json(body): Json<api::CreateAgent>,
) -> ApiResult<Created<api::AgentCreated>> {
    note.target(&body.name);
    Ok(Created(
        state.control.create_agent(&user, &body.name).await?,
    ))
}

pub async fn list_agents(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<Vec<api::AgentView>>> {
    Ok(Json(state.control.agents(&user).await?))
}

/// A runtime as a tar, for an agent host that does not have it (agent token).
pub async fn agent_runtime(
    State(state): State<AppState>,
    Agent(agent): Agent,
    UrlPath(version): UrlPath<String>,
) -> ApiResult<Response> {
    let archive = state
        .control
        .runtime_archive_for_agent(&agent, &version)
        .await?;
    let file = tokio::fs::File::open(&archive)
        .await
        .map_err(ApiError::internal)?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// An agent's heartbeat, authenticated by the agent's own bearer token before the body is read.
pub async fn agent_heartbeat(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Json(report): Json<api::AgentReport>,
) -> ApiResult<Json<api::AgentOrders>> {
    Ok(Json(state.control.agent_heartbeat(&agent, report).await?))
}

/// Grants a data role (workspace Owners, or data Owners at their scope).
pub async fn create_role_assignment(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    Json(body): Json<api::RoleAssignmentCreate>,
) -> ApiResult<Created<api::RoleAssignmentView>> {
    note.target(format!(
        "{}: {} on {}",
        body.assignee, body.role, body.scope
    ));
    let created = state.control.create_role_assignment(&user, &body).await?;
    note.target(role_assignment_target(&created));
    Ok(Created(created))
}

/// How the audit log names a role assignment: who has which role where, and its id.
fn role_assignment_target(assignment: &api::RoleAssignmentView) -> String {
    format!(
        "{}: {} on {} (id {})",
        assignment.assignee, assignment.role, assignment.scope, assignment.id
    )
}

/// Every assignment for an Owner; a user's own and those at scopes they own.
pub async fn list_role_assignments(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::RoleAssignmentList>> {
    Ok(Json(api::RoleAssignmentList {
        role_assignments: state.control.role_assignments(&user).await?,
    }))
}

/// Removes an assignment (workspace Owners, or data Owners at their scope).
pub async fn delete_role_assignment(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    UrlPath(id): UrlPath<api::RoleAssignmentId>,
) -> ApiResult<NoContent> {
    // The audit log names what was removed, not only its id.
    if let Some(assignment) = state
        .control
        .role_assignments(&user)
        .await?
        .iter()
        .find(|a| a.id == id)
    {
        note.target(role_assignment_target(assignment));
    }
    state.control.delete_role_assignment(&user, id).await?;
    Ok(NoContent)
}

pub async fn list_identities(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::IdentityList>> {
    Ok(Json(api::IdentityList {
        identities: state.control.identities(&user).await?,
    }))
}

/// Creates a user-assigned managed identity (Owners only).
pub async fn create_identity(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    Json(body): Json<api::CreateIdentity>,
) -> ApiResult<Created<api::IdentityView>> {
    note.target(&body.name);
    Ok(Created(
        state.control.create_identity(&user, &body.name).await?,
    ))
}

pub async fn show_identity(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::IdentityView>> {
    Ok(Json(state.control.identity(&user, &name).await?))
}

/// Deletes a user-assigned identity and its role assignments (Owners only).
pub async fn delete_identity(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<NoContent> {
    state.control.delete_identity(&user, &name).await?;
    Ok(NoContent)
}

/// The identities attached to the workspace.
pub async fn list_workspace_identities(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::IdentityList>> {
    let identities = state.control.identities(&user).await?;
    Ok(Json(api::IdentityList {
        identities: identities.into_iter().filter(|i| i.in_workspace).collect(),
    }))
}

/// Attaches an identity to the workspace (Owners only).
pub async fn add_workspace_identity(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::IdentityView>> {
    Ok(Json(
        state
            .control
            .set_workspace_identity(&user, &name, true)
            .await?,
    ))
}

/// Detaches an identity from the workspace (Owners only).
pub async fn remove_workspace_identity(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<api::IdentityView>> {
    Ok(Json(
        state
            .control
            .set_workspace_identity(&user, &name, false)
            .await?,
    ))
}

/// The workspace's settings: its managed network (every role).
pub async fn show_workspace(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
) -> ApiResult<Json<api::WorkspaceView>> {
    Ok(Json(state.control.workspace(&user).await?))
}

/// Replaces the workspace's managed network from a workspace file (Owners only).
pub async fn update_workspace(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Json(body): Json<api::UpdateWorkspace>,
) -> ApiResult<Json<api::WorkspaceView>> {
    Ok(Json(
        state
            .control
            .update_workspace(&user, &body.file, &body.yaml)
            .await?,
    ))
}
