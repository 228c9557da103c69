//! Environments for sessions and jobs: conda files checked at submit against the runtime, built
//! (or found in the cache) before the driver starts, and the cache's list/show/prune.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use spool_core::{ClusterId, Owner, ProcessId, ProcessOutcome, UserId};
use spool_runtime::{BuiltEnv, EnvError, EnvInfo, InstalledRuntime};
use spool_spark::PythonSetup;
use spool_spec::conda::{CondaEnv, RuntimePins, parse_conda, render_conda_errors};

use crate::{Action, Caller, Control, ControlError, LogError, Result, invalid};

/// The Spark conf key Synapse uses for a session's conda file; Livy clients send it in `conf`.
pub const LIVY_CONDA_CONF: &str = "spark.synapse.library.python.env";
/// `false` forces the environment to be rebuilt (the cache itself is always on).
pub const ENABLE_CACHE_CONF: &str = "spark.hadoop.aml.enable_cache";

/// What a session or job records about the environment it asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvRequest {
    /// The conda file as the user named it.
    pub file: String,
    pub conda: CondaEnv,
    /// Build again even when the cache has it (`spark.hadoop.aml.enable_cache=false`).
    pub rebuild: bool,
}

/// Whether the value of `ENABLE_CACHE_CONF` in a request's Spark conf turns the cache off
/// for it (forcing a rebuild).
pub fn rebuild_requested(enable_cache: Option<&str>) -> bool {
    enable_cache.is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
}

impl Control {
    /// The versions `runtime` fixes.
    async fn runtime_pins(&self, runtime: &str) -> Result<RuntimePins> {
        let def = spool_runtime::find(runtime)
            .ok_or_else(|| invalid("runtime_version", format!("unknown runtime `{runtime}`")))?;
        let python = self
            .inner()
            .runtimes
            .python_version(runtime)
            .await
            .map_err(|e| ControlError::Internal(e.into()))?;
        let java = spool_runtime::check_java(def)
            .map_err(|e| ControlError::Internal(e.into()))?
            .to_string();
        Ok(RuntimePins {
            runtime: runtime.to_string(),
            python,
            pyspark: def.pyspark.to_string(),
            java,
        })
    }

    /// Checks a conda file against a runtime; every problem is reported with its line.
    pub(crate) async fn check_conda(
        &self,
        runtime: &str,
        file: &str,
        text: &str,
        rebuild: bool,
        target: &str,
    ) -> Result<EnvRequest> {
        let pins = self.runtime_pins(runtime).await?;
        // Parsing user YAML is CPU work (bounded by `spool_spec::yaml`'s limits): keep it off
        // the async workers.
        let owned = text.to_string();
        let conda = tokio::task::spawn_blocking(move || parse_conda(&owned, &pins))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(|diags| invalid(target, render_conda_errors(file, &diags)))?;
        Ok(EnvRequest {
            file: file.to_string(),
            conda,
            rebuild,
        })
    }

