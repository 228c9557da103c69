//! Wire types of Spool's native REST API (`/api/v1`), shared by the server and the client.
//!
//! Pure data: no IO, no behaviour beyond (de)serialization.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
pub use spool_core::{
    AgentState, ClusterId, ClusterState, DataRole, DriverPath, JobKind, JobStatus,
    RoleAssignmentId, SessionId, SessionState, StartKind, StatementState, WorkspaceRole,
};
pub use spool_core::{AuditEntryId, AuditResult};

/// The body of every error response: `{"error": {"code", "message", "target"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `unauthorized`, `not_found`, `invalid_spec`.
    pub code: String,
    pub message: String,
    /// What the error is about: a field path, a job name, a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A timestamped status a job went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseView {
    pub status: String,
    pub at: String,
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub name: String,
    /// What the job runs: `spark`, `command` or `pipeline` (`spark` from servers before kinds).
    #[serde(default = "spark_kind")]
    pub kind: JobKind,
    pub display_name: String,
    pub experiment_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: JobStatus,
    /// Why the job is in its status (what it is queued behind, what it is preparing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// For a failed job: the driver's error (the Python traceback's last line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub owner: String,
    pub runtime: String,
    /// `serverless`, or the name of an attached pool.
    pub compute: String,
    pub identity: String,
    /// Who the job acts as: a user's name, or a managed identity's (`pool/<name>` for a pool's
    /// system-assigned one). Its data roles decide what it may read and write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Whether the operating system enforced the principal's data roles while the job ran (its
    /// processes ran under the principal's OS account). `false` where the server cannot switch
    /// accounts (not root): then only the checks at submit applied.
    #[serde(default)]
    pub access_enforced: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub phases: Vec<PhaseView>,
    pub resources: SizingView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_ui_url: Option<String>,
    /// How a Spark job's driver started and why (once it was placed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverView>,
    /// How a Spark job got its driver (`cold`, `warm`, `prewarmed`, `pool`), once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_kind: Option<StartKind>,
    /// Outputs by name, as datastore URIs.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// The job spec as submitted (normalized).
    pub spec: serde_json::Value,
    /// The pipeline job this job is a node of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_job_name: Option<String>,
    /// Run properties, as Azure ML names them: a reused node has `azureml.isreused: "true"`
    /// and `azureml.reusedrunid: <the job it reused>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// A pipeline's nodes, each earlier than the nodes that read from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeView>,
}

/// How a Spark job's driver started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverView {
    /// `warm_driver` (a pre-warmed driver ran the entry) or `spark_submit`.
    pub path: DriverPath,
    /// Which driver it took, or what kept it from a pre-warmed one.
    pub reason: String,
}

/// A node of a pipeline and the child job that runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's key in `jobs` (also its job's display name).
    pub node: String,
    pub job_name: String,
    /// What its job runs: `spark` or `command`.
    #[serde(default = "spark_kind")]
    pub kind: JobKind,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The nodes it reads from.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The earlier job whose outputs it reused instead of running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_job_name: Option<String>,
    /// From its first step past waiting to its end (or now, while it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

fn spark_kind() -> JobKind {
    JobKind::Spark
}

/// The size a job asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizingView {
    pub driver_cores: u32,
    pub driver_memory: String,
    pub executor_cores: u32,
    pub executor_memory: String,
    pub executor_instances: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_allocation: Option<(u32, u32)>,
}

/// A new agent and its token (shown once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCreated {
    pub name: String,
    pub token: String,
}

/// `POST /api/v1/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub name: String,
}

/// A worker host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub cores: i64,
    pub memory_mb: i64,
    pub state: AgentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Clusters with a Spark worker on this agent.
    pub workers: Vec<ClusterId>,
}

/// What an agent reports with each heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentReport {
    pub name: String,
    /// The address its Spark workers bind to, reachable from the server's host.
    pub address: String,
    pub cores: u32,
    pub memory_mb: u64,
    /// Clusters whose worker it runs now.
    #[serde(default)]
    pub running: Vec<ClusterId>,
}

/// The workers an agent should run: it starts the missing ones and stops the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentOrders {
    pub workers: Vec<WorkerOrder>,
    /// When to report next.
    pub heartbeat_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerOrder {
    pub cluster_id: ClusterId,
    pub master_url: String,
    pub runtime: String,
    pub cores: u32,
    pub memory_mb: u64,
    /// The worker daemon's heap, as the server's own workers get it (older servers: unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_memory_mb: Option<u64>,
    /// The cluster's Spark RPC secret (`spark.authenticate`), which the worker must present to
    /// its master and hands to its executors; unset for an unauthenticated cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<String>,
}

