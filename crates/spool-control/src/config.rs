//! Server configuration: capacity, serverless teardown and extra instance types.

use std::time::Duration;

use serde::Deserialize;
use spool_core::MemoryMb;
use spool_spec::InstanceType;

/// Configuration of the control plane. Every field has a default; `config.toml` in the data dir
/// may override any of them.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host cores (detected).
    pub host_cores: u32,
    /// Host memory available to Spark, after the reserve (detected).
    pub host_memory: MemoryMb,
    /// How many times the host's cores may be handed out. CPU is shared gracefully by the OS;
    /// memory is never overcommitted. The default 5 lets every Azure sample run on a 2-core
    /// machine (the largest, the shakespeare pipeline's count step, asks for 4 executors of 2
    /// cores and a driver: 9 cores).
    pub cpu_oversubscription: f64,
    /// Memory kept back for the OS and Spool itself.
    pub reserved_memory: MemoryMb,
    /// An idle serverless cluster is torn down after this long without work.
    pub teardown_after: Duration,
    /// Heap of each Spark master and worker daemon.
    pub daemon_memory: MemoryMb,
    /// Instance types on top of the five Azure ones.
    pub extra_instance_types: Vec<InstanceType>,
    /// Time a stopped process gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Livy's CSRF protection: non-GET Livy requests must carry `X-Requested-By`.
    pub livy_csrf_protection: bool,
    /// Local folders whose files Livy requests may name (`[livy] local_dir_allowlist`, as
    /// Livy's `livy.file.local-dir-whitelist`); empty by default, so only datastores serve.
    pub livy_local_dirs: Vec<std::path::PathBuf>,
    /// Idle drivers (each on its own small cluster) kept ready for the default runtime, so a
    /// session with default settings starts at once.
    pub prewarmed_sessions: u32,
    /// Further pre-warmed pools, one per shape (`[[sessions.pools]]`); see `prewarm_pools`.
    pub extra_prewarm_pools: Vec<PrewarmPool>,
    /// Building environments from conda files: indexes, install timeout.
    pub environments: spool_runtime::EnvSettings,
    /// Unused environments are removed after this long...
    pub environments_max_age: Duration,
    /// ...and the least recently used ones while the cache is larger than this.
    pub environments_max_size: MemoryMb,
    /// The address Spark processes on this host bind to and advertise (masters, local workers,
    /// drivers): 127.0.0.1 unless agents on other hosts must reach them.
    pub advertise_address: String,
    /// An agent silent for this long is lost, and the work using its workers fails.
    pub agent_heartbeat_timeout: Duration,
    /// Whether executors may also run on the server's own host when agents are connected.
    pub workers_on_server: bool,
    /// The largest upload body (code snapshots, datastore uploads); JSON bodies have fixed,
    /// smaller limits.
    pub max_upload: MemoryMb,
    /// Whether work runs under per-principal OS accounts (`[access] enforce`).
    pub enforce_access: EnforceSetting,
    /// Audit entries older than this are pruned (at start and hourly); zero keeps them all.
    pub audit_retention: Duration,
    /// Whether `/metrics` asks for a user's token (`[server] metrics_auth`, default true).
    pub metrics_auth: bool,
    /// Command jobs running at once on this host (`[jobs] max_command_steps`); the rest wait
    /// `Queued`. They need no cluster, so only this bounds them.
    pub max_command_steps: u32,
    /// Where isolated clusters get their addresses (`[network] cluster_subnet`).
    pub cluster_subnet: crate::netfilter::ClusterSubnet,
}

/// The `config.toml` file. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub capacity: CapacityFile,
    #[serde(default)]
    pub serverless: ServerlessFile,
    #[serde(default)]
    pub instance_types: Vec<InstanceTypeFile>,
    #[serde(default)]
    pub livy: LivyFile,
    #[serde(default)]
    pub sessions: SessionsFile,
    #[serde(default)]
    pub environments: EnvironmentsFile,
    #[serde(default)]
    pub agents: AgentsFile,
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub access: AccessFile,
    #[serde(default)]
    pub jobs: JobsFile,
    #[serde(default)]
    pub network: NetworkFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    /// The IPv4 block isolated clusters take a /30 each from (default `10.213.0.0/16`); pick one
    /// this host does not use otherwise.
    pub cluster_subnet: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsFile {
    /// Command jobs (and pipelines' command steps) running at once (default: the host's cores).
    pub max_command_steps: Option<u32>,
}

