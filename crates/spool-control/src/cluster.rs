//! Serverless clusters: capacity accounting, placement of jobs (warm reuse first), provisioning
//! of a Spark standalone master and worker, and teardown when idle.

use spool_core::{
    AgentState, ClusterState, JobStatus, OwnerKind, ProcessOutcome, ProcessState, SessionState,
};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_core::MemoryMb;
use spool_runtime::InstalledRuntime;
use spool_spec::SparkSizing;
use spool_store::{ClusterRow, NewCluster};
use spool_supervisor::{Exit, ProcessSpec, Spawned, Stopped};
use tokio::sync::watch;

use crate::{Control, ControlError, Result, invalid, run, spark};

/// The shape of a cluster: what a warm cluster must match to be reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shape {
    pub runtime: String,
    pub executor_cores: u32,
    pub executor_memory: MemoryMb,
    /// Executors the cluster can hold at once (with dynamic allocation: the maximum).
    pub executors: u32,
}

impl Shape {
    pub fn of(runtime: &str, sizing: &SparkSizing) -> Shape {
        Shape {
            runtime: runtime.to_string(),
            executor_cores: sizing.executor_cores,
            executor_memory: sizing.executor_memory,
            executors: sizing.max_executors(),
        }
    }

    pub fn key(&self) -> String {
        format!(
            "{}/{}x{}c{}",
            self.runtime,
            self.executors,
            self.executor_cores,
            self.executor_memory.to_spark()
        )
    }

    pub fn worker_cores(&self) -> u32 {
        self.executor_cores * self.executors
    }

    pub fn worker_memory(&self) -> MemoryMb {
        MemoryMb(self.executor_memory.0 * u64::from(self.executors))
    }
}

/// Cores and memory a cluster of `shape` reserves: its executors and its two daemons.
fn cluster_needs(control: &Control, shape: &Shape) -> (u32, u64) {
    let daemons = 2 * control.config().daemon_memory.0;
    (shape.worker_cores(), shape.worker_memory().0 + daemons)
}

fn driver_needs(sizing: &SparkSizing) -> (u32, u64) {
    (sizing.driver_cores, sizing.driver_memory.0)
}

/// Rejects a job that could never fit on this host, with the numbers.
pub(crate) fn check_ever_fits(control: &Control, sizing: &SparkSizing) -> Result<()> {
    let shape = Shape::of("", sizing);
    let (cluster_cores, cluster_memory) = cluster_needs(control, &shape);
    let (driver_cores, driver_memory) = driver_needs(sizing);
    let cores = cluster_cores + driver_cores;
    let memory = cluster_memory + driver_memory;
    let config = control.config();
    let max_cores = config.schedulable_cores();
    if cores > max_cores || memory > config.host_memory.0 {
        return Err(ControlError::TooLarge {
            message: format!(
                "the job needs {cores} cores and {} ({} executors x {} cores and {}, a driver with {} cores and {}, and {} for the Spark master and worker), but this host can never give more than {max_cores} cores ({} cores x {} oversubscription) and {}\nhint: ask for fewer or smaller executors, or raise `capacity` in the server's config.toml",
                MemoryMb(memory),
                shape.executors,
                sizing.executor_cores,
                sizing.executor_memory,
                sizing.driver_cores,
                sizing.driver_memory,
                MemoryMb(2 * config.daemon_memory.0),
                config.host_cores,
                config.cpu_oversubscription,
                config.host_memory,
            ),
        });
    }
    Ok(())
}

/// Cores and memory held now: live clusters plus the drivers of active jobs.
pub(crate) async fn used_capacity(control: &Control) -> Result<(u32, u64)> {
    let store = control.store();
    let mut cores = 0u32;
    let mut memory = 0u64;
    for cluster in store.live_clusters().await? {
        cores += cluster.reserved_cores as u32;
        memory += cluster.reserved_memory_mb as u64;
    }
    for job in store.jobs_in_status(JobStatus::ACTIVE).await? {
        if let Some(sizing) = Control::job_sizing(&job) {
            let (c, m) = driver_needs(&sizing);
            cores += c;
            memory += m;
        }
    }
    for session in store.sessions_in_state(SessionState::ACTIVE).await? {
        if let Ok(sizing) = serde_json::from_str::<SparkSizing>(&session.sizing_json) {
            let (c, m) = driver_needs(&sizing);
            cores += c;
            memory += m;
        }
    }
    Ok((cores, memory))
}