/// An attached Spark pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeView {
    pub name: String,
    /// `sparkpool`.
    #[serde(rename = "type")]
    pub kind: String,
    pub master_url: String,
    pub master_ui_url: String,
    /// As the pool's master reports it; selects the runtime drivers use.
    pub spark_version: String,
    pub runtime: String,
    pub identity: PoolIdentityView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub attached_at: String,
    /// What the master reported when the pool was attached.
    pub attached_capacity: PoolCapacity,
    /// Live health, read from the master when shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<PoolHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolIdentityView {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_assigned_identities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolCapacity {
    pub workers: i64,
    pub cores: i64,
    pub memory_mb: i64,
}

/// What a pool's master reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolHealth {
    /// `ALIVE`, or why it could not be read.
    pub status: String,
    pub alive_workers: i64,
    pub cores: i64,
    pub cores_used: i64,
    pub memory_mb: i64,
    pub memory_used_mb: i64,
    pub active_apps: i64,
}

/// `POST /api/v1/computes`: an attach file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachCompute {
    /// The file's name, for error messages.
    pub file: String,
    /// The attach YAML.
    pub yaml: String,
}

/// `PUT /api/v1/workspace`: a workspace file, shaped like Azure ML's workspace YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspace {
    /// The file's name, for error messages.
    pub file: String,
    /// The workspace YAML; only its `managed_network` is kept.
    pub yaml: String,
}

/// `GET /api/v1/workspace`: the workspace's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceView {
    pub managed_network: ManagedNetworkView,
    /// Live serverless clusters (the caller's; all for an Owner) that started under an older
    /// version of the settings and keep its rules until they are torn down.
    #[serde(default)]
    pub clusters_on_older_settings: Vec<OlderCluster>,
}

/// A live cluster still on an earlier version of the network settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OlderCluster {
    pub id: ClusterId,
    pub state: ClusterState,
    /// The settings' version it started under.
    pub network_version: i64,
}

/// The workspace's managed network settings; serverless clusters started after an update
/// run under them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedNetworkView {
    /// `disabled` (the default), `allow_internet_outbound` or `allow_only_approved_outbound`.
    pub isolation_mode: String,
    pub outbound_rules: Vec<OutboundRuleView>,
    /// 0 until the first update, then one more with each; a cluster started after an update
    /// uses that version's rules.
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// One outbound rule as written in the workspace file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRuleView {
    pub name: String,
    /// `fqdn`, `ip` or `private_endpoint`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A host name for `fqdn`; `{address_prefix, protocol, port_ranges}` for `ip`;
    /// `{service_resource_id, spark_enabled, subresource_target}` for `private_endpoint`.
    pub destination: serde_json::Value,
}

/// An environment in the cache: extra PyPI packages built on a runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentView {
    /// Content address: a hash of the runtime and the normalized requirements.
    pub key: String,
    pub runtime: String,
    pub pyspark: String,
    pub requirements: Vec<String>,
    /// The environment's Python (what drivers and executors run).
    pub python: String,
    /// Bytes the environment adds to the cache (files it shares with its runtime not counted).
    pub size_bytes: u64,
    pub built_at: String,
    pub build_seconds: f64,
    pub last_used: String,
}

/// Environments removed by a prune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentsPruned {
    pub removed: Vec<String>,
}

/// A serverless cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub id: ClusterId,
    pub state: ClusterState,
    pub runtime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_ui_url: Option<String>,
    pub cores: i64,
    pub memory_mb: i64,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// The version of the workspace's network settings it started under.
    #[serde(default)]
    pub network_version: i64,
    /// Its network namespace, veth pair and filter rules, when it is isolated (`cluster show`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ClusterNetworkView>,
    /// Its workers, one per host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<ClusterWorkerView>,
}

/// A cluster's worker on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterWorkerView {
    /// The agent host it runs on; none for the server's own host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub executors: i64,
    pub cores: i64,
    pub memory_mb: i64,
}

/// An isolated cluster's kernel objects, as recorded before they were created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNetworkView {
    pub isolation_mode: String,
    /// The network namespace, under `/run/netns`.
    pub netns: String,
    /// The host's end of the veth pair; the namespace's end is `eth0`.
    pub host_veth: String,
    pub host_address: String,
    /// Where the cluster's master, workers and drivers listen, inside the namespace.
    pub cluster_address: String,
    pub state: spool_core::NetnsState,
    /// The nftables rules applied inside the namespace.
    pub rules: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<String>,
}

/// `GET /api/v1/clusters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterList {
    pub clusters: Vec<ClusterView>,
}

/// A server event: what a restarted server adopted or reaped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub id: i64,
    pub at: String,
    /// What happened, e.g. `adopted`, `reaped`, `agent_lost`.
    pub kind: String,
    /// What it happened to, e.g. `cluster 3`.
    pub subject: String,
    pub message: String,
}

