//! Interactive sessions: a PySpark REPL driver (`spool-repl`) on a serverless cluster, running
//! statements one at a time, ended by its user or by its inactivity timeout.

use spool_core::{
    ClusterId, JobId, Owner, ProcessOutcome, ProcessState, SessionId, SessionState, StatementState,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spool_core::MemoryMb;
use spool_repl::ReplClient;
use spool_spec::SparkSizing;
use spool_store::{NewSession, SessionRow, StatementRow, StoreError};
use spool_supervisor::Exit;
use tokio::sync::{Notify, RwLock};

use crate::environments::{self, EnvRequest};
use crate::livy_files::{FileLists, NamedFile, SessionFiles};
use crate::metrics::StartKind;
use crate::{
    Action, Caller, Control, ControlError, LogError, Result, Session, Statement, cluster, connect,
    invalid, spark,
};

/// The session's REPL secret, in its folder (0600, the server's): read again to reconnect after
/// a restart.
pub(crate) const REPL_SECRET_FILE: &str = "repl.secret";

/// Statement kinds Spool runs.
pub const STATEMENT_KINDS: &[&str] = &["pyspark", "sql"];

/// How long a driver has to start its SparkSession and open its REPL port.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(180);

/// The niceness of pre-warming's processes (its driver and its cluster's), until a claim
/// raises them back; only a server running as root can, so only it lowers them.
fn prewarm_nice() -> i32 {
    if rustix::process::geteuid().is_root() {
        10
    } else {
        0
    }
}

/// What a new session asks for. Defaults suit a small local machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionSettings {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub runtime_version: Option<String>,
    pub driver_memory: Option<String>,
    pub driver_cores: Option<u32>,
    pub executor_memory: Option<String>,
    pub executor_cores: Option<u32>,
    pub num_executors: Option<u32>,
    /// Dynamic allocation bounds (min, max executors) instead of a fixed number.
    pub dynamic_allocation: Option<(u32, u32)>,
    /// Bounds the size of the driver and of each executor, as for jobs.
    pub instance_type: Option<String>,
    pub conf: BTreeMap<String, String>,
    /// Minutes without activity after which the session ends.
    pub idle_timeout_minutes: Option<f64>,
    /// A conda file of extra packages: (name as the user gave it, its text).
    pub conda_file: Option<(String, String)>,
    /// An attached pool to run on instead of serverless compute.
    pub compute: Option<String>,
    /// Whether the request came through Livy, so errors name Livy's fields (`executorCores`)
    /// instead of the native API's (`executor_cores`).
    pub livy: bool,
    /// Files for the driver and executors, as Livy's `jars`, `pyFiles`, `files`, `archives`.
    #[serde(default)]
    pub files: FileLists,
}

impl SessionSettings {
    /// The name of a field as the caller's API spells it.
    fn field<'a>(&self, native: &'a str, livy: &'a str) -> &'a str {
        if self.livy { livy } else { native }
    }

    /// Checks names, texts and sizes against Spool's limits, before anything else looks at them.
    fn check_limits(&self) -> Result<()> {
        use spool_spec::limits;
        let limit = |e: limits::LimitError| invalid(e.field().to_string(), e.to_string());
        if let Some(name) = &self.name {
            limits::check_name("name", name).map_err(limit)?;
        }
        limits::check_conf(
            "conf",
            self.conf.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(limit)?;
        for (field, cores) in [
            (self.field("driver_cores", "driverCores"), self.driver_cores),
            (
                self.field("executor_cores", "executorCores"),
                self.executor_cores,
            ),
        ] {
            if let Some(cores) = cores {
                limits::check_cores(field, u64::from(cores)).map_err(limit)?;
            }
        }
        let (min, max) = self.dynamic_allocation.unzip();
        for (field, executors) in [
            (self.field("executors", "numExecutors"), self.num_executors),
            (
                self.field("min_executors", "spark.dynamicAllocation.minExecutors"),
                min,
            ),
            (
                self.field("max_executors", "spark.dynamicAllocation.maxExecutors"),
                max,
            ),
        ] {
            if let Some(executors) = executors {
                limits::check_executors(field, u64::from(executors)).map_err(limit)?;
            }
        }
        Ok(())
    }

    /// The idle timeout in seconds (default 30 minutes), within Spool's limits.
    fn idle_timeout_s(&self) -> Result<i64> {
        let Some(minutes) = self.idle_timeout_minutes else {
            return Ok(30 * 60);
        };
        let field = self.field("timeout_minutes", "idleTimeout");
        let as_written = format!("{minutes} minutes");
        let timeout = spool_spec::limits::check_idle_timeout(field, minutes * 60.0, &as_written)
            .map_err(|e| invalid(field, e.to_string()))?;
        Ok(i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX).max(1))
    }
}

/// A session's live parts in this server: its REPL connection and its statement queue.
pub(crate) struct SessionHandle {
    repl: RwLock<Option<Arc<ReplClient>>>,
    wake: Notify,
}

fn parse_memory(field: &str, value: &Option<String>, default: MemoryMb) -> Result<MemoryMb> {
    let memory = match value {
        None => return Ok(default),
        Some(text) => crate::livy_memory(field, text).map(|(_, mb)| mb)?,
    };
    spool_spec::limits::check_memory(field, memory).map_err(|e| invalid(field, e.to_string()))?;
    Ok(memory)
}

