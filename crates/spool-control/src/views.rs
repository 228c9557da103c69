//! What `Control` hands to the HTTP layer: the caller, and views of sessions, statements and
//! jobs with their JSON columns parsed. Store rows stop here; where the native API shows a thing
//! in one way only (clusters, datastores, events), `Control` returns its `spool-api-types` view.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use spool_api_types as api;
use spool_core::{
    ClusterId, DriverPath, JobId, JobKind, JobStatus, SessionId, SessionState, StartKind,
    StatementState, UserId, WorkspaceRole,
};
use spool_spec::SparkSizing;
use spool_store::{
    ClusterRow, ClusterWorkerRow, DatastoreRow, EventRow, JobRow, NetnsRow, SessionRow,
    StatementRow, UserRow,
};

/// The authenticated user a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: UserId,
    pub name: String,
    pub role: WorkspaceRole,
}

impl Caller {
    /// Whether the caller sees and manages everyone's work, not only their own: workspace
    /// Owners (what the admin was before roles).
    pub fn sees_everything(&self) -> bool {
        self.role == WorkspaceRole::Owner
    }

    /// Whether the caller may see (and, if their role allows, act on) work owned by `owner`.
    pub fn sees(&self, owner: UserId) -> bool {
        self.sees_everything() || self.id == owner
    }

    /// The one user whose work the caller sees, or `None` for everyone's (an Owner).
    pub fn only_own(&self) -> Option<UserId> {
        (!self.sees_everything()).then_some(self.id)
    }
}

impl From<UserRow> for Caller {
    fn from(row: UserRow) -> Self {
        Caller {
            id: row.id,
            name: row.name,
            role: row.role,
        }
    }
}

/// One timestamped step of a session's or job's life, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    pub status: String,
    pub at: String,
}

fn phases(stored: Vec<spool_store::Phase>) -> Vec<Phase> {
    stored
        .into_iter()
        .map(|p| Phase {
            status: p.status,
            at: p.at,
        })
        .collect()
}

/// An interactive session as its owner sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub name: Option<String>,
    pub owner: String,
    /// `pyspark`, `sql` or `shared`.
    pub kind: String,
    pub state: SessionState,
    /// Why the session is in its state (what it waits for, why it died).
    pub state_reason: Option<String>,
    pub runtime: String,
    /// `serverless` or the name of an attached pool.
    pub compute: String,
    pub identity: String,
    /// How long the session may be idle before it ends.
    pub idle_timeout: Duration,
    pub cluster_id: Option<ClusterId>,
    pub spark_app_id: Option<String>,
    pub spark_ui_url: Option<String>,
    pub created_at: String,
    pub last_activity_at: String,
    pub ended_at: Option<String>,
    pub phases: Vec<Phase>,
    /// The sizes the session was started with (`None` only for an unreadable record).
    pub sizing: Option<SparkSizing>,
    /// The Spark conf the session asked for.
    pub conf: BTreeMap<String, String>,
    /// The extra files it asked for (Livy's `jars`, `pyFiles`, `files`, `archives`).
    pub files: crate::livy_files::SessionFiles,
    /// Whether its driver serves Spark Connect (a `connect` session).
    pub connect: bool,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        let conf = serde_json::from_str(&row.conf_json).unwrap_or_default();
        Session {
            phases: phases(row.phases()),
            sizing: serde_json::from_str(&row.sizing_json).ok(),
            connect: crate::connect::asked(&conf).unwrap_or(false),
            conf,
            files: row
                .files_json
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok())
                .unwrap_or_default(),
            idle_timeout: Duration::from_secs(row.idle_timeout_s.max(0) as u64),
            id: row.id,
            name: row.name,
            owner: row.owner_name,
            kind: row.kind,
            state: row.state,
            state_reason: row.state_reason,
            runtime: row.runtime,
            compute: row.compute,
            identity: row.identity,
            cluster_id: row.cluster_id,
            spark_app_id: row.spark_app_id,
            spark_ui_url: row.spark_ui_url,
            created_at: row.created_at,
            last_activity_at: row.last_activity_at,
            ended_at: row.ended_at,
        }
    }
}

/// A statement of a session.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Per-session number from 0.
    pub seq: i64,
    pub kind: String,
    pub code: String,
    pub state: StatementState,
    /// Livy's output object, once the statement is `available` or `cancelled`.
    pub output: Option<serde_json::Value>,
    pub progress: f64,
    /// Epoch milliseconds; 0 until it happened.
    pub started_ms: i64,
    pub completed_ms: i64,
}

impl From<StatementRow> for Statement {
    fn from(row: StatementRow) -> Self {
        let done = matches!(
            row.state,
            StatementState::Available | StatementState::Cancelled
        );
        Statement {
            output: row
                .output_json
                .as_deref()
                .filter(|_| done)
                .and_then(|o| serde_json::from_str(o).ok()),
            seq: row.seq,
            kind: row.kind,
            code: row.code,
            state: row.state,
            progress: row.progress,
            started_ms: row.started_ms,
            completed_ms: row.completed_ms,
        }
    }
}

