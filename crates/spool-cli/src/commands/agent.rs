//! `spool agent`: runs on a worker host and starts and stops Spark workers for the server's
//! serverless clusters; `spool agents add|list` registers and lists agents.

use std::collections::HashMap;

use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

use spool_api_types::{self as api, ClusterId};
use spool_supervisor::{ProcessSpec, Spawned};

use crate::Globals;
use crate::output;

/// Flags of `spool agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The Spool server's URL.
    #[arg(long, env = "SPOOL_AGENT_SERVER")]
    pub server: String,
    /// This agent's token (from `spool agents add NAME`). Visible to other users in `ps`:
    /// prefer `SPOOL_AGENT_TOKEN` or `--token-file` [default: `$SPOOL_AGENT_TOKEN`].
    #[arg(long)]
    pub token: Option<String>,
    /// Read this agent's token from this file (its first line).
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// The agent's name, as registered.
    #[arg(long)]
    pub name: String,
    /// The address Spark workers on this host bind to; the server's host must reach it.
    #[arg(long)]
    pub address: String,
    /// Cores offered to Spark (default: all).
    #[arg(long)]
    pub cores: Option<u32>,
    /// Memory offered to Spark, e.g. `8g` (default: the host's, less 1 GiB).
    #[arg(long)]
    pub memory: Option<String>,
    /// Where worker logs and work dirs go.
    #[arg(long, default_value_os_t = default_agent_dir())]
    pub data_dir: PathBuf,
}

fn default_agent_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".spool-agent")
}

#[derive(Debug, clap::Subcommand)]
pub enum AgentsCommand {
    /// Register an agent and print its token (shown once). Owners only.
    Add {
        /// The agent's name: what `spool agent --name` says on its host.
        name: String,
    },
    /// List agents with their state, capacity and the clusters they run workers for.
    List,
}

pub async fn run_agents(command: AgentsCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        AgentsCommand::Add { name } => {
            let created = globals.client()?.create_agent(&name).await?;
            output::print(globals.format(), &created, || {
                output::fields(&[
                    ("name", created.name.clone()),
                    ("token", created.token.clone()),
                ])
            })?;
            Ok(0)
        }
        AgentsCommand::List => {
            let agents = globals.client()?.agents().await?;
            output::print(globals.format(), &agents, || {
                let mut table = output::table(&[
                    "NAME",
                    "STATE",
                    "ADDRESS",
                    "CORES",
                    "MEMORY",
                    "CLUSTERS",
                    "LAST SEEN",
                ]);
                for a in &agents {
                    table.add_row(vec![
                        a.name.clone(),
                        a.state.to_string(),
                        a.address.clone().unwrap_or_default(),
                        a.cores.to_string(),
                        format!("{} MiB", a.memory_mb),
                        a.workers
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                        a.last_seen.clone().unwrap_or_default(),
                    ]);
                }
                table
            })?;
            Ok(0)
        }
    }
}

/// A Spark worker this agent runs for a cluster.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Worker {
    /// `None` between recording the start and the spawn.
    pid: Option<u32>,
    start_ticks: Option<u64>,
}

impl Worker {
    fn alive(&self) -> bool {
        self.pid
            .is_some_and(|pid| spool_supervisor::is_alive(pid, self.start_ticks))
    }

    async fn stop(&self) {
        if let Some(pid) = self.pid {
            spool_supervisor::stop_group(pid, Duration::from_secs(5)).await;
        }
    }
}

/// The workers this agent runs, recorded in `workers.json` in its data dir before each start
/// and after every change, so an agent restarted after a crash stops what the last one left.
struct Workers {
    path: PathBuf,
    running: std::collections::BTreeMap<ClusterId, Worker>,
}

impl Workers {
    /// Opens the record and stops every worker a previous agent left running.
    async fn open(data_dir: &std::path::Path) -> anyhow::Result<Workers> {
        let path = data_dir.join("workers.json");
        let left: std::collections::BTreeMap<ClusterId, Worker> =
            match std::fs::read_to_string(&path) {
                Ok(text) => serde_json::from_str(&text).unwrap_or_default(),
                Err(_) => Default::default(),
            };
        for (cluster, worker) in &left {
            if worker.alive() {
                eprintln!(
                    "[spool agent] stopping the worker of cluster {cluster} a previous agent left"
                );
                worker.stop().await;
            }
        }
        let workers = Workers {
            path,
            running: Default::default(),
        };
        workers.save()?;
        Ok(workers)
    }