    /// Builds a requested environment or takes it from the cache, logging to `log`. Returns it
    /// and whether it came from the cache.
    /// Builds `owner`'s environment or finds it in the cache; the build's process is recorded
    /// as `owner`'s, so it is stopped with it and reaped after a crash.
    pub(crate) async fn prepare_env(
        &self,
        owner: Owner,
        runtime: &InstalledRuntime,
        request: &EnvRequest,
        log: &Path,
    ) -> std::result::Result<(BuiltEnv, bool), EnvError> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| EnvError::Io(format!("create `{}`: {e}", dir.display())))?;
        }
        let recorder = BuildProcess {
            control: self,
            owner,
            log_dir: log.parent().unwrap_or(log).to_path_buf(),
            id: std::sync::Mutex::new(None),
        };
        let built = self
            .inner()
            .runtimes
            .build_env(
                runtime,
                &request.conda.requirements,
                &self.config().environments,
                request.rebuild,
                log,
                &recorder,
            )
            .await?;
        self.metrics().environment(built.1, built.0.build_seconds);
        Ok(built)
    }

    /// Environments in the cache. Users see the ones their sessions and jobs used; Owners see
    /// all.
    pub async fn environments(&self, caller: &Caller) -> Result<Vec<EnvInfo>> {
        caller.require(Action::ViewEnvironments)?;
        let mut envs = self.inner().runtimes.list_envs();
        if !caller.sees_everything() {
            let mine = self.env_keys(Some(caller.id), false).await?;
            envs.retain(|info| mine.contains(&info.env.key));
        }
        Ok(envs)
    }

    /// One environment by its key (or a unique prefix of it).
    pub async fn environment(&self, caller: &Caller, key: &str) -> Result<EnvInfo> {
        let matches: Vec<EnvInfo> = self
            .environments(caller)
            .await?
            .into_iter()
            .filter(|info| info.env.key.starts_with(key))
            .collect();
        if let Some(exact) = matches.iter().find(|info| info.env.key == key) {
            return Ok(exact.clone());
        }
        match matches.len() {
            1 => Ok(matches.into_iter().next().expect("one match")),
            0 => Err(ControlError::NotFound {
                kind: "environment",
                name: key.to_string(),
            }),
            n => Err(invalid(
                "key",
                format!("`{key}` matches {n} environments; give more of the key"),
            )),
        }
    }

    /// What an environment's build printed (uv's output between Spool's own lines), for a
    /// caller who may see the environment.
    pub async fn environment_build_log(&self, caller: &Caller, key: &str) -> Result<String> {
        let info = self.environment(caller, key).await?;
        let key = info.env.key;
        let path =
            self.inner()
                .runtimes
                .env_build_log(&key)
                .ok_or_else(|| ControlError::NotFound {
                    kind: "build log of environment",
                    name: format!("{key} (it was built before build logs were kept)"),
                })?;
        Ok(tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| anyhow::anyhow!("read `{}`: {e}", path.display()))?)
    }

    /// Removes unused environments: all of them with `all`, else by the configured age and size
    /// limits. Never one a live session or running job uses. Owners only.
    pub async fn prune_environments(&self, caller: &Caller, all: bool) -> Result<Vec<String>> {
        caller.require(Action::PruneEnvironments)?;
        Ok(self.prune_environments_now(all).await?)
    }

    pub(crate) async fn prune_environments_now(&self, all: bool) -> anyhow::Result<Vec<String>> {
        let in_use = self.env_keys(None, true).await?;
        let config = self.config();
        let (age, size) = if all {
            (Some(std::time::Duration::ZERO), Some(0))
        } else {
            (
                Some(config.environments_max_age),
                Some(config.environments_max_size.0 * 1024 * 1024),
            )
        };
        let runtimes = self.inner().runtimes.clone();
        let removed =
            tokio::task::spawn_blocking(move || runtimes.prune_envs(age, size, &in_use)).await?;
        for key in &removed {
            tracing::info!(environment = %key, "environment removed from the cache");
        }
        Ok(removed)
    }

    /// Keys of environments that sessions and jobs recorded: `owner`'s only when given, and
    /// only of live sessions and unfinished jobs when `live` is set.
    async fn env_keys(
        &self,
        owner: Option<UserId>,
        live: bool,
    ) -> anyhow::Result<BTreeSet<String>> {
        Ok(self
            .store()
            .environment_records(owner, live)
            .await?
            .iter()
            .filter_map(|json| recorded_key(json))
            .collect())
    }
}

/// The conda file of a job's `environment` as it arrives at the server: `conda_file` holds the
/// file's text (the CLI reads the file named in the YAML and sends its content, with the name in
/// `conda_file_path`) or an inline mapping.
pub(crate) fn conda_from_job(environment: &serde_json::Value) -> Result<(String, String)> {
    let path = environment
        .get("conda_file_path")
        .and_then(|v| v.as_str())
        .unwrap_or("environment.conda_file")
        .to_string();
    match environment.get("conda_file") {
        Some(serde_json::Value::String(text)) if text.contains('\n') || text.contains(':') => {
            Ok((path, text.clone()))
        }
        Some(serde_json::Value::String(text)) => Err(invalid(
            "environment.conda_file",
            format!(
                "`{text}` looks like a path; the server needs the conda file's content (the `spool job create` CLI sends it for you)"
            ),
        )),
        // JSON is YAML: an inline mapping is checked as a conda file of its own.
        Some(value @ serde_json::Value::Object(_)) => Ok((path, value.to_string())),
        _ => Err(invalid(
            "environment.conda_file",
            "an environment needs `conda_file` (a conda YAML file of PyPI packages)",
        )),
    }
}