/// Which jobs a list page shows (`Control::jobs_filtered`); `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    pub status: Option<JobStatus>,
    pub experiment: Option<String>,
    /// Only for Owners, who see everyone's jobs.
    pub owner: Option<String>,
    /// Jobs older than this one (the next page).
    pub before: Option<JobId>,
    pub limit: i64,
}

/// A batch job as its owner sees it.
#[derive(Debug, Clone)]
pub struct Job {
    /// The integer id Livy clients know the job by (as a batch).
    pub id: JobId,
    pub name: String,
    /// What the job runs: a Spark application, a command, a pipeline.
    pub kind: JobKind,
    pub display_name: String,
    pub experiment_name: String,
    pub owner: String,
    pub status: JobStatus,
    /// Why the job is in its status (what it is queued behind, what it is preparing).
    pub status_reason: Option<String>,
    /// For a failed job: the driver's error.
    pub error: Option<String>,
    pub runtime: String,
    /// `serverless` or the name of an attached pool.
    pub compute: String,
    pub identity: String,
    /// Who the job acts as (none for jobs recorded before principals were).
    pub principal: Option<String>,
    /// Whether its processes ran under the principal's OS account.
    pub access_enforced: bool,
    pub cluster_id: Option<ClusterId>,
    pub spark_app_id: Option<String>,
    /// The Spark UI, while there is one (never empty).
    pub spark_ui_url: Option<String>,
    pub created_at: String,
    pub ended_at: Option<String>,
    pub phases: Vec<Phase>,
    /// The job spec as submitted (normalized), as JSON.
    pub spec: serde_json::Value,
    /// The size the job asked for (`None` only for an unreadable record).
    pub sizing: Option<SparkSizing>,
    /// Outputs by name, as datastore URIs.
    pub outputs: BTreeMap<String, String>,
    /// The directory holding the job's logs (`azureml/driver/...`).
    pub log_dir: PathBuf,
    /// Set on a pipeline's node: the pipeline job.
    pub parent_id: Option<JobId>,
    /// How its driver started (once placed), and why.
    pub driver: Option<(DriverPath, String)>,
    /// How it got its driver, once it ran.
    pub start_kind: Option<StartKind>,
}

impl Job {
    pub(crate) fn from_row(row: JobRow, log_dir: PathBuf) -> Job {
        Job {
            parent_id: row.parent_id,
            start_kind: row.start_kind,
            driver: row
                .driver_path
                .map(|path| (path, row.driver_reason.clone().unwrap_or_default())),
            phases: phases(row.phases()),
            spec: serde_json::from_str(&row.spec_json).unwrap_or_default(),
            sizing: crate::Control::job_sizing(&row),
            outputs: crate::Control::job_outputs(&row),
            log_dir,
            id: row.id,
            name: row.name,
            kind: row.kind,
            display_name: row.display_name,
            experiment_name: row.experiment_name,
            owner: row.owner_name,
            status: row.status,
            status_reason: row.status_reason,
            error: row.error,
            runtime: row.runtime,
            compute: row.compute,
            identity: row.identity,
            principal: row.principal,
            access_enforced: row.enforced,
            cluster_id: row.cluster_id,
            spark_app_id: row.spark_app_id,
            spark_ui_url: row.spark_ui_url.filter(|u| !u.is_empty()),
            created_at: row.created_at,
            ended_at: row.ended_at,
        }
    }
}

pub(crate) fn cluster_view(row: ClusterRow) -> api::ClusterView {
    api::ClusterView {
        id: row.id,
        state: row.state,
        runtime: row.runtime,
        master_url: row.master_url,
        master_ui_url: row.master_ui_url,
        cores: row.reserved_cores,
        memory_mb: row.reserved_memory_mb,
        created_at: row.created_at,
        ready_at: row.ready_at,
        idle_since: row.idle_since,
        ended_at: row.ended_at,
        end_reason: row.end_reason,
        network_version: row.network_version,
        network: None,
        workers: Vec::new(),
    }
}

pub(crate) fn cluster_worker_view(row: ClusterWorkerRow) -> api::ClusterWorkerView {
    api::ClusterWorkerView {
        agent: row.agent,
        executors: row.executors,
        cores: row.cores,
        memory_mb: row.memory_mb,
    }
}

pub(crate) fn cluster_network_view(row: NetnsRow) -> api::ClusterNetworkView {
    api::ClusterNetworkView {
        isolation_mode: row.isolation_mode.to_string(),
        netns: row.netns,
        host_veth: row.host_veth,
        host_address: row.host_address,
        cluster_address: row.inner_address,
        state: row.state,
        rules: row.rules,
        created_at: row.created_at,
        removed_at: row.removed_at,
    }
}

pub(crate) fn datastore_view(row: DatastoreRow) -> api::DatastoreView {
    api::DatastoreView {
        uri: format!("azureml://datastores/{}/paths/", row.name),
        name: row.name,
        created_at: row.created_at,
    }
}

pub(crate) fn event_view(row: EventRow) -> api::EventView {
    api::EventView {
        id: row.id,
        at: row.at,
        kind: row.kind,
        subject: row.subject,
        message: row.message,
    }
}
