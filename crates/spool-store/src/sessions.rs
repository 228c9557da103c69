//! Sessions and statements.

use serde::Serialize;
use sqlx::FromRow;

use spool_core::{ClusterId, JobStatus, SessionId, SessionState, StatementState, UserId};

use crate::{Phase, Result, Store, StoreError, conflict_on_unique, json_list, now, sql_list};

#[derive(Debug, Clone, FromRow, Serialize, serde::Deserialize)]
pub struct SessionRow {
    pub id: SessionId,
    pub name: Option<String>,
    pub owner_id: UserId,
    pub owner_name: String,
    pub kind: String,
    pub state: SessionState,
    pub state_reason: Option<String>,
    pub runtime: String,
    pub sizing_json: String,
    pub conf_json: String,
    pub idle_timeout_s: i64,
    pub cluster_id: Option<ClusterId>,
    pub repl_port: Option<i64>,
    pub spark_app_id: Option<String>,
    pub spark_ui_url: Option<String>,
    pub phases_json: String,
    pub created_at: String,
    pub last_activity_at: String,
    pub ended_at: Option<String>,
    /// Started ahead of demand and not yet handed to a user.
    #[serde(default)]
    pub prewarmed: bool,
    /// The session's environment (see migration 0004), if it asked for one.
    #[serde(default)]
    pub environment_json: Option<String>,
    /// `serverless` or the name of an attached pool.
    #[serde(default = "serverless")]
    pub compute: String,
    /// The identity the session acts as (sessions always pass the user's identity through).
    #[serde(default = "user_identity")]
    pub identity: String,
    /// The principal its driver runs as (`user:<name>`; '' before migration 0013).
    #[serde(default)]
    pub runs_as: String,
    /// Whether its driver ran under the principal's OS account.
    #[serde(default)]
    pub enforced: bool,
    /// The extra files it asked for (see migration 0021).
    #[serde(default)]
    pub files_json: Option<String>,
    /// Its driver's Spark Connect port, for a `connect` session (see migration 0022).
    #[serde(default)]
    pub connect_port: Option<i64>,
}

fn serverless() -> String {
    "serverless".into()
}

fn user_identity() -> String {
    "user_identity".into()
}

impl SessionRow {
    pub fn phases(&self) -> Vec<Phase> {
        serde_json::from_str(&self.phases_json).unwrap_or_default()
    }
}

/// A new session, before it has an id.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub name: Option<String>,
    pub owner_id: UserId,
    pub kind: String,
    pub runtime: String,
    pub sizing_json: String,
    pub conf_json: String,
    pub idle_timeout_s: i64,
    pub prewarmed: bool,
    pub environment_json: Option<String>,
    pub compute: String,
    pub runs_as: String,
    pub files_json: Option<String>,
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct StatementRow {
    pub id: i64,
    pub session_id: SessionId,
    pub seq: i64,
    pub kind: String,
    pub code: String,
    pub state: StatementState,
    pub output_json: Option<String>,
    pub progress: f64,
    pub started_ms: i64,
    pub completed_ms: i64,
}

const SESSION_COLUMNS: &str = "s.id, s.name, s.owner_id, u.name AS owner_name, s.kind, s.state, \
    s.state_reason, s.runtime, s.sizing_json, s.conf_json, s.idle_timeout_s, s.cluster_id, \
    s.repl_port, s.spark_app_id, s.spark_ui_url, s.phases_json, s.created_at, \
    s.last_activity_at, s.ended_at, s.prewarmed, s.environment_json, s.compute, s.identity, \
    s.runs_as, s.enforced, s.files_json, s.connect_port";

