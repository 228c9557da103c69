//! `spool agent`: runs on a worker host and starts and stops Spark workers for the server's
//! serverless clusters; `spool agents add|list` registers and lists agents.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use spool_api_types as api;
use spool_supervisor::{ProcessSpec, Spawned};

use crate::Globals;
use crate::output;

/// Flags of `spool agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The Spool server's URL.
    #[arg(long, env = "SPOOL_AGENT_SERVER")]
    pub server: String,
    /// This agent's token (from `spool agents add NAME`).
    #[arg(long, env = "SPOOL_AGENT_TOKEN", hide_env_values = true)]
    pub token: String,
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
    /// Register an agent and print its token (shown once). Admin only.
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
                            .map(i64::to_string)
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
struct Worker {
    pid: u32,
    start_ticks: Option<u64>,
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
    std::fs::create_dir_all(&args.data_dir)?;
    let client = spool_client::Client::new(&args.server, &args.token);
    let runtimes = spool_runtime::RuntimeCache::new(spool_core::paths::default_cache_dir());
    let mut workers: HashMap<i64, Worker> = HashMap::new();
    let fetching = Fetching::default();
    let mut connected = false;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    eprintln!(
        "[spool agent] {} offering {cores} cores and {memory_mb} MiB at {} to {}",
        args.name, args.address, args.server
    );
    loop {
        // Workers that died are forgotten, so the next orders start them again.
        workers.retain(|id, w| {
            let alive = spool_supervisor::is_alive(w.pid, w.start_ticks);
            if !alive {
                eprintln!("[spool agent] worker of cluster {id} exited");
            }
            alive
        });
        let report = api::AgentReport {
            name: args.name.clone(),
            address: args.address.clone(),
            cores,
            memory_mb,
            running: workers.keys().copied().collect(),
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
    eprintln!("[spool agent] stopping {} worker(s)", workers.len());
    for (_, worker) in workers.drain() {
        spool_supervisor::stop_group(worker.pid, Duration::from_secs(5)).await;
    }
    Ok(0)
}

async fn reconcile(
    args: &AgentArgs,
    client: &spool_client::Client,
    runtimes: &spool_runtime::RuntimeCache,
    workers: &mut HashMap<i64, Worker>,
    orders: &api::AgentOrders,
    fetching: &Fetching,
) {
    let wanted: HashMap<i64, &api::WorkerOrder> =
        orders.workers.iter().map(|o| (o.cluster_id, o)).collect();
    let stale: Vec<i64> = workers
        .keys()
        .filter(|id| !wanted.contains_key(id))
        .copied()
        .collect();
    for id in stale {
        if let Some(worker) = workers.remove(&id) {
            eprintln!("[spool agent] stopping the worker of cluster {id}");
            spool_supervisor::stop_group(worker.pid, Duration::from_secs(5)).await;
        }
    }
    for (id, order) in wanted {
        if workers.contains_key(&id) {
            continue;
        }
        // Runtimes come from the server, once per host, in the background: heartbeats go on
        // meanwhile, and the worker starts with the first orders after the runtime is here.
        if runtimes.installed(&order.runtime).is_none() {
            fetch_runtime(client, runtimes, &order.runtime, fetching);
            continue;
        }
        match start_worker(args, runtimes, order).await {
            Ok(spawned) => {
                eprintln!(
                    "[spool agent] started a worker for cluster {id}: {} cores, {} MiB, master {}",
                    order.cores, order.memory_mb, order.master_url
                );
                let worker = Worker {
                    pid: spawned.pid,
                    start_ticks: spawned.start_ticks,
                };
                // The exit is noticed by polling; the wait future only reaps the process.
                tokio::spawn(async move {
                    let _ = spawned.wait().await;
                });
                workers.insert(id, worker);
            }
            Err(e) => eprintln!("[spool agent] cannot start a worker for cluster {id}: {e:#}"),
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
    let install = spool_spark::Install {
        java: spool_runtime::java_command(),
        spark_home: runtime.spark_home.clone(),
        scala_version: runtime.scala.clone(),
        python: runtime.python.clone(),
        venv_bin: runtime.venv.join("bin"),
        host_path: std::env::var("PATH").unwrap_or_default(),
        bind_address: args.address.clone(),
    };
    // The same command line as the server's own workers, from the same place.
    let daemon = spool_spark::Daemon {
        heap: spool_core::MemoryMb(order.daemon_memory_mb.unwrap_or(512)),
    };
    let command = spool_spark::worker(
        &install,
        daemon,
        &order.master_url,
        // The web UI on a free port of its own.
        0,
        order.cores,
        spool_core::MemoryMb(order.memory_mb),
        &work,
    );
    let spec = ProcessSpec {
        program: command.program,
        args: command.args,
        env: command.env.into_iter().collect(),
        cwd: dir.clone(),
        log_dir: dir.join("logs"),
    };
    Ok(spool_supervisor::spawn(&spec)?)
}
