//! The lifecycles of Spool's nouns (see CONCEPTS.md) and their ids, as types.
//!
//! Each state is stored and sent as the text its lifecycle names (`NotStarted`, `idle`, ...);
//! [`as_str`](JobStatus::as_str) and [`FromStr`] are the only mapping, and the groups of states
//! other code asks about ("active", "terminal") are methods here, not lists copied around.

use std::fmt;
use std::str::FromStr;

/// A stored or received state name that its lifecycle does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {lifecycle} `{value}`; expected one of {expected}")]
pub struct UnknownState {
    pub lifecycle: &'static str,
    pub value: String,
    pub expected: String,
}

/// A lifecycle's states, by their text (the store builds its SQL lists from these).
pub trait Lifecycle: Copy {
    fn as_str(self) -> &'static str;
}

/// Declares a lifecycle enum with its text form, `Display`, `FromStr`, `TryFrom<String>` (as
/// the store reads it) and serde as that text.
macro_rules! lifecycle {
    (
        $(#[$meta:meta])*
        $lifecycle:literal pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
        pub enum $name {
            $( $(#[$vmeta])* #[cfg_attr(feature = "sqlx", sqlx(rename = $text))] $variant, )+
        }

        impl Lifecycle for $name {
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl $name {
            /// Every state, in lifecycle order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The state's name as stored and shown.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;

            fn from_str(text: &str) -> Result<Self, UnknownState> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    other => Err(UnknownState {
                        lifecycle: $lifecycle,
                        value: other.to_string(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;

            fn try_from(text: String) -> Result<Self, UnknownState> {
                text.parse()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

lifecycle! {
    /// A batch job's status, as Azure ML names them.
    "job status" pub enum JobStatus {
        /// Recorded; the scheduler has not looked at it yet.
        NotStarted = "NotStarted",
        /// Waiting for capacity (or for a detached pool); the reason says for what.
        Queued = "Queued",
        /// Placed on a cluster; the runtime and environment are being made ready.
        Preparing = "Preparing",
        /// The cluster's master and workers are starting (or a warm one is being reused).
        Provisioning = "Provisioning",
        /// The driver is starting.
        Starting = "Starting",
        /// The master accepted the driver's application.
        Running = "Running",
        /// The driver ended; logs are being collected.
        Finalizing = "Finalizing",
        /// A cancel is in flight: the driver is being stopped.
        CancelRequested = "CancelRequested",
        Completed = "Completed",
        Failed = "Failed",
        Canceled = "Canceled",
    }
}

impl JobStatus {
    /// Statuses of a job that holds a driver (and so counts against capacity).
    pub const ACTIVE: &'static [JobStatus] = &[
        JobStatus::Preparing,
        JobStatus::Provisioning,
        JobStatus::Starting,
        JobStatus::Running,
        JobStatus::Finalizing,
        JobStatus::CancelRequested,
    ];

    /// Statuses of a job waiting to be placed.
    pub const WAITING: &'static [JobStatus] = &[JobStatus::NotStarted, JobStatus::Queued];

    /// Final statuses: a job in one never changes again.
    pub const TERMINAL: &'static [JobStatus] =
        &[JobStatus::Completed, JobStatus::Failed, JobStatus::Canceled];

    pub fn is_terminal(self) -> bool {
        Self::TERMINAL.contains(&self)
    }

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }
}

lifecycle! {
    /// What a job runs: a Spark application, a command (a supervised process in its
    /// environment), or a pipeline of such steps (whose steps are jobs of their own).
    "job kind" pub enum JobKind {
        /// A Spark application on a cluster (`type: spark`).
        Spark = "spark",
        /// A shell command on the Spool host (`type: command`); needs no cluster.
        Command = "command",
        /// A pipeline of steps (`type: pipeline`).
        Pipeline = "pipeline",
    }
}

lifecycle! {
    /// How a Spark job's driver was started: by its own `spark-submit`, or as a pre-warmed
    /// driver that ran the job's entry file as `__main__` (then never reused).
    "driver path" pub enum DriverPath {
        /// A `spark-submit` of the job's entry on its cluster.
        SparkSubmit = "spark_submit",
        /// A pre-warmed driver, its SparkContext already up, executors registered.
        WarmDriver = "warm_driver",
    }
}

lifecycle! {
    /// How a session or a Spark job got its driver: what its start cost.
    "start kind" pub enum StartKind {
        /// A new cluster was started for it.
        Cold = "cold",
        /// An idle cluster of the same shape was reused.
        Warm = "warm",
        /// A pre-warmed driver was handed to it.
        Prewarmed = "prewarmed",
        /// It ran on an attached pool.
        Pool = "pool",
    }
}

lifecycle! {
    /// How a workspace's serverless clusters may reach the network (Azure ML's managed network
    /// `isolation_mode`), as stored, sent and written in YAML.
    #[derive(Default)]
    "isolation mode" pub enum IsolationMode {
        /// No isolation: clusters reach whatever the host reaches (the default).
        #[default]
        Disabled = "disabled",
        /// Everything but other clusters and the host's own services.
        AllowInternetOutbound = "allow_internet_outbound",
        /// Only what the outbound rules allow.
        AllowOnlyApprovedOutbound = "allow_only_approved_outbound",
    }
}

impl IsolationMode {
    /// Reads a mode as a user may write it: Azure's SDK also writes them in CamelCase
    /// (`AllowOnlyApprovedOutbound`).
    pub fn parse(text: &str) -> Option<IsolationMode> {
        let folded = text.to_ascii_lowercase().replace('_', "");
        IsolationMode::ALL
            .iter()
            .copied()
            .find(|mode| mode.as_str().replace('_', "") == folded)
    }

    /// Why the workspace may not go from `self` to `next`, if it may not. Azure's rule: a
    /// workspace with `allow_internet_outbound` cannot later switch to
    /// `allow_only_approved_outbound` (the server holds a workspace that ever had it to it).
    pub fn refuses_switch_to(self, next: IsolationMode) -> Option<String> {
        (self == IsolationMode::AllowInternetOutbound
            && next == IsolationMode::AllowOnlyApprovedOutbound)
            .then(|| {
                format!(
                    "a workspace with `{}` cannot switch to `{}`, as in Azure ML",
                    self.as_str(),
                    next.as_str()
                )
            })
    }
}

lifecycle! {
    /// An interactive session's state: exactly Livy's.
    "session state" pub enum SessionState {
        /// Recorded; not placed yet (queued for capacity when it has a reason).
        NotStarted = "not_started",
        /// Placed; cluster, environment and driver are starting.
        Starting = "starting",
        /// Ready for a statement.
        Idle = "idle",
        /// Running a statement.
        Busy = "busy",
        /// Its driver is being stopped.
        ShuttingDown = "shutting_down",
        /// It failed to start.
        Error = "error",
        /// Ended: deleted, timed out, or its driver died.
        Dead = "dead",
        Killed = "killed",
        Success = "success",
        /// Livy's state for a session being recovered; Spool adopts sessions without it.
        Recovering = "recovering",
    }
}

impl SessionState {
    /// States in which a session holds a driver (and so capacity).
    pub const ACTIVE: &'static [SessionState] = &[
        SessionState::Starting,
        SessionState::Idle,
        SessionState::Busy,
        SessionState::ShuttingDown,
    ];

    /// States in which a session has not ended and is not being stopped.
    pub const LIVE: &'static [SessionState] = &[
        SessionState::NotStarted,
        SessionState::Starting,
        SessionState::Idle,
        SessionState::Busy,
    ];

    /// States a session ends in.
    pub const FINISHED: &'static [SessionState] = &[
        SessionState::Error,
        SessionState::Dead,
        SessionState::Killed,
        SessionState::Success,
    ];

    pub fn is_finished(self) -> bool {
        Self::FINISHED.contains(&self)
    }

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    /// Whether the session may take statements (it has not ended and is not stopping).
    pub fn accepts_statements(self) -> bool {
        Self::LIVE.contains(&self)
    }
}

lifecycle! {
    /// Where a cluster is in its life (see CONCEPTS.md); an attached pool is a row of its own
    /// kind that never moves.
    "cluster state" pub enum ClusterState {
        /// Recorded by placement; master and workers are starting.
        Provisioning = "provisioning",
        /// Up, before its first work (kept for the lifecycle's name; Spool goes to `in_use`).
        Ready = "ready",
        /// Running a job or session; never torn down by the idle clock.
        InUse = "in_use",
        /// No work since `idle_since`; reused warm, torn down after the teardown window.
        Idle = "idle",
        /// Its processes are being stopped.
        TearingDown = "tearing_down",
        /// Ended; its reservation is free.
        Gone = "gone",
        /// An attached pool: someone else runs it; Spool never starts or stops it.
        Attached = "attached",
    }
}

impl ClusterState {
    /// Whether the cluster is ending or ended (nothing may start on it).
    pub fn is_ending(self) -> bool {
        matches!(self, ClusterState::TearingDown | ClusterState::Gone)
    }

    /// Whether work that ended hands the cluster back to `idle` (a pool and an ending cluster
    /// stay as they are).
    pub fn can_idle(self) -> bool {
        matches!(
            self,
            ClusterState::Provisioning | ClusterState::Ready | ClusterState::InUse
        )
    }
}

lifecycle! {
    /// Where an isolated cluster's network namespace (with its veth pair and filter rules) is.
    "network namespace state" pub enum NetnsState {
        /// Recorded; the namespace may exist in part (a crash here leaves it to be reaped).
        Creating = "creating",
        /// Created, addressed and filtered.
        Up = "up",
        /// Deleted, with its veth pair and rules.
        Removed = "removed",
    }
}

lifecycle! {
    /// A Livy batch's state: how a job looks through Livy's `/batches` (never `recovering`:
    /// Airflow's operator crashes on it).
    "batch state" pub enum BatchState {
        Starting = "starting",
        Running = "running",
        Success = "success",
        Dead = "dead",
        Killed = "killed",
    }
}

impl From<JobStatus> for BatchState {
    fn from(status: JobStatus) -> BatchState {
        match status {
            JobStatus::NotStarted
            | JobStatus::Queued
            | JobStatus::Preparing
            | JobStatus::Provisioning
            | JobStatus::Starting => BatchState::Starting,
            JobStatus::Running | JobStatus::Finalizing | JobStatus::CancelRequested => {
                BatchState::Running
            }
            JobStatus::Completed => BatchState::Success,
            JobStatus::Canceled => BatchState::Killed,
            JobStatus::Failed => BatchState::Dead,
        }
    }
}

lifecycle! {
    /// A statement's state: exactly Livy's.
    "statement state" pub enum StatementState {
        Waiting = "waiting",
        Running = "running",
        /// Done; its output holds the result or the error.
        Available = "available",
        Error = "error",
        Cancelling = "cancelling",
        Cancelled = "cancelled",
    }
}

impl StatementState {
    /// States of a statement that has not finished.
    pub const PENDING: &'static [StatementState] = &[
        StatementState::Waiting,
        StatementState::Running,
        StatementState::Cancelling,
    ];
}

lifecycle! {
    /// What a recorded process belongs to: it is stopped with its owner.
    "process owner" pub enum OwnerKind {
        Cluster = "cluster",
        Session = "session",
        Job = "job",
    }
}

lifecycle! {
    /// A recorded process's state.
    "process state" pub enum ProcessState {
        /// Recorded, about to be spawned.
        Starting = "starting",
        /// Spawned; its pid is recorded.
        Running = "running",
        /// Ended; the outcome says how.
        Ended = "ended",
    }
}

lifecycle! {
    /// How a recorded process ended (or that a restarted server took it over).
    "process outcome" pub enum ProcessOutcome {
        Exited = "exited",
        Stopped = "stopped",
        Killed = "killed",
        Reaped = "reaped",
        SpawnFailed = "spawn_failed",
        Lost = "lost",
        Adopted = "adopted",
    }
}

lifecycle! {
    /// Whether an agent is heartbeating.
    "agent state" pub enum AgentState {
        /// Registered, never heartbeated.
        New = "new",
        Connected = "connected",
        /// Silent past the heartbeat timeout.
        Lost = "lost",
    }
}

lifecycle! {
    /// A data role on a datastore (or a path prefix in one), as Azure's storage roles name them.
    "data role" pub enum DataRole {
        /// Read files.
        Reader = "Storage Blob Data Reader",
        /// Read and write files.
        Contributor = "Storage Blob Data Contributor",
        /// Read and write files, and grant roles at its scope.
        Owner = "Storage Blob Data Owner",
    }
}

impl DataRole {
    /// Whether the role lets its holder write (the reader role only reads).
    pub fn writes(self) -> bool {
        !matches!(self, DataRole::Reader)
    }
}

lifecycle! {
    /// How a call recorded in the audit log ended, from its HTTP status.
    "audit result" pub enum AuditResult {
        /// Done (a 2xx or 3xx answer).
        Ok = "ok",
        /// Refused for who the caller is: not authenticated (401) or not allowed (403).
        Denied = "denied",
        /// Refused for what was asked (another 4xx) or failed on the server (5xx).
        Failed = "failed",
    }
}

impl AuditResult {
    /// The result an HTTP status stands for.
    pub fn of_status(status: u16) -> AuditResult {
        match status {
            401 | 403 => AuditResult::Denied,
            100..=399 => AuditResult::Ok,
            _ => AuditResult::Failed,
        }
    }
}

lifecycle! {
    /// A user's role in the workspace, as Azure ML's built-in roles name them, most powerful
    /// first. What each may do is decided in one table (`spool-control`'s `actions.rs`).
    "workspace role" pub enum WorkspaceRole {
        /// Everything, including users and role assignments; sees everyone's work.
        Owner = "Owner",
        /// Submits and manages their own work, and attaches and detaches computes.
        Contributor = "Contributor",
        /// Submits and manages their own work; attaches no computes.
        DataScientist = "AzureML Data Scientist",
        /// Lists and views; changes nothing.
        Reader = "Reader",
    }
}

impl WorkspaceRole {
    /// The role new users get unless told otherwise: what every user could do before roles.
    pub const DEFAULT: WorkspaceRole = WorkspaceRole::DataScientist;

    /// Reads a role as people type it: the Azure name in any case, or a short form without
    /// `AzureML` and with `-`, `_` or nothing for spaces (`owner`, `data-scientist`).
    pub fn from_input(text: &str) -> Result<WorkspaceRole, UnknownState> {
        let squashed: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect();
        let short = squashed.strip_prefix("azureml").unwrap_or(&squashed);
        WorkspaceRole::ALL
            .iter()
            .copied()
            .find(|role| {
                let name: String = role
                    .as_str()
                    .chars()
                    .filter(|c| *c != ' ')
                    .flat_map(char::to_lowercase)
                    .collect();
                name.strip_prefix("azureml").unwrap_or(&name) == short
            })
            .ok_or_else(|| UnknownState {
                lifecycle: "workspace role",
                value: text.to_string(),
                expected: WorkspaceRole::ALL
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// Declares an id newtype over the store's integer key.
macro_rules! id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }
    };
}

id!(
    /// A user's id.
    UserId
);
id!(
    /// A batch job's id (its name is what users see).
    JobId
);
id!(
    /// An interactive session's id (Livy's integer session id).
    SessionId
);
id!(
    /// A cluster's id (serverless, or the row of an attached pool).
    ClusterId
);
id!(
    /// A recorded process's id.
    ProcessId
);
id!(
    /// A registered agent host's id.
    AgentId
);
id!(
    /// An attached pool's id (its row in `computes`).
    ComputeId
);
id!(
    /// A role assignment's id.
    RoleAssignmentId
);

id!(
    /// An audit log entry's id: entries are numbered in the order they were recorded.
    AuditEntryId
);

/// What a recorded process belongs to: it is stopped with its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Cluster(ClusterId),
    Session(SessionId),
    Job(JobId),
}

impl Owner {
    /// Rebuilds an owner from its stored kind and id.
    pub fn new(kind: OwnerKind, id: i64) -> Owner {
        match kind {
            OwnerKind::Cluster => Owner::Cluster(ClusterId(id)),
            OwnerKind::Session => Owner::Session(SessionId(id)),
            OwnerKind::Job => Owner::Job(JobId(id)),
        }
    }

    pub fn kind(self) -> OwnerKind {
        match self {
            Owner::Cluster(_) => OwnerKind::Cluster,
            Owner::Session(_) => OwnerKind::Session,
            Owner::Job(_) => OwnerKind::Job,
        }
    }

    /// The owner's id as stored, without its kind.
    pub fn raw_id(self) -> i64 {
        match self {
            Owner::Cluster(ClusterId(id))
            | Owner::Session(SessionId(id))
            | Owner::Job(JobId(id)) => id,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.raw_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_text() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(*status));
        }
        for state in SessionState::ALL {
            assert_eq!(state.as_str().parse::<SessionState>(), Ok(*state));
        }
        for state in ClusterState::ALL {
            assert_eq!(state.as_str().parse::<ClusterState>(), Ok(*state));
        }
        for state in StatementState::ALL {
            assert_eq!(state.as_str().parse::<StatementState>(), Ok(*state));
        }
        for kind in JobKind::ALL {
            assert_eq!(kind.as_str().parse::<JobKind>(), Ok(*kind));
        }
    }

    #[test]
    fn audit_results_follow_the_status() {
        let render = |statuses: &[u16]| {
            statuses
                .iter()
                .map(|s| format!("{s}={}", AuditResult::of_status(*s)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            render(&[
                200, 201, 204, 304, 400, 401, 403, 404, 409, 413, 422, 500, 503
            ]),
            "200=ok 201=ok 204=ok 304=ok 400=failed 401=denied 403=denied 404=failed \
             409=failed 413=failed 422=failed 500=failed 503=failed"
        );
    }

    #[test]
    fn unknown_state_names_its_lifecycle() {
        let err = "Runing".parse::<JobStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown job status `Runing`; expected one of NotStarted, Queued, Preparing, Provisioning, Starting, Running, Finalizing, CancelRequested, Completed, Failed, Canceled"
        );
    }

    #[test]
    fn serde_uses_the_text() {
        assert_eq!(
            serde_json::to_string(&SessionState::ShuttingDown).unwrap(),
            "\"shutting_down\""
        );
        assert_eq!(
            serde_json::from_str::<JobStatus>("\"CancelRequested\"").unwrap(),
            JobStatus::CancelRequested
        );
        assert!(serde_json::from_str::<ClusterState>("\"up\"").is_err());
    }

    #[test]
    fn workspace_roles_read_as_people_type_them() {
        for (text, role) in [
            ("Owner", Some(WorkspaceRole::Owner)),
            ("owner", Some(WorkspaceRole::Owner)),
            ("CONTRIBUTOR", Some(WorkspaceRole::Contributor)),
            ("AzureML Data Scientist", Some(WorkspaceRole::DataScientist)),
            ("azureml data scientist", Some(WorkspaceRole::DataScientist)),
            ("data-scientist", Some(WorkspaceRole::DataScientist)),
            ("data_scientist", Some(WorkspaceRole::DataScientist)),
            ("DataScientist", Some(WorkspaceRole::DataScientist)),
            ("reader", Some(WorkspaceRole::Reader)),
            ("admin", None),
            ("scientist", None),
            ("", None),
        ] {
            assert_eq!(WorkspaceRole::from_input(text).ok(), role, "{text:?}");
        }
        // The stored and shown names are Azure's, exactly.
        assert_eq!(
            "data-scientist"
                .parse::<WorkspaceRole>()
                .unwrap_err()
                .to_string(),
            "unknown workspace role `data-scientist`; expected one of Owner, Contributor, AzureML Data Scientist, Reader"
        );
        assert_eq!(
            WorkspaceRole::from_input("admin").unwrap_err().to_string(),
            "unknown workspace role `admin`; expected one of `Owner`, `Contributor`, `AzureML Data Scientist`, `Reader`"
        );
    }

    #[test]
    fn groups_do_not_overlap() {
        for status in JobStatus::ALL {
            let groups = [
                JobStatus::ACTIVE.contains(status),
                JobStatus::WAITING.contains(status),
                JobStatus::TERMINAL.contains(status),
            ];
            assert_eq!(groups.iter().filter(|g| **g).count(), 1, "{status}");
        }
        for state in SessionState::FINISHED {
            assert!(!state.is_active() && !state.accepts_statements());
        }
    }
}