/// Places waiting jobs whenever woken, and at least once a second.
pub(crate) async fn schedule_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = schedule_once(&control).await {
            tracing::error!(error = %e, "scheduling failed");
        }
        tokio::select! {
            _ = control.inner().wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

enum Placement {
    Warm(ClusterRow),
    New(ClusterRow),
    Wait(String),
}

async fn schedule_once(control: &Control) -> Result<()> {
    let inner = control.inner();
    let _guard = inner.placement.lock().await;
    let pending = inner
        .store
        .jobs_in_status(&[JobStatus::NotStarted, JobStatus::Queued])
        .await?;
    for job in pending {
        if inner
            .running
            .lock()
            .expect("running map lock")
            .contains_key(&job.id)
        {
            continue;
        }
        let Some(sizing) = Control::job_sizing(&job) else {
            inner
                .store
                .set_job_error(job.id, "stored sizing is unreadable")
                .await?;
            inner
                .store
                .set_job_status(job.id, JobStatus::Failed, None)
                .await?;
            continue;
        };
        let placement = if job.compute == "serverless" {
            place(control, job.owner_id, &job.runtime, &sizing).await?
        } else {
            attached(control, &job.compute).await?
        };
        match placement {
            Placement::Wait(reason) => {
                if job.status != JobStatus::Queued
                    || job.status_reason.as_deref() != Some(reason.as_str())
                {
                    inner
                        .store
                        .set_job_status(job.id, JobStatus::Queued, Some(&reason))
                        .await?;
                }
            }
            Placement::Warm(cluster) | Placement::New(cluster) if *inner.shutdown.borrow() => {
                let _ = cluster;
                return Ok(());
            }
            placement => {
                let (cluster, warm) = match placement {
                    Placement::Warm(c) => (c, true),
                    Placement::New(c) => (c, false),
                    Placement::Wait(_) => unreachable!("handled above"),
                };
                inner.store.set_job_cluster(job.id, cluster.id).await?;
                let reason = if cluster.state == ClusterState::Attached {
                    format!("on attached pool {}", job.compute)
                } else if warm {
                    format!("reusing warm cluster {}", cluster.id)
                } else {
                    format!("new cluster {}", cluster.id)
                };
                inner
                    .store
                    .set_job_status(job.id, JobStatus::Preparing, Some(&reason))
                    .await?;
                let (cancel_tx, cancel_rx) = watch::channel(false);
                inner
                    .running
                    .lock()
                    .expect("running map lock")
                    .insert(job.id, cancel_tx);
                tracing::info!(job = %job.name, cluster = cluster.id, warm, "job placed");
                tokio::spawn(run::run_job(
                    control.clone(),
                    job.id,
                    cluster.id,
                    warm,
                    cancel_rx,
                ));
            }
        }
    }
    for session in inner
        .store
        .sessions_in_state(&[SessionState::NotStarted])
        .await?
    {
        if inner
            .session_runners
            .lock()
            .expect("session map lock")
            .contains_key(&session.id)
        {
            continue;
        }
        let Ok(sizing) = serde_json::from_str::<SparkSizing>(&session.sizing_json) else {
            continue;
        };
        let placement = if session.compute == "serverless" {
            place(control, session.owner_id, &session.runtime, &sizing).await?
        } else {
            attached(control, &session.compute).await?
        };
        match placement {
            Placement::Wait(reason) => {
                if session.state_reason.as_deref() != Some(reason.as_str()) {
                    if session.state_reason.is_none() {
                        inner
                            .store
                            .add_session_phase(session.id, "queued", Some(&reason))
                            .await?;
                    } else {
                        inner.store.set_session_reason(session.id, &reason).await?;
                    }
                }
            }
            Placement::Warm(_) | Placement::New(_) if *inner.shutdown.borrow() => return Ok(()),
            placement => {
                let (cluster, warm) = match placement {
                    Placement::Warm(c) => (c, true),
                    Placement::New(c) => (c, false),
                    Placement::Wait(_) => unreachable!("handled above"),
                };
                inner
                    .store
                    .set_session_cluster(session.id, cluster.id)
                    .await?;
                let reason = if cluster.state == ClusterState::Attached {
                    format!("on attached pool {}", session.compute)
                } else if warm {
                    format!("warm start on cluster {}", cluster.id)
                } else {
                    format!("cold start: new cluster {}", cluster.id)
                };
                inner
                    .store
                    .set_session_state(session.id, SessionState::Starting, Some(&reason))
                    .await?;
                crate::sessions::spawn_runner(control, session.id, cluster.id, warm);
                tracing::info!(
                    session = session.id,
                    cluster = cluster.id,
                    warm,
                    "session placed"
                );
            }
        }
    }
    Ok(())
}

/// Work on an attached pool goes straight to the pool's cluster row: its capacity is the pool's
/// own, and it is always up (a detached pool leaves the work waiting with the reason).
async fn attached(control: &Control, compute: &str) -> Result<Placement> {
    let store = control.store();
    let Some(pool) = store.compute(compute).await? else {
        return Ok(Placement::Wait(format!(
            "pool `{compute}` is not attached any more"
        )));
    };
    match store.cluster(pool.cluster_id).await? {
        Some(cluster) if cluster.state == ClusterState::Attached => Ok(Placement::Warm(cluster)),
        _ => Ok(Placement::Wait(format!(
            "pool `{compute}` is not attached any more"
        ))),
    }
}

/// Finds or makes room for a cluster of `runtime` and `sizing` for `owner_id`.
async fn place(
    control: &Control,
    owner_id: i64,
    runtime: &str,
    sizing: &SparkSizing,
) -> Result<Placement> {
    let store = control.store();
    let shape = Shape::of(runtime, sizing);
    let key = shape.key();
    let clusters = store.live_clusters().await?;
    if let Some(warm) = clusters
        .iter()
        .find(|c| c.state == ClusterState::Idle && c.owner_id == owner_id && c.shape_key == key)
    {
        store
            .set_cluster_state(warm.id, ClusterState::InUse, None)
            .await?;
        return Ok(Placement::Warm(warm.clone()));
    }
    // With agents connected, executors go to the hosts with the most free cores; the master
    // (and the driver) stay on this host.
    let plan = match plan_on_agents(control, &shape).await? {
        AgentPlan::NoAgents => None,
        AgentPlan::Plan(plan) => Some(plan),
        AgentPlan::Wait(reason) => return Ok(Placement::Wait(reason)),
    };
    let local_executors = plan.as_ref().map_or(shape.executors, |p| p.local);
    let local_shape = Shape {
        executors: local_executors,
        ..shape.clone()
    };
    let (cluster_cores, cluster_memory) = cluster_needs(control, &local_shape);
    let (driver_cores, driver_memory) = driver_needs(sizing);
    let need_cores = cluster_cores + driver_cores;
    let need_memory = cluster_memory + driver_memory;
    let config = control.config();
    let total_cores = config.schedulable_cores();
    let total_memory = config.host_memory.0;
    let (mut used_cores, mut used_memory) = used_capacity(control).await?;
    let fits = |used_cores: u32, used_memory: u64| {
        used_cores + need_cores <= total_cores && used_memory + need_memory <= total_memory
    };
    if !fits(used_cores, used_memory) {
        // Idle clusters only hold capacity for a warm start that may never come: give it to a
        // job that is waiting now, oldest idle first.
        let mut idle: Vec<&ClusterRow> = clusters
            .iter()
            .filter(|c| c.state == ClusterState::Idle)
            .collect();
        idle.sort_by(|a, b| a.idle_since.cmp(&b.idle_since));
        let freeable_cores: u32 = idle.iter().map(|c| c.reserved_cores as u32).sum();
        let freeable_memory: u64 = idle.iter().map(|c| c.reserved_memory_mb as u64).sum();
        if fits(
            used_cores.saturating_sub(freeable_cores),
            used_memory.saturating_sub(freeable_memory),
        ) {
            for cluster in idle {
                if fits(used_cores, used_memory) {
                    break;
                }
                teardown(control, cluster.id, "freed for a waiting job").await;
                used_cores -= cluster.reserved_cores as u32;
                used_memory -= cluster.reserved_memory_mb as u64;
            }
        }
    }
    if !fits(used_cores, used_memory) {
        return Ok(Placement::Wait(format!(
            "waiting for capacity: needs {need_cores} cores and {}; {} cores and {} free of {total_cores} cores and {}",
            MemoryMb(need_memory),
            total_cores.saturating_sub(used_cores),
            MemoryMb(total_memory.saturating_sub(used_memory)),
            MemoryMb(total_memory),
        )));
    }
    let cluster = store
        .insert_cluster(&NewCluster {
            owner_id,
            runtime: runtime.to_string(),
            shape_key: key,
            shape_json: serde_json::to_string(&shape).map_err(anyhow::Error::from)?,
            reserved_cores: i64::from(cluster_cores),
            reserved_memory_mb: cluster_memory as i64,
        })
        .await?;
    let executor_memory = shape.executor_memory.0 as i64;
    let cores = i64::from(shape.executor_cores);
    if local_executors > 0 {
        let n = i64::from(local_executors);
        store
            .add_cluster_worker(cluster.id, None, n, n * cores, n * executor_memory)
            .await?;
    }
    for (agent, n) in plan.map(|p| p.remote).unwrap_or_default() {
        let n = i64::from(n);
        store
            .add_cluster_worker(cluster.id, Some(&agent), n, n * cores, n * executor_memory)
            .await?;
    }
    Ok(Placement::New(cluster))
}

enum AgentPlan {
    NoAgents,
    Plan(WorkerPlan),
    Wait(String),
}

/// Executors per host: on this host, and on agents by name.
struct WorkerPlan {
    local: u32,
    remote: Vec<(String, u32)>,
}

/// Spreads a cluster's executors over connected agents (and this host, unless configured
/// otherwise), each to the host with the most free cores that fits it.
async fn plan_on_agents(control: &Control, shape: &Shape) -> Result<AgentPlan> {
    let store = control.store();
    let agents: Vec<_> = store
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.state == AgentState::Connected)
        .collect();
    if agents.is_empty() {
        return Ok(AgentPlan::NoAgents);
    }
    let config = control.config();
    let oversubscribe = |cores: i64| (cores as f64 * config.cpu_oversubscription).floor() as i64;
    let workers = store.live_agent_workers().await?;
    // (name, free cores, free memory); `None` is this host.
    let mut hosts: Vec<(Option<String>, i64, i64)> = agents
        .iter()
        .map(|a| {
            let (cores, memory) = workers
                .iter()
                .filter(|w| w.agent.as_deref() == Some(a.name.as_str()))
                .fold((0, 0), |(c, m), w| (c + w.cores, m + w.memory_mb));
            (
                Some(a.name.clone()),
                oversubscribe(a.cores) - cores,
                a.memory_mb - memory,
            )
        })
        .collect();
    if config.workers_on_server {
        let (used_cores, used_memory) = used_capacity(control).await?;
        let daemons = 2 * config.daemon_memory.0;
        hosts.insert(
            0,
            (
                None,
                i64::from(config.schedulable_cores()) - i64::from(used_cores),
                config.host_memory.0 as i64 - used_memory as i64 - daemons as i64,
            ),
        );
    }
    let (cores, memory) = (
        i64::from(shape.executor_cores),
        shape.executor_memory.0 as i64,
    );
    let mut local = 0;
    let mut remote: Vec<(String, u32)> = Vec::new();
    for _ in 0..shape.executors {
        let Some(host) = hosts
            .iter_mut()
            .filter(|(_, c, m)| *c >= cores && *m >= memory)
            .max_by_key(|(_, c, _)| *c)
        else {
            let free: Vec<String> = hosts
                .iter()
                .map(|(name, c, m)| {
                    format!(
                        "{} {c} cores and {}",
                        name.as_deref().unwrap_or("this host"),
                        MemoryMb((*m).max(0) as u64)
                    )
                })
                .collect();
            return Ok(AgentPlan::Wait(format!(
                "waiting for capacity: {} executors of {cores} cores and {} do not fit on the hosts (free: {})",
                shape.executors,
                shape.executor_memory,
                free.join(", ")
            )));
        };
        host.1 -= cores;
        host.2 -= memory;
        match &host.0 {
            None => local += 1,
            Some(name) => match remote.iter_mut().find(|(n, _)| n == name) {
                Some((_, count)) => *count += 1,
                None => remote.push((name.clone(), 1)),
            },
        }
    }
    Ok(AgentPlan::Plan(WorkerPlan { local, remote }))
}