/// `[access] enforce` in the config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnforceSetting {
    /// On when the server runs as root and the tools are there.
    #[default]
    Auto,
    /// On, or the server refuses to start.
    On,
    /// Off: work runs as the server's account.
    Off,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessFile {
    /// `auto` (the default: on when the server runs as root), `on` (refuse to start without it)
    /// or `off`: whether jobs and sessions run under an OS account per identity, so the
    /// operating system enforces their data roles.
    pub enforce: Option<EnforceSetting>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// The largest upload (a code snapshot or a datastore upload), e.g. `"2g"` (the default).
    pub max_upload: Option<String>,
    /// How long audit entries are kept (default `90d`; `0` keeps them all).
    pub audit_retention: Option<String>,
    /// Whether `/metrics` needs a user's token (default true; false lets a scraper without
    /// one read it).
    pub metrics_auth: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsFile {
    /// An agent silent for this long is lost (default `10s`).
    pub heartbeat_timeout: Option<String>,
    /// Executors may also run on the server's host when agents are connected (default true).
    pub workers_on_server: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentsFile {
    /// Longest an environment build may take (default `15m`).
    pub install_timeout: Option<String>,
    /// Replaces PyPI as the package index.
    pub index_url: Option<String>,
    #[serde(default)]
    pub extra_index_urls: Vec<String>,
    /// Directories (or pages) of wheels and sdists, e.g. a local wheelhouse.
    #[serde(default)]
    pub find_links: Vec<String>,
    /// Unused environments are removed after this long (default `30d`).
    pub max_age: Option<String>,
    /// Cache size above which least recently used environments are removed (default `20g`).
    pub max_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsFile {
    /// Pre-warmed drivers kept ready (default 1).
    pub prewarm: Option<u32>,
    /// Pre-warmed pools of other shapes: each keeps `size` idle drivers of its runtime and size.
    #[serde(default)]
    pub pools: Vec<PoolFile>,
}

/// One `[[sessions.pools]]` entry: a shape of driver and executors, and how many to keep.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    /// Runtime version (default: the default runtime).
    pub runtime: Option<String>,
    pub driver_cores: Option<u32>,
    /// E.g. `2g` (default `1g`).
    pub driver_memory: Option<String>,
    pub executor_cores: Option<u32>,
    pub executor_memory: Option<String>,
    pub executors: Option<u32>,
    /// Idle drivers of this shape kept ready (default 1).
    pub size: Option<u32>,
}

/// Pre-warmed drivers of one shape: sessions and jobs asking for exactly this runtime and
/// size (and nothing a warm driver cannot honour) take one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrewarmPool {
    pub runtime: String,
    pub sizing: spool_spec::SparkSizing,
    pub size: u32,
}

/// The shape of the default pool: the default session's (one core and 1 GiB for the driver and
/// for its one executor).
pub fn default_prewarm_sizing() -> spool_spec::SparkSizing {
    spool_spec::SparkSizing {
        driver_cores: 1,
        driver_memory: MemoryMb(1024),
        executor_cores: 1,
        executor_memory: MemoryMb(1024),
        executor_instances: 1,
        dynamic_allocation: None,
    }
}

impl PoolFile {
    /// The pool this entry describes, `at` naming it in errors (`sessions.pools[1]`).
    fn pool(&self, at: &str) -> Result<PrewarmPool, String> {
        let runtime = self
            .runtime
            .clone()
            .unwrap_or_else(|| spool_runtime::DEFAULT_RUNTIME.to_string());
        if spool_runtime::find(&runtime).is_none() {
            return Err(format!(
                "{at}.runtime: `{runtime}` is not a runtime; use one of {}",
                spool_runtime::supported_versions().join(", ")
            ));
        }
        // What an entry leaves out is the default pool's.
        let default = default_prewarm_sizing();
        let memory = |field: &str, value: &Option<String>, default: MemoryMb| match value {
            None => Ok(default),
            Some(text) => MemoryMb::parse(text)
                .map_err(|e| format!("{at}.{field}: `{text}`: {e}; write e.g. `2g`")),
        };
        let count = |field: &str, value: Option<u32>, default: u32| match value.unwrap_or(default) {
            0 => Err(format!("{at}.{field}: must be at least 1")),
            n => Ok(n),
        };
        Ok(PrewarmPool {
            runtime,
            sizing: spool_spec::SparkSizing {
                driver_cores: count("driver_cores", self.driver_cores, default.driver_cores)?,
                driver_memory: memory("driver_memory", &self.driver_memory, default.driver_memory)?,
                executor_cores: count(
                    "executor_cores",
                    self.executor_cores,
                    default.executor_cores,
                )?,
                executor_memory: memory(
                    "executor_memory",
                    &self.executor_memory,
                    default.executor_memory,
                )?,
                executor_instances: count("executors", self.executors, default.executor_instances)?,
                dynamic_allocation: None,
            },
            size: self.size.unwrap_or(1),
        })
    }
}

impl Config {
    /// Every pre-warmed pool: the default shape (`--prewarm`, `[sessions] prewarm`) first, then
    /// `[[sessions.pools]]`; pools of size 0 are left out.
    pub fn prewarm_pools(&self) -> Vec<PrewarmPool> {
        std::iter::once(PrewarmPool {
            runtime: spool_runtime::DEFAULT_RUNTIME.to_string(),
            sizing: default_prewarm_sizing(),
            size: self.prewarmed_sessions,
        })
        .chain(self.extra_prewarm_pools.iter().cloned())
        .filter(|pool| pool.size > 0)
        .collect()
    }

    /// Memory every pool's drivers hold when full: each driver's cluster (its executors and two
    /// daemons) and the driver itself.
    fn prewarm_memory(&self) -> MemoryMb {
        MemoryMb(
            self.prewarm_pools()
                .iter()
                .map(|pool| {
                    let s = &pool.sizing;
                    u64::from(pool.size)
                        * (s.driver_memory.0
                            + u64::from(s.executor_instances) * s.executor_memory.0
                            + 2 * self.daemon_memory.0)
                })
                .sum(),
        )
    }

    /// Pools that could never all be full at once are refused: the last drivers would never
    /// start. (The default, one small driver, is not held to it: on a host too small for it the
    /// pool just stays empty, as pools fill only with what fits at the moment.)
    pub fn check_prewarm_capacity(&self) -> Result<(), String> {
        if self.extra_prewarm_pools.is_empty() && self.prewarmed_sessions <= 1 {
            return Ok(());
        }
        let usable = MemoryMb(self.host_memory.0.saturating_sub(self.reserved_memory.0));
        let wanted = self.prewarm_memory();
        if wanted.0 > usable.0 {
            return Err(format!(
                "sessions: the pre-warmed pools would hold {wanted} when full (each driver, its executors and its cluster's two daemons), more than the {usable} this host has for Spark; lower `prewarm` or the pools' `size`"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivyFile {
    /// As Livy's `livy.server.csrf-protection.enabled` (default false).
    pub csrf_protection: Option<bool>,
    /// Absolute folders whose files sessions and batches may name by local path.
    #[serde(default)]
    pub local_dir_allowlist: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityFile {
    pub cores: Option<u32>,
    pub memory: Option<String>,
    pub cpu_oversubscription: Option<f64>,
    pub reserved_memory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerlessFile {
    /// e.g. `"10m"`, `"30s"`.
    pub teardown_after: Option<String>,
    /// The address Spark on this host binds to (default 127.0.0.1); set it to an address agents
    /// can reach when they run workers.
    pub advertise_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeFile {
    pub name: String,
    pub cores: u32,
    pub memory: String,
}

/// Parses `90s`, `10m`, `1h` or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let seconds = parse_duration_seconds(text)?;
    // Checked: `Duration::from_secs_f64` panics on a value past `u64::MAX` seconds.
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        format!(
            "`{}` is too long a duration: at most {} days",
            text.trim(),
            u64::MAX / 86400
        )
    })
}

/// Parses a duration as [`parse_duration`] does, into seconds (possibly huge, never negative),
/// so that callers with their own maximum can say what it is.
pub fn parse_duration_seconds(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write e.g. `30s`, `10m` or `1h`"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        _ => {
            return Err(format!(
                "`{text}` is not a duration: write e.g. `30s`, `10m` or `1h`"
            ));
        }
    };
    Ok(seconds)
}

impl Config {
    /// Detects the host and applies the file's overrides.
    pub fn from_file(file: &ConfigFile) -> Result<Config, String> {
        let host_cores = file.capacity.cores.unwrap_or_else(detect_cores);
        let reserved_memory = match &file.capacity.reserved_memory {
            Some(text) => {
                MemoryMb::parse(text).map_err(|e| format!("capacity.reserved_memory: {e}"))?
            }
            None => MemoryMb(1024),
        };
        let host_memory = match &file.capacity.memory {
            Some(text) => MemoryMb::parse(text).map_err(|e| format!("capacity.memory: {e}"))?,
            None => MemoryMb(detect_memory_mb().saturating_sub(reserved_memory.0)),
        };
        let teardown_after = match &file.serverless.teardown_after {
            Some(text) => {
                parse_duration(text).map_err(|e| format!("serverless.teardown_after: {e}"))?
            }
            None => Duration::from_secs(600),
        };
        let mut extra_instance_types = Vec::new();
        for t in &file.instance_types {
            extra_instance_types.push(InstanceType {
                name: t.name.to_lowercase(),
                cores: t.cores,
                memory_mb: MemoryMb::parse(&t.memory)
                    .map_err(|e| format!("instance_types `{}`.memory: {e}", t.name))?,
            });
        }
        Ok(Config {
            host_cores,
            host_memory,
            cpu_oversubscription: file.capacity.cpu_oversubscription.unwrap_or(5.0),
            reserved_memory,
            teardown_after,
            daemon_memory: MemoryMb(512),
            extra_instance_types,
            stop_grace: Duration::from_secs(5),
            livy_csrf_protection: file.livy.csrf_protection.unwrap_or(false),
            livy_local_dirs: file
                .livy
                .local_dir_allowlist
                .iter()
                .map(|dir| {
                    let path = std::path::PathBuf::from(dir);
                    if path.is_absolute() {
                        Ok(path)
                    } else {
                        Err(format!(
                            "livy.local_dir_allowlist: `{dir}` is not an absolute path; list folders as `/srv/spark-libs`"
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
            prewarmed_sessions: file.sessions.prewarm.unwrap_or(1),
            extra_prewarm_pools: {
                let mut pools: Vec<PrewarmPool> = Vec::new();
                for (i, entry) in file.sessions.pools.iter().enumerate() {
                    let at = format!("sessions.pools[{i}]");
                    let pool = entry.pool(&at)?;
                    let default = pool.runtime == spool_runtime::DEFAULT_RUNTIME
                        && pool.sizing == default_prewarm_sizing();
                    if default || pools.iter().any(|p| (&p.runtime, &p.sizing) == (&pool.runtime, &pool.sizing)) {
                        return Err(format!(
                            "{at}: another pool has this runtime and shape{}; give each shape one entry",
                            if default { " (the default pool, sized by `prewarm`)" } else { "" }
                        ));
                    }
                    pools.push(pool);
                }
                pools
            },
            environments: spool_runtime::EnvSettings {
                timeout: match &file.environments.install_timeout {
                    Some(text) => parse_duration(text)
                        .map_err(|e| format!("environments.install_timeout: {e}"))?,
                    None => Duration::from_secs(15 * 60),
                },
                index_url: file.environments.index_url.clone(),
                extra_index_urls: file.environments.extra_index_urls.clone(),
                find_links: file.environments.find_links.clone(),
            },
            environments_max_age: match &file.environments.max_age {
                Some(text) => {
                    parse_duration(text).map_err(|e| format!("environments.max_age: {e}"))?
                }
                None => Duration::from_secs(30 * 24 * 3600),
            },
            advertise_address: file
                .serverless
                .advertise_address
                .clone()
                .unwrap_or_else(|| "127.0.0.1".to_string()),
            agent_heartbeat_timeout: match &file.agents.heartbeat_timeout {
                Some(text) => {
                    parse_duration(text).map_err(|e| format!("agents.heartbeat_timeout: {e}"))?
                }
                None => Duration::from_secs(10),
            },
            workers_on_server: file.agents.workers_on_server.unwrap_or(true),
            max_upload: match &file.server.max_upload {
                Some(text) => {
                    MemoryMb::parse(text).map_err(|e| format!("server.max_upload: {e}"))?
                }
                None => MemoryMb(2 * 1024),
            },
            audit_retention: match &file.server.audit_retention {
                Some(text) => {
                    parse_duration(text).map_err(|e| format!("server.audit_retention: {e}"))?
                }
                None => Duration::from_secs(90 * 24 * 3600),
            },
            metrics_auth: file.server.metrics_auth.unwrap_or(true),
            environments_max_size: match &file.environments.max_size {
                Some(text) => {
                    MemoryMb::parse(text).map_err(|e| format!("environments.max_size: {e}"))?
                }
                None => MemoryMb(20 * 1024),
            },
            enforce_access: file.access.enforce.unwrap_or_default(),
            max_command_steps: match file.jobs.max_command_steps {
                Some(0) => return Err("jobs.max_command_steps: must be at least 1".into()),
                Some(n) => n,
                None => host_cores.max(1),
            },
            cluster_subnet: match &file.network.cluster_subnet {
                Some(text) => crate::netfilter::ClusterSubnet::parse(text)
                    .map_err(|e| format!("network.cluster_subnet: {e}"))?,
                None => crate::netfilter::ClusterSubnet::DEFAULT,
            },
        })
    }

    /// Cores that may be handed out.
    pub fn schedulable_cores(&self) -> u32 {
        (f64::from(self.host_cores) * self.cpu_oversubscription).floor() as u32
    }
}

pub fn detect_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

pub fn detect_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert!(parse_duration("5w").is_err());
        // Regression (issue 11, finding 5): this panicked in `Duration::from_secs_f64`.
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err(
                "`99999999999999999999d` is too long a duration: at most 213503982334601 days"
                    .into()
            )
        );
    }

    #[test]
    fn config_file_overrides_detection() {
        let file: ConfigFile = toml_like();
        let config = Config::from_file(&file).unwrap();
        assert_eq!(config.host_cores, 2);
        assert_eq!(config.host_memory, MemoryMb(8192));
        assert_eq!(config.schedulable_cores(), 10);
        assert_eq!(config.teardown_after, Duration::from_secs(30));
    }

    #[test]
    fn pools_of_other_shapes_are_checked_and_bounded_by_memory() {
        let with = |pools: Vec<PoolFile>| {
            let mut file = toml_like();
            file.sessions.pools = pools;
            Config::from_file(&file)
        };
        let config = with(vec![PoolFile {
            runtime: Some("3.5".into()),
            executor_memory: Some("2g".into()),
            executors: Some(2),
            size: Some(2),
            ..Default::default()
        }])
        .expect("a valid pool");
        let pools = config.prewarm_pools();
        assert_eq!(pools.len(), 2, "the default pool first, then the entry");
        assert_eq!(pools[0].sizing, default_prewarm_sizing());
        assert_eq!(
            (pools[1].runtime.as_str(), pools[1].size),
            ("3.5", 2),
            "{pools:?}"
        );
        assert_eq!(pools[1].sizing.executor_memory, MemoryMb(2048));
        // Full: 1 default driver (1 + 1 + 2 * 0.5 GiB) and 2 of (1 + 2 * 2 + 2 * 0.5 GiB).
        assert_eq!(config.prewarm_memory(), MemoryMb(3072 + 2 * 6144));
        let e = config.check_prewarm_capacity().expect_err("8 GiB host");
        assert!(e.contains("would hold 15 GiB"), "{e}");

        let errors = [
            (
                PoolFile {
                    runtime: Some("2.4".into()),
                    ..Default::default()
                },
                "sessions.pools[0].runtime: `2.4` is not a runtime",
            ),
            (
                PoolFile {
                    driver_memory: Some("lots".into()),
                    ..Default::default()
                },
                "sessions.pools[0].driver_memory: `lots`",
            ),
            (
                PoolFile {
                    executors: Some(0),
                    ..Default::default()
                },
                "sessions.pools[0].executors: must be at least 1",
            ),
            (
                PoolFile::default(),
                "sessions.pools[0]: another pool has this runtime and shape (the default pool",
            ),
        ];
        for (pool, expected) in errors {
            let e = with(vec![pool]).expect_err(expected);
            assert!(e.starts_with(expected), "{e}");
        }
        // Only the default, one driver: not held to the bound (the pool just stays empty).
        let mut small = toml_like();
        small.capacity.memory = Some("2g".into());
        let config = Config::from_file(&small).expect("a small host");
        config.check_prewarm_capacity().expect("the default pool");
    }

    fn toml_like() -> ConfigFile {
        ConfigFile {
            capacity: CapacityFile {
                cores: Some(2),
                memory: Some("8g".into()),
                cpu_oversubscription: None,
                reserved_memory: None,
            },
            serverless: ServerlessFile {
                teardown_after: Some("30s".into()),
                advertise_address: None,
            },
            instance_types: Vec::new(),
            livy: LivyFile::default(),
            sessions: SessionsFile::default(),
            environments: EnvironmentsFile::default(),
            agents: AgentsFile::default(),
            server: ServerFile::default(),
            access: AccessFile::default(),
            jobs: JobsFile::default(),
            network: NetworkFile::default(),
        }
    }
}
