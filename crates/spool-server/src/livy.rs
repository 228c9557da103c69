//! The Livy REST API at the server root (`/version`, `/sessions/...`), with Livy's field names,
//! integer ids, states, status codes and `{"msg": ...}` errors, so Livy clients (sparkmagic,
//! pylivy, Airflow) work unchanged. See `reference/livy-and-peers.md`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spool_control::{Action, Caller, ControlError, Job, Session, SessionSettings, Statement};
use spool_core::{JobId, SessionId, SessionState};

use crate::AppState;
use crate::audit::Note;
use crate::error::{LivyError, LivyResult};
use crate::extract::{LivyBody, LivyPath as Path, LivyQuery as Query};
use crate::respond::CreatedAt;

/// The version Livy clients see. pylivy needs a 3-part version with a one-digit minor >= 5.
pub const LIVY_VERSION: &str = "0.8.0-incubating";

/// Livy's CSRF check: when enabled, a request other than GET/HEAD/OPTIONS must carry an
/// `X-Requested-By` header (any value).
pub async fn csrf(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let safe = matches!(request.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    if state.control.config().livy_csrf_protection
        && !safe
        && !request.headers().contains_key("x-requested-by")
    {
        return LivyError::bad_request("Missing Required Header for CSRF protection.")
            .into_response();
    }
    next.run(request).await
}

pub async fn version() -> Json<Value> {
    Json(json!({
        "version": LIVY_VERSION,
        "user": "spool",
        "revision": env!("CARGO_PKG_VERSION"),
        "branch": "spool",
        "date": "",
        "url": "",
    }))
}

/// `POST /sessions` (Livy's CreateInteractiveRequest; unknown fields are rejected as in Livy).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSession {
    kind: Option<String>,
    proxy_user: Option<String>,
    #[serde(default)]
    jars: Vec<String>,
    #[serde(default)]
    py_files: Vec<String>,
    #[serde(default)]
    files: Vec<String>,
    driver_memory: Option<String>,
    driver_cores: Option<u32>,
    executor_memory: Option<String>,
    executor_cores: Option<u32>,
    num_executors: Option<u32>,
    #[serde(default)]
    archives: Vec<String>,
    // Accepted for compatibility and ignored: there are no YARN queues here, sessions end by
    // their idle timeout, and a dead client's session ends the same way.
    #[allow(dead_code)]
    queue: Option<String>,
    name: Option<String>,
    #[serde(default)]
    conf: BTreeMap<String, Value>,
    #[allow(dead_code)]
    heartbeat_timeout_in_second: Option<i64>,
    #[allow(dead_code)]
    ttl: Option<String>,
    idle_timeout: Option<String>,
}

async fn parse_body<T: for<'de> Deserialize<'de> + Default>(
    body: axum::body::Bytes,
) -> LivyResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&body).map_err(|e| LivyError::bad_request(e.to_string()))
}

