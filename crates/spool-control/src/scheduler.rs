//! The scheduler: once per tick it reads a capacity snapshot, asks placement where each waiting
//! job and session goes, carries the decisions out (records clusters, frees idle ones, starts
//! runners) and records why the rest waits. Also the teardown loop, which ends clusters idle
//! past the teardown window.
//!
//! It sits above the runners (`run`, `sessions`) and the cluster primitives (`cluster`); the
//! decisions themselves are `placement`'s, which does no IO.

use std::collections::BTreeMap;
use std::time::Duration;

use spool_core::{AgentState, ClusterId, ClusterState, JobKind, JobStatus, SessionState};
use spool_spec::SparkSizing;
use spool_store::{JobRow, NewCluster, SessionRow};

use crate::placement::{
    self, AgentSlot, Amount, ClusterSlot, Decision, HostCapacity, NetworkNow, Request, Snapshot,
};
use crate::{Config, Control, Result, command, run, sessions, warm_driver};

/// This host's capacity as configured.
pub(crate) fn host_capacity(config: &Config) -> HostCapacity {
    HostCapacity {
        host_cores: config.host_cores,
        cpu_oversubscription: config.cpu_oversubscription,
        schedulable_cores: config.schedulable_cores(),
        memory: config.host_memory,
        daemon_memory: config.daemon_memory,
        workers_on_server: config.workers_on_server,
    }
}

/// What this host holds now: live clusters' reservations and the drivers of active jobs and
/// sessions (which run here, whatever their cluster), with the clusters.
async fn held(control: &Control) -> Result<(Amount, Vec<ClusterSlot>)> {
    let store = control.store();
    let mut used = Amount::default();
    let mut clusters = Vec::new();
    for cluster in store.live_clusters().await? {
        let reserved = Amount {
            cores: cluster.reserved_cores as u32,
            memory_mb: cluster.reserved_memory_mb as u64,
        };
        used.cores += reserved.cores;
        used.memory_mb += reserved.memory_mb;
        clusters.push(ClusterSlot {
            id: cluster.id,
            owner: cluster.owner_id,
            runs_as: cluster.runs_as,
            shape_key: cluster.shape_key,
            state: cluster.state,
            idle_since: cluster.idle_since,
            reserved,
            network_version: cluster.network_version,
        });
    }
    let mut add_driver = |sizing_json: &str| {
        if let Ok(sizing) = serde_json::from_str::<SparkSizing>(sizing_json) {
            used.cores += sizing.driver_cores;
            used.memory_mb += sizing.driver_memory.0;
        }
    };
    for job in store.jobs_in_status(JobStatus::ACTIVE).await? {
        add_driver(&job.sizing_json);
    }
    for session in store.sessions_in_state(SessionState::ACTIVE).await? {
        add_driver(&session.sizing_json);
    }
    Ok((used, clusters))
}

/// Reads what placement looks at: clusters, active drivers, connected agents, attached pools.
pub(crate) async fn read_snapshot(control: &Control) -> Result<Snapshot> {
    let store = control.store();
    let config = control.config();
    let (used, clusters) = held(control).await?;
    let attached: Vec<ClusterId> = clusters
        .iter()
        .filter(|c| c.state == ClusterState::Attached)
        .map(|c| c.id)
        .collect();
    let mut pools = BTreeMap::new();
    for compute in store.computes().await? {
        if attached.contains(&compute.cluster_id) {
            pools.insert(compute.name, compute.cluster_id);
        }
    }
    let workers = store.live_agent_workers().await?;
    let agents = store
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.state == AgentState::Connected)
        .map(|a| {
            let (cores, memory) = workers
                .iter()
                .filter(|w| w.agent.as_deref() == Some(a.name.as_str()))
                .fold((0, 0), |(c, m), w| (c + w.cores, m + w.memory_mb));
            let offered = (a.cores as f64 * config.cpu_oversubscription).floor() as i64;
            AgentSlot {
                name: a.name,
                free_cores: offered - cores,
                free_memory_mb: a.memory_mb - memory,
            }
        })
        .collect();
    let network = match store.workspace_network().await? {
        Some(row) => NetworkNow {
            version: row.version,
            isolated: row.isolation_mode != spool_core::IsolationMode::Disabled,
        },
        None => NetworkNow::default(),
    };
    Ok(Snapshot {
        host: host_capacity(config),
        used,
        clusters,
        agents,
        pools,
        network,
    })
}

/// Cores and memory held now: live clusters plus the drivers of active jobs and sessions.
pub(crate) async fn used_capacity(control: &Control) -> Result<(u32, u64)> {
    let (used, _) = held(control).await?;
    Ok((used.cores, used.memory_mb))
}