/// Removes environments past the configured age and size limits: a minute after start, then
/// hourly.
pub(crate) async fn gc_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    let mut wait = std::time::Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = control.prune_environments_now(false).await {
            tracing::warn!(error = format!("{e:#}"), "prune the environment cache");
        }
        wait = std::time::Duration::from_secs(3600);
    }
}

/// Which Python a driver and its executors run: the runtime's everywhere, or the environment's,
/// run directly on this host or shipped as an archive when the cluster has workers on agents.
pub(crate) fn python_setup(
    runtime: &InstalledRuntime,
    env: Option<&BuiltEnv>,
    on_agents: bool,
) -> PythonSetup {
    match env {
        None => PythonSetup {
            driver: runtime.python.clone(),
            executors: runtime.python.clone(),
            ship: None,
        },
        Some(env) => match (&env.overlay, on_agents) {
            (Some(overlay), true) => PythonSetup {
                driver: env.python.clone(),
                executors: runtime.python.clone(),
                ship: Some(overlay.clone()),
            },
            _ => PythonSetup {
                driver: env.python.clone(),
                executors: env.python.clone(),
                ship: None,
            },
        },
    }
}

/// The Python setup of a driver on `cluster_id`, and the runtime it runs with: the runtime's
/// Spark with the environment's Python and virtualenv, when there is one.
pub(crate) async fn driver_python(
    control: &Control,
    runtime: &InstalledRuntime,
    env: Option<&BuiltEnv>,
    cluster_id: ClusterId,
) -> (PythonSetup, InstalledRuntime) {
    let on_agents = control
        .store()
        .cluster_workers(cluster_id)
        .await
        .map(|w| w.iter().any(|w| w.agent.is_some()))
        .unwrap_or(false);
    let setup = python_setup(runtime, env, on_agents);
    let driver_runtime = match env {
        Some(env) => InstalledRuntime {
            python: env.python.clone(),
            venv: env.venv.clone(),
            ..runtime.clone()
        },
        None => runtime.clone(),
    };
    (setup, driver_runtime)
}

/// The cache key a session or job recorded once its environment was ready.
fn recorded_key(environment_json: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(environment_json)
        .ok()?
        .get("key")?
        .as_str()
        .map(str::to_string)
}

/// What a start phase says once an environment is ready.
pub(crate) fn ready_message(env: &BuiltEnv, cached: bool) -> String {
    if cached {
        format!("environment {} from the cache", env.key)
    } else {
        format!(
            "environment {} built in {:.1} s",
            env.key, env.build_seconds
        )
    }
}

/// Records the built environment's key next to the request (for `env list` and pruning).
pub(crate) fn with_key(request: &EnvRequest, env: &BuiltEnv) -> String {
    let mut value = serde_json::to_value(request).unwrap_or_default();
    value["key"] = serde_json::Value::String(env.key.clone());
    value.to_string()
}

/// Records an environment build's uv process in the store, as its owner's.
struct BuildProcess<'a> {
    control: &'a Control,
    owner: Owner,
    log_dir: std::path::PathBuf,
    /// The process record, once made.
    id: std::sync::Mutex<Option<ProcessId>>,
}

impl BuildProcess<'_> {
    fn id(&self) -> Option<ProcessId> {
        *self.id.lock().expect("build process id lock")
    }
}

impl spool_runtime::BuildRecorder for BuildProcess<'_> {
    async fn starting(&self, command: &str) -> std::result::Result<(), String> {
        let id = self
            .control
            .store()
            .insert_process(
                self.owner,
                "environment build",
                command,
                &self.log_dir.display().to_string(),
            )
            .await
            .map_err(|e| format!("record the build: {}", crate::error_chain(&e)))?;
        *self.id.lock().expect("build process id lock") = Some(id);
        Ok(())
    }

    async fn started(&self, pid: u32) {
        if let Some(id) = self.id() {
            self.control
                .store()
                .set_process_running(
                    id,
                    i64::from(pid),
                    spool_supervisor::start_ticks(pid).map(|t| t as i64),
                )
                .await
                .log_error("record the environment build's pid");
        }
    }

    async fn ended(&self, exit_code: Option<i32>) {
        if let Some(id) = self.id() {
            self.control
                .store()
                .set_process_ended(id, ProcessOutcome::Exited, exit_code.map(i64::from))
                .await
                .log_error("record how the environment build ended");
        }
    }
}
