//! The studio's pages: each handler asks `Control` what the API would answer its user and
//! renders it with a compiled template; views here only format (times, durations, colours).

use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use spool_control::{Action, Job, JobQuery, Session, Statement};
use spool_core::{JobId, JobStatus, SessionId, SessionState, StartKind, StatementState};

use super::graph;
use super::timeline::{Timeline, human, timeline};
use super::{CsrfForm, StudioUser, Viewer};
use crate::AppState;
use crate::error::StudioError;
use crate::respond::SeeOther;

/// Jobs per page of the job list.
const PAGE: i64 = 50;

/// A rendered page. Pages are never cached, may not be framed, and load only the server's own
/// script and style (inline `style` attributes carry the timeline's widths).
#[derive(Debug)]
pub struct Html(String);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        (
            [
                (CONTENT_TYPE, "text/html; charset=utf-8"),
                (CACHE_CONTROL, "no-store"),
                (
                    axum::http::header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
                ),
                (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            self.0,
        )
            .into_response()
    }
}

fn render(template: &impl Template) -> Result<Html, StudioError> {
    template.render().map(Html).map_err(StudioError::internal)
}

#[derive(Template)]
#[template(path = "studio/signin.html")]
struct SignInPage<'a> {
    user: Option<Viewer>,
    section: &'static str,
    csrf: &'a str,
    next: &'a str,
    problem: Option<&'a str>,
}

pub fn signin_page(csrf: &str, next: &str, problem: Option<&str>) -> Result<Html, StudioError> {
    render(&SignInPage {
        user: None,
        section: "",
        csrf,
        next,
        problem,
    })
}

#[derive(Template)]
#[template(path = "studio/error.html")]
struct ErrorPage<'a> {
    user: Option<Viewer>,
    section: &'static str,
    status: String,
    message: &'a str,
}

pub fn error_page(status: StatusCode, message: &str) -> Result<Html, StudioError> {
    render(&ErrorPage {
        user: None,
        section: "",
        status: status.to_string(),
        message,
    })
}

/// `2026-12-04T10:00:00.123Z` as `2026-12-04 10:00:00`.
fn when(at: &str) -> String {
    let short: String = at.chars().take(19).collect();
    short.replacen('T', " ", 1)
}

fn ms_between(from: &str, to: Option<&str>) -> i64 {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let Some(from) = parse(from) else { return 0 };
    let to = to
        .and_then(parse)
        .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc));
    (to - from.with_timezone(&chrono::Utc)).num_milliseconds()
}

fn job_class(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Completed => "ok",
        JobStatus::Failed | JobStatus::Canceled => "bad",
        JobStatus::Starting | JobStatus::Running | JobStatus::Finalizing => "run",
        _ => "wait",
    }
}

fn session_class(state: SessionState) -> &'static str {
    match state {
        SessionState::Idle | SessionState::Success => "ok",
        SessionState::Busy | SessionState::Starting => "run",
        SessionState::Error | SessionState::Dead | SessionState::Killed => "bad",
        _ => "wait",
    }
}

/// A job as a row of a list.
pub struct JobLine {
    name: String,
    display_name: String,
    experiment: String,
    status: String,
    status_class: &'static str,
    kind: String,
    owner: String,
    compute: String,
    created: String,
    duration: String,
    reason: Option<String>,
    error: Option<String>,
    finished: bool,
}