/// Whether a new cluster and driver of `sizing` fit on this host now, without freeing anything.
pub(crate) async fn fits_now(control: &Control, sizing: &SparkSizing) -> Result<bool> {
    let (used, _) = held(control).await?;
    Ok(placement::fits_now(
        &host_capacity(control.config()),
        used,
        sizing,
    ))
}

/// Places waiting work whenever woken, and at least once a second.
pub(crate) async fn schedule_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = tick(&control).await {
            tracing::error!(error = %crate::error_chain(&e), "scheduling failed");
        }
        tokio::select! {
            _ = control.inner().wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A job or session waiting to be placed.
enum Work {
    Job(JobRow),
    Session(SessionRow),
}

/// How a piece of work got its cluster.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    Warm,
    Cold,
    Pool,
}

impl Work {
    fn created_at(&self) -> &str {
        match self {
            Work::Job(job) => &job.created_at,
            Work::Session(session) => &session.created_at,
        }
    }

    fn request(&self) -> Option<Request> {
        let (owner, runs_as, compute, runtime, sizing_json) = match self {
            Work::Job(j) => (
                j.owner_id,
                &j.runs_as,
                &j.compute,
                &j.runtime,
                &j.sizing_json,
            ),
            Work::Session(s) => (
                s.owner_id,
                &s.runs_as,
                &s.compute,
                &s.runtime,
                &s.sizing_json,
            ),
        };
        let sizing: SparkSizing = serde_json::from_str(sizing_json).ok()?;
        Some(Request::new(owner, compute, runtime, &sizing).running_as(runs_as))
    }

    /// Records that the work cannot be placed at all.
    async fn unreadable(&self, control: &Control) -> Result<()> {
        let store = control.store();
        let message = "stored sizing is unreadable";
        match self {
            Work::Job(job) => {
                store.set_job_error(job.id, message).await?;
                store
                    .set_job_status(job.id, JobStatus::Failed, None)
                    .await?;
            }
            Work::Session(session) => {
                store
                    .set_session_state(session.id, SessionState::Error, Some(message))
                    .await?;
            }
        }
        Ok(())
    }

    /// Records why the work waits (only when the reason changed).
    async fn wait(&self, control: &Control, reason: &str) -> Result<()> {
        let store = control.store();
        match self {
            Work::Job(job) => {
                if job.status != JobStatus::Queued || job.status_reason.as_deref() != Some(reason) {
                    store
                        .set_job_status(job.id, JobStatus::Queued, Some(reason))
                        .await?;
                }
            }
            Work::Session(session) => match session.state_reason.as_deref() {
                Some(now) if now == reason => {}
                Some(_) => store.set_session_reason(session.id, reason).await?,
                None => {
                    store
                        .add_session_phase(session.id, "queued", Some(reason))
                        .await?
                }
            },
        }
        Ok(())
    }

    /// Records where the work runs and starts its runner.
    async fn start(&self, control: &Control, cluster_id: ClusterId, start: Start) -> Result<()> {
        let store = control.store();
        let warm = start != Start::Cold;
        match self {
            Work::Job(job) => {
                store.set_job_cluster(job.id, cluster_id).await?;
                let reason = match start {
                    Start::Pool => format!("on attached pool {}", job.compute),
                    Start::Warm => format!("reusing warm cluster {cluster_id}"),
                    Start::Cold => format!("new cluster {cluster_id}"),
                };
                store
                    .set_job_status(job.id, JobStatus::Preparing, Some(&reason))
                    .await?;
                let cancel_rx = run::track(control, job.id, false);
                tracing::info!(job = %job.name, cluster = %cluster_id, warm, "job placed");
                tokio::spawn(run::run_job(
                    control.clone(),
                    job.id,
                    cluster_id,
                    warm,
                    cancel_rx,
                ));
            }
            Work::Session(session) => {
                store.set_session_cluster(session.id, cluster_id).await?;
                let reason = match start {
                    Start::Pool => format!("on attached pool {}", session.compute),
                    Start::Warm => format!("warm start on cluster {cluster_id}"),
                    Start::Cold => format!("cold start: new cluster {cluster_id}"),
                };
                store
                    .set_session_state(session.id, SessionState::Starting, Some(&reason))
                    .await?;
                sessions::spawn_runner(control, session.id, cluster_id, warm);
                tracing::info!(
                    session = %session.id,
                    cluster = %cluster_id,
                    warm,
                    "session placed"
                );
            }
        }
        Ok(())
    }
}