/// Ports a cluster listens on.
struct Ports {
    master: u16,
    master_ui: u16,
    worker_ui: u16,
}

/// Starts the master and worker of a new cluster and waits until the master accepts
/// applications. The worker registers in parallel; executors start as soon as it has.
pub(crate) async fn start_cluster(
    control: &Control,
    cluster: &ClusterRow,
    runtime: &InstalledRuntime,
) -> anyhow::Result<()> {
    let starting = launch_cluster(control, cluster, runtime).await?;
    wait_cluster_up(control, &starting).await
}

/// A cluster whose master and worker were launched and may not answer yet.
pub(crate) struct StartingCluster {
    pub cluster_id: i64,
    pub master_url: String,
    /// The master's web UI; `/json/` reports `ALIVE` once it accepts applications.
    pub master_ui: String,
    master_pid: u32,
    dir: std::path::PathBuf,
}

/// Launches a cluster's master and worker and records their URLs, without waiting for them.
pub(crate) async fn launch_cluster(
    control: &Control,
    cluster: &ClusterRow,
    runtime: &InstalledRuntime,
) -> anyhow::Result<StartingCluster> {
    let dir = control
        .data_dir()
        .join("clusters")
        .join(cluster.id.to_string());
    let ports = Ports {
        master: spark::free_port()?,
        master_ui: spark::free_port()?,
        worker_ui: spark::free_port()?,
    };
    let install = spark::install(control, runtime);
    let address = install.bind_address.clone();
    let master_url = format!("spark://{address}:{}", ports.master);
    let master_ui = format!("http://{address}:{}", ports.master_ui);
    // This host's share of the executors, as placement recorded it (all of them unless agents
    // take some).
    let (local_cores, local_memory) = control
        .store()
        .cluster_workers(cluster.id)
        .await?
        .iter()
        .filter(|w| w.agent.is_none())
        .fold((0, MemoryMb(0)), |(c, m), w| {
            (c + w.cores as u32, MemoryMb(m.0 + w.memory_mb as u64))
        });
    control
        .store()
        .set_cluster_urls(cluster.id, &master_url, &master_ui)
        .await?;
    let daemon = spark::daemon(control);
    let master = spark::process(
        spool_spark::master(&install, daemon, ports.master, ports.master_ui),
        &dir,
        &dir.join("master"),
    );
    let work_dir = dir.join("worker").join("work");
    std::fs::create_dir_all(&work_dir)?;
    let worker = spark::process(
        spool_spark::worker(
            &install,
            daemon,
            &master_url,
            ports.worker_ui,
            local_cores,
            local_memory,
            &work_dir,
        ),
        &dir,
        &dir.join("worker"),
    );
    // Master and worker start together: the worker retries until the master is up, which
    // saves the worker's JVM start-up from the cold path.
    let master_spawned = launch(control, OwnerKind::Cluster, cluster.id, "master", &master).await?;
    let master_pid = master_spawned.pid;
    watch_daemon(control.clone(), cluster.id, "master", master_spawned);
    if local_cores > 0 {
        let worker_spawned =
            launch(control, OwnerKind::Cluster, cluster.id, "worker", &worker).await?;
        watch_daemon(control.clone(), cluster.id, "worker", worker_spawned);
    }
    Ok(StartingCluster {
        cluster_id: cluster.id,
        master_url,
        master_ui,
        master_pid,
        dir,
    })
}

