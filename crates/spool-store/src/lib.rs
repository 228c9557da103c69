//! The state store: users, datastores, clusters, jobs, processes and events, in SQLite.
//!
//! All SQL of Spool lives in this crate. Callers see only [`Store`] and plain row structs, so a
//! PostgreSQL backend can be added behind the same methods. This crate must not start processes
//! or know about Spark.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_core::{
    ClusterId, ClusterState, DriverPath, JobId, JobKind, JobStatus, Lifecycle, Owner, OwnerKind,
    ProcessId, ProcessOutcome, ProcessState, StartKind, UserId, WorkspaceRole,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, FromRow, SqlitePool};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open state store `{path}`")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrate state store")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("state store query")]
    Query(#[from] sqlx::Error),
    #[error("`{0}` already exists")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Maps a unique-constraint violation to `Conflict(what)` and any other error to `Query`: the
/// one way an insert says that its name (or row) is taken.
pub(crate) fn conflict_on_unique(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        other => StoreError::Query(other),
    }
}

/// `'a', 'b'` for an SQL `IN (...)` list: the groups of states exist once, in `spool-core`.
pub(crate) fn sql_list<T: Lifecycle>(states: &[T]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON array of state names, bound where a query takes a caller's list.
fn json_list<T: Lifecycle>(states: &[T]) -> String {
    serde_json::to_string(&states.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        .expect("state names serialize")
}

/// Returns the current time as stored: RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct UserRow {
    pub id: UserId,
    pub name: String,
    pub role: WorkspaceRole,
    pub created_at: String,
}

/// What [`Store::set_user_role`] did.
#[derive(Debug, Clone)]
pub enum RoleChange {
    Changed(UserRow),
    /// No such user, or deleted.
    NotFound,
    /// Refused: the user is the last Owner, and a server needs one.
    LastOwner,
}

/// What [`Store::delete_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDeletion {
    Deleted,
    /// No such user, or deleted already.
    NotFound,
    /// Refused: the user is the last Owner, and a server needs one.
    LastOwner,
    /// Refused: the user's jobs that have not ended and sessions that have not finished.
    HasLiveWork {
        jobs: Vec<String>,
        sessions: Vec<spool_core::SessionId>,
    },
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct DatastoreRow {
    pub name: String,
    pub root: String,
    pub created_at: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ClusterRow {
    pub id: ClusterId,
    pub owner_id: UserId,
    pub runtime: String,
    pub shape_key: String,
    pub shape_json: String,
    pub state: ClusterState,
    pub reserved_cores: i64,
    pub reserved_memory_mb: i64,
    pub master_url: Option<String>,
    pub master_ui_url: Option<String>,
    pub created_at: String,
    pub ready_at: Option<String>,
    pub idle_since: Option<String>,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    /// The principal its processes run as ('' for attached pools and rows before migration 0013).
    pub runs_as: String,
    /// The version of the workspace's network settings it was placed under.
    pub network_version: i64,
}

/// A new cluster, before it has an id.
#[derive(Debug, Clone)]
pub struct NewCluster {
    pub owner_id: UserId,
    pub runs_as: String,
    pub runtime: String,
    pub shape_key: String,
    pub shape_json: String,
    pub reserved_cores: i64,
    pub reserved_memory_mb: i64,
    pub network_version: i64,
}

/// One timestamped step of a job's start and end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub status: String,
    pub at: String,
}

/// Which jobs a page lists (`Store::list_jobs_filtered`); `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct JobFilter<'a> {
    /// Only this user's jobs (for callers who see only their own).
    pub owner_id: Option<UserId>,
    pub status: Option<JobStatus>,
    pub experiment: Option<&'a str>,
    pub owner_name: Option<&'a str>,
    /// Jobs older than this one (the next page).
    pub before: Option<JobId>,
    pub limit: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub id: JobId,
    pub name: String,
    pub owner_id: UserId,
    pub owner_name: String,
    pub display_name: String,
    pub experiment_name: String,
    pub status: JobStatus,
    pub status_reason: Option<String>,
    pub error: Option<String>,
    pub spec_json: String,
    pub sizing_json: String,
    pub runtime: String,
    pub compute: String,
    pub identity: String,
    pub cluster_id: Option<ClusterId>,
    pub spark_app_id: Option<String>,
    pub spark_ui_url: Option<String>,
    pub launch_json: Option<String>,
    pub phases_json: String,
    pub created_at: String,
    pub ended_at: Option<String>,
    /// The job's environment (see migration 0004), if its YAML asked for one.
    pub environment_json: Option<String>,
    /// Who the job acts as: a user's name or an identity's (none for jobs before migration 0009).
    pub principal: Option<String>,
    /// The principal as `user:<name>` or `identity:<name>` ('' before migration 0013).
    pub runs_as: String,
    /// Whether its processes ran under the principal's OS account.
    pub enforced: bool,
    /// What the job runs (`spark` for jobs before migration 0014).
    pub kind: JobKind,
    /// The pipeline job this one is a node of.
    pub parent_id: Option<JobId>,
    /// How its driver was started (none before it was placed, and before migration 0019).
    pub driver_path: Option<DriverPath>,
    /// Why that path: the warm driver it took, or what kept it from one.
    pub driver_reason: Option<String>,
    /// How its driver started, once it ran (none before migration 0023).
    pub start_kind: Option<StartKind>,
}