pub async fn create_session(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    LivyBody(body): LivyBody,
) -> LivyResult<Response> {
    let request: CreateSession = parse_body(body).await?;
    check_proxy_user(&user, &request.proxy_user)?;
    let idle_timeout_minutes = match &request.idle_timeout {
        Some(text) => {
            let rejected = |e: String| LivyError::bad_request(format!("Rejected, Reason: {e}"));
            let seconds = spool_control::config::parse_duration_seconds(text)
                .map_err(|e| rejected(format!("idleTimeout: {e}")))?;
            let timeout = spool_spec::limits::check_idle_timeout("idleTimeout", seconds, text)
                .map_err(|e| rejected(e.to_string()))?;
            Some(timeout.as_secs_f64() / 60.0)
        }
        None => None,
    };
    let mut conf = BTreeMap::new();
    let mut runtime_version = None;
    let mut conda_file = None;
    let mut compute = None;
    for (key, value) in request.conf {
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        // Spool's own settings ride in `conf`, as Livy clients can only send that: the runtime,
        // and a conda file's text under the key Synapse uses for session packages.
        if key == "spark.spool.runtime" {
            runtime_version = Some(text);
        } else if key == spool_control::LIVY_CONDA_CONF {
            conda_file = Some((key, text));
        } else if key == "spark.spool.compute" {
            compute = Some(text);
        } else {
            conf.insert(key, text);
        }
    }
    let settings = SessionSettings {
        kind: request.kind,
        name: request.name,
        runtime_version,
        driver_memory: request.driver_memory,
        driver_cores: request.driver_cores,
        executor_memory: request.executor_memory,
        executor_cores: request.executor_cores,
        num_executors: request.num_executors,
        dynamic_allocation: livy_dynamic_allocation(&conf),
        instance_type: None,
        conf,
        idle_timeout_minutes,
        conda_file,
        compute,
        livy: true,
        files: spool_control::FileLists {
            jars: request.jars,
            py_files: request.py_files,
            files: request.files,
            archives: request.archives,
        },
    };
    let session = state.control.create_session(&user, settings).await?;
    crate::audit::note_session(&note, &session);
    Ok(CreatedAt {
        location: format!("/sessions/{}", session.id),
        body: session_view(&state, &session),
    }
    .into_response())
}

/// Livy clients ask for dynamic allocation through Spark conf; Spool sizes the cluster for it.
fn livy_dynamic_allocation(conf: &BTreeMap<String, String>) -> Option<(u32, u32)> {
    let enabled = conf
        .get("spark.dynamicAllocation.enabled")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !enabled {
        return None;
    }
    let number = |key: &str| conf.get(key).and_then(|v| v.trim().parse::<u32>().ok());
    let min = number("spark.dynamicAllocation.minExecutors")
        .unwrap_or(1)
        .max(1);
    let max = number("spark.dynamicAllocation.maxExecutors")
        .unwrap_or(min)
        .max(min);
    Some((min, max))
}

#[derive(Debug, Deserialize)]
pub struct Paging {
    from: Option<i64>,
    size: Option<i64>,
}

pub async fn list_sessions(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Query(paging): Query<Paging>,
) -> LivyResult<Response> {
    let sessions = state.control.sessions(&user).await?;
    let from = paging.from.unwrap_or(0).max(0) as usize;
    let size = paging.size.unwrap_or(100).max(0) as usize;
    #[derive(Serialize)]
    struct Page<'a> {
        from: usize,
        total: usize,
        sessions: Vec<LivySession<'a>>,
    }
    let page = Page {
        from,
        total: sessions.len(),
        sessions: sessions
            .iter()
            .skip(from)
            .take(size)
            .map(|s| session_view(&state, s))
            .collect(),
    };
    Ok(Json(page).into_response())
}

/// Resolves `{id}`: an integer id, or else a session name (as Livy does).
async fn find_session(state: &AppState, user: &Caller, id: &str) -> LivyResult<Session> {
    Ok(state.control.session_by_key(user, id).await?)
}

pub async fn show_session(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
) -> LivyResult<Response> {
    let session = find_session(&state, &user, &id).await?;
    Ok(Json(session_view(&state, &session)).into_response())
}

pub async fn session_state(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
) -> LivyResult<Json<Value>> {
    let session = find_session(&state, &user, &id).await?;
    Ok(Json(json!({"id": session.id, "state": session.state})))
}

pub async fn delete_session(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
) -> LivyResult<Json<Value>> {
    let session = find_session(&state, &user, &id).await?;
    if session.state.is_finished() {
        return Err(LivyError::not_found(format!(
            "Session {} already stopped.",
            session.id
        )));
    }
    state.control.delete_session(&user, session.id).await?;
    Ok(Json(json!({"msg": "deleted"})))
}