/// Jobs and sessions waiting for a cluster that no runner has taken yet, oldest first.
async fn waiting_work(control: &Control) -> Result<Vec<Work>> {
    let store = control.store();
    let inner = control.inner();
    let mut work: Vec<Work> = Vec::new();
    {
        let jobs = store.jobs_in_status(JobStatus::WAITING).await?;
        let running = inner.running.lock().expect("running map lock");
        // Only Spark jobs need a cluster; command jobs are started by `command::schedule`.
        work.extend(
            jobs.into_iter()
                .filter(|j| j.kind == JobKind::Spark && !running.contains_key(&j.id))
                .map(Work::Job),
        );
    }
    let sessions = store.sessions_in_state(&[SessionState::NotStarted]).await?;
    let runners = inner.session_runners.lock().expect("session map lock");
    work.extend(
        sessions
            .into_iter()
            .filter(|s| !runners.contains_key(&s.id))
            .map(Work::Session),
    );
    work.sort_by(|a, b| a.created_at().cmp(b.created_at()));
    Ok(work)
}

/// One round of placement over everything that waits.
async fn tick(control: &Control) -> Result<()> {
    let inner = control.inner();
    let _guard = inner.placement.lock().await;
    command::schedule(control).await?;
    let waiting = waiting_work(control).await?;
    if waiting.is_empty() {
        // Most ticks find nothing to place: they cost two queries, not a snapshot.
        return Ok(());
    }
    let mut snapshot = read_snapshot(control).await?;
    for work in waiting {
        // A job that fits a pre-warmed driver takes one when one is ready: no cluster to place.
        if let Work::Job(job) = &work
            && !*inner.shutdown.borrow()
            && let warm_driver::Taken::Driver = warm_driver::take(control, job).await?
        {
            continue;
        }
        let Some(request) = work.request() else {
            work.unreadable(control).await?;
            continue;
        };
        let decision = placement::decide(&snapshot, &request);
        if !matches!(decision, Decision::Wait(_)) && *inner.shutdown.borrow() {
            return Ok(());
        }
        let new_cluster = match &decision {
            Decision::Wait(reason) => {
                work.wait(control, reason).await?;
                None
            }
            Decision::Pool(cluster) => {
                work.start(control, *cluster, Start::Pool).await?;
                None
            }
            Decision::Warm(cluster) => {
                control
                    .store()
                    .set_cluster_state(*cluster, ClusterState::InUse, None)
                    .await?;
                work.start(control, *cluster, Start::Warm).await?;
                None
            }
            Decision::New(new) => {
                let id = record_cluster(control, &request, new, snapshot.network.version).await?;
                work.start(control, id, Start::Cold).await?;
                Some(id)
            }
        };
        snapshot.apply(&request, &decision, new_cluster);
    }
    Ok(())
}

/// Frees the idle clusters a decision gives up and records the new cluster with where its
/// executors go.
async fn record_cluster(
    control: &Control,
    request: &Request,
    new: &placement::NewCluster,
    network_version: i64,
) -> Result<ClusterId> {
    for id in &new.free {
        control
            .provisioner()
            .teardown(*id, "freed for a waiting job")
            .await;
    }
    let store = control.store();
    let shape = &new.shape;
    let cluster = store
        .insert_cluster(&NewCluster {
            owner_id: request.owner,
            runs_as: request.runs_as.clone(),
            runtime: shape.runtime.clone(),
            shape_key: shape.key(),
            shape_json: serde_json::to_string(shape).map_err(anyhow::Error::from)?,
            reserved_cores: i64::from(new.reserved.cores),
            reserved_memory_mb: new.reserved.memory_mb as i64,
            network_version,
        })
        .await?;
    let cores = i64::from(shape.executor_cores);
    let memory = shape.executor_memory.0 as i64;
    let hosts = std::iter::once((None, new.local_executors)).chain(
        new.remote
            .iter()
            .map(|(agent, n)| (Some(agent.as_str()), *n)),
    );
    for (agent, executors) in hosts.filter(|(_, n)| *n > 0) {
        let n = i64::from(executors);
        store
            .add_cluster_worker(cluster.id, agent, n, n * cores, n * memory)
            .await?;
    }
    Ok(cluster.id)
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
        let clusters = match control.store().live_clusters().await {
            Ok(clusters) => clusters,
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "read clusters for the teardown loop");
                continue;
            }
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
                // Re-check under the lock: work may have claimed it meanwhile.
                if let Ok(Some(now)) = control.store().cluster(cluster.id).await
                    && now.state == ClusterState::Idle
                {
                    control
                        .provisioner()
                        .teardown(cluster.id, &format!("idle for {}", humanize(window)))
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

/// Says whether work of `sizing` can ever fit on this host.
pub(crate) fn check_ever_fits(control: &Control, sizing: &SparkSizing) -> Result<()> {
    placement::check_ever_fits(&host_capacity(control.config()), sizing)
        .map_err(|message| crate::ControlError::TooLarge { message })
}