impl JobRow {
    /// Returns the recorded phases, oldest first.
    pub fn phases(&self) -> Vec<Phase> {
        serde_json::from_str(&self.phases_json).unwrap_or_default()
    }
}

/// A new job, before it has an id.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub name: String,
    pub kind: JobKind,
    pub owner_id: UserId,
    pub display_name: String,
    pub experiment_name: String,
    pub status: JobStatus,
    pub spec_json: String,
    pub sizing_json: String,
    pub runtime: String,
    pub compute: String,
    pub identity: String,
    pub environment_json: Option<String>,
    /// Who the job acts as, resolved at submit.
    pub principal: String,
    /// The principal as `user:<name>` or `identity:<name>`.
    pub runs_as: String,
    /// What the runner needs to launch it, fixed at submit (JSON); in the same row from the
    /// start, so the scheduler never sees a job without it.
    pub launch_json: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct ProcessRow {
    pub id: ProcessId,
    pub owner_kind: OwnerKind,
    pub owner_id: i64,
    pub role: String,
    pub command: String,
    pub log_dir: String,
    pub pid: Option<i64>,
    pub start_ticks: Option<i64>,
    pub state: ProcessState,
    pub exit_code: Option<i64>,
    pub outcome: Option<ProcessOutcome>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

impl ProcessRow {
    /// What the process belongs to.
    pub fn owner(&self) -> Owner {
        Owner::new(self.owner_kind, self.owner_id)
    }
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub subject: String,
    pub message: String,
}

const JOB_COLUMNS: &str = "j.id, j.name, j.owner_id, u.name AS owner_name, j.display_name, \
    j.experiment_name, j.status, j.status_reason, j.error, j.spec_json, j.sizing_json, j.runtime, \
    j.compute, j.identity, j.cluster_id, j.spark_app_id, j.spark_ui_url, j.launch_json, \
    j.phases_json, j.created_at, j.ended_at, j.environment_json, j.principal, j.runs_as, \
    j.enforced, j.kind, j.parent_id, j.driver_path, j.driver_reason, j.start_kind";

/// Inserts a job row (in a transaction when given one); the child of `parent` when given.
pub(crate) async fn insert_job_row<'e, E: sqlx::SqliteExecutor<'e>>(
    executor: E,
    new: &NewJob,
    parent: Option<JobId>,
) -> Result<JobId> {
    let at = now();
    let phases = serde_json::to_string(&[Phase {
        status: new.status.to_string(),
        at: at.clone(),
    }])
    .expect("phases serialize");
    let ended_at = new.status.is_terminal().then(|| at.clone());
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (name, owner_id, display_name, experiment_name, status, spec_json, \
         sizing_json, runtime, compute, identity, phases_json, created_at, environment_json, \
         principal, runs_as, launch_json, kind, parent_id, ended_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&new.name)
    .bind(new.owner_id)
    .bind(&new.display_name)
    .bind(&new.experiment_name)
    .bind(new.status)
    .bind(&new.spec_json)
    .bind(&new.sizing_json)
    .bind(&new.runtime)
    .bind(&new.compute)
    .bind(&new.identity)
    .bind(&phases)
    .bind(&at)
    .bind(&new.environment_json)
    .bind(&new.principal)
    .bind(&new.runs_as)
    .bind(&new.launch_json)
    .bind(new.kind)
    .bind(parent)
    .bind(ended_at)
    .fetch_one(executor)
    .await
    .map_err(conflict_on_unique(format!("job {}", new.name)))?;
    Ok(JobId(id))
}

/// The state store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The last session listing per owner filter, with the `sessions_generation` it was read
    /// at (see migration 0020).
    session_listings: std::sync::Arc<std::sync::Mutex<sessions::Listings>>,
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL sync is durable across process crashes (only an OS crash may lose
            // the last commits), which is what "a restart never loses state" needs.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store {
            pool,
            session_listings: Default::default(),
        })
    }

    // Users.

    pub async fn user_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// How many users (not deleted) are workspace Owners.
    pub async fn owner_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE role = 'Owner' AND deleted_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Gives a user another workspace role, unless that would leave no Owner: checked and done
    /// in one statement, so two Owners demoting each other at once cannot both succeed.
    pub async fn set_user_role(&self, name: &str, role: WorkspaceRole) -> Result<RoleChange> {
        let changed: Option<UserRow> = sqlx::query_as(
            "UPDATE users SET role = ?1 WHERE name = ?2 AND deleted_at IS NULL \
             AND (?1 = 'Owner' OR role != 'Owner' \
                  OR (SELECT COUNT(*) FROM users WHERE role = 'Owner' AND deleted_at IS NULL) > 1) \
             RETURNING id, name, role, created_at",
        )
        .bind(role)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match changed {
            Some(row) => RoleChange::Changed(row),
            None if self.user_by_name(name).await?.is_some() => RoleChange::LastOwner,
            None => RoleChange::NotFound,
        })
    }

    /// Deletes a user unless they have live work (a job not ended, a session not finished):
    /// the row stays for their history, the token hash becomes one no token has. Refused for the
    /// last Owner. Checked and done in one statement, so no work is recorded for the user in
    /// between, and two Owners deleting each other at once cannot both succeed.
    pub async fn delete_user(&self, user_id: UserId) -> Result<UserDeletion> {
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(AssertSqlSafe(format!(
            "UPDATE users SET deleted_at = ?1, token_hash = 'deleted:' || id \
             WHERE id = ?2 AND deleted_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM jobs WHERE owner_id = ?2 AND status NOT IN ({jobs})) \
             AND NOT EXISTS (SELECT 1 FROM sessions WHERE owner_id = ?2 AND state NOT IN ({sessions})) \
             AND (role != 'Owner' \
                  OR (SELECT COUNT(*) FROM users WHERE role = 'Owner' AND deleted_at IS NULL) > 1)",
            jobs = sql_list(JobStatus::TERMINAL),
            sessions = sql_list(spool_core::SessionState::FINISHED),
        )))
        .bind(now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() == 1 {
            // Their data roles go with them: a name reused later gains nothing.
            sqlx::query(
                "DELETE FROM role_assignments WHERE assignee_kind = 'user' \
                 AND assignee = (SELECT name FROM users WHERE id = ?)",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(UserDeletion::Deleted);
        }
        tx.commit().await?;
        let jobs: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT name FROM jobs WHERE owner_id = ? AND status NOT IN ({}) ORDER BY id",
            sql_list(JobStatus::TERMINAL)
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let sessions: Vec<spool_core::SessionId> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT id FROM sessions WHERE owner_id = ? AND state NOT IN ({}) ORDER BY id",
            sql_list(spool_core::SessionState::FINISHED)
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let user: Option<WorkspaceRole> =
            sqlx::query_scalar("SELECT role FROM users WHERE id = ? AND deleted_at IS NULL")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        if user.is_none() {
            Ok(UserDeletion::NotFound)
        } else if jobs.is_empty() && sessions.is_empty() {
            Ok(UserDeletion::LastOwner)
        } else {
            Ok(UserDeletion::HasLiveWork { jobs, sessions })
        }
    }

    /// Creates a user; fails with `Conflict` when the name is taken.
    pub async fn create_user(
        &self,
        name: &str,
        token_hash: &str,
        role: WorkspaceRole,
    ) -> Result<UserRow> {
        sqlx::query_as::<_, UserRow>(
            "INSERT INTO users (name, token_hash, role, created_at) VALUES (?, ?, ?, ?) \
             RETURNING id, name, role, created_at",
        )
        .bind(name)
        .bind(token_hash)
        .bind(role)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_unique(format!("user {name}")))
    }

    /// Replaces a user's token hash (re-issuing the admin token, rotating a token).
    pub async fn set_token_hash(&self, user_id: UserId, token_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET token_hash = ? WHERE id = ? AND deleted_at IS NULL")
            .bind(token_hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn user_by_token_hash(&self, token_hash: &str) -> Result<Option<UserRow>> {
        Ok(
            sqlx::query_as("SELECT id, name, role, created_at FROM users WHERE token_hash = ? AND deleted_at IS NULL")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, role, created_at FROM users WHERE name = ? AND deleted_at IS NULL",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, role, created_at FROM users WHERE deleted_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    // Datastores.

    pub async fn create_datastore(&self, name: &str, root: &str) -> Result<DatastoreRow> {
        sqlx::query_as::<_, DatastoreRow>(
            "INSERT INTO datastores (name, root, created_at) VALUES (?, ?, ?) \
             RETURNING name, root, created_at",
        )
        .bind(name)
        .bind(root)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_unique(format!("datastore {name}")))
    }

    /// Records a datastore and its creator's Storage Blob Data Owner grant together: neither
    /// exists without the other. `Conflict` when the name is taken.
    pub async fn create_owned_datastore(
        &self,
        name: &str,
        root: &str,
        owner: &str,
    ) -> Result<DatastoreRow> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        let row = sqlx::query_as::<_, DatastoreRow>(
            "INSERT INTO datastores (name, root, created_at) VALUES (?, ?, ?) \
             RETURNING name, root, created_at",
        )
        .bind(name)
        .bind(root)
        .bind(&at)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_on_unique(format!("datastore {name}")))?;
        sqlx::query(
            "INSERT INTO role_assignments (assignee_kind, assignee, role, datastore, prefix, created_by, created_at) \
             VALUES ('user', ?, ?, ?, '', ?, ?)",
        )
        .bind(owner)
        .bind(spool_core::DataRole::Owner)
        .bind(name)
        .bind(owner)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(format!("the owner grant of datastore {name}")))?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn datastore(&self, name: &str) -> Result<Option<DatastoreRow>> {
        Ok(
            sqlx::query_as("SELECT name, root, created_at FROM datastores WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn list_datastores(&self) -> Result<Vec<DatastoreRow>> {
        Ok(
            sqlx::query_as("SELECT name, root, created_at FROM datastores ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    // Clusters.

    pub async fn insert_cluster(&self, new: &NewCluster) -> Result<ClusterRow> {
        Ok(sqlx::query_as(
            "INSERT INTO clusters (owner_id, runtime, shape_key, shape_json, state, reserved_cores, \
             reserved_memory_mb, created_at, runs_as, network_version) \
             VALUES (?, ?, ?, ?, 'provisioning', ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(new.owner_id)
        .bind(&new.runtime)
        .bind(&new.shape_key)
        .bind(&new.shape_json)
        .bind(new.reserved_cores)
        .bind(new.reserved_memory_mb)
        .bind(now())
        .bind(&new.runs_as)
        .bind(new.network_version)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn cluster(&self, id: ClusterId) -> Result<Option<ClusterRow>> {
        Ok(sqlx::query_as("SELECT * FROM clusters WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Clusters that are not gone, oldest first.
    pub async fn live_clusters(&self) -> Result<Vec<ClusterRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM clusters WHERE state != 'gone' ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn set_cluster_urls(
        &self,
        id: ClusterId,
        master_url: &str,
        master_ui_url: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE clusters SET master_url = ?, master_ui_url = ? WHERE id = ?")
            .bind(master_url)
            .bind(master_ui_url)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves a cluster to `state`, stamping the matching timestamp. An attached pool's row only
    /// ever leaves `attached` for `gone` (detached): no idle or teardown bookkeeping applies.
    pub async fn set_cluster_state(
        &self,
        id: ClusterId,
        state: ClusterState,
        reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE clusters SET state = ?1, \
             ready_at = CASE WHEN ?1 = 'ready' THEN ?2 ELSE ready_at END, \
             idle_since = CASE WHEN ?1 = 'idle' THEN ?2 ELSE NULL END, \
             ended_at = CASE WHEN ?1 = 'gone' THEN ?2 ELSE ended_at END, \
             end_reason = COALESCE(?3, end_reason) \
             WHERE id = ?4 AND (state != 'attached' OR ?1 = 'gone')",
        )
        .bind(state)
        .bind(now())
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // Jobs.

    /// Inserts a job; fails with `Conflict` when the name is taken.
    /// Records a job's environment (with its cache key once built).
    pub async fn set_job_environment(&self, id: JobId, environment_json: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET environment_json = ? WHERE id = ?")
            .bind(environment_json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records whether a job's processes run under its principal's OS account.
    pub async fn set_job_enforced(&self, id: JobId, enforced: bool) -> Result<()> {
        sqlx::query("UPDATE jobs SET enforced = ? WHERE id = ?")
            .bind(enforced)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_job(&self, new: &NewJob) -> Result<JobRow> {
        insert_job_row(&self.pool, new, None).await?;
        self.job_by_name(&new.name)
            .await?
            .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))
    }

    pub async fn job_by_name(&self, name: &str) -> Result<Option<JobRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN users u ON u.id = j.owner_id WHERE j.name = ?"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn job(&self, id: JobId) -> Result<Option<JobRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN users u ON u.id = j.owner_id WHERE j.id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Lists jobs that are not a pipeline's nodes, newest first; only `owner_id`'s when given.
    pub async fn list_jobs(&self, owner_id: Option<UserId>, limit: i64) -> Result<Vec<JobRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN users u ON u.id = j.owner_id \
             WHERE (?1 IS NULL OR j.owner_id = ?1) AND j.parent_id IS NULL \
             ORDER BY j.id DESC LIMIT ?2"
        )))
        .bind(owner_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A page of top-level jobs, newest first: those of `filter` with an id below `before`.
    pub async fn list_jobs_filtered(&self, filter: &JobFilter<'_>) -> Result<Vec<JobRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN users u ON u.id = j.owner_id \
             WHERE (?1 IS NULL OR j.owner_id = ?1) AND j.parent_id IS NULL \
             AND (?2 IS NULL OR j.status = ?2) AND (?3 IS NULL OR j.experiment_name = ?3) \
             AND (?4 IS NULL OR u.name = ?4) AND (?5 IS NULL OR j.id < ?5) \
             ORDER BY j.id DESC LIMIT ?6"
        )))
        .bind(filter.owner_id)
        .bind(filter.status.map(JobStatus::as_str))
        .bind(filter.experiment)
        .bind(filter.owner_name)
        .bind(filter.before.map(|id| id.0))
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Jobs that run something (not pipelines) whose status is one of `statuses`, oldest
    /// first. A pipeline's node is among them only once every node it reads from Completed.
    pub async fn jobs_in_status(&self, statuses: &[JobStatus]) -> Result<Vec<JobRow>> {
        let list = json_list(statuses);
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN users u ON u.id = j.owner_id \
             WHERE j.status IN (SELECT value FROM json_each(?)) AND j.kind != 'pipeline' \
             AND NOT EXISTS (SELECT 1 FROM job_dependencies d JOIN jobs up ON up.id = d.depends_on \
                             WHERE d.job_id = j.id AND up.status != 'Completed') \
             ORDER BY j.id"
        )))
        .bind(list)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Moves a job to `status` and appends the phase. Terminal statuses stamp `ended_at`.
    /// Does nothing when the job already has a terminal status, so a late update never
    /// overwrites how a job ended.
    pub async fn set_job_status(
        &self,
        id: JobId,
        status: JobStatus,
        reason: Option<&str>,
    ) -> Result<bool> {
        let at = now();
        let phase = serde_json::to_string(&Phase {
            status: status.to_string(),
            at: at.clone(),
        })
        .expect("phase serializes");
        let res = sqlx::query(AssertSqlSafe(format!(
            "UPDATE jobs SET status = ?1, status_reason = ?2, \
             phases_json = CASE WHEN status = ?1 THEN phases_json ELSE json_insert(phases_json, '$[#]', json(?3)) END, \
             ended_at = CASE WHEN ?4 THEN ?5 ELSE ended_at END \
             WHERE id = ?6 AND status NOT IN ({})",
            sql_list(JobStatus::TERMINAL)
        )))
        .bind(status)
        .bind(reason)
        .bind(phase)
        .bind(status.is_terminal())
        .bind(&at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Updates the reason shown with the current status (e.g. what the job is queued behind).
    pub async fn set_job_reason(&self, id: JobId, reason: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE jobs SET status_reason = ? WHERE id = ?")
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_job_error(&self, id: JobId, error: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET error = ? WHERE id = ?")
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records how a job's driver starts and why.
    pub async fn set_job_driver_path(
        &self,
        id: JobId,
        path: DriverPath,
        reason: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE jobs SET driver_path = ?, driver_reason = ? WHERE id = ?")
            .bind(path)
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records how a job got its driver, when it starts running.
    pub async fn set_job_start_kind(&self, id: JobId, kind: StartKind) -> Result<()> {
        sqlx::query("UPDATE jobs SET start_kind = ? WHERE id = ?")
            .bind(kind)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_job_cluster(&self, id: JobId, cluster_id: ClusterId) -> Result<()> {
        sqlx::query("UPDATE jobs SET cluster_id = ? WHERE id = ?")
            .bind(cluster_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_job_launch(
        &self,
        id: JobId,
        launch_json: &str,
        spark_ui_url: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE jobs SET launch_json = ?, spark_ui_url = ? WHERE id = ?")
            .bind(launch_json)
            .bind(spark_ui_url)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_job_app_id(&self, id: JobId, app_id: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET spark_app_id = ? WHERE id = ?")
            .bind(app_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Jobs that hold `cluster_id` now (placed and not yet ended).
    pub async fn active_jobs_on_cluster(&self, cluster_id: ClusterId) -> Result<i64> {
        Ok(sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM jobs WHERE cluster_id = ? AND status IN ({})",
            sql_list(JobStatus::ACTIVE)
        )))
        .bind(cluster_id)
        .fetch_one(&self.pool)
        .await?)
    }

    // Processes.

    /// Records a process about to be spawned; returns its id.
    pub async fn insert_process(
        &self,
        owner: Owner,
        role: &str,
        command: &str,
        log_dir: &str,
    ) -> Result<ProcessId> {
        Ok(sqlx::query_scalar(
            "INSERT INTO processes (owner_kind, owner_id, role, command, log_dir, state, started_at) \
             VALUES (?, ?, ?, ?, ?, 'starting', ?) RETURNING id",
        )
        .bind(owner.kind())
        .bind(owner.raw_id())
        .bind(role)
        .bind(command)
        .bind(log_dir)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn set_process_running(
        &self,
        id: ProcessId,
        pid: i64,
        start_ticks: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE processes SET pid = ?, start_ticks = ?, state = 'running' WHERE id = ?",
        )
        .bind(pid)
        .bind(start_ticks)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a process ended with how it ended (`exited`, `stopped`, `killed`, `reaped`,
    /// `spawn_failed`, `lost`).
    pub async fn set_process_ended(
        &self,
        id: ProcessId,
        outcome: ProcessOutcome,
        exit_code: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE processes SET state = 'ended', outcome = ?, exit_code = ?, ended_at = ? \
             WHERE id = ? AND state != 'ended'",
        )
        .bind(outcome)
        .bind(exit_code)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Notes that a restarted server took over a running process.
    pub async fn set_process_adopted(&self, id: ProcessId) -> Result<()> {
        sqlx::query("UPDATE processes SET outcome = 'adopted' WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Processes not known to have ended.
    pub async fn live_processes(&self) -> Result<Vec<ProcessRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM processes WHERE state != 'ended' ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn processes_of(&self, owner: Owner) -> Result<Vec<ProcessRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM processes WHERE owner_kind = ? AND owner_id = ? ORDER BY id",
        )
        .bind(owner.kind())
        .bind(owner.raw_id())
        .fetch_all(&self.pool)
        .await?)
    }

    // Events.

    pub async fn add_event(&self, kind: &str, subject: &str, message: &str) -> Result<()> {
        sqlx::query("INSERT INTO events (at, kind, subject, message) VALUES (?, ?, ?, ?)")
            .bind(now())
            .bind(kind)
            .bind(subject)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn events(&self, limit: i64) -> Result<Vec<EventRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM events ORDER BY id DESC LIMIT ?")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

mod accounts;
mod agents;
mod audit;
mod components;
mod computes;
mod counts;
mod identities;
mod network;
mod pipelines;
mod roles;
mod sessions;

pub use accounts::OsAccountRow;
pub use agents::{AgentRow, ClusterWorkerRow};
pub use audit::{AuditQuery, AuditRow, NewAuditEntry};
pub use components::{ArchiveScope, ComponentRow, NewComponent};
pub use computes::{ComputeRow, NewCompute};
pub use counts::Waiting;
pub use identities::{IdentityRow, NewIdentity};
pub use network::{NetnsRow, NetworkRow, NewNetns};
pub use pipelines::{NewNode, NodeRow, PipelineRow};
pub use roles::{NewRoleAssignment, RoleAssignmentRow};
pub use sessions::{NewSession, SessionRow, StatementRow};

#[cfg(test)]
mod tests;