/// The tail of a log file in `tree` (at most `limit` bytes, from a line start), or all of it;
/// empty when it cannot be read. The driver can write into its log folder, so no symlink out
/// of the tree (nor one in the file's place) is followed.
fn read_tail(tree: &spool_control::UserTree, relative: &str, limit: Option<u64>) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = tree.open_file(std::path::Path::new(relative)) else {
        return String::new();
    };
    // Seeking from the end needs no length: one call fewer per file, on a path clients poll.
    let start = match limit {
        Some(limit) => file
            .seek(SeekFrom::End(-(limit.min(i64::MAX as u64) as i64)))
            .or_else(|_| file.seek(SeekFrom::Start(0)))
            .unwrap_or(0),
        None => 0,
    };
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match (start, text.find('\n')) {
        (0, _) | (_, None) => text,
        (_, Some(i)) => text[i + 1..].to_string(),
    }
}

/// A driver's stdout and stderr (in `tree`, under `prefix`) as log lines (Livy's `log`), each
/// file's tail when `limit` is given.
fn driver_lines_in(
    tree: &spool_control::UserTree,
    prefix: &str,
    limit: Option<u64>,
    lines: &mut Vec<String>,
) {
    for name in ["stdout", "stderr"] {
        let text = read_tail(tree, &format!("{prefix}{name}"), limit);
        if !text.is_empty() {
            lines.push(format!("{name}: "));
            lines.extend(text.lines().map(str::to_string));
        }
    }
}

/// A driver's stdout and stderr in `dir` as log lines.
fn driver_log_lines(dir: &std::path::Path, limit: Option<u64>) -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(tree) = spool_control::UserTree::open(dir) {
        driver_lines_in(&tree, "", limit, &mut lines);
    }
    lines
}

/// A session's log: its environment build's output (if it had one), then the driver's. The
/// session's log folder is opened once for the three files (`GET /sessions/{id}` shows them).
fn session_log_lines(state: &AppState, session_id: SessionId, limit: Option<u64>) -> Vec<String> {
    let mut lines = Vec::new();
    let logs = state.control.session_dir(session_id).join("logs");
    let Ok(tree) = spool_control::UserTree::open(&logs) else {
        return lines;
    };
    let env_log = read_tail(&tree, "environment.log", limit);
    if !env_log.is_empty() {
        lines.push("environment: ".to_string());
        lines.extend(env_log.lines().map(str::to_string));
    }
    driver_lines_in(&tree, "driver/", limit, &mut lines);
    lines
}

fn batch_log_dir(job: &Job) -> std::path::PathBuf {
    job.log_dir.join("azureml").join("driver")
}

/// Livy's log paging: `size` lines from `from` (default: the tail); a negative size means all.
fn log_page(id: i64, lines: &[String], paging: &Paging) -> Value {
    let total = lines.len() as i64;
    let size = match paging.size {
        Some(n) if n < 0 => total,
        Some(n) => n,
        None => 100,
    };
    let from = paging.from.unwrap_or((total - size).max(0)).clamp(0, total);
    let log: Vec<&String> = lines
        .iter()
        .skip(from as usize)
        .take(size.max(0) as usize)
        .collect();
    json!({"id": id, "from": from, "total": total, "log": log})
}

/// Livy users may act only as themselves here (no impersonation).
fn check_proxy_user(user: &Caller, proxy_user: &Option<String>) -> LivyResult<()> {
    match proxy_user {
        Some(proxy) if proxy != &user.name => Err(LivyError::forbidden(format!(
            "User '{}' not allowed to impersonate '{proxy}'.",
            user.name
        ))),
        _ => Ok(()),
    }
}

pub async fn session_log(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> LivyResult<Json<Value>> {
    let session = find_session(&state, &user, &id).await?;
    let lines = session_log_lines(&state, session.id, None);
    Ok(Json(log_page(session.id.0, &lines, &paging)))
}

#[derive(Serialize)]
struct AppInfo<'a> {
    #[serde(rename = "driverLogUrl")]
    driver_log_url: Option<&'a str>,
    #[serde(rename = "sparkUiUrl")]
    spark_ui_url: Option<&'a str>,
    /// A `connect` session's Spark Connect URL, less the token (Spool's own key).
    #[serde(rename = "connectUrl", skip_serializing_if = "Option::is_none")]
    connect_url: Option<String>,
}