impl From<&Job> for JobLine {
    fn from(job: &Job) -> JobLine {
        JobLine {
            name: job.name.clone(),
            display_name: job.display_name.clone(),
            experiment: job.experiment_name.clone(),
            status: job.status.to_string(),
            status_class: job_class(job.status),
            kind: job.kind.to_string(),
            owner: job.owner.clone(),
            compute: job.compute.clone(),
            created: when(&job.created_at),
            duration: human(ms_between(&job.created_at, job.ended_at.as_deref())),
            reason: job.status_reason.clone(),
            error: job.error.clone(),
            finished: job.status.is_terminal(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct JobsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    experiment: String,
    #[serde(default)]
    owner: String,
    before: Option<i64>,
}

impl JobsQuery {
    fn any(&self) -> bool {
        !self.status.is_empty() || !self.experiment.is_empty() || !self.owner.is_empty()
    }
}

#[derive(Template)]
#[template(path = "studio/jobs.html")]
struct JobsPage {
    user: Option<Viewer>,
    section: &'static str,
    /// Each status, and whether the filter has it.
    statuses: Vec<(&'static str, bool)>,
    filter: JobsQuery,
    sees_everything: bool,
    jobs: Vec<JobLine>,
    next_page: Option<String>,
}

fn nonempty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

pub async fn jobs(
    State(state): State<AppState>,
    user: StudioUser,
    Query(filter): Query<JobsQuery>,
) -> Result<Html, StudioError> {
    let status = match nonempty(&filter.status) {
        Some(text) => Some(
            text.parse::<JobStatus>()
                .map_err(|e| StudioError::bad_request(format!("status: {e}")))?,
        ),
        None => None,
    };
    let query = JobQuery {
        status,
        experiment: nonempty(&filter.experiment),
        owner: nonempty(&filter.owner),
        before: filter.before.map(JobId),
        limit: PAGE,
    };
    let found = state.control.jobs_filtered(&user.caller, &query).await?;
    let next_page = (found.len() as i64 == PAGE)
        .then(|| found.last().map(|j| j.id))
        .flatten()
        .map(|last| {
            let mut url = format!("/studio/jobs?before={}", last.0);
            for (key, value) in [
                ("status", &filter.status),
                ("experiment", &filter.experiment),
                ("owner", &filter.owner),
            ] {
                if !value.is_empty() {
                    url.push_str(&format!("&{key}={}", form_escape(value)));
                }
            }
            url
        });
    render(&JobsPage {
        user: Some(Viewer::from(&user)),
        section: "jobs",
        statuses: JobStatus::ALL
            .iter()
            .map(|s| (s.as_str(), filter.status == s.as_str()))
            .collect(),
        sees_everything: user.caller.sees_everything(),
        jobs: found.iter().map(JobLine::from).collect(),
        filter,
        next_page,
    })
}

/// Percent-encodes a query value.
fn form_escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

struct LogLine {
    path: String,
    size: String,
    open: bool,
}

#[derive(Template)]
#[template(path = "studio/job.html")]
struct JobPage {
    user: Option<Viewer>,
    section: &'static str,
    csrf: String,
    job: JobLine,
    parent: Option<String>,
    can_cancel: bool,
    spark_ui: Option<String>,
    timeline: Timeline,
    facts: Vec<(String, String)>,
    conf: Vec<(String, String)>,
    /// Port, value and where the studio shows it (a datastore folder or file).
    inputs: Vec<(String, String, Option<String>)>,
    outputs: Vec<(String, String, Option<String>)>,
    children: Vec<JobLine>,
    graph: graph::Graph,
    logs: Vec<LogLine>,
}

/// A JSON value as one line of text: strings as they are, the rest as JSON.
fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) if map.contains_key("path") => {
            let path = map.get("path").map(text_of).unwrap_or_default();
            match map.get("mode").map(text_of) {
                Some(mode) => format!("{path} ({mode})"),
                None => path,
            }
        }
        serde_json::Value::Object(map) if map.contains_key("value") => {
            map.get("value").map(text_of).unwrap_or_default()
        }
        other => other.to_string(),
    }
}

/// Where the studio shows a datastore URI's folder or file, if `uri` is one.
fn browse_link(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("azureml://datastores/")?;
    let (datastore, path) = rest.split_once("/paths/").unwrap_or((rest, ""));
    let path = path.split(" (").next().unwrap_or(path).trim_matches('/');
    Some(format!(
        "/studio/datastores/{datastore}?path={}",
        form_escape(path)
    ))
}

fn pairs(value: Option<&serde_json::Value>) -> Vec<(String, String)> {
    value
        .and_then(|v| v.as_object())
        .map(|map| map.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
        .unwrap_or_default()
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// Whether a log is shown unfolded: what the user's code printed and the driver's output.
fn opens(path: &str) -> bool {
    path.ends_with("std_log.txt") || path.ends_with("driver/stdout") || path.ends_with("stderr")
}

pub async fn job(
    State(state): State<AppState>,
    user: StudioUser,
    Path(name): Path<String>,
) -> Result<Html, StudioError> {
    let job = state.control.job(&user.caller, &name).await?;
    let (parent, reused) = match job.parent_id {
        Some(_) => match state.control.node_of(&job).await? {
            Some((parent, reused)) => (Some(parent), reused),
            None => (None, None),
        },
        None => (None, None),
    };
    let nodes = if job.kind == spool_core::JobKind::Pipeline {
        state.control.pipeline_nodes(&job).await?
    } else {
        Vec::new()
    };
    let graph = graph::layout(
        &nodes
            .iter()
            .map(|n| graph::GraphNode {
                node: n.node.clone(),
                job: n.job.name.clone(),
                status: n.job.status.to_string(),
                class: job_class(n.job.status),
                reused: n.reused_job.is_some(),
                depends_on: n.depends_on.clone(),
            })
            .collect::<Vec<_>>(),
    );
    let children: Vec<JobLine> = nodes
        .iter()
        .map(|n| JobLine {
            display_name: n.node.clone(),
            reason: match &n.reused_job {
                Some(reused) => Some(format!("reused the outputs of {reused}")),
                None => n.job.status_reason.clone(),
            },
            ..JobLine::from(&n.job)
        })
        .collect();
    let log_dir = job.log_dir.clone();
    let files = tokio::task::spawn_blocking(move || {
        spool_control::UserTree::open(&log_dir)
            .map(|tree| tree.files())
            .unwrap_or_default()
    })
    .await
    .map_err(StudioError::internal)?;
    let mut opened = 0;
    let logs = files
        .into_iter()
        .map(|(path, bytes)| {
            let open = opened < 3 && opens(&path);
            opened += usize::from(open);
            LogLine {
                size: size(bytes),
                open,
                path,
            }
        })
        .collect();
    let phases: Vec<(String, String)> = job
        .phases
        .iter()
        .map(|p| (p.status.clone(), p.at.clone()))
        .collect();
    let mut facts = vec![
        ("Name".to_string(), job.name.clone()),
        ("Type".to_string(), job.kind.to_string()),
        ("Experiment".to_string(), job.experiment_name.clone()),
        ("Owner".to_string(), job.owner.clone()),
        ("Identity".to_string(), job.identity.clone()),
    ];
    if let Some(principal) = &job.principal {
        facts.push(("Acts as".into(), principal.clone()));
    }
    if let Some(reused) = reused {
        facts.push(("Reused".into(), format!("the outputs of {reused}")));
    }
    facts.push(("Compute".into(), job.compute.clone()));
    facts.push(("Runtime".into(), job.runtime.clone()));
    if let Some(sizing) = &job.sizing {
        facts.push(("Size".into(), size_text(sizing)));
    }
    if let Some((path, why)) = &job.driver {
        facts.push(("Driver".into(), format!("{path}: {why}")));
    }
    if let Some(cluster) = job.cluster_id {
        facts.push(("Cluster".into(), cluster.to_string()));
    }
    if let Some(app) = &job.spark_app_id {
        facts.push(("Spark application".into(), app.clone()));
    }
    facts.push(("Created".into(), when(&job.created_at)));
    if let Some(ended) = &job.ended_at {
        facts.push(("Ended".into(), when(ended)));
    }
    let can_cancel = !job.status.is_terminal() && user.caller.require(Action::CancelJobs).is_ok();
    // Through the server, whatever address the driver binds: the sign-in cookie opens it.
    let spark_ui = job
        .spark_ui_url
        .as_ref()
        .filter(|_| !job.status.is_terminal())
        .map(|_| format!("/api/v1/jobs/{}/sparkui/", job.name));
    render(&JobPage {
        user: Some(Viewer::from(&user)),
        section: "jobs",
        csrf: user.csrf.clone(),
        timeline: timeline(&phases, job.ended_at.as_deref(), None, chrono::Utc::now()),
        conf: pairs(job.spec.get("conf")),
        inputs: pairs(job.spec.get("inputs"))
            .into_iter()
            .map(|(k, v)| {
                let link = browse_link(&v);
                (k, v, link)
            })
            .collect(),
        outputs: job
            .outputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), browse_link(v)))
            .collect(),
        children,
        graph,
        job: JobLine::from(&job),
        parent,
        can_cancel,
        spark_ui,
        facts,
        logs,
    })
}