fn millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// How much user work is starting now: sessions (not pre-warmed) not yet idle, jobs not yet
    /// running, and sessions running their first statement. Pre-warming waits while any is.
    pub async fn user_work_starting(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT \
             (SELECT COUNT(*) FROM sessions WHERE prewarmed = 0 \
               AND state IN ('not_started', 'starting')) \
             + (SELECT COUNT(*) FROM jobs WHERE status IN \
               ('NotStarted', 'Queued', 'Preparing', 'Provisioning', 'Starting')) \
             + (SELECT COUNT(*) FROM statements st JOIN sessions s ON s.id = st.session_id \
               WHERE s.prewarmed = 0 AND st.seq = 0 AND st.state IN ('waiting', 'running'))",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records whether a session's driver runs under its principal's OS account.
    pub async fn set_session_enforced(&self, id: SessionId, enforced: bool) -> Result<()> {
        sqlx::query("UPDATE sessions SET enforced = ? WHERE id = ?")
            .bind(enforced)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_session(&self, new: &NewSession) -> Result<SessionRow> {
        let at = now();
        let phases = serde_json::to_string(&[Phase {
            status: SessionState::NotStarted.to_string(),
            at: at.clone(),
        }])
        .expect("phases serialize");
        let id = sqlx::query_scalar::<_, SessionId>(
            "INSERT INTO sessions (name, owner_id, kind, state, runtime, sizing_json, conf_json, \
             idle_timeout_s, phases_json, created_at, last_activity_at, prewarmed, environment_json, \
             compute, runs_as, files_json) \
             VALUES (?, ?, ?, 'not_started', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(&new.name)
        .bind(new.owner_id)
        .bind(&new.kind)
        .bind(&new.runtime)
        .bind(&new.sizing_json)
        .bind(&new.conf_json)
        .bind(new.idle_timeout_s)
        .bind(&phases)
        .bind(&at)
        .bind(&at)
        .bind(new.prewarmed)
        .bind(&new.environment_json)
        .bind(&new.compute)
        .bind(&new.runs_as)
        .bind(&new.files_json)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_unique(format!(
            "session name {}",
            new.name.clone().unwrap_or_default()
        )))?;
        self.session(id)
            .await?
            .ok_or(StoreError::Query(sqlx::Error::RowNotFound))
    }

    pub async fn session(&self, id: SessionId) -> Result<Option<SessionRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.owner_id WHERE s.id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn session_by_name(&self, name: &str) -> Result<Option<SessionRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.owner_id WHERE s.name = ?"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Sessions, oldest first; only `owner_id`'s when given.
    ///
    /// SQLite assembles the rows into one JSON array: listing is a hot path (notebook clients
    /// poll it), and one value crosses from SQLite's worker thread much faster than N rows.
    /// The sessions `owner_id` sees (all when `None`), pre-warmed ones left out, by id. Read
    /// from the store only when a session or a user's name changed since the last listing.
    pub async fn list_sessions(
        &self,
        owner_id: Option<UserId>,
    ) -> Result<std::sync::Arc<Vec<SessionRow>>> {
        // The generation is read before the rows, so a cached listing is never older than the
        // generation it is filed under.
        let generation: i64 = sqlx::query_scalar("SELECT n FROM sessions_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        if let Some(rows) = self
            .session_listings
            .lock()
            .expect("listings lock")
            .get(generation, owner_id)
        {
            return Ok(rows);
        }
        let json: String = sqlx::query_scalar(
            "SELECT COALESCE(json_group_array(json_object( \
                'id', id, 'name', name, 'owner_id', owner_id, 'owner_name', owner_name, \
                'kind', kind, 'state', state, 'state_reason', state_reason, 'runtime', runtime, \
                'sizing_json', sizing_json, 'conf_json', conf_json, 'idle_timeout_s', idle_timeout_s, \
                'cluster_id', cluster_id, 'repl_port', repl_port, 'spark_app_id', spark_app_id, \
                'spark_ui_url', spark_ui_url, 'phases_json', phases_json, 'created_at', created_at, \
                'last_activity_at', last_activity_at, 'ended_at', ended_at, \
                'prewarmed', json(CASE WHEN prewarmed THEN 'true' ELSE 'false' END), \
                'environment_json', environment_json, 'compute', compute, 'identity', identity, \
                'files_json', files_json, 'connect_port', connect_port)), '[]') \
             FROM (SELECT s.*, u.name AS owner_name FROM sessions s JOIN users u ON u.id = s.owner_id \
                   WHERE (?1 IS NULL OR s.owner_id = ?1) AND s.prewarmed = 0 ORDER BY s.id)",
        )
        .bind(owner_id)
        .fetch_one(&self.pool)
        .await?;
        let rows: Vec<SessionRow> = serde_json::from_str(&json)
            .map_err(|e| StoreError::Query(sqlx::Error::Decode(Box::new(e))))?;
        let rows = std::sync::Arc::new(rows);
        self.session_listings.lock().expect("listings lock").put(
            generation,
            owner_id,
            rows.clone(),
        );
        Ok(rows)
    }

    pub async fn sessions_in_state(&self, states: &[SessionState]) -> Result<Vec<SessionRow>> {
        let list = json_list(states);
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.owner_id \
             WHERE s.state IN (SELECT value FROM json_each(?)) ORDER BY s.id"
        )))
        .bind(list)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a session's environment (with its cache key once built).
    pub async fn set_session_environment(
        &self,
        id: SessionId,
        environment_json: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE sessions SET environment_json = ? WHERE id = ?")
            .bind(environment_json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The environments sessions and jobs recorded: `owner_id`'s only when given, and only of
    /// live sessions and unfinished jobs when `live` is set.
    pub async fn environment_records(
        &self,
        owner_id: Option<UserId>,
        live: bool,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT environment_json FROM sessions WHERE environment_json IS NOT NULL \
               AND (?1 IS NULL OR owner_id = ?1) \
               AND (NOT ?2 OR state NOT IN ({})) \
             UNION ALL \
             SELECT environment_json FROM jobs WHERE environment_json IS NOT NULL \
               AND (?1 IS NULL OR owner_id = ?1) \
               AND (NOT ?2 OR status NOT IN ({}))",
            sql_list(SessionState::FINISHED),
            sql_list(JobStatus::TERMINAL)
        )))
        .bind(owner_id)
        .bind(live)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Moves a session to `state`, appending the phase; finished states are final.
    pub async fn set_session_state(
        &self,
        id: SessionId,
        state: SessionState,
        reason: Option<&str>,
    ) -> Result<bool> {
        let at = now();
        let phase = serde_json::to_string(&Phase {
            status: state.to_string(),
            at: at.clone(),
        })
        .expect("phase serializes");
        let finished = state.is_finished();
        let res = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE sessions SET state = ?1, state_reason = COALESCE(?2, state_reason), \
             phases_json = CASE WHEN state = ?1 OR ?1 IN ('idle', 'busy') AND state IN ('idle', 'busy') \
                 THEN phases_json ELSE json_insert(phases_json, '$[#]', json(?3)) END, \
             ended_at = CASE WHEN ?4 THEN ?5 ELSE ended_at END \
             WHERE id = ?6 AND state NOT IN ({})",
            sql_list(SessionState::FINISHED)
        )))
        .bind(state)
        .bind(reason)
        .bind(phase)
        .bind(finished)
        .bind(&at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Hands an idle pre-warmed session of `runtime` to a user; returns its id, or `None` when
    /// none is ready. The session's cluster becomes the user's too. With `same_account`, only a
    /// driver already running as `runs_as` is taken (its processes cannot change account);
    /// without, any, and it then runs as `runs_as`.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_prewarmed_session(
        &self,
        runtime: &str,
        sizing_json: &str,
        owner_id: UserId,
        name: Option<&str>,
        kind: &str,
        idle_timeout_s: i64,
        runs_as: &str,
        same_account: bool,
    ) -> Result<Option<SessionId>> {
        let mut tx = self.pool.begin().await?;
        let claimed: Option<(SessionId, Option<ClusterId>)> = sqlx::query_as(
            "UPDATE sessions SET prewarmed = 0, owner_id = ?1, name = ?2, kind = ?3, \
             idle_timeout_s = ?4, last_activity_at = ?5, runs_as = ?7, \
             phases_json = json_insert(phases_json, '$[#]', json_object('status', 'claimed', 'at', ?5)), \
             state_reason = 'started from a pre-warmed driver' \
             WHERE id = (SELECT id FROM sessions WHERE prewarmed = 1 AND state = 'idle' AND runtime = ?6 \
                         AND (?8 = 0 OR runs_as = ?7) AND sizing_json = ?9 ORDER BY id LIMIT 1) \
             RETURNING id, cluster_id",
        )
        .bind(owner_id)
        .bind(name)
        .bind(kind)
        .bind(idle_timeout_s)
        .bind(now())
        .bind(runtime)
        .bind(runs_as)
        .bind(same_account)
        .bind(sizing_json)
        .fetch_optional(&mut *tx)
        .await
        .map_err(conflict_on_unique(format!(
            "session name {}",
            name.unwrap_or_default()
        )))?;
        if let Some((_, Some(cluster_id))) = claimed {
            sqlx::query("UPDATE clusters SET owner_id = ?, runs_as = ? WHERE id = ?")
                .bind(owner_id)
                .bind(runs_as)
                .bind(cluster_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(claimed.map(|(id, _)| id))
    }

    /// Hands an idle pre-warmed driver of `runtime` to a batch job, in one transaction: the
    /// session ends (`success`, "handed to job …"; it stays out of session lists), its driver
    /// process becomes the job's `driver`, its cluster the job's (and its owner's), and the job
    /// records the cluster and the warm path. Returns the session and its cluster, or `None`
    /// when no driver is ready. With `same_account`, only a driver already running as
    /// `runs_as` is taken.
    pub async fn claim_prewarmed_driver_for_job(
        &self,
        runtime: &str,
        sizing_json: &str,
        job: &crate::JobRow,
        same_account: bool,
    ) -> Result<Option<(SessionId, ClusterId)>> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        let reason = format!("handed to job {}", job.name);
        let phase = serde_json::to_string(&Phase {
            status: SessionState::Success.to_string(),
            at: at.clone(),
        })
        .expect("phase serializes");
        let claimed: Option<(SessionId, Option<ClusterId>)> = sqlx::query_as(
            "UPDATE sessions SET state = 'success', state_reason = ?1, ended_at = ?2, \
             owner_id = ?3, runs_as = ?4, \
             phases_json = json_insert(phases_json, '$[#]', json(?5)) \
             WHERE id = (SELECT id FROM sessions WHERE prewarmed = 1 AND state = 'idle' \
                         AND runtime = ?6 AND cluster_id IS NOT NULL \
                         AND (?7 = 0 OR runs_as = ?4) AND sizing_json = ?8 ORDER BY id LIMIT 1) \
             RETURNING id, cluster_id",
        )
        .bind(&reason)
        .bind(&at)
        .bind(job.owner_id)
        .bind(&job.runs_as)
        .bind(&phase)
        .bind(runtime)
        .bind(same_account)
        .bind(sizing_json)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((session_id, Some(cluster_id))) = claimed else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE processes SET owner_kind = 'job', owner_id = ?1 \
             WHERE owner_kind = 'session' AND owner_id = ?2 AND role = 'driver' AND state != 'ended'",
        )
        .bind(job.id)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE clusters SET owner_id = ?, runs_as = ? WHERE id = ?")
            .bind(job.owner_id)
            .bind(&job.runs_as)
            .bind(cluster_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE jobs SET cluster_id = ?1, driver_path = 'warm_driver', driver_reason = ?2 \
             WHERE id = ?3",
        )
        .bind(cluster_id)
        .bind(format!(
            "ran on the pre-warmed driver of session {session_id} (cluster {cluster_id})"
        ))
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some((session_id, cluster_id)))
    }

    /// Pre-warmed sessions of `runtime` that are starting or ready.
    /// The principal of the latest session or Spark job a user asked for (not a pre-warmed
    /// session): whom pre-warmed drivers are kept for.
    pub async fn latest_work_runs_as(&self) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT runs_as FROM ( \
               SELECT runs_as, created_at FROM sessions WHERE prewarmed = 0 AND runs_as != '' \
               UNION ALL \
               SELECT runs_as, created_at FROM jobs WHERE kind = 'spark' AND runs_as != '') \
             ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Live pre-warmed sessions (of any runtime) whose driver runs as another principal.
    pub async fn prewarmed_sessions_not_running_as(&self, runs_as: &str) -> Result<Vec<SessionId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM sessions WHERE prewarmed = 1 AND runs_as != ? \
             AND state IN ('not_started', 'starting', 'idle') ORDER BY id",
        )
        .bind(runs_as)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The live pre-warmed drivers (starting or ready) with their runtime and sizing, oldest
    /// first: what the pools hold.
    pub async fn prewarmed_shapes(&self) -> Result<Vec<(SessionId, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, runtime, sizing_json FROM sessions WHERE prewarmed = 1 \
             AND state IN ('not_started', 'starting', 'idle') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a start phase that is not a Livy state (`cluster_provisioning`, `driver_starting`).
    pub async fn add_session_phase(
        &self,
        id: SessionId,
        phase: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        let entry = serde_json::to_string(&Phase {
            status: phase.to_string(),
            at: now(),
        })
        .expect("phase serializes");
        // A finished session keeps its last phase and reason: a runner or the scheduler acting
        // on an older snapshot must not replace "deleted by its user" with what it waited for.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE sessions SET phases_json = json_insert(phases_json, '$[#]', json(?1)), \
             state_reason = COALESCE(?2, state_reason) WHERE id = ?3 AND state NOT IN ({})",
            sql_list(SessionState::FINISHED)
        )))
        .bind(entry)
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Updates the reason shown with the session's state (what it waits for), unless the
    /// session has finished: then its reason is final.
    pub async fn set_session_reason(&self, id: SessionId, reason: &str) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE sessions SET state_reason = ? WHERE id = ? AND state NOT IN ({})",
            sql_list(SessionState::FINISHED)
        )))
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_session_cluster(&self, id: SessionId, cluster_id: ClusterId) -> Result<()> {
        sqlx::query("UPDATE sessions SET cluster_id = ? WHERE id = ?")
            .bind(cluster_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_session_driver(
        &self,
        id: SessionId,
        repl_port: i64,
        spark_ui_url: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE sessions SET repl_port = ?, spark_ui_url = ? WHERE id = ?")
            .bind(repl_port)
            .bind(spark_ui_url)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the port a `connect` session's Connect server will listen on, before its driver
    /// is spawned.
    pub async fn set_session_connect_port(&self, id: SessionId, port: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET connect_port = ? WHERE id = ?")
            .bind(port)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_session_app_id(&self, id: SessionId, app_id: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET spark_app_id = ? WHERE id = ?")
            .bind(app_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records activity (a statement, a cancel): the inactivity timeout starts again.
    pub async fn touch_session(&self, id: SessionId) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_activity_at = ? WHERE id = ?")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sessions that hold `cluster_id` now.
    pub async fn active_sessions_on_cluster(&self, cluster_id: ClusterId) -> Result<i64> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM sessions WHERE cluster_id = ? AND state IN ({})",
            sql_list(SessionState::ACTIVE)
        )))
        .bind(cluster_id)
        .fetch_one(&self.pool)
        .await?)
    }

    // Statements.

    /// Adds a statement as `waiting`; its `seq` is the next per-session number from 0.
    ///
    /// One statement, not a read then a write in a transaction: under WAL a deferred
    /// transaction that reads first fails with SQLITE_BUSY (no retry) when another connection
    /// writes in between, which the statement loop does all the time.
    pub async fn insert_statement(
        &self,
        session_id: SessionId,
        kind: &str,
        code: &str,
    ) -> Result<StatementRow> {
        Ok(sqlx::query_as(
            "INSERT INTO statements (session_id, seq, kind, code, state) \
             SELECT ?1, COALESCE(MAX(seq) + 1, 0), ?2, ?3, 'waiting' FROM statements WHERE session_id = ?1 \
             RETURNING *",
        )
        .bind(session_id)
        .bind(kind)
        .bind(code)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn statement(&self, session_id: SessionId, seq: i64) -> Result<Option<StatementRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM statements WHERE session_id = ? AND seq = ?")
                .bind(session_id)
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// A statement of a session that `owner_id` owns (any owner when `None`), in one query:
    /// notebook clients poll this path.
    pub async fn owned_statement(
        &self,
        session_id: SessionId,
        seq: i64,
        owner_id: Option<UserId>,
    ) -> Result<Option<StatementRow>> {
        Ok(sqlx::query_as(
            "SELECT st.* FROM statements st JOIN sessions s ON s.id = st.session_id \
             WHERE st.session_id = ?1 AND st.seq = ?2 AND (?3 IS NULL OR s.owner_id = ?3)",
        )
        .bind(session_id)
        .bind(seq)
        .bind(owner_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn statements(&self, session_id: SessionId) -> Result<Vec<StatementRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM statements WHERE session_id = ? ORDER BY seq")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Moves a statement on; `running` stamps the start, `available`/`cancelled` the end.
    pub async fn set_statement_state(
        &self,
        id: i64,
        state: StatementState,
        output_json: Option<&str>,
    ) -> Result<()> {
        let ms = millis();
        sqlx::query(
            "UPDATE statements SET state = ?1, output_json = COALESCE(?2, output_json), \
             started_ms = CASE WHEN ?1 = 'running' THEN ?3 ELSE started_ms END, \
             completed_ms = CASE WHEN ?1 IN ('available', 'cancelled') THEN ?3 ELSE completed_ms END, \
             progress = CASE WHEN ?1 IN ('available', 'cancelled') THEN 1.0 ELSE progress END \
             WHERE id = ?4 AND state NOT IN ('available', 'cancelled')",
        )
        .bind(state)
        .bind(output_json)
        .bind(ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a statement's output: `cancelled` if a cancel was requested meanwhile, else
    /// `available`.
    pub async fn finish_statement(&self, id: i64, output_json: &str) -> Result<()> {
        sqlx::query(
            "UPDATE statements SET state = CASE WHEN state = 'cancelling' THEN 'cancelled' ELSE 'available' END, \
             output_json = ?1, completed_ms = ?2, progress = 1.0 \
             WHERE id = ?3 AND state NOT IN ('available', 'cancelled')",
        )
        .bind(output_json)
        .bind(millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_statement_progress(&self, id: i64, progress: f64) -> Result<()> {
        sqlx::query("UPDATE statements SET progress = ? WHERE id = ? AND state = 'running'")
            .bind(progress)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Statements of a session not yet done, oldest first.
    pub async fn pending_statements(&self, session_id: SessionId) -> Result<Vec<StatementRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM statements WHERE session_id = ? AND state IN ({}) ORDER BY seq",
            sql_list(StatementState::PENDING)
        )))
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Session listings read at one `sessions_generation`, per owner filter.
#[derive(Debug, Default)]
pub(crate) struct Listings {
    generation: i64,
    by_owner: std::collections::HashMap<Option<UserId>, std::sync::Arc<Vec<SessionRow>>>,
}

impl Listings {
    fn get(
        &self,
        generation: i64,
        owner: Option<UserId>,
    ) -> Option<std::sync::Arc<Vec<SessionRow>>> {
        (self.generation == generation)
            .then(|| self.by_owner.get(&owner).cloned())
            .flatten()
    }

    fn put(
        &mut self,
        generation: i64,
        owner: Option<UserId>,
        rows: std::sync::Arc<Vec<SessionRow>>,
    ) {
        // Only a newer generation replaces what is kept (two listings may race).
        if generation < self.generation {
            return;
        }
        if generation > self.generation {
            self.generation = generation;
            self.by_owner.clear();
        }
        self.by_owner.insert(owner, rows);
    }
}