#[derive(Serialize)]
struct PhaseView<'a> {
    state: &'a str,
    at: &'a str,
}

/// Livy's session object. Typed and borrowing from the session: `GET /sessions` renders a
/// hundred of these per request, and building `serde_json::Value` maps for them cost more than
/// the query.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LivySession<'a> {
    id: SessionId,
    name: Option<&'a str>,
    app_id: Option<&'a str>,
    owner: &'a str,
    proxy_user: Option<&'a str>,
    state: SessionState,
    kind: &'a str,
    app_info: AppInfo<'a>,
    log: Vec<String>,
    ttl: Option<&'a str>,
    idle_timeout: String,
    driver_memory: Option<String>,
    driver_cores: u32,
    executor_memory: Option<String>,
    executor_cores: u32,
    num_executors: u32,
    conf: &'a BTreeMap<String, String>,
    archives: Vec<&'a str>,
    files: Vec<&'a str>,
    jars: Vec<&'a str>,
    py_files: Vec<&'a str>,
    heartbeat_timeout_in_second: u64,
    queue: Option<&'a str>,
    // Spool's additions: why the session is in its state, and when it got there.
    state_reason: Option<&'a str>,
    runtime: &'a str,
    phases: Vec<PhaseView<'a>>,
}

/// The last lines of finished sessions' logs, which no longer change (their driver has
/// exited), kept so that listing sessions does not read three files for each of them. Bounded:
/// past `MAX_FINISHED_TAILS` entries it starts over.
#[derive(Default)]
pub(crate) struct FinishedTails(
    std::sync::Mutex<std::collections::HashMap<SessionId, Vec<String>>>,
);

const MAX_FINISHED_TAILS: usize = 10_000;

/// The last 10 lines of a session's log, as its Livy view shows them.
fn log_tail(state: &AppState, session: &Session) -> Vec<String> {
    let finished = session.state.is_finished();
    if finished
        && let Some(tail) = state
            .finished_tails
            .0
            .lock()
            .expect("tails lock")
            .get(&session.id)
    {
        return tail.clone();
    }
    // A few KB of each file are plenty for 10 lines.
    let mut log = session_log_lines(state, session.id, Some(4096));
    log.drain(..log.len().saturating_sub(10));
    if finished {
        let mut tails = state.finished_tails.0.lock().expect("tails lock");
        if tails.len() >= MAX_FINISHED_TAILS {
            tails.clear();
        }
        tails.insert(session.id, log.clone());
    }
    log
}

/// A file list as the request gave it (Livy echoes the references back).
fn given(list: &[spool_control::NamedFile]) -> Vec<&str> {
    list.iter().map(|f| f.given.as_str()).collect()
}

fn session_view<'a>(state: &AppState, session: &'a Session) -> LivySession<'a> {
    let sizing = session.sizing.as_ref();
    let log = log_tail(state, session);
    LivySession {
        id: session.id,
        name: session.name.as_deref(),
        app_id: session.spark_app_id.as_deref(),
        owner: &session.owner,
        proxy_user: None,
        state: session.state,
        kind: &session.kind,
        app_info: AppInfo {
            driver_log_url: None,
            spark_ui_url: session.spark_ui_url.as_deref(),
            connect_url: session
                .connect
                .then(|| crate::connect::url(state, session.id))
                .flatten(),
        },
        log,
        ttl: None,
        idle_timeout: format!("{}s", session.idle_timeout.as_secs()),
        driver_memory: sizing.map(|s| s.driver_memory.to_spark()),
        driver_cores: sizing.map_or(0, |s| s.driver_cores),
        executor_memory: sizing.map(|s| s.executor_memory.to_spark()),
        executor_cores: sizing.map_or(0, |s| s.executor_cores),
        num_executors: sizing.map_or(0, |s| s.executor_instances),
        conf: &session.conf,
        archives: given(&session.files.archives),
        files: given(&session.files.files),
        jars: given(&session.files.jars),
        py_files: given(&session.files.py_files),
        heartbeat_timeout_in_second: 0,
        queue: None,
        state_reason: session.state_reason.as_deref(),
        runtime: &session.runtime,
        phases: session
            .phases
            .iter()
            .map(|p| PhaseView {
                state: &p.status,
                at: &p.at,
            })
            .collect(),
    }
}