/// One entry of the audit log: a state-changing call or a denial. It never holds a token or
/// a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    pub id: AuditEntryId,
    /// When the call was answered (RFC 3339, UTC).
    pub at: String,
    /// The user who made the call; `anonymous` when it was not authenticated.
    pub principal: String,
    /// Who the call's work acts as, where that is set by the call (a job's user or managed
    /// identity, a session's user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// What was asked, e.g. `job.create`, `role_assignment.delete`, `livy.session.create`.
    pub action: String,
    /// What it was asked of: names and ids, e.g. a job's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
    pub result: AuditResult,
}

/// `GET /api/v1/audit`'s query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// An RFC 3339 time, or a duration back from now (`30m`, `1h`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only calls made by this user (`anonymous` for unauthenticated ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// 1 to 1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Only entries older than this one: the previous page's `next_before`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<AuditEntryId>,
}

/// `GET /api/v1/audit`: entries newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<AuditEntryId>,
}

/// `POST /api/v1/jobs`: a job spec (the normalized form of the job YAML) as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateJob {
    pub spec: serde_json::Value,
}

/// `GET /api/v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<JobView>,
}

/// A runtime and whether it is installed on the server's machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeView {
    pub version: String,
    pub pyspark: String,
    pub scala: String,
    pub packages: Vec<String>,
    pub installed: bool,
    pub default: bool,
}

/// A named machine size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceTypeView {
    pub name: String,
    pub cores: u32,
    pub memory_mb: u64,
}

/// What the server can run: its runtimes, instance types and capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogView {
    pub runtimes: Vec<RuntimeView>,
    pub default_runtime: String,
    pub instance_types: Vec<InstanceTypeView>,
    pub capacity: CapacityView,
    /// Pre-warmed drivers ready to be claimed by a session with default settings.
    #[serde(default)]
    pub prewarmed_sessions_ready: u32,
}

/// The server host's capacity and what is in use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityView {
    pub host_cores: u32,
    pub cpu_oversubscription: f64,
    /// Cores that may be handed out: host cores times the oversubscription factor.
    pub schedulable_cores: u32,
    pub memory_mb: u64,
    pub used_cores: u32,
    pub used_memory_mb: u64,
}

/// `POST /api/v1/runtimes/{version}/install` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInstalled {
    pub version: String,
    pub pyspark: String,
    pub python: String,
    pub seconds: f64,
}

/// A datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreView {
    pub name: String,
    /// `azureml://datastores/<name>/paths/`.
    pub uri: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreList {
    pub datastores: Vec<DatastoreView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDatastore {
    pub name: String,
    /// An existing directory on the server's host to serve as the datastore's root (e.g. a
    /// shared filesystem mount); without it, a folder under the data dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Result of an upload of files into a datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
    pub files: u64,
    pub bytes: u64,
}

/// Result of a code snapshot upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotCreated {
    /// `snapshot:<sha256>`, to put in the job spec's `code`.
    pub code: String,
    pub files: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateUser {
    pub name: String,
    /// The workspace role: `Owner`, `Contributor`, `AzureML Data Scientist` (the default) or
    /// `Reader`, in any case, or a short form such as `data-scientist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `PATCH /users/{name}`: what to change about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// The new workspace role, read as in [`CreateUser::role`].
    pub role: String,
}

/// A user as others see them (never their token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub role: WorkspaceRole,
    /// Whether the user is an Owner (what the admin was before workspace roles).
    pub is_admin: bool,
    pub created_at: String,
}

/// Users, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// A managed identity: user-assigned, or the system-assigned identity of an attached pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityView {
    pub name: String,
    /// `user_assigned` or `system_assigned`.
    #[serde(rename = "type")]
    pub kind: String,
    pub client_id: String,
    pub principal_id: String,
    /// The pool a system-assigned identity belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Whether serverless jobs with `identity: {type: managed}` may act as it.
    pub in_workspace: bool,
    pub created_by: String,
    pub created_at: String,
}

/// Identities, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityList {
    pub identities: Vec<IdentityView>,
}

/// A request to create a user-assigned identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateIdentity {
    pub name: String,
}

/// A request to grant a data role, as `az role assignment create` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignmentCreate {
    /// A user's name.
    pub assignee: String,
    /// `Storage Blob Data Reader`, `Storage Blob Data Contributor` or `Storage Blob Data Owner`.
    pub role: String,
    /// `azureml://datastores/<name>` or `azureml://datastores/<name>/paths/<prefix>`.
    pub scope: String,
}