    fn save(&self) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string(&self.running)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    fn set(&mut self, cluster: ClusterId, worker: Worker) -> anyhow::Result<()> {
        self.running.insert(cluster, worker);
        self.save()
    }

    /// Stops a cluster's worker and forgets it.
    async fn stop(&mut self, cluster: ClusterId) {
        if let Some(worker) = self.running.get(&cluster) {
            worker.stop().await;
        }
        self.remove(cluster);
    }

    fn remove(&mut self, cluster: ClusterId) {
        self.running.remove(&cluster);
        if let Err(e) = self.save() {
            eprintln!("[spool agent] cannot record the workers: {e:#}");
        }
    }
}

/// Runs the agent until SIGTERM or Ctrl-C: heartbeats, starts and stops workers, and stops all
/// of them on the way out.
pub async fn run_agent(args: AgentArgs) -> anyhow::Result<i32> {
    let cores = args
        .cores
        .unwrap_or_else(spool_control::config::detect_cores);
    let memory_mb = match &args.memory {
        Some(text) => {
            spool_core::MemoryMb::parse(text)
                .map_err(|e| anyhow::anyhow!("--memory: {e}"))?
                .0
        }
        None => spool_control::config::detect_memory_mb().saturating_sub(1024),
    };
    let token = crate::globals::resolve_token(
        args.token.as_deref(),
        args.token_file.as_deref(),
        spool_core::env::SPOOL_AGENT_TOKEN,
        "warning: --token is visible to other users in ps; use SPOOL_AGENT_TOKEN or --token-file",
    )?
    .ok_or_else(|| {
        anyhow::anyhow!(crate::error::hinted(
            "the agent's token is missing",
            "set SPOOL_AGENT_TOKEN or pass --token-file PATH (the token `spool agents add NAME` printed)",
        ))
    })?;
    std::fs::create_dir_all(&args.data_dir)?;
    let client = spool_client::Client::new(&args.server, &token);
    let runtimes = spool_runtime::RuntimeCache::new(spool_core::paths::default_cache_dir());
    let mut workers = Workers::open(&args.data_dir)
        .await
        .context("open the agent's worker record")?;
    let fetching = Fetching::default();
    let mut connected = false;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    eprintln!(
        "[spool agent] {} offering {cores} cores and {memory_mb} MiB at {} to {}",
        args.name, args.address, args.server
    );
    loop {
        // Workers that died are forgotten, so the next orders start them again.
        let exited: Vec<ClusterId> = workers
            .running
            .iter()
            .filter(|(_, w)| !w.alive())
            .map(|(id, _)| *id)
            .collect();
        for id in exited {
            eprintln!("[spool agent] worker of cluster {id} exited");
            workers.remove(id);
        }
        let report = api::AgentReport {
            name: args.name.clone(),
            address: args.address.clone(),
            cores,
            memory_mb,
            running: workers.running.keys().copied().collect(),
        };
        let wait = match client.agent_heartbeat(&report).await {
            Ok(orders) => {
                if !connected {
                    eprintln!("[spool agent] connected to {}", args.server);
                    connected = true;
                }
                reconcile(&args, &client, &runtimes, &mut workers, &orders, &fetching).await;
                Duration::from_millis(orders.heartbeat_ms.clamp(200, 10_000))
            }
            Err(e) => {
                if connected {
                    eprintln!("[spool agent] lost the server ({e}); retrying");
                    connected = false;
                }
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    eprintln!("[spool agent] stopping {} worker(s)", workers.running.len());
    let ids: Vec<ClusterId> = workers.running.keys().copied().collect();
    for id in ids {
        workers.stop(id).await;
    }
    Ok(0)
}

async fn reconcile(
    args: &AgentArgs,
    client: &spool_client::Client,
    runtimes: &spool_runtime::RuntimeCache,
    workers: &mut Workers,
    orders: &api::AgentOrders,
    fetching: &Fetching,
) {
    let wanted: HashMap<ClusterId, &api::WorkerOrder> =
        orders.workers.iter().map(|o| (o.cluster_id, o)).collect();
    let stale: Vec<ClusterId> = workers
        .running
        .keys()
        .filter(|id| !wanted.contains_key(id))
        .copied()
        .collect();
    for id in stale {
        eprintln!("[spool agent] stopping the worker of cluster {id}");
        workers.stop(id).await;
    }
    for (id, order) in wanted {
        if workers.running.contains_key(&id) {
            continue;
        }
        // Runtimes come from the server, once per host, in the background: heartbeats go on
        // meanwhile, and the worker starts with the first orders after the runtime is here.
        if runtimes.installed(&order.runtime).is_none() {
            fetch_runtime(client, runtimes, &order.runtime, fetching);
            continue;
        }
        // Recorded before it starts: a crash right after the spawn leaves it on record.
        let starting = Worker {
            pid: None,
            start_ticks: None,
        };
        if let Err(e) = workers.set(id, starting) {
            eprintln!("[spool agent] cannot record the worker of cluster {id}: {e:#}");
            workers.running.remove(&id);
            continue;
        }
        match start_worker(args, runtimes, order).await {
            Ok(spawned) => {
                eprintln!(
                    "[spool agent] started a worker for cluster {id}: {} cores, {} MiB, master {}",
                    order.cores, order.memory_mb, order.master_url
                );
                let worker = Worker {
                    pid: Some(spawned.pid),
                    start_ticks: spawned.start_ticks,
                };
                // The exit is noticed by polling; the wait future only reaps the process.
                tokio::spawn(async move {
                    let _ = spawned.wait().await;
                });
                if let Err(e) = workers.set(id, worker) {
                    eprintln!("[spool agent] cannot record the worker of cluster {id}: {e:#}");
                }
            }
            Err(e) => {
                workers.remove(id);
                eprintln!("[spool agent] cannot start a worker for cluster {id}: {e:#}");
            }
        }
    }
}

/// Runtimes being fetched from the server.
type Fetching = std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

/// Fetches a runtime from the server into this host's cache, unless already under way.
fn fetch_runtime(
    client: &spool_client::Client,
    runtimes: &spool_runtime::RuntimeCache,
    version: &str,
    fetching: &Fetching,
) {
    if !fetching
        .lock()
        .expect("fetching lock")
        .insert(version.to_string())
    {
        return;
    }
    let (client, cache, version, fetching) = (
        client.clone(),
        runtimes.clone(),
        version.to_string(),
        fetching.clone(),
    );
    tokio::spawn(async move {
        let archive = cache.root().join(format!("runtime-{version}.download.tar"));
        let result = async {
            std::fs::create_dir_all(cache.root())?;
            let size = client.download_runtime(&version, &archive).await?;
            let (c, v, a) = (cache.clone(), version.clone(), archive.clone());
            tokio::task::spawn_blocking(move || c.install_from_archive(&v, &a)).await??;
            anyhow::Ok(size)
        }
        .await;
        let _ = std::fs::remove_file(&archive);
        match result {
            Ok(size) => eprintln!(
                "[spool agent] fetched runtime {version} from the server ({} MiB)",
                size / (1024 * 1024)
            ),
            Err(e) => eprintln!("[spool agent] cannot fetch runtime {version}: {e:#}"),
        }
        fetching.lock().expect("fetching lock").remove(&version);
    });
}

async fn start_worker(
    args: &AgentArgs,
    runtimes: &spool_runtime::RuntimeCache,
    order: &api::WorkerOrder,
) -> anyhow::Result<Spawned> {
    let runtime = runtimes
        .installed(&order.runtime)
        .ok_or_else(|| anyhow::anyhow!("runtime {} is not on this host yet", order.runtime))?;
    let dir = args
        .data_dir
        .join("workers")
        .join(order.cluster_id.to_string());
    let work = dir.join("work");
    std::fs::create_dir_all(&work)?;
    let install = runtime.spark_install(&args.address);
    // The same command line as the server's own workers, from the same place.
    let daemon = spool_spark::Daemon {
        heap: spool_core::MemoryMb(order.daemon_memory_mb.unwrap_or(512)),
    };
    let mut command = spool_spark::worker(
        &install,
        daemon,
        &order.master_url,
        // The web UI on a free port of its own.
        0,
        order.cores,
        spool_core::MemoryMb(order.memory_mb),
        &work,
    );
    // An authenticated cluster's secret goes into a file only this agent's account reads.
    if let Some(secret) = &order.auth_secret {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(spool_spark::AUTH_PROPERTIES);
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?
            .write_all(spool_spark::auth_properties(secret).as_bytes())?;
        command = spool_spark::with_properties_file(command, &path);
    }
    let spec = ProcessSpec {
        program: command.program,
        args: command.args,
        env: command.env.into_iter().collect(),
        cwd: dir.clone(),
        log_dir: dir.join("logs"),
        run_as: None,
        combined_log: None,
        netns: None,
        nice: 0,
    };
    Ok(spool_supervisor::spawn(&spec)?)
}