fn statement_view(statement: &Statement) -> Value {
    json!({
        "id": statement.seq,
        "code": statement.code,
        "state": statement.state,
        "output": statement.output,
        "progress": statement.progress,
        "started": statement.started_ms,
        "completed": statement.completed_ms,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStatement {
    code: Option<String>,
    kind: Option<String>,
}

pub async fn create_statement(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
    LivyBody(body): LivyBody,
) -> LivyResult<Response> {
    let request: CreateStatement = parse_body(body).await?;
    let code = request
        .code
        .ok_or_else(|| LivyError::bad_request("requirement failed: code is required"))?;
    let session = find_session(&state, &user, &id).await?;
    let statement = state
        .control
        .submit_statement(&user, session.id, &code, request.kind.as_deref())
        .await?;
    Ok(CreatedAt {
        location: format!("/sessions/{}/statements/{}", session.id, statement.seq),
        body: statement_view(&statement),
    }
    .into_response())
}

pub async fn list_statements(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
) -> LivyResult<Json<Value>> {
    let session = find_session(&state, &user, &id).await?;
    let statements = state.control.statements(&user, session.id).await?;
    let views: Vec<Value> = statements.iter().map(statement_view).collect();
    Ok(Json(
        json!({"total_statements": views.len(), "statements": views}),
    ))
}

pub async fn show_statement(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path((id, seq)): Path<(String, i64)>,
) -> LivyResult<Json<Value>> {
    // Clients poll this while a statement runs: by id it is one store query.
    let session_id = match id.parse::<i64>() {
        Ok(n) => SessionId(n),
        Err(_) => find_session(&state, &user, &id).await?.id,
    };
    let statement = match state.control.statement(&user, session_id, seq).await {
        Ok(statement) => statement,
        Err(ControlError::NotFound {
            kind: "session", ..
        }) => return Err(LivyError::no_session(&id)),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(statement_view(&statement)))
}

pub async fn cancel_statement(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path((id, seq)): Path<(String, i64)>,
) -> LivyResult<Json<Value>> {
    let session = find_session(&state, &user, &id).await?;
    state
        .control
        .cancel_statement(&user, session.id, seq)
        .await?;
    Ok(Json(json!({"msg": "canceled"})))
}

pub async fn completion(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
) -> LivyResult<Json<Value>> {
    // Completion is the driver's interpreter at work, as a statement is.
    user.require(Action::RunStatements)?;
    find_session(&state, &user, &id).await?;
    Ok(Json(json!({"candidates": []})))
}

/// `POST /batches` (Livy's CreateBatchRequest).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBatch {
    file: Option<String>,
    proxy_user: Option<String>,
    class_name: Option<String>,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    jars: Vec<String>,
    #[serde(default)]
    py_files: Vec<String>,
    #[serde(default)]
    files: Vec<String>,
    driver_memory: Option<String>,
    driver_cores: Option<u32>,
    executor_memory: Option<String>,
    executor_cores: Option<u32>,
    num_executors: Option<u32>,
    #[serde(default)]
    archives: Vec<String>,
    // Accepted for compatibility and ignored: there are no YARN queues here.
    #[allow(dead_code)]
    queue: Option<String>,
    name: Option<String>,
    #[serde(default)]
    conf: BTreeMap<String, Value>,
}

fn text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

pub async fn create_batch(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Extension(note): Extension<Note>,
    LivyBody(body): LivyBody,
) -> LivyResult<Response> {
    let request: CreateBatch = parse_body(body).await?;
    check_proxy_user(&user, &request.proxy_user)?;
    let batch = spool_control::BatchRequest {
        file: request
            .file
            .ok_or_else(|| LivyError::bad_request("requirement failed: file is required"))?,
        class_name: request.class_name,
        args: request.args.into_iter().map(text).collect(),
        files: spool_control::FileLists {
            jars: request.jars,
            py_files: request.py_files,
            files: request.files,
            archives: request.archives,
        },
        driver_memory: request.driver_memory,
        driver_cores: request.driver_cores,
        executor_memory: request.executor_memory,
        executor_cores: request.executor_cores,
        num_executors: request.num_executors,
        name: request.name,
        conf: request
            .conf
            .into_iter()
            .map(|(k, v)| (k, text(v)))
            .collect(),
    };
    let job = state.control.create_batch(&user, batch).await?;
    note.target(format!("{} (job {})", job.id, job.name));
    if let Some(principal) = &job.principal {
        note.identity(principal);
    }
    Ok(CreatedAt {
        location: format!("/batches/{}", job.id),
        body: batch_view(&job),
    }
    .into_response())
}

fn batch_view(job: &Job) -> Value {
    let lines = driver_log_lines(&batch_log_dir(job), Some(4096));
    let tail: Vec<&String> = lines.iter().skip(lines.len().saturating_sub(10)).collect();
    json!({
        "id": job.id,
        "name": job.display_name,
        "owner": job.owner,
        "proxyUser": Value::Null,
        "state": spool_control::livy_batch_state(job.status),
        "appId": job.spark_app_id,
        "appInfo": {"driverLogUrl": Value::Null, "sparkUiUrl": job.spark_ui_url},
        "log": tail,
        // Spool's additions: the job behind the batch.
        "jobName": job.name,
        "status": job.status,
        "error": job.error,
    })
}

/// Resolves a batch `{id}`; Livy says "Session" for batches too.
async fn find_batch(state: &AppState, user: &Caller, id: &str) -> LivyResult<Job> {
    let not_found = || LivyError::no_session(id);
    let batch_id = JobId(id.parse().map_err(|_| not_found())?);
    match state.control.job_by_id(user, batch_id).await {
        Ok(job) => Ok(job),
        Err(ControlError::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

pub async fn list_batches(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Query(paging): Query<Paging>,
) -> LivyResult<Json<Value>> {
    let mut jobs = state.control.jobs(&user, 100_000).await?;
    // Pipelines are not Livy batches (their nodes are not listed either).
    jobs.retain(|j| j.kind != spool_core::JobKind::Pipeline);
    jobs.reverse();
    let from = paging.from.unwrap_or(0).max(0) as usize;
    let size = paging.size.unwrap_or(100).max(0) as usize;
    let views: Vec<Value> = jobs.iter().skip(from).take(size).map(batch_view).collect();
    Ok(Json(
        json!({"from": from, "total": jobs.len(), "sessions": views}),
    ))
}

pub async fn show_batch(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
) -> LivyResult<Json<Value>> {
    let job = find_batch(&state, &user, &id).await?;
    Ok(Json(batch_view(&job)))
}

pub async fn batch_state(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
) -> LivyResult<Json<Value>> {
    let job = find_batch(&state, &user, &id).await?;
    Ok(Json(
        json!({"id": job.id, "state": spool_control::livy_batch_state(job.status)}),
    ))
}

pub async fn batch_log_route(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> LivyResult<Json<Value>> {
    let job = find_batch(&state, &user, &id).await?;
    let lines = driver_log_lines(&batch_log_dir(&job), None);
    Ok(Json(log_page(job.id.0, &lines, &paging)))
}

pub async fn delete_batch(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Path(id): Path<String>,
) -> LivyResult<Json<Value>> {
    let job = find_batch(&state, &user, &id).await?;
    state.control.cancel_job(&user, &job.name).await?;
    Ok(Json(json!({"msg": "deleted"})))
}