pub async fn job_status(
    State(state): State<AppState>,
    user: StudioUser,
    Path(name): Path<String>,
) -> Result<axum::Json<serde_json::Value>, StudioError> {
    let job = state.control.job(&user.caller, &name).await?;
    Ok(axum::Json(serde_json::json!({
        "status": job.status.as_str(),
        "finished": job.status.is_terminal(),
    })))
}

pub async fn cancel_job(
    State(state): State<AppState>,
    user: StudioUser,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<SeeOther, StudioError> {
    user.check_csrf(&form.csrf)?;
    state.control.cancel_job(&user.caller, &name).await?;
    Ok(SeeOther(format!("/studio/jobs/{name}")))
}

/// A log file from `offset` on, as the API's `GET /jobs/{name}/logs/{path}` gives it.
pub async fn job_log(
    state: State<AppState>,
    user: StudioUser,
    Path((name, path)): Path<(String, String)>,
    query: crate::extract::Query<crate::routes::OffsetQuery>,
) -> Result<Response, StudioError> {
    Ok(crate::routes::job_log_file(
        state,
        Extension(user.caller),
        crate::extract::Path((name, path)),
        query,
    )
    .await?)
}

/// The job's logs as a tar archive, as the API's `GET /jobs/{name}/download/logs` gives it.
pub async fn download_logs(
    state: State<AppState>,
    user: StudioUser,
    Path(name): Path<String>,
) -> Result<Response, StudioError> {
    Ok(
        crate::routes::download_logs(state, Extension(user.caller), crate::extract::Path(name))
            .await?,
    )
}

struct SessionLine {
    id: String,
    name: String,
    kind: String,
    state: String,
    state_class: &'static str,
    owner: String,
    runtime: String,
    compute: String,
    timeout: String,
    created: String,
    reason: Option<String>,
    finished: bool,
}

impl From<&Session> for SessionLine {
    fn from(s: &Session) -> SessionLine {
        SessionLine {
            id: s.id.to_string(),
            name: s.name.clone().unwrap_or_default(),
            kind: if s.connect {
                "connect".into()
            } else {
                s.kind.clone()
            },
            state: s.state.to_string(),
            state_class: session_class(s.state),
            owner: s.owner.clone(),
            runtime: s.runtime.clone(),
            compute: s.compute.clone(),
            timeout: human(s.idle_timeout.as_millis() as i64),
            created: when(&s.created_at),
            reason: s.state_reason.clone(),
            finished: s.state.is_finished(),
        }
    }
}

#[derive(Template)]
#[template(path = "studio/sessions.html")]
struct SessionsPage {
    user: Option<Viewer>,
    section: &'static str,
    sessions: Vec<SessionLine>,
}

pub async fn sessions(
    State(state): State<AppState>,
    user: StudioUser,
) -> Result<Html, StudioError> {
    let mut found = state.control.sessions(&user.caller).await?;
    found.sort_by_key(|s| std::cmp::Reverse(s.id.0));
    render(&SessionsPage {
        user: Some(Viewer::from(&user)),
        section: "sessions",
        sessions: found.iter().map(SessionLine::from).collect(),
    })
}

struct StatementLine {
    seq: i64,
    kind: String,
    code: String,
    state: String,
    state_class: &'static str,
    output: Option<String>,
    failed: bool,
}

impl From<&Statement> for StatementLine {
    fn from(st: &Statement) -> StatementLine {
        let failed = st
            .output
            .as_ref()
            .and_then(|o| o.get("status"))
            .and_then(|s| s.as_str())
            == Some("error");
        let output = st.output.as_ref().map(|o| {
            if failed {
                let name = o.get("ename").map(text_of).unwrap_or_default();
                let value = o.get("evalue").map(text_of).unwrap_or_default();
                format!("{name}: {value}")
            } else {
                o.get("data")
                    .and_then(|d| d.get("text/plain"))
                    .map(text_of)
                    .unwrap_or_else(|| o.to_string())
            }
        });
        StatementLine {
            seq: st.seq,
            kind: st.kind.clone(),
            code: st.code.clone(),
            state: st.state.to_string(),
            state_class: match st.state {
                StatementState::Available => {
                    if failed {
                        "bad"
                    } else {
                        "ok"
                    }
                }
                StatementState::Running => "run",
                StatementState::Waiting => "wait",
                _ => "bad",
            },
            output,
            failed,
        }
    }
}

#[derive(Template)]
#[template(path = "studio/session.html")]
struct SessionPage {
    user: Option<Viewer>,
    section: &'static str,
    csrf: String,
    session: SessionLine,
    idle: Option<String>,
    timeline: Timeline,
    facts: Vec<(String, String)>,
    statements: Vec<StatementLine>,
    can_run: bool,
    /// The driver's Spark UI through the server, while it runs.
    spark_ui: Option<String>,
    /// Something is still on its way (a start, a statement): the page reloads itself.
    waiting: bool,
}

fn session_id(key: &str) -> Result<SessionId, StudioError> {
    key.parse::<i64>()
        .map(SessionId)
        .map_err(|_| StudioError::bad_request(format!("`{key}` is not a session id")))
}

pub async fn session(
    State(state): State<AppState>,
    user: StudioUser,
    Path(key): Path<String>,
) -> Result<Html, StudioError> {
    let id = session_id(&key)?;
    let session = state.control.session(&user.caller, id).await?;
    let statements = state.control.statements(&user.caller, id).await?;
    let phases: Vec<(String, String)> = session
        .phases
        .iter()
        .map(|p| (p.status.clone(), p.at.clone()))
        .collect();
    let finished = session.state.is_finished();
    let idle = (!finished && session.state == SessionState::Idle).then(|| {
        let idle_ms = ms_between(&session.last_activity_at, None);
        let left = session.idle_timeout.as_millis() as i64 - idle_ms;
        format!(
            "Idle for {}; ends after {} more without activity.",
            human(idle_ms),
            human(left.max(0))
        )
    });
    let mut facts = vec![
        ("Owner".to_string(), session.owner.clone()),
        ("Identity".to_string(), session.identity.clone()),
        ("Runtime".to_string(), session.runtime.clone()),
        ("Compute".to_string(), session.compute.clone()),
        (
            "Idle timeout".to_string(),
            human(session.idle_timeout.as_millis() as i64),
        ),
    ];
    if let Some(sizing) = &session.sizing {
        facts.push(("Size".into(), size_text(sizing)));
    }
    if let Some(app) = &session.spark_app_id {
        facts.push(("Spark application".into(), app.clone()));
    }
    facts.push(("Created".into(), when(&session.created_at)));
    if let Some(ended) = &session.ended_at {
        facts.push(("Ended".into(), when(ended)));
    }
    let statement_lines: Vec<StatementLine> = statements.iter().map(StatementLine::from).collect();
    let waiting = !finished
        && (matches!(
            session.state,
            SessionState::NotStarted | SessionState::Starting | SessionState::Busy
        ) || statements
            .iter()
            .any(|s| matches!(s.state, StatementState::Waiting | StatementState::Running)));
    let can_run = matches!(session.state, SessionState::Idle | SessionState::Busy)
        && user.caller.require(Action::RunStatements).is_ok();
    render(&SessionPage {
        user: Some(Viewer::from(&user)),
        section: "sessions",
        csrf: user.csrf.clone(),
        timeline: timeline(
            &phases,
            session.ended_at.as_deref(),
            Some("idle"),
            chrono::Utc::now(),
        ),
        session: SessionLine::from(&session),
        idle,
        facts,
        statements: statement_lines,
        can_run,
        spark_ui: session
            .spark_ui_url
            .as_ref()
            .filter(|_| !finished)
            .map(|_| format!("/api/v1/sessions/{}/sparkui/", session.id)),
        waiting,
    })
}

#[derive(Deserialize)]
pub struct StatementForm {
    code: String,
    #[serde(default)]
    csrf: String,
}

pub async fn run_statement(
    State(state): State<AppState>,
    user: StudioUser,
    Path(key): Path<String>,
    axum::Form(form): axum::Form<StatementForm>,
) -> Result<SeeOther, StudioError> {
    user.check_csrf(&form.csrf)?;
    let id = session_id(&key)?;
    state
        .control
        .submit_statement(&user.caller, id, &form.code, None)
        .await?;
    Ok(SeeOther(format!("/studio/sessions/{key}")))
}

pub async fn delete_session(
    State(state): State<AppState>,
    user: StudioUser,
    Path(key): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<SeeOther, StudioError> {
    user.check_csrf(&form.csrf)?;
    let id = session_id(&key)?;
    state.control.delete_session(&user.caller, id).await?;
    Ok(SeeOther(format!("/studio/sessions/{key}")))
}

fn mib(mb: i64) -> String {
    if mb >= 1024 {
        format!("{:.1} GiB", mb as f64 / 1024.0)
    } else {
        format!("{mb} MiB")
    }
}

struct ClusterLine {
    id: String,
    state: String,
    class: &'static str,
    runtime: String,
    cores: i64,
    memory: String,
    created: String,
    teardown: String,
    ui: Option<String>,
    /// One line per host: where, executors, cores, memory.
    workers: Vec<(String, i64, i64, String)>,
}

struct AgentLine {
    name: String,
    state: String,
    class: &'static str,
    address: String,
    cores: i64,
    memory: String,
    workers: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "studio/compute.html")]
struct ComputePage {
    user: Option<Viewer>,
    section: &'static str,
    capacity: spool_control::metrics::Capacity,
    memory: String,
    used_memory: String,
    teardown_after: String,
    clusters: Vec<ClusterLine>,
    /// Name, Spark version, runtime, master, attached.
    pools: Vec<(String, String, String, String, String)>,
    agents: Vec<AgentLine>,
}

pub async fn compute(State(state): State<AppState>, user: StudioUser) -> Result<Html, StudioError> {
    let control = &state.control;
    let capacity = control.capacity().await?;
    let teardown = control.config().teardown_after;
    let clusters = control
        .clusters(&user.caller)
        .await?
        .into_iter()
        .filter(|c| c.state != spool_core::ClusterState::Attached)
        .map(|c| {
            let teardown = match &c.idle_since {
                Some(since) => {
                    let left = teardown.as_millis() as i64 - ms_between(since, None);
                    format!("in {}", human(left.max(0)))
                }
                None => "in use".to_string(),
            };
            ClusterLine {
                id: c.id.to_string(),
                class: match c.state {
                    spool_core::ClusterState::Idle => "ok",
                    spool_core::ClusterState::InUse => "run",
                    _ => "wait",
                },
                state: c.state.to_string(),
                runtime: c.runtime,
                cores: c.cores,
                memory: mib(c.memory_mb),
                created: when(&c.created_at),
                teardown,
                ui: c.master_ui_url,
                workers: c
                    .workers
                    .iter()
                    .map(|w| {
                        (
                            w.agent.clone().unwrap_or_else(|| "this host".to_string()),
                            w.executors,
                            w.cores,
                            mib(w.memory_mb),
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let pools = control
        .computes(&user.caller)
        .await?
        .into_iter()
        .map(|p| {
            (
                p.name,
                p.spark_version,
                p.runtime,
                p.master_url,
                when(&p.attached_at),
            )
        })
        .collect();
    let agents = control
        .agents(&user.caller)
        .await?
        .into_iter()
        .map(|a| AgentLine {
            class: match a.state {
                spool_core::AgentState::Connected => "ok",
                spool_core::AgentState::Lost => "bad",
                _ => "wait",
            },
            state: a.state.to_string(),
            name: a.name,
            address: a.address.unwrap_or_default(),
            cores: a.cores,
            memory: mib(a.memory_mb),
            workers: a
                .workers
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            last_seen: a.last_seen.as_deref().map(when).unwrap_or_default(),
        })
        .collect();
    render(&ComputePage {
        user: Some(Viewer::from(&user)),
        section: "compute",
        memory: mib(capacity.memory_mb as i64),
        used_memory: mib(capacity.used_memory_mb as i64),
        capacity,
        teardown_after: human(teardown.as_millis() as i64),
        clusters,
        pools,
        agents,
    })
}

struct EnvLine {
    key: String,
    full_key: String,
    runtime: String,
    packages: String,
    size: String,
    build: String,
    built: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "studio/environments.html")]
struct EnvironmentsPage {
    user: Option<Viewer>,
    section: &'static str,
    envs: Vec<EnvLine>,
}

/// Seconds since the epoch as a time of day, the way the other pages show times.
fn epoch(seconds: u64) -> String {
    chrono::DateTime::from_timestamp(seconds as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub async fn environments(
    State(state): State<AppState>,
    user: StudioUser,
) -> Result<Html, StudioError> {
    let mut envs = state.control.environments(&user.caller).await?;
    envs.sort_by_key(|e| std::cmp::Reverse(e.last_used));
    render(&EnvironmentsPage {
        user: Some(Viewer::from(&user)),
        section: "environments",
        envs: envs
            .into_iter()
            .map(|e| EnvLine {
                key: e.env.key.chars().take(12).collect(),
                full_key: e.env.key.clone(),
                runtime: format!("{} (pyspark {})", e.env.runtime, e.env.pyspark),
                packages: e.env.requirements.join(" "),
                size: size(e.size_bytes),
                build: human((e.env.build_seconds * 1000.0) as i64),
                built: epoch(e.env.built_at),
                last_used: epoch(e.last_used),
            })
            .collect(),
    })
}

/// What an environment's build printed, as the API's `GET /environments/{key}/log` gives it.
pub async fn environment_log(
    state: State<AppState>,
    user: StudioUser,
    Path(key): Path<String>,
) -> Result<Response, StudioError> {
    Ok(
        crate::routes::environment_log(state, Extension(user.caller), crate::extract::Path(key))
            .await?,
    )
}

/// A job's or session's size as its page states it.
fn size_text(sizing: &spool_spec::SparkSizing) -> String {
    format!(
        "driver {} cores, {}; {} executors × {} cores, {}",
        sizing.driver_cores,
        sizing.driver_memory,
        sizing.executor_instances,
        sizing.executor_cores,
        sizing.executor_memory
    )
}

/// How a session got its driver, read from its phases.
fn start_kind(phases: &[(String, String)]) -> StartKind {
    if phases.iter().any(|(name, _)| name == "claimed") {
        StartKind::Prewarmed
    } else if phases
        .iter()
        .any(|(name, _)| name == "cluster_provisioning")
    {
        StartKind::Cold
    } else {
        StartKind::Warm
    }
}

struct StartLine {
    /// `session` or `job`.
    what: &'static str,
    /// The session's id or the job's name.
    id: String,
    /// Its studio page.
    href: String,
    kind: StartKind,
    class: &'static str,
    total: String,
    /// The bar's length against the longest start shown.
    percent: i64,
    segments: Vec<super::timeline::Segment>,
}

#[derive(Template)]
#[template(path = "studio/starts.html")]
struct StartsPage {
    user: Option<Viewer>,
    section: &'static str,
    starts: Vec<StartLine>,
}

/// Starts shown on the start-time chart.
const STARTS: usize = 30;

/// One start of the chart: from the request to `ready` (a session's `idle`, a job's
/// `Running`), split by phase.
fn start_line(
    what: &'static str,
    id: String,
    href: String,
    kind: StartKind,
    phases: &[(String, String)],
    ready: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> (StartLine, i64) {
    let t = timeline(phases, None, Some(ready), now);
    let ms: i64 = t.segments.iter().map(|seg| seg.weight).sum();
    let line = StartLine {
        what,
        id,
        href,
        kind,
        class: match kind {
            StartKind::Prewarmed => "ok",
            StartKind::Warm | StartKind::Pool => "run",
            StartKind::Cold => "wait",
        },
        total: t.total,
        percent: 0,
        segments: t.segments,
    };
    (line, ms)
}

pub async fn starts(State(state): State<AppState>, user: StudioUser) -> Result<Html, StudioError> {
    let sessions = state.control.sessions(&user.caller).await?;
    let jobs = state.control.jobs(&user.caller, STARTS as i64 * 4).await?;
    let now = chrono::Utc::now();
    let pairs = |phases: &[spool_control::Phase]| -> Vec<(String, String)> {
        phases
            .iter()
            .map(|p| (p.status.clone(), p.at.clone()))
            .collect()
    };
    // Newest first by when they were asked for; RFC 3339 times of one clock sort as text.
    let mut found: Vec<(String, (StartLine, i64))> = Vec::new();
    for s in sessions
        .iter()
        .filter(|s| s.phases.iter().any(|p| p.status == "idle"))
    {
        let phases = pairs(&s.phases);
        let kind = start_kind(&phases);
        found.push((
            s.created_at.clone(),
            start_line(
                "session",
                s.id.to_string(),
                format!("/studio/sessions/{}", s.id),
                kind,
                &phases,
                "idle",
                now,
            ),
        ));
    }
    for j in &jobs {
        let Some(kind) = j.start_kind else { continue };
        if !j.phases.iter().any(|p| p.status == "Running") {
            continue;
        }
        found.push((
            j.created_at.clone(),
            start_line(
                "job",
                j.name.clone(),
                format!("/studio/jobs/{}", j.name),
                kind,
                &pairs(&j.phases),
                "Running",
                now,
            ),
        ));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    let mut lines: Vec<(StartLine, i64)> = found
        .into_iter()
        .take(STARTS)
        .map(|(_, line)| line)
        .collect();
    let longest = lines.iter().map(|(_, ms)| *ms).max().unwrap_or(1).max(1);
    for (line, ms) in &mut lines {
        line.percent = (*ms * 100 / longest).max(1);
    }
    render(&StartsPage {
        user: Some(Viewer::from(&user)),
        section: "starts",
        starts: lines.into_iter().map(|(line, _)| line).collect(),
    })
}

#[derive(Template)]
#[template(path = "studio/datastores.html")]
struct DatastoresPage {
    user: Option<Viewer>,
    section: &'static str,
    /// Name, URI, created.
    datastores: Vec<(String, String, String)>,
}

pub async fn datastores(
    State(state): State<AppState>,
    user: StudioUser,
) -> Result<Html, StudioError> {
    let found = state.control.datastores(&user.caller).await?;
    render(&DatastoresPage {
        user: Some(Viewer::from(&user)),
        section: "datastores",
        datastores: found
            .into_iter()
            .map(|d| (d.name, d.uri, when(&d.created_at)))
            .collect(),
    })
}

struct EntryLine {
    name: String,
    folder: bool,
    file: bool,
    link: String,
    size: String,
}

#[derive(Template)]
#[template(path = "studio/datastore.html")]
struct DatastorePage {
    user: Option<Viewer>,
    section: &'static str,
    name: String,
    path: String,
    uri: String,
    /// Each folder on the way, with its link.
    crumbs: Vec<(String, String)>,
    entries: Vec<EntryLine>,
    can_upload: bool,
    csrf: String,
}

#[derive(Deserialize, Default)]
pub struct BrowseQuery {
    #[serde(default)]
    path: String,
}

pub async fn datastore(
    State(state): State<AppState>,
    user: StudioUser,
    Path(name): Path<String>,
    Query(query): Query<BrowseQuery>,
) -> Result<Response, StudioError> {
    let path = query.path.trim_matches('/').to_string();
    let entries = match state
        .control
        .browse_datastore(&user.caller, &name, &path)
        .await
    {
        Ok(entries) => entries,
        // A link to a file (a job's `uri_file` input) opens the file.
        Err(spool_control::ControlError::NotFound { .. })
            if state
                .control
                .open_datastore_file(&user.caller, &name, &path)
                .await
                .is_ok() =>
        {
            return Ok(SeeOther(format!("/studio/datastores/{name}/files/{path}")).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let mut crumbs = Vec::new();
    let mut so_far = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        crumbs.push((
            part.to_string(),
            format!("/studio/datastores/{name}?path={}", form_escape(&so_far)),
        ));
    }
    let inside = |entry: &str| {
        if path.is_empty() {
            entry.to_string()
        } else {
            format!("{path}/{entry}")
        }
    };
    render(&DatastorePage {
        user: Some(Viewer::from(&user)),
        section: "datastores",
        uri: format!("azureml://datastores/{name}/paths/{path}"),
        entries: entries
            .into_iter()
            .map(|(entry, kind, bytes)| {
                let folder = kind == spool_control::EntryKind::Folder;
                let target = inside(&entry);
                EntryLine {
                    link: if folder {
                        format!("/studio/datastores/{name}?path={}", form_escape(&target))
                    } else {
                        format!("/studio/datastores/{name}/files/{target}")
                    },
                    file: kind == spool_control::EntryKind::File,
                    size: if folder { String::new() } else { size(bytes) },
                    name: entry,
                    folder,
                }
            })
            .collect(),
        crumbs,
        name,
        path,
        can_upload: user.caller.require(Action::UploadToDatastores).is_ok(),
        csrf: user.csrf.clone(),
    })
    .map(IntoResponse::into_response)
}

/// A datastore file as a download, streamed.
pub async fn datastore_file(
    State(state): State<AppState>,
    user: StudioUser,
    Path((name, path)): Path<(String, String)>,
) -> Result<Response, StudioError> {
    let (file, bytes) = state
        .control
        .open_datastore_file(&user.caller, &name, &path)
        .await?;
    let file_name = path.rsplit('/').next().unwrap_or("file").replace('"', "");
    let body = crate::download::streamed(format!("`{name}/{path}`"), move |out| {
        use std::io::Read;
        std::io::copy(&mut file.take(bytes), out)?;
        Ok(())
    });
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// A file uploaded from the datastore page into the folder it shows: the form's fields come as
/// `csrf`, `path`, then `file` (the token is checked before the file is read), the file is
/// streamed to a temp file within `max_upload`, and then goes in as a one-entry archive through
/// the API's upload (its data-role check per path and its all-or-nothing unpacking).
pub async fn upload_to_datastore(
    State(state): State<AppState>,
    user: StudioUser,
    Path(name): Path<String>,
    mut form: axum::extract::Multipart,
) -> Result<SeeOther, StudioError> {
    use tokio::io::AsyncWriteExt;
    let bad = |e: axum::extract::multipart::MultipartError| {
        StudioError::bad_request(format!("the upload form could not be read: {e}"))
    };
    let limit = state
        .control
        .config()
        .max_upload
        .0
        .saturating_mul(1024 * 1024);
    let dir = state.control.upload_dir().map_err(StudioError::internal)?;
    let (mut csrf, mut folder, mut uploaded) = (String::new(), String::new(), None);
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(bad)?,
            Some("path") => folder = field.text().await.map_err(bad)?,
            Some("file") => {
                user.check_csrf(&csrf)?;
                let file_name = field.file_name().unwrap_or_default().to_string();
                if file_name.is_empty()
                    || file_name.contains('/')
                    || file_name == "."
                    || file_name == ".."
                {
                    return Err(StudioError::bad_request(format!(
                        "file: `{file_name}` is not a file name; choose a file to upload"
                    )));
                }
                let temp = tempfile::Builder::new()
                    .prefix(".upload-")
                    .tempfile_in(&dir)
                    .map_err(StudioError::internal)?;
                let (file, path) = temp.into_parts();
                let mut file = tokio::fs::File::from_std(file);
                let mut written: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    written = written.saturating_add(chunk.len() as u64);
                    if written > limit {
                        return Err(StudioError::Page {
                            status: StatusCode::PAYLOAD_TOO_LARGE,
                            message: format!(
                                "the file is larger than the server's `max_upload` ({})",
                                state.control.config().max_upload
                            ),
                        });
                    }
                    file.write_all(&chunk)
                        .await
                        .map_err(StudioError::internal)?;
                }
                file.flush().await.map_err(StudioError::internal)?;
                uploaded = Some((file_name, path, written));
            }
            _ => {}
        }
    }
    user.check_csrf(&csrf)?;
    let Some((file_name, body, bytes)) = uploaded else {
        return Err(StudioError::bad_request(
            "file: no file was sent; choose a file to upload",
        ));
    };
    let folder = folder.trim_matches('/').to_string();
    let entry = if folder.is_empty() {
        file_name
    } else {
        format!("{folder}/{file_name}")
    };
    let archive = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(&dir)
        .map_err(StudioError::internal)?
        .into_temp_path();
    let archive_path = archive.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut builder = tar::Builder::new(std::fs::File::create(&archive_path)?);
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, &entry, std::fs::File::open(&body)?)?;
        builder.into_inner()?.sync_all()
    })
    .await
    .map_err(StudioError::internal)?
    .map_err(StudioError::internal)?;
    state
        .control
        .upload_to_datastore(&user.caller, &name, archive)
        .await?;
    Ok(SeeOther(format!(
        "/studio/datastores/{name}?path={}",
        form_escape(&folder)
    )))
}