impl Control {
    /// Records a new session; the scheduler starts it.
    pub async fn create_session(
        &self,
        owner: &Caller,
        settings: SessionSettings,
    ) -> Result<Session> {
        let asked = std::time::Instant::now();
        owner.require(Action::CreateSessions)?;
        settings.check_limits()?;
        let idle_timeout_s = settings.idle_timeout_s()?;
        let mut settings = settings;
        let mut kind = settings.kind.clone().unwrap_or_else(|| "shared".into());
        // `kind: connect` is a PySpark session whose driver also serves Spark Connect.
        if kind == "connect" {
            kind = "pyspark".into();
            settings
                .conf
                .insert(connect::CONNECT_CONF.to_string(), "true".to_string());
        }
        let connect = connect::asked(&settings.conf)?;
        match kind.as_str() {
            "pyspark" | "sql" | "shared" => {}
            "spark" => {
                return Err(invalid(
                    "kind",
                    "session kind `spark` (Scala) is not supported by this Spool version; use `pyspark` or `sql`",
                ));
            }
            other => {
                return Err(invalid(
                    "kind",
                    format!(
                        "unknown session kind `{other}`; use `pyspark`, `sql`, `shared` or `connect`"
                    ),
                ));
            }
        }
        let runtime = match &settings.runtime_version {
            Some(v) => {
                let parts: Vec<&str> = v.split('.').collect();
                let short = if parts.len() >= 2 {
                    format!("{}.{}", parts[0], parts[1])
                } else {
                    v.clone()
                };
                if spool_runtime::find(&short).is_none() {
                    return Err(invalid(
                        "runtime_version",
                        format!(
                            "runtime version should be either {}",
                            spool_runtime::supported_versions().join(", ")
                        ),
                    ));
                }
                short
            }
            // Connect without a runtime named: the newest that has it, not a default that
            // would refuse it.
            None if connect => spool_runtime::connect_versions()
                .pop()
                .unwrap_or_else(|| spool_runtime::DEFAULT_RUNTIME.to_string()),
            None => spool_runtime::DEFAULT_RUNTIME.to_string(),
        };
        // On an attached pool, the pool's Spark version decides the runtime.
        let compute = match &settings.compute {
            Some(name) if name != "serverless" => {
                let pool = self.find_compute(name).await?;
                if settings.runtime_version.is_some() && runtime != pool.runtime {
                    return Err(invalid(
                        "runtime_version",
                        format!(
                            "pool `{}` runs Spark {}, so sessions on it use runtime {}; remove the runtime version or ask for {}",
                            pool.name, pool.spark_version, pool.runtime, pool.runtime
                        ),
                    ));
                }
                Some(pool)
            }
            _ => None,
        };
        let runtime = compute
            .as_ref()
            .map_or(runtime, |pool| pool.runtime.clone());
        if connect {
            connect::check_runtime(settings.field("runtime_version", "conf"), &runtime)?;
        }
        let sizing = SparkSizing {
            driver_cores: settings.driver_cores.unwrap_or(1).max(1),
            driver_memory: parse_memory(
                settings.field("driver_memory", "driverMemory"),
                &settings.driver_memory,
                MemoryMb(1024),
            )?,
            executor_cores: settings.executor_cores.unwrap_or(1).max(1),
            executor_memory: parse_memory(
                settings.field("executor_memory", "executorMemory"),
                &settings.executor_memory,
                MemoryMb(1024),
            )?,
            executor_instances: settings.num_executors.unwrap_or(1).max(1),
            dynamic_allocation: None,
        };
        let mut sizing = sizing;
        if let Some((min, max)) = settings.dynamic_allocation {
            if min == 0 || min > max {
                return Err(invalid(
                    "dynamic_allocation",
                    format!(
                        "Dynamic min executors should be bigger than 0 and min executors should be equal or less than max executors. (got min {min}, max {max})"
                    ),
                ));
            }
            sizing.executor_instances = settings.num_executors.unwrap_or(min).clamp(min, max);
            sizing.dynamic_allocation = Some(spool_spec::DynamicAllocation {
                min_executors: min,
                max_executors: max,
            });
        }
        if let Some(name) = &settings.instance_type {
            let catalog = self.spec_catalog();
            let instance = catalog
                .instance_types
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    invalid(
                        "instance_type",
                        format!(
                            "Instance type must be specified for the list of {}",
                            catalog
                                .instance_types
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                    )
                })?;
            for (role, cores, memory) in [
                ("driver", sizing.driver_cores, sizing.driver_memory),
                ("executor", sizing.executor_cores, sizing.executor_memory),
            ] {
                if cores > instance.cores || memory > instance.memory_mb {
                    return Err(invalid(
                        "instance_type",
                        format!(
                            "one {role} needs {cores} cores and {memory} but instance type `{}` has {} cores and {}",
                            instance.name, instance.cores, instance.memory_mb
                        ),
                    ));
                }
            }
        }
        if compute.is_none() {
            crate::scheduler::check_ever_fits(self, &sizing)?;
        }
        let environment = match &settings.conda_file {
            Some((file, text)) => Some(
                self.check_conda(
                    &runtime,
                    file,
                    text,
                    environments::rebuild_requested(
                        settings
                            .conf
                            .get(environments::ENABLE_CACHE_CONF)
                            .map(String::as_str),
                    ),
                    "conda_file",
                )
                .await?,
            ),
            None => None,
        };
        self.check_session_data_access(owner).await?;
        let files = if settings.files.is_empty() {
            None
        } else {
            Some(
                self.gather_livy_files(
                    owner,
                    None,
                    &settings.files,
                    settings.field("py_files", "pyFiles"),
                )
                .await?
                .0,
            )
        };
        // Sessions pass the user's identity through.
        let runs_as = crate::identity::Principal::User(owner.name.clone()).key();
        // A session of a pre-warmed pool's runtime and shape, with nothing a running driver
        // cannot take on, can take a driver that is already running.
        let sizing_json = serde_json::to_string(&sizing).map_err(anyhow::Error::from)?;
        let pooled = settings.conf.is_empty()
            && environment.is_none()
            && compute.is_none()
            && files.is_none()
            && crate::prewarm::pool_for(&self.config().prewarm_pools(), &runtime, &sizing)
                .is_some();
        if pooled {
            let claimed = match self
                .store()
                .claim_prewarmed_session(
                    &runtime,
                    &sizing_json,
                    owner.id,
                    settings.name.as_deref(),
                    &kind,
                    idle_timeout_s,
                    &runs_as,
                    self.inner().accounts.enforced(),
                )
                .await
            {
                Ok(claimed) => claimed,
                Err(StoreError::Conflict(_)) => {
                    return Err(self
                        .session_name_taken(owner, settings.name.as_deref())
                        .await);
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(id) = claimed {
                tracing::info!(session = %id, owner = %owner.name, "session started from a pre-warmed driver");
                self.raise_priority(id).await;
                self.inner().prewarm_wake.notify_one();
                self.metrics()
                    .session_started(StartKind::Prewarmed, asked.elapsed());
                if let Some(session) = self.store().session(id).await? {
                    return Ok(session.into());
                }
            }
        }
        let new = NewSession {
            name: settings.name.clone(),
            owner_id: owner.id,
            kind,
            runtime,
            sizing_json,
            conf_json: serde_json::to_string(&settings.conf).map_err(anyhow::Error::from)?,
            idle_timeout_s,
            prewarmed: false,
            environment_json: environment
                .as_ref()
                .map(|e| serde_json::to_string(e).map_err(anyhow::Error::from))
                .transpose()?,
            compute: compute.map_or_else(|| "serverless".to_string(), |pool| pool.name),
            runs_as,
            files_json: files
                .as_ref()
                .map(|f| serde_json::to_string(f).map_err(anyhow::Error::from))
                .transpose()?,
        };
        let session = match self.store().insert_session(&new).await {
            Ok(session) => session,
            Err(StoreError::Conflict(_)) => {
                return Err(self
                    .session_name_taken(owner, settings.name.as_deref())
                    .await);
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(session = %session.id, owner = %owner.name, "session submitted");
        self.inner().wake.notify_one();
        Ok(session.into())
    }

    /// Returns a session the caller may see.
    /// Livy's "Duplicate session name" refusal, saying more only to the name's owner.
    async fn session_name_taken(&self, owner: &Caller, name: Option<&str>) -> ControlError {
        let name = name.unwrap_or_default();
        let mine = matches!(
            self.store().session_by_name(name).await,
            Ok(Some(s)) if s.owner_id == owner.id
        );
        ControlError::Conflict {
            target: "name".into(),
            message: format!(
                "Duplicate session name: {}",
                crate::name_taken_message("session", name, mine)
            ),
        }
    }

    pub async fn session(&self, caller: &Caller, id: SessionId) -> Result<Session> {
        caller.require(Action::ViewSessions)?;
        Ok(self.session_row(caller, id).await?.into())
    }

    /// Returns a session the caller may see by its integer id, or else by its name (as Livy
    /// resolves `/sessions/{id}`). Not found names the key as given.
    pub async fn session_by_key(&self, caller: &Caller, key: &str) -> Result<Session> {
        caller.require(Action::ViewSessions)?;
        let row = match key.parse::<i64>() {
            Ok(id) => self.store().session(SessionId(id)).await?,
            Err(_) => self.store().session_by_name(key).await?,
        };
        match row {
            Some(s) if caller.sees(s.owner_id) => Ok(s.into()),
            // Another user's session is "not found", never "forbidden".
            _ => Err(ControlError::NotFound {
                kind: "session",
                name: key.to_string(),
            }),
        }
    }

    async fn session_row(&self, caller: &Caller, id: SessionId) -> Result<SessionRow> {
        match self.store().session(id).await? {
            Some(s) if caller.sees(s.owner_id) => Ok(s),
            _ => Err(ControlError::NotFound {
                kind: "session",
                name: id.to_string(),
            }),
        }
    }

    /// The caller's sessions (everyone's for an Owner), oldest first.
    pub async fn sessions(&self, caller: &Caller) -> Result<Vec<Session>> {
        caller.require(Action::ViewSessions)?;
        let owner = caller.only_own();
        let rows = self.store().list_sessions(owner).await?;
        Ok(rows.iter().cloned().map(Session::from).collect())
    }

    pub async fn statements(
        &self,
        caller: &Caller,
        session_id: SessionId,
    ) -> Result<Vec<Statement>> {
        caller.require(Action::ViewSessions)?;
        self.session_row(caller, session_id).await?;
        let rows = self.store().statements(session_id).await?;
        Ok(rows.into_iter().map(Statement::from).collect())
    }

    pub async fn statement(
        &self,
        caller: &Caller,
        session_id: SessionId,
        seq: i64,
    ) -> Result<Statement> {
        caller.require(Action::ViewSessions)?;
        Ok(self.statement_row(caller, session_id, seq).await?.into())
    }

    async fn statement_row(
        &self,
        caller: &Caller,
        session_id: SessionId,
        seq: i64,
    ) -> Result<StatementRow> {
        let owner = caller.only_own();
        if let Some(statement) = self.store().owned_statement(session_id, seq, owner).await? {
            return Ok(statement);
        }
        // Not found: say whether the session or the statement is missing.
        self.session_row(caller, session_id).await?;
        Err(ControlError::NotFound {
            kind: "statement",
            name: seq.to_string(),
        })
    }

    /// Queues a statement; it runs when the ones before it are done.
    pub async fn submit_statement(
        &self,
        caller: &Caller,
        session_id: SessionId,
        code: &str,
        kind: Option<&str>,
    ) -> Result<Statement> {
        caller.require(Action::RunStatements)?;
        spool_spec::limits::check_len("code", code, spool_spec::limits::MAX_CODE_BYTES)
            .map_err(|e| invalid("code", e.to_string()))?;
        let session = self.session_row(caller, session_id).await?;
        let kind = match kind {
            Some(k) => k.to_string(),
            None if session.kind == "shared" => {
                return Err(invalid(
                    "kind",
                    "Code type should be specified if session kind is shared",
                ));
            }
            None => session.kind.clone(),
        };
        if !STATEMENT_KINDS.contains(&kind.as_str()) {
            return Err(invalid(
                "kind",
                format!("statement kind `{kind}` is not supported; use `pyspark` or `sql`"),
            ));
        }
        if !session.state.accepts_statements() {
            return Err(ControlError::Conflict {
                target: "state".into(),
                message: format!("Session is in state {}", session.state),
            });
        }
        let statement = self
            .store()
            .insert_statement(session_id, &kind, code)
            .await?;
        self.store().touch_session(session_id).await?;
        if let Some(handle) = self.session_handle(session_id) {
            handle.wake.notify_one();
        }
        Ok(statement.into())
    }

    /// Cancels a statement: a waiting one never runs; a running one has its Spark jobs cancelled.
    pub async fn cancel_statement(
        &self,
        caller: &Caller,
        session_id: SessionId,
        seq: i64,
    ) -> Result<()> {
        caller.require(Action::CancelStatements)?;
        let statement = self.statement_row(caller, session_id, seq).await?;
        let store = self.store();
        store.touch_session(session_id).await?;
        match statement.state {
            StatementState::Waiting => {
                store
                    .set_statement_state(statement.id, StatementState::Cancelled, None)
                    .await?
            }
            StatementState::Running => {
                store
                    .set_statement_state(statement.id, StatementState::Cancelling, None)
                    .await?;
                if let Some(handle) = self.session_handle(session_id)
                    && let Some(repl) = handle.repl.read().await.clone()
                {
                    let _ = repl.cancel(statement.id).await;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends a session at its user's request.
    pub async fn delete_session(&self, caller: &Caller, session_id: SessionId) -> Result<Session> {
        caller.require(Action::DeleteSessions)?;
        let session = self.session_row(caller, session_id).await?;
        if session.state.is_finished() {
            return Err(ControlError::NotFound {
                kind: "session",
                name: format!("{session_id}` (already stopped"),
            });
        }
        stop_session(self, session_id, SessionState::Dead, "deleted by its user").await;
        Ok(self
            .store()
            .session(session_id)
            .await?
            .unwrap_or(session)
            .into())
    }

    fn session_handle(&self, id: SessionId) -> Option<Arc<SessionHandle>> {
        self.inner()
            .session_runners
            .lock()
            .expect("session map lock")
            .get(&id)
            .cloned()
    }

    /// The directory holding a session's driver and logs.
    pub fn session_dir(&self, id: SessionId) -> std::path::PathBuf {
        self.data_dir().join("sessions").join(id.to_string())
    }

    /// Where a session's environment build writes its output (shown in the session's log).
    pub fn session_environment_log(&self, id: SessionId) -> std::path::PathBuf {
        self.session_dir(id).join("logs").join("environment.log")
    }
}

/// Registers a session's handle and starts its runner.
pub(crate) fn spawn_runner(
    control: &Control,
    session_id: SessionId,
    cluster_id: ClusterId,
    warm: bool,
) {
    let handle = Arc::new(SessionHandle {
        repl: RwLock::new(None),
        wake: Notify::new(),
    });
    control
        .inner()
        .session_runners
        .lock()
        .expect("session map lock")
        .insert(session_id, handle.clone());
    let control = control.clone();
    tokio::spawn(async move {
        if let Err(e) = start(&control, session_id, cluster_id, warm, &handle).await {
            let message = format!("{e:#}");
            tracing::warn!(session = %session_id, error = %message, "session failed to start");
            control
                .store()
                .set_session_state(session_id, SessionState::Error, Some(&message))
                .await
                .log_error("record the session's state");
            stop_processes(&control, session_id).await;
            forget(&control, session_id, Some(cluster_id), !warm).await;
        }
    });
}

async fn forget(
    control: &Control,
    session_id: SessionId,
    cluster_id: Option<ClusterId>,
    cluster_broken: bool,
) {
    control
        .inner()
        .session_runners
        .lock()
        .expect("session map lock")
        .remove(&session_id);
    let broken = cluster_broken.then_some("its session failed during start-up");
    if let Some(cluster_id) = cluster_id {
        control.provisioner().hand_back(cluster_id, broken).await;
    }
}

async fn start(
    control: &Control,
    session_id: SessionId,
    cluster_id: ClusterId,
    warm: bool,
    handle: &Arc<SessionHandle>,
) -> anyhow::Result<()> {
    let store = control.store();
    let session = store
        .session(session_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("session {session_id} vanished"))?;
    let sizing: SparkSizing = serde_json::from_str(&session.sizing_json)?;
    let conf: BTreeMap<String, String> =
        serde_json::from_str(&session.conf_json).unwrap_or_default();
    let runtime = control
        .provisioner()
        .ensure_runtime(&session.runtime, &spool_runtime::NoProgress)
        .await
        .map_err(anyhow::Error::from)?;
    let cluster_row = store
        .cluster(cluster_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("cluster {cluster_id} vanished"))?;
    // Pre-warming yields the CPU to user work (its driver and cluster); a claim raises them.
    let nice = if session.prewarmed { prewarm_nice() } else { 0 };
    // Cold: the master and worker are launched, and the driver starts alongside them (its JVM
    // and Python start-up overlap the master's); the driver waits for the master to accept
    // applications before it creates its SparkContext.
    let starting = if warm {
        None
    } else {
        store
            .add_session_phase(
                session_id,
                "cluster_provisioning",
                Some("starting a Spark master and worker; the driver starts alongside"),
            )
            .await?;
        Some(
            control
                .provisioner()
                .launch_cluster(&cluster_row, &runtime, nice)
                .await?,
        )
    };
    // The environment is built (or found in the cache) while a cold cluster starts; the driver
    // and its executors then run the environment's Python. Spark itself stays the runtime's.
    let env = match session.environment_json.as_deref() {
        Some(json) => {
            let request: EnvRequest = serde_json::from_str(json)?;
            Some(prepare_environment(control, session_id, &runtime, &request).await?)
        }
        None => None,
    };
    let (python, runtime) =
        environments::driver_python(control, &runtime, env.as_ref(), cluster_id).await;
    let master_url = match &starting {
        Some(starting) => starting.master_url.clone(),
        None => cluster_row
            .master_url
            .ok_or_else(|| anyhow::anyhow!("cluster {cluster_id} has no master"))?,
    };

    let dir = control.session_dir(session_id);
    let work = dir.join("work");
    std::fs::create_dir_all(&work)?;
    let driver_py = dir.join("driver.py");
    std::fs::write(&driver_py, spool_repl::DRIVER_PY)?;
    // The files it asked for are copied into its working folder, as a job's code is.
    let files: Option<SessionFiles> = session
        .files_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()?;
    if let Some(files) = &files {
        let snapshot = control.data_dir().join("snapshots").join(&files.snapshot);
        crate::datastore::copy_tree(&snapshot, &work).map_err(|e| {
            anyhow::anyhow!("copy the session's files into {}: {e}", work.display())
        })?;
    }
    let in_work = |list: &[NamedFile]| -> Vec<std::path::PathBuf> {
        SessionFiles::names(list)
            .iter()
            .map(|name| work.join(name))
            .collect()
    };
    let asked = files.clone().unwrap_or_default();
    let (jars, py_files, extra_files, archives) = (
        in_work(&asked.jars),
        in_work(&asked.py_files),
        in_work(&asked.files),
        in_work(&asked.archives),
    );
    // The driver runs as the session's user, in a working folder that is that account's.
    let account = control.inner().accounts.ensure(&session.runs_as).await?;
    if let Some(account) = &account {
        crate::accounts::give_tree(&work, account)?;
    }
    store
        .set_session_enforced(session_id, account.is_some())
        .await?;
    // On an isolated cluster the driver runs in the cluster's namespace, at its address, and
    // the server reaches its REPL there.
    let net = control.provisioner().cluster_net(cluster_id).await?;
    let repl_port = spark::free_port()?;
    let ui_port = spark::free_port()?;
    // A `connect` session's driver serves Spark Connect too; the proxy finds it by this port.
    let connect_port = if connect::asked(&conf).unwrap_or(false) {
        let port = spark::free_port()?;
        store
            .set_session_connect_port(session_id, i64::from(port))
            .await?;
        Some(port)
    } else {
        None
    };
    // Only the server may speak to the driver: it presents this secret on every connection,
    // to the REPL and to the Connect server.
    let repl_secret = crate::auth::new_token();
    crate::auth::write_secret(&dir.join(REPL_SECRET_FILE), &repl_secret)?;
    let mut repl_args = vec![
        "--host".to_string(),
        net.address.clone(),
        "--port".to_string(),
        repl_port.to_string(),
    ];
    if let Some(starting) = &starting {
        repl_args.push("--wait-for-master".into());
        repl_args.push(format!("{}/json/", starting.master_ui));
    }
    // A pre-warmed driver answers only once an executor is registered and has run a job.
    if session.prewarmed {
        repl_args.push("--warm-up".into());
    }
    let app_name = session
        .name
        .clone()
        .unwrap_or_else(|| format!("spool-session-{session_id}"));
    let main = spool_spark::Main::Python {
        file: driver_py,
        jars,
        args: repl_args,
    };
    // Users reach an isolated driver's UI only through the server: the view links there.
    let ui = crate::spark_ui::driver_ui(&net, ui_port, &dir, || {
        crate::spark_ui::session_ui_path(session_id)
    })?;
    let command = spool_spark::submit(
        &runtime.spark_install(&net.address),
        &spool_spark::Submit {
            master_url: &master_url,
            app_name: &app_name,
            sizing: &sizing,
            ui_port,
            python: &python,
            user_conf: &conf,
            py_files: &py_files,
            files: &extra_files,
            archives: &archives,
            main: &main,
            properties_file: control.provisioner().auth_properties(cluster_id).as_deref(),
            connect: connect_port.map(|port| spool_spark::ConnectServer {
                address: &net.address,
                port,
                token: &repl_secret,
            }),
        },
    );
    let mut spec = spark::process(command, &work, &dir.join("logs").join("driver"));
    spec.env.insert(
        spool_core::env::SPOOL_REPL_SECRET.to_string(),
        repl_secret.clone(),
    );
    spec.run_as = account
        .as_ref()
        .map(|account| control.inner().accounts.run_as(account, &work));
    spec.netns = net.netns.clone();
    spec.nice = nice;
    store
        .add_session_phase(
            session_id,
            "driver_starting",
            Some("starting the Spark driver"),
        )
        .await?;
    let spawned = control
        .provisioner()
        .launch(Owner::Session(session_id), "driver", &spec)
        .await?;
    let pid = spawned.pid;
    store
        .set_session_driver(session_id, i64::from(repl_port), &ui.url)
        .await?;
    {
        let control = control.clone();
        tokio::spawn(async move {
            let exit = spawned.wait().await;
            on_driver_exit(&control, session_id, exit).await;
        });
    }
    if let Some(starting) = &starting {
        control.provisioner().wait_cluster_up(starting).await?;
    }
    let deadline = tokio::time::Instant::now() + DRIVER_START_TIMEOUT;
    let repl = loop {
        match ReplClient::connect(&net.address, repl_port, &repl_secret).await {
            Ok(repl) => break repl,
            Err(e) => {
                if !spool_supervisor::is_alive(pid, None) {
                    anyhow::bail!(
                        "the session's driver exited during start-up; its log ends with:\n{}",
                        cluster::log_tail(&dir.join("logs/driver/stderr"), 10)
                    );
                }
                if tokio::time::Instant::now() > deadline {
                    anyhow::bail!(
                        "the session's driver did not start within {DRIVER_START_TIMEOUT:?}: {e}"
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    *handle.repl.write().await = Some(Arc::new(repl));
    if let Some(app_id) = spool_spark::find_app_id(&crate::datastore::read_log(
        &dir.join("logs/driver"),
        "stderr",
    )) {
        store.set_session_app_id(session_id, &app_id).await?;
    }
    if session.prewarmed {
        store
            .add_session_phase(
                session_id,
                "executors_ready",
                Some("an executor registered and ran a warm-up job"),
            )
            .await?;
    }
    // The inactivity clock starts when the session is ready, not when it was asked for: a slow
    // start must not eat into the user's idle time.
    store.touch_session(session_id).await?;
    store
        .set_session_state(session_id, SessionState::Idle, Some("ready"))
        .await?;
    tracing::info!(session = %session_id, "session ready");
    if !session.prewarmed {
        let kind = if session.compute != "serverless" {
            StartKind::Pool
        } else if warm {
            StartKind::Warm
        } else {
            StartKind::Cold
        };
        control
            .metrics()
            .session_started(kind, crate::metrics::since(&session.created_at));
    }
    tokio::spawn(statement_loop(control.clone(), session_id, handle.clone()));
    Ok(())
}

/// Builds or finds a session's environment, recording it as a start phase.
async fn prepare_environment(
    control: &Control,
    session_id: SessionId,
    runtime: &spool_runtime::InstalledRuntime,
    request: &EnvRequest,
) -> anyhow::Result<spool_runtime::BuiltEnv> {
    let store = control.store();
    let packages = request.conda.requirements.join(" ");
    store
        .add_session_phase(
            session_id,
            "environment",
            Some(&format!(
                "preparing environment from `{}`: {packages}",
                request.file
            )),
        )
        .await?;
    let log = control.session_environment_log(session_id);
    let (env, cached) = control
        .prepare_env(Owner::Session(session_id), runtime, request, &log)
        .await?;
    store
        .set_session_environment(session_id, &environments::with_key(request, &env))
        .await?;

    store
        .add_session_phase(
            session_id,
            "environment_ready",
            Some(&environments::ready_message(&env, cached)),
        )
        .await?;
    Ok(env)
}

/// Adopts a live session after a restart: reconnects to its driver and goes on.
pub(crate) async fn adopt(
    control: &Control,
    session: &SessionRow,
    driver_pid: u32,
    driver_ticks: Option<u64>,
) -> bool {
    let Some(port) = session.repl_port else {
        return false;
    };
    let Ok(secret) =
        std::fs::read_to_string(control.session_dir(session.id).join(REPL_SECRET_FILE))
    else {
        return false;
    };
    let Some(cluster_id) = session.cluster_id else {
        return false;
    };
    let Ok(net) = control.provisioner().cluster_net(cluster_id).await else {
        return false;
    };
    let Ok(repl) = ReplClient::connect_with_retry(
        &net.address,
        port as u16,
        secret.trim(),
        Duration::from_secs(5),
    )
    .await
    else {
        return false;
    };
    let store = control.store();
    let repl = Arc::new(repl);
    let running: Vec<StatementRow> = store
        .pending_statements(session.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.state != StatementState::Waiting)
        .collect();
    let handle = Arc::new(SessionHandle {
        repl: RwLock::new(Some(repl.clone())),
        wake: Notify::new(),
    });
    control
        .inner()
        .session_runners
        .lock()
        .expect("session map lock")
        .insert(session.id, handle.clone());
    let state = if running.is_empty() {
        SessionState::Idle
    } else {
        SessionState::Busy
    };
    store
        .set_session_state(session.id, state, Some("adopted after a server restart"))
        .await
        .log_error("record the session's state");
    let session_id = session.id;
    {
        let control = control.clone();
        let log_dir = control.session_dir(session_id).join("logs/driver");
        tokio::spawn(async move {
            let exit = spool_supervisor::wait_adopted(driver_pid, driver_ticks, &log_dir).await;
            on_driver_exit(&control, session_id, exit).await;
        });
    }
    let control = control.clone();
    tokio::spawn(async move {
        // Statements that ran across the restart: their outputs wait in the driver.
        let store = control.store().clone();
        for statement in running {
            let (state, output) = match repl.result(statement.id).await {
                Ok(Some(output)) if statement.state == StatementState::Cancelling => {
                    (StatementState::Cancelled, output)
                }
                Ok(Some(output)) => (StatementState::Available, output),
                _ => (
                    StatementState::Available,
                    error_output(
                        "Error",
                        "the driver lost this statement's result during a server restart",
                    ),
                ),
            };
            store
                .set_statement_state(statement.id, state, Some(&output.to_string()))
                .await
                .log_error("record the statement's state");
        }
        statement_loop(control, session_id, handle).await;
    });
    true
}

fn error_output(ename: &str, evalue: &str) -> Value {
    json!({"status": "error", "execution_count": 0, "ename": ename, "evalue": evalue, "traceback": []})
}

/// Runs a session's statements in order, one at a time, until the session ends.
async fn statement_loop(control: Control, session_id: SessionId, handle: Arc<SessionHandle>) {
    let store = control.store().clone();
    loop {
        let Ok(Some(session)) = store.session(session_id).await else {
            return;
        };
        if !matches!(session.state, SessionState::Idle | SessionState::Busy) {
            return;
        }
        let next = store
            .pending_statements(session_id)
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.state == StatementState::Waiting);
        let Some(statement) = next else {
            if session.state == SessionState::Busy {
                store
                    .set_session_state(session_id, SessionState::Idle, None)
                    .await
                    .log_error("record the session's state");
            }
            tokio::select! {
                _ = handle.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        };
        let Some(repl) = handle.repl.read().await.clone() else {
            return;
        };
        let progress = {
            let repl = repl.clone();
            let store = store.clone();
            let id = statement.id;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    match repl.progress(id).await {
                        Ok(p) => {
                            store
                                .set_statement_progress(id, p)
                                .await
                                .log_error("record the statement's progress");
                        }
                        Err(_) => return,
                    }
                }
            })
        };
        // The driver starts on the code while the states are recorded: a short statement's
        // result then does not wait for two store writes. Both writes finish before the result
        // is recorded, and a finished statement is never moved back to `running`.
        let mark_running = async {
            if session.state != SessionState::Busy {
                store
                    .set_session_state(session_id, SessionState::Busy, None)
                    .await
                    .log_error("record the session's state");
            }
            store
                .set_statement_state(statement.id, StatementState::Running, None)
                .await
                .log_error("record the statement's state");
        };
        let ran = std::time::Instant::now();
        let (result, ()) = tokio::join!(
            repl.execute(statement.id, &statement.kind, &statement.code),
            mark_running
        );
        control.metrics().statement_done(ran.elapsed());
        progress.abort();
        let output = match result {
            Ok(output) => output,
            Err(e) => error_output("Error", &format!("Interpreter died:\n{e}")),
        };
        // The result first, so a polling client sees it as early as possible; then activity.
        store
            .finish_statement(statement.id, &output.to_string())
            .await
            .log_error("record the statement's result");
        store
            .touch_session(session_id)
            .await
            .log_error("record the session's activity");
        if handle.repl.read().await.is_none() {
            return;
        }
    }
}

/// Reacts to a session's driver ending: expected during a stop, otherwise the session is dead.
async fn on_driver_exit(control: &Control, session_id: SessionId, exit: Exit) {
    let store = control.store();
    control
        .provisioner()
        .record_ended(
            Owner::Session(session_id),
            |_| true,
            ProcessOutcome::Exited,
            exit.code(),
        )
        .await;
    let Ok(Some(session)) = store.session(session_id).await else {
        return;
    };
    if session.state == SessionState::ShuttingDown || session.state.is_finished() {
        return;
    }
    if *control.inner().shutdown.borrow() {
        return;
    }
    let died_of =
        crate::run::driver_failure(&control.session_dir(session_id).join("logs").join("driver"));
    let how = match exit {
        Exit::Code(code) => format!("with code {code}"),
        Exit::Signal(signal) => format!("on signal {signal}"),
        Exit::Unknown => "while no server watched it".to_string(),
    };
    let reason = match died_of {
        Some(error) => format!("the driver exited unexpectedly {how}: {error}"),
        None => format!(
            "the driver exited unexpectedly {how} (its log: `GET /sessions/{session_id}/log`)"
        ),
    };
    tracing::warn!(session = %session_id, %reason, "session died");
    for statement in store
        .pending_statements(session_id)
        .await
        .unwrap_or_default()
    {
        let output = error_output("Error", &format!("Interpreter died:\n{reason}"));
        store
            .set_statement_state(
                statement.id,
                StatementState::Available,
                Some(&output.to_string()),
            )
            .await
            .log_error("record the statement's state");
    }
    store
        .set_session_state(session_id, SessionState::Dead, Some(&reason))
        .await
        .log_error("record the session's state");
    if let Some(handle) = control.session_handle(session_id) {
        *handle.repl.write().await = None;
    }
    forget(control, session_id, session.cluster_id, false).await;
}

/// Stops every process a session started that is still recorded as running.
async fn stop_processes(control: &Control, session_id: SessionId) {
    let store = control.store();
    for process in store
        .processes_of(Owner::Session(session_id))
        .await
        .unwrap_or_default()
    {
        if process.state == ProcessState::Ended {
            continue;
        }
        if let Some(pid) = process.pid {
            spool_supervisor::stop_group(pid as u32, control.config().stop_grace).await;
        }
        store
            .set_process_ended(process.id, ProcessOutcome::Stopped, None)
            .await
            .log_error("record how a process ended");
    }
}

/// Stops a session's driver and records `final_state` with the reason.
pub(crate) async fn stop_session(
    control: &Control,
    session_id: SessionId,
    final_state: SessionState,
    reason: &str,
) {
    let store = control.store();
    store
        .set_session_state(session_id, SessionState::ShuttingDown, Some(reason))
        .await
        .log_error("record the session's state");
    if let Some(handle) = control.session_handle(session_id)
        && let Some(repl) = handle.repl.write().await.take()
    {
        // Ask politely first: the driver stops its SparkContext, freeing its executors.
        let _ = tokio::time::timeout(Duration::from_secs(5), repl.shutdown()).await;
    }
    stop_processes(control, session_id).await;
    for statement in store
        .pending_statements(session_id)
        .await
        .unwrap_or_default()
    {
        store
            .set_statement_state(statement.id, StatementState::Cancelled, None)
            .await
            .log_error("record the statement's state");
    }
    store
        .set_session_state(session_id, final_state, Some(reason))
        .await
        .log_error("record the session's state");
    let cluster_id = store
        .session(session_id)
        .await
        .ok()
        .flatten()
        .and_then(|s| s.cluster_id);
    forget(control, session_id, cluster_id, false).await;
    tracing::info!(session = %session_id, reason, "session ended");
}

/// Ends sessions idle past their timeout. A running statement counts as activity.
pub(crate) async fn timeout_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
        let Ok(sessions) = control
            .store()
            .sessions_in_state(&[SessionState::Idle, SessionState::Busy])
            .await
        else {
            continue;
        };
        for session in sessions.into_iter().filter(|s| !s.prewarmed) {
            if session.state == SessionState::Busy {
                control
                    .store()
                    .touch_session(session.id)
                    .await
                    .log_error("record the session's activity");
                continue;
            }
            let Some(last) = chrono::DateTime::parse_from_rfc3339(&session.last_activity_at).ok()
            else {
                continue;
            };
            let idle = chrono::Utc::now()
                .signed_duration_since(last)
                .to_std()
                .unwrap_or_default();
            if idle.as_secs() as i64 >= session.idle_timeout_s {
                let minutes = session.idle_timeout_s as f64 / 60.0;
                stop_session(
                    &control,
                    session.id,
                    SessionState::Dead,
                    &format!("timed out after {minutes} min without activity"),
                )
                .await;
            }
        }
    }
}

/// Stops every session (a graceful server stop without `--keep-running-on-stop`).
pub(crate) async fn stop_all(control: &Control) {
    let sessions = control
        .store()
        .sessions_in_state(SessionState::LIVE)
        .await
        .unwrap_or_default();
    for session in sessions {
        stop_session(
            control,
            session.id,
            SessionState::Dead,
            "the server was stopped",
        )
        .await;
    }
}

impl Control {
    /// Gives a claimed pre-warmed driver, and its cluster's processes, normal CPU priority.
    async fn raise_priority(&self, id: SessionId) {
        let mut owners = vec![Owner::Session(id)];
        if let Ok(Some(session)) = self.store().session(id).await
            && let Some(cluster) = session.cluster_id
        {
            owners.push(Owner::Cluster(cluster));
        }
        self.raise_priority_of(&owners).await;
    }

    /// The same for a pre-warmed driver handed to a batch job.
    pub(crate) async fn raise_job_priority(&self, job: JobId, cluster: ClusterId) {
        self.raise_priority_of(&[Owner::Job(job), Owner::Cluster(cluster)])
            .await;
    }

    async fn raise_priority_of(&self, owners: &[Owner]) {
        let store = self.store();
        for &owner in owners {
            for process in store.processes_of(owner).await.unwrap_or_default() {
                if process.state != ProcessState::Ended
                    && let Some(pid) = process.pid
                {
                    spool_supervisor::set_group_nice(pid as u32, 0);
                }
            }
        }
    }
}

/// Takes a claimed pre-warmed session's connection to its driver for the batch job it was
/// handed to (`Store::claim_prewarmed_driver_for_job`): the session has ended, so no statement
/// loop uses it, and its runner entry goes.
pub(crate) async fn hand_over(control: &Control, session_id: SessionId) -> Option<Arc<ReplClient>> {
    let handle = control
        .inner()
        .session_runners
        .lock()
        .expect("session map lock")
        .remove(&session_id)?;
    handle.repl.write().await.take()
}

/// Keeps each pre-warmed pool (`Config::prewarm_pools`: a runtime, a shape, a size) full of
/// idle drivers owned by the admin and invisible to users until one is claimed; one driver
/// per round, only once its runtime is installed, and never ahead of waiting user work.
pub(crate) async fn prewarm_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    let pools = control.config().prewarm_pools();
    loop {
        tokio::select! {
            _ = control.inner().prewarm_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => return,
        }
        if *control.inner().shutdown.borrow() {
            return;
        }
        let store = control.store();
        // Pre-warming never competes with user work: it waits while any session or job is
        // starting or running its first statement (on a small host they share the cores).
        if store.user_work_starting().await.unwrap_or(1) > 0 {
            continue;
        }
        // With per-principal accounts a driver can only be handed to its own principal: the
        // pools hold drivers for whoever asked for the latest session or job (the admin at
        // first), and drivers of anyone else are retired so they hold no capacity (a full pool
        // of another principal's drivers included: it is refilled below).
        let mut runs_as = crate::identity::Principal::User("admin".into()).key();
        if control.inner().accounts.enforced() {
            if let Ok(Some(latest)) = store.latest_work_runs_as().await {
                runs_as = latest;
            }
            for id in store
                .prewarmed_sessions_not_running_as(&runs_as)
                .await
                .unwrap_or_default()
            {
                stop_session(
                    &control,
                    id,
                    SessionState::Killed,
                    "pre-warmed driver retired: sessions now run as another principal",
                )
                .await;
            }
        }
        // Drivers no pool wants (a shape the config dropped, a pool made smaller) hold
        // capacity for nothing: they go first, even with no pools left.
        let Ok(shapes) = store.prewarmed_shapes().await else {
            continue;
        };
        let held: Vec<crate::prewarm::Held> = shapes
            .into_iter()
            .map(|(id, runtime, sizing)| crate::prewarm::Held {
                id,
                runtime,
                sizing: serde_json::from_str(&sizing).ok(),
            })
            .collect();
        let plan = crate::prewarm::plan(&pools, &held);
        for id in plan.retire {
            // Not one a user claimed since the listing.
            if !matches!(store.session(id).await, Ok(Some(row)) if row.prewarmed) {
                continue;
            }
            stop_session(
                &control,
                id,
                SessionState::Killed,
                "pre-warmed driver retired: no pre-warmed pool has its runtime and shape any more",
            )
            .await;
        }
        if plan.fill.is_empty() {
            continue;
        }
        let Ok(Some(admin)) = store.user_by_name("admin").await else {
            continue;
        };
        // The first pool wanting a driver whose runtime is installed and whose shape fits now:
        // a pre-warmed driver must never queue ahead of real work.
        let mut chosen = None;
        for pool in plan.fill.iter().map(|i| &pools[*i]) {
            if control.inner().runtimes.installed(&pool.runtime).is_some()
                && crate::scheduler::fits_now(&control, &pool.sizing)
                    .await
                    .unwrap_or(false)
            {
                chosen = Some(pool);
                break;
            }
        }
        let Some(pool) = chosen else {
            continue;
        };
        let (runtime, sizing) = (pool.runtime.as_str(), pool.sizing);
        let new = NewSession {
            name: None,
            owner_id: admin.id,
            kind: "shared".into(),
            runtime: runtime.to_string(),
            sizing_json: serde_json::to_string(&sizing).unwrap_or_default(),
            conf_json: "{}".into(),
            // Pre-warmed drivers do not time out; the timeout starts when a user claims one.
            idle_timeout_s: 365 * 24 * 3600,
            prewarmed: true,
            environment_json: None,
            compute: "serverless".into(),
            runs_as,
            files_json: None,
        };
        match store.insert_session(&new).await {
            Ok(session) => {
                tracing::info!(session = %session.id, runtime, "pre-warming a driver");
                control.inner().wake.notify_one();
            }
            Err(e) => tracing::warn!(error = %crate::error_chain(&e), "pre-warm a driver"),
        }
    }
}