/// Waits until a launched cluster's master accepts applications; then the cluster is `in_use`.
pub(crate) async fn wait_cluster_up(
    control: &Control,
    starting: &StartingCluster,
) -> anyhow::Result<()> {
    let StartingCluster {
        cluster_id,
        master_url,
        master_ui,
        master_pid,
        dir,
    } = starting;
    let (cluster_id, master_pid) = (*cluster_id, *master_pid);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if master_alive(control, master_ui).await {
            break;
        }
        if !spool_supervisor::is_alive(master_pid, None) {
            anyhow::bail!(
                "the Spark master exited during start-up; its log ends with:\n{}",
                log_tail(&dir.join("master").join("stderr"), 10)
            );
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "the Spark master did not come up within 90 s; its log ends with:\n{}",
                log_tail(&dir.join("master").join("stderr"), 10)
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    control
        .store()
        .set_cluster_state(cluster_id, ClusterState::InUse, None)
        .await?;
    tracing::info!(cluster = cluster_id, %master_url, %master_ui, "cluster up");
    Ok(())
}

async fn master_alive(control: &Control, master_ui: &str) -> bool {
    let Ok(response) = control
        .inner()
        .http
        .get(format!("{master_ui}/json/"))
        .send()
        .await
    else {
        return false;
    };
    match response.json::<serde_json::Value>().await {
        Ok(status) => status.get("status").and_then(|s| s.as_str()) == Some("ALIVE"),
        Err(_) => false,
    }
}

/// Returns the last `n` lines of a log file.
pub(crate) fn log_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Records a process in the store, then spawns it, then records its pid: a process is never
/// running without a record.
pub(crate) async fn launch(
    control: &Control,
    owner_kind: OwnerKind,
    owner_id: i64,
    role: &str,
    spec: &ProcessSpec,
) -> anyhow::Result<Spawned> {
    let store = control.store();
    // Nothing starts for work that already ended (a session deleted or a server stopping while
    // it was starting): its processes were stopped, and a late one would be left running.
    if !owner_alive(control, owner_kind, owner_id).await {
        anyhow::bail!("{owner_kind} {owner_id} ended while it was starting; {role} not started");
    }
    let id = store
        .insert_process(
            owner_kind,
            owner_id,
            role,
            &spec.command_line(),
            &spec.log_dir.display().to_string(),
        )
        .await?;
    match spool_supervisor::spawn(spec) {
        Ok(spawned) => {
            store
                .set_process_running(
                    id,
                    i64::from(spawned.pid),
                    spawned.start_ticks.map(|t| t as i64),
                )
                .await?;
            // The owner may have ended while this process was spawned, after its processes
            // were stopped: then this one is stopped here.
            if !owner_alive(control, owner_kind, owner_id).await {
                spool_supervisor::stop_group(spawned.pid, control.config().stop_grace).await;
                store
                    .set_process_ended(id, ProcessOutcome::Stopped, None)
                    .await?;
                anyhow::bail!(
                    "{owner_kind} {owner_id} ended while it was starting; {role} stopped"
                );
            }
            Ok(spawned)
        }
        Err(e) => {
            store
                .set_process_ended(id, ProcessOutcome::SpawnFailed, None)
                .await?;
            Err(e.into())
        }
    }
}

/// Whether the server still runs and the owner of a process to start has not ended.
async fn owner_alive(control: &Control, owner_kind: OwnerKind, owner_id: i64) -> bool {
    if *control.inner().shutdown.borrow() {
        return false;
    }
    let store = control.store();
    match owner_kind {
        OwnerKind::Cluster => matches!(
            store.cluster(owner_id).await,
            Ok(Some(c)) if !c.state.is_ending()
        ),
        OwnerKind::Session => matches!(
            store.session(owner_id).await,
            Ok(Some(s)) if !s.state.is_finished()
                && s.state != SessionState::ShuttingDown
        ),
        OwnerKind::Job => matches!(
            store.job(owner_id).await,
            Ok(Some(j)) if !j.status.is_terminal()
        ),
    }
}

/// Watches a master or worker; if it ends while the cluster should be up, the cluster is lost.
fn watch_daemon(control: Control, cluster_id: i64, role: &'static str, spawned: Spawned) {
    let pid = spawned.pid;
    tokio::spawn(async move {
        let exit = spawned.wait().await;
        on_daemon_exit(&control, cluster_id, role, pid, exit).await;
    });
}

pub(crate) async fn on_daemon_exit(
    control: &Control,
    cluster_id: i64,
    role: &str,
    pid: u32,
    exit: Exit,
) {
    let store = control.store();
    let cluster = store.cluster(cluster_id).await.ok().flatten();
    let expected = cluster
        .as_ref()
        .is_none_or(|c| c.state == ClusterState::TearingDown || c.state == ClusterState::Gone);
    if let Ok(processes) = store.processes_of(OwnerKind::Cluster, cluster_id).await {
        for p in processes
            .iter()
            .filter(|p| p.pid == Some(i64::from(pid)) && p.role == role)
        {
            let outcome = if expected {
                ProcessOutcome::Stopped
            } else {
                ProcessOutcome::Exited
            };
            let _ = store.set_process_ended(p.id, outcome, exit.code()).await;
        }
    }
    if !expected && !*control.inner().shutdown.borrow() {
        tracing::warn!(
            cluster = cluster_id,
            role,
            ?exit,
            "Spark daemon exited; tearing down its cluster"
        );
        teardown(
            control,
            cluster_id,
            &format!("the Spark {role} exited unexpectedly ({exit:?})"),
        )
        .await;
    }
}

/// Stops every process of a cluster and marks it gone.
pub(crate) async fn teardown(control: &Control, cluster_id: i64, reason: &str) {
    let store = control.store();
    // An attached pool is not Spool's to stop: only detaching forgets it.
    if let Ok(Some(cluster)) = store.cluster(cluster_id).await
        && cluster.state == ClusterState::Attached
    {
        return;
    }
    if let Err(e) = store
        .set_cluster_state(cluster_id, ClusterState::TearingDown, None)
        .await
    {
        tracing::error!(cluster = cluster_id, error = %e, "record teardown");
    }
    let processes = store
        .processes_of(OwnerKind::Cluster, cluster_id)
        .await
        .unwrap_or_default();
    // Stop the worker before the master, so the master does not log a lost worker.
    for process in processes
        .iter()
        .rev()
        .filter(|p| p.state != ProcessState::Ended)
    {
        let Some(pid) = process.pid else { continue };
        let how = spool_supervisor::stop_group(pid as u32, control.config().stop_grace).await;
        let outcome = match how {
            Stopped::Killed => ProcessOutcome::Killed,
            Stopped::Terminated | Stopped::AlreadyGone => ProcessOutcome::Stopped,
        };
        let _ = store.set_process_ended(process.id, outcome, None).await;
    }
    if let Err(e) = store
        .set_cluster_state(cluster_id, ClusterState::Gone, Some(reason))
        .await
    {
        tracing::error!(cluster = cluster_id, error = %e, "record teardown");
    }
    tracing::info!(cluster = cluster_id, reason, "cluster torn down");
    control.inner().wake.notify_one();
}

/// Tears down every live cluster.
pub(crate) async fn teardown_all(control: &Control, reason: &str) {
    let clusters = control.store().live_clusters().await.unwrap_or_default();
    for cluster in clusters {
        teardown(control, cluster.id, reason).await;
    }
}

/// Hands a cluster back after its job or session: torn down when it `broke` during start-up
/// (the reason given), otherwise released to be kept warm.
pub(crate) async fn hand_back(control: &Control, cluster_id: i64, broke: Option<&str>) {
    match broke {
        Some(reason) => teardown(control, cluster_id, reason).await,
        None => release(control, cluster_id).await,
    }
}

/// Hands a cluster back after a job: idle (kept warm) unless it is already going away.
pub(crate) async fn release(control: &Control, cluster_id: i64) {
    let inner = control.inner();
    let _guard = inner.placement.lock().await;
    let store = control.store();
    if let Ok(Some(cluster)) = store.cluster(cluster_id).await
        && (cluster.state == ClusterState::InUse
            || cluster.state == ClusterState::Provisioning
            || cluster.state == ClusterState::Ready)
    {
        let busy = store.active_jobs_on_cluster(cluster_id).await.unwrap_or(0)
            + store
                .active_sessions_on_cluster(cluster_id)
                .await
                .unwrap_or(0);
        if busy == 0 {
            let _ = store
                .set_cluster_state(cluster_id, ClusterState::Idle, None)
                .await;
        }
    }
    inner.wake.notify_one();
}

/// Tears down clusters idle for longer than the teardown window.
pub(crate) async fn teardown_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
        let window = control.config().teardown_after;
        let Ok(clusters) = control.store().live_clusters().await else {
            continue;
        };
        for cluster in clusters
            .into_iter()
            .filter(|c| c.state == ClusterState::Idle)
        {
            let Some(since) = cluster
                .idle_since
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            else {
                continue;
            };
            let idle_for = chrono::Utc::now().signed_duration_since(since);
            if idle_for.to_std().unwrap_or_default() >= window {
                let _guard = control.inner().placement.lock().await;
                // Re-check under the lock: a job may have claimed it meanwhile.
                if let Ok(Some(now)) = control.store().cluster(cluster.id).await
                    && now.state == ClusterState::Idle
                {
                    teardown(
                        &control,
                        cluster.id,
                        &format!("idle for {}", humanize(window)),
                    )
                    .await;
                }
            }
        }
    }
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// Makes sure a job's runtime is installed; errors name what is missing.
pub(crate) async fn ensure_runtime(
    control: &Control,
    version: &str,
    progress: &dyn spool_runtime::Progress,
) -> Result<InstalledRuntime> {
    if let Some(runtime) = control.inner().runtimes.installed(version) {
        return Ok(runtime);
    }
    control
        .inner()
        .runtimes
        .install(version, progress)
        .await
        .map_err(|e| {
            invalid(
                "resources.runtime_version",
                format!("install runtime {version}: {e}"),
            )
        })
}