/// A granted data role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignmentView {
    pub id: RoleAssignmentId,
    pub assignee: String,
    /// `user` or `identity`.
    pub assignee_type: String,
    pub role: DataRole,
    pub scope: String,
    pub created_by: String,
    pub created_at: String,
}

/// Role assignments, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignmentList {
    pub role_assignments: Vec<RoleAssignmentView>,
}

/// A new user and their token; the only time the token is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    pub name: String,
    pub token: String,
}

/// Who the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub name: String,
    /// Whether the caller is a workspace Owner (kept for clients from before roles).
    pub is_admin: bool,
    pub role: WorkspaceRole,
}

/// A file of a job's logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFile {
    /// Path under the job's log dir, e.g. `azureml/driver/stderr`.
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogList {
    pub files: Vec<LogFile>,
}

/// `POST /api/v1/sessions`: what a session asks for; every field may be omitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// `pyspark` (default), `sql`, `shared`, or `connect` (a pyspark session whose driver also
    /// serves Spark Connect, reached at `connect_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_cores: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_cores: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executors: Option<u32>,
    /// Dynamic allocation: at least this many executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_executors: Option<u32>,
    /// Dynamic allocation: at most this many executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_executors: Option<u32>,
    /// An instance type that bounds the driver and each executor, as for jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Minutes without activity after which the session ends (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<f64>,
    #[serde(default)]
    pub conf: BTreeMap<String, String>,
    /// A conda environment file's content: extra PyPI packages for the driver and executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conda_file: Option<String>,
    /// The conda file's name, for error messages (default `conda_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conda_file_name: Option<String>,
    /// An attached pool to run on (default: serverless compute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<String>,
    /// Jars on the driver's and executors' class path: datastore URIs (`azureml://...`),
    /// paths in the default datastore, or server paths under `[livy] local_dir_allowlist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jars: Vec<String>,
    /// Python files (`.py`, `.zip`, `.egg`) importable on the driver and executors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub py_files: Vec<String>,
    /// Files in the driver's working directory and each executor's (`SparkFiles.get`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Archives unpacked on the driver and executors, into `#name` when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archives: Vec<String>,
}

/// A session as the native API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: SessionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: String,
    pub state: SessionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    pub owner: String,
    pub runtime: String,
    /// `serverless` or the attached pool the session runs on.
    #[serde(default = "serverless")]
    pub compute: String,
    /// The identity the session acts as (always the user's, passed through).
    #[serde(default = "user_identity")]
    pub identity: String,
    pub timeout_minutes: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<ClusterId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_ui_url: Option<String>,
    pub created_at: String,
    pub last_activity_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Start phases with timestamps (`not_started`, `starting`, `idle`, ...).
    pub phases: Vec<PhaseView>,
    /// For a `connect` session, the Spark Connect URL to give `SparkSession.builder.remote`,
    /// less the caller's token (`;token=<token>` is appended by the client, or
    /// `;x-spool-token=<token>` for a server at an address other than `localhost` without TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_url: Option<String>,
    /// The extra files it was created with, as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jars: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub py_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archives: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// `POST /api/v1/sessions/{id}/statements`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStatement {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A statement, with Livy's output shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementView {
    /// Per-session number from 0.
    pub id: i64,
    pub kind: String,
    pub code: String,
    pub state: StatementState,
    #[serde(default)]
    pub output: Option<serde_json::Value>,
    pub progress: f64,
    pub started: i64,
    pub completed: i64,
}

fn serverless() -> String {
    "serverless".into()
}

fn user_identity() -> String {
    "user_identity".into()
}

/// `POST /api/v1/components`: a component to register (`spool_spec::component::ComponentSpec`,
/// with `code` an uploaded `snapshot:<sha256>`). Without `version`, the next one is taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateComponent {
    pub spec: serde_json::Value,
}

/// One version of a registered component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentView {
    pub name: String,
    pub version: String,
    /// `azureml:<name>:<version>`, as a pipeline names it.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub is_deterministic: bool,
    /// `spark`.
    #[serde(rename = "type")]
    pub kind: String,
    pub inputs: BTreeMap<String, PortView>,
    pub outputs: BTreeMap<String, PortView>,
    /// The code snapshot, `snapshot:<sha256>`.
    pub code: String,
    /// Archived on its own or with its whole name; still usable in pipelines.
    pub archived: bool,
    pub created_at: String,
    pub created_by: String,
    /// The whole component as registered.
    pub spec: serde_json::Value,
}

/// A component's input or output port, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortView {
    /// `uri_file`, `uri_folder`, `string`, `number`, `integer` or `boolean`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// `GET /api/v1/components`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentList {
    pub components: Vec<ComponentView>,
}
