//! Cluster primitives: starting a serverless cluster's master and workers and waiting for them,
//! starting any recorded process, watching daemons, handing clusters back and tearing them
//! down.
//!
//! Below the runners and the scheduler: nothing here decides where work goes or imports them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spool_core::{
    ClusterId, ClusterState, MemoryMb, Owner, ProcessOutcome, ProcessState, SessionState,
};
use spool_runtime::{InstalledRuntime, RuntimeCache};
use spool_spec::network::{IsolationMode, OutboundRule};
use spool_store::{ClusterRow, ProcessRow, Store};
use spool_supervisor::{Exit, ProcessSpec, Spawned, Stopped};
use tokio::sync::{Notify, watch};

use crate::accounts::Accounts;
use crate::config::Config;
use crate::netns::{Namespaces, NetPlace};

use crate::{LogError, Result, invalid, spark};

/// The handle of the cluster primitives: what they need and nothing more. They see no runner,
/// no scheduler and no `Control`, and they decide nothing about where work goes.
#[derive(Clone)]
pub(crate) struct Provisioner {
    store: Store,
    /// `<data dir>/clusters`, where each cluster has its folder.
    dir: PathBuf,
    config: Arc<Config>,
    http: reqwest::Client,
    runtimes: RuntimeCache,
    /// Set when the server stops: nothing starts after it.
    shutdown: watch::Receiver<bool>,
    /// Serializes placement decisions and cluster state changes (shared with the scheduler).
    placement: Arc<tokio::sync::Mutex<()>>,
    /// Tells the scheduler that capacity may have freed up.
    capacity_freed: Arc<Notify>,
    /// The OS accounts a cluster's daemons run under.
    accounts: Accounts,
    /// The network namespaces of isolated clusters.
    namespaces: Namespaces,
}

/// What the cluster primitives are built from.
pub(crate) struct ProvisionerParts {
    pub store: Store,
    pub data_dir: PathBuf,
    pub config: Arc<Config>,
    pub http: reqwest::Client,
    pub runtimes: RuntimeCache,
    pub shutdown: watch::Receiver<bool>,
    pub placement: Arc<tokio::sync::Mutex<()>>,
    pub capacity_freed: Arc<Notify>,
    pub accounts: Accounts,
    pub namespaces: Namespaces,
}

/// Ports a cluster listens on.
struct Ports {
    master: u16,
    master_ui: u16,
    worker_ui: u16,
}

/// A cluster whose master and worker were launched and may not answer yet.
pub(crate) struct StartingCluster {
    pub cluster_id: ClusterId,
    pub master_url: String,
    /// The master's web UI; `/json/` reports `ALIVE` once it accepts applications.
    pub master_ui: String,
    master_pid: u32,
    dir: std::path::PathBuf,
}

/// Returns the last `n` lines of a log file.
pub(crate) fn log_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Provisioner {
    pub(crate) fn new(parts: ProvisionerParts) -> Provisioner {
        let ProvisionerParts {
            store,
            data_dir,
            config,
            http,
            runtimes,
            shutdown,
            placement,
            capacity_freed,
            accounts,
            namespaces,
        } = parts;
        Provisioner {
            store,
            dir: data_dir.join("clusters"),
            config,
            http,
            runtimes,
            shutdown,
            placement,
            capacity_freed,
            accounts,
            namespaces,
        }
    }

    /// Starts the master and worker of a new cluster and waits until the master accepts
    /// applications. The worker registers in parallel; executors start as soon as it has.
    pub(crate) async fn start_cluster(
        &self,
        cluster: &ClusterRow,
        runtime: &InstalledRuntime,
    ) -> anyhow::Result<()> {
        let starting = self.launch_cluster(cluster, runtime, 0).await?;
        self.wait_cluster_up(&starting).await
    }

    /// Launches a cluster's master and worker (at niceness `nice`, which executors inherit)
    /// and records their URLs, without waiting for them.
    pub(crate) async fn launch_cluster(
        &self,
        cluster: &ClusterRow,
        runtime: &InstalledRuntime,
        nice: i32,
    ) -> anyhow::Result<StartingCluster> {
        let dir = self.dir.join(cluster.id.to_string());
        let ports = Ports {
            master: spark::free_port()?,
            master_ui: spark::free_port()?,
            worker_ui: spark::free_port()?,
        };
        let (net, version) = self.isolate(Owner::Cluster(cluster.id)).await?;
        self.store
            .set_cluster_network_version(cluster.id, version)
            .await?;
        let install = runtime.spark_install(&net.address);
        let address = install.bind_address.clone();
        let master_url = format!("spark://{address}:{}", ports.master);
        let master_ui = format!("http://{address}:{}", ports.master_ui);
        // This host's share of the executors, as placement recorded it (all of them unless agents
        // take some).
        let workers = self.store.cluster_workers(cluster.id).await?;
        let (local_cores, local_memory) = workers
            .iter()
            .filter(|w| w.agent.is_none())
            .fold((0, MemoryMb(0)), |(c, m), w| {
                (c + w.cores as u32, MemoryMb(m.0 + w.memory_mb as u64))
            });
        self.store
            .set_cluster_urls(cluster.id, &master_url, &master_ui)
            .await?;
        let daemon = spark::daemon(&self.config);
        // The daemons run as the principal of the cluster's work: executors inherit the
        // worker's account, and only that principal's data roles reach them.
        let work_dir = dir.join("work");
        std::fs::create_dir_all(&work_dir)?;
        let account = self.accounts.ensure(&cluster.runs_as).await?;
        let run_as = match &account {
            Some(account) => {
                crate::accounts::give_tree(&work_dir, account)?;
                Some(self.accounts.run_as(account, &work_dir))
            }
            None => None,
        };
        // Spark's RPC is authenticated with a secret of this cluster, readable only by its
        // account (and by agents running its workers, which get it with their orders): no other
        // identity's process can register an application, fetch blocks or reach an executor.
        let properties = dir.join(spool_spark::AUTH_PROPERTIES);
        std::fs::create_dir_all(&dir)?;
        crate::auth::write_secret(
            &properties,
            &spool_spark::auth_properties(&crate::auth::new_token()),
        )?;
        if let Some(account) = &account {
            std::os::unix::fs::chown(&properties, Some(account.uid), Some(account.gid))?;
        }
        let with_auth = |command: spool_spark::CommandLine| {
            spool_spark::with_properties_file(command, &properties)
        };
        let mut master = spark::process(
            with_auth(spool_spark::master(
                &install,
                daemon,
                ports.master,
                ports.master_ui,
            )),
            &dir,
            &dir.join("master"),
        );
        master.run_as = run_as.clone();
        master.netns = net.netns.clone();
        master.nice = nice;
        let mut worker = spark::process(
            with_auth(spool_spark::worker(
                &install,
                daemon,
                &master_url,
                ports.worker_ui,
                local_cores,
                local_memory,
                &work_dir,
            )),
            &dir,
            &dir.join("worker"),
        );
        worker.run_as = run_as;
        worker.netns = net.netns;
        worker.nice = nice;
        // Master and worker start together: the worker retries until the master is up, which
        // saves the worker's JVM start-up from the cold path.
        let master_spawned = self
            .launch(Owner::Cluster(cluster.id), "master", &master)
            .await?;
        let master_pid = master_spawned.pid;
        self.watch_daemon(cluster.id, "master", master_spawned);
        if local_cores > 0 {
            let worker_spawned = self
                .launch(Owner::Cluster(cluster.id), "worker", &worker)
                .await?;
            self.watch_daemon(cluster.id, "worker", worker_spawned);
        }
        Ok(StartingCluster {
            cluster_id: cluster.id,
            master_url,
            master_ui,
            master_pid,
            dir,
        })
    }

    /// Puts new work (a serverless cluster or a command job) on the network under the
    /// workspace's settings as they are now, and returns their version with where it is: on
    /// the host as before when isolation is `disabled`, else in a namespace of its own with the
    /// rules applied.
    pub(crate) async fn isolate(&self, owner: Owner) -> anyhow::Result<(NetPlace, i64)> {
        let settings = self.store.workspace_network().await?;
        let (mode, version, rules) = match &settings {
            Some(row) => (
                row.isolation_mode,
                row.version,
                serde_json::from_str::<Vec<OutboundRule>>(&row.rules_json)?,
            ),
            None => (IsolationMode::Disabled, 0, Vec::new()),
        };
        if mode == IsolationMode::Disabled {
            let place = NetPlace {
                address: self.config.advertise_address.clone(),
                netns: None,
            };
            return Ok((place, version));
        }
        if let Some(reason) = crate::netns::why_not_isolatable() {
            anyhow::bail!(
                "the workspace's `isolation_mode` is `{}`, but {reason}\nhint: run the server as root with nftables installed, or set `isolation_mode: disabled` with `spool workspace update`",
                mode.as_str()
            );
        }
        let row = self.namespaces.create(owner, mode, &rules).await?;
        let place = NetPlace {
            address: row.inner_address,
            netns: Some(crate::netns::path(&row.netns)),
        };
        Ok((place, version))
    }

    /// Where a cluster's drivers go: its namespace and address when it is isolated.
    pub(crate) async fn cluster_net(&self, cluster_id: ClusterId) -> anyhow::Result<NetPlace> {
        self.namespaces
            .place_of(Owner::Cluster(cluster_id), &self.config.advertise_address)
            .await
    }

    /// The namespaces of isolated clusters (reaped at start).
    pub(crate) fn namespaces(&self) -> &Namespaces {
        &self.namespaces
    }

    /// The properties file with a cluster's RPC secret, which its drivers read too; `None` for a
    /// cluster without one (attached pools, clusters started before secrets existed).
    pub(crate) fn auth_properties(&self, cluster_id: ClusterId) -> Option<PathBuf> {
        let path = self
            .dir
            .join(cluster_id.to_string())
            .join(spool_spark::AUTH_PROPERTIES);
        path.is_file().then_some(path)
    }

    /// Waits until a launched cluster's master accepts applications; then the cluster is `in_use`.
    pub(crate) async fn wait_cluster_up(&self, starting: &StartingCluster) -> anyhow::Result<()> {
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
            if self.master_alive(master_ui).await {
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
        self.store
            .set_cluster_state(cluster_id, ClusterState::InUse, None)
            .await?;
        tracing::info!(cluster = %cluster_id, %master_url, %master_ui, "cluster up");
        Ok(())
    }

    async fn master_alive(&self, master_ui: &str) -> bool {
        let Ok(response) = self.http.get(format!("{master_ui}/json/")).send().await else {
            return false;
        };
        match response.json::<serde_json::Value>().await {
            Ok(status) => status.get("status").and_then(|s| s.as_str()) == Some("ALIVE"),
            Err(_) => false,
        }
    }

    /// Records a process in the store, then spawns it, then records its pid: a process is never
    /// running without a record.
    pub(crate) async fn launch(
        &self,
        owner: Owner,
        role: &str,
        spec: &ProcessSpec,
    ) -> anyhow::Result<Spawned> {
        let store = &self.store;
        // Nothing starts for work that already ended (a session deleted or a server stopping while
        // it was starting): its processes were stopped, and a late one would be left running.
        if !self.owner_alive(owner).await {
            anyhow::bail!("{owner} ended while it was starting; {role} not started");
        }
        let id = store
            .insert_process(
                owner,
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
                if !self.owner_alive(owner).await {
                    spool_supervisor::stop_group(spawned.pid, self.config.stop_grace).await;
                    store
                        .set_process_ended(id, ProcessOutcome::Stopped, None)
                        .await?;
                    anyhow::bail!("{owner} ended while it was starting; {role} stopped");
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
    async fn owner_alive(&self, owner: Owner) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        let store = &self.store;
        match owner {
            Owner::Cluster(id) => matches!(
                store.cluster(id).await,
                Ok(Some(c)) if !c.state.is_ending()
            ),
            Owner::Session(id) => matches!(
                store.session(id).await,
                Ok(Some(s)) if !s.state.is_finished()
                    && s.state != SessionState::ShuttingDown
            ),
            Owner::Job(id) => matches!(
                store.job(id).await,
                Ok(Some(j)) if !j.status.is_terminal()
            ),
        }
    }

    /// Records how the processes of `owner` that `which` picks (and that are not recorded as ended)
    /// ended.
    pub(crate) async fn record_ended(
        &self,
        owner: Owner,
        which: impl Fn(&ProcessRow) -> bool,
        outcome: ProcessOutcome,
        exit_code: Option<i64>,
    ) {
        let store = &self.store;
        let Some(processes) = store
            .processes_of(owner)
            .await
            .log_error("read the processes to record their end")
        else {
            return;
        };
        for process in processes
            .iter()
            .filter(|p| p.state != ProcessState::Ended && which(p))
        {
            store
                .set_process_ended(process.id, outcome, exit_code)
                .await
                .log_error("record how a process ended");
        }
    }

    /// Watches a master or worker; if it ends while the cluster should be up, the cluster is lost.
    fn watch_daemon(&self, cluster_id: ClusterId, role: &'static str, spawned: Spawned) {
        let pid = spawned.pid;
        let provisioner = self.clone();
        tokio::spawn(async move {
            let exit = spawned.wait().await;
            provisioner
                .on_daemon_exit(cluster_id, role, pid, exit)
                .await;
        });
    }

    pub(crate) async fn on_daemon_exit(
        &self,
        cluster_id: ClusterId,
        role: &str,
        pid: u32,
        exit: Exit,
    ) {
        let store = &self.store;
        let cluster = store.cluster(cluster_id).await.ok().flatten();
        let expected = cluster
            .as_ref()
            .is_none_or(|c| c.state == ClusterState::TearingDown || c.state == ClusterState::Gone);
        let outcome = if expected {
            ProcessOutcome::Stopped
        } else {
            ProcessOutcome::Exited
        };
        self.record_ended(
            Owner::Cluster(cluster_id),
            |p| p.pid == Some(i64::from(pid)) && p.role == role,
            outcome,
            exit.code(),
        )
        .await;
        if !expected && !*self.shutdown.borrow() {
            tracing::warn!(
                cluster = %cluster_id,
                role,
                ?exit,
                "Spark daemon exited; tearing down its cluster"
            );
            self.teardown(
                cluster_id,
                &format!("the Spark {role} exited unexpectedly ({exit:?})"),
            )
            .await;
        }
    }

    /// Stops every process of a cluster and marks it gone.
    pub(crate) async fn teardown(&self, cluster_id: ClusterId, reason: &str) {
        let store = &self.store;
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
            tracing::error!(cluster = %cluster_id, error = %crate::error_chain(&e), "record teardown");
        }
        let processes = store
            .processes_of(Owner::Cluster(cluster_id))
            .await
            .unwrap_or_default();
        // Stop the worker before the master, so the master does not log a lost worker.
        for process in processes
            .iter()
            .rev()
            .filter(|p| p.state != ProcessState::Ended)
        {
            let Some(pid) = process.pid else { continue };
            let how = spool_supervisor::stop_group(pid as u32, self.config.stop_grace).await;
            let outcome = match how {
                Stopped::Killed => ProcessOutcome::Killed,
                Stopped::Terminated | Stopped::AlreadyGone => ProcessOutcome::Stopped,
            };
            store
                .set_process_ended(process.id, outcome, None)
                .await
                .log_error("record how a process ended");
        }
        // Its namespace (with its veth pair and rules) goes once nothing runs in it.
        self.namespaces.remove_of(Owner::Cluster(cluster_id)).await;
        if let Err(e) = store
            .set_cluster_state(cluster_id, ClusterState::Gone, Some(reason))
            .await
        {
            tracing::error!(cluster = %cluster_id, error = %crate::error_chain(&e), "record teardown");
        }
        tracing::info!(cluster = %cluster_id, reason, "cluster torn down");
        self.capacity_freed.notify_one();
    }

    /// Tears down every live cluster.
    pub(crate) async fn teardown_all(&self, reason: &str) {
        let clusters = self.store.live_clusters().await.unwrap_or_default();
        for cluster in clusters {
            self.teardown(cluster.id, reason).await;
        }
    }

    /// Hands a cluster back after its job or session: torn down when it `broke` during start-up
    /// (the reason given), otherwise released to be kept warm.
    pub(crate) async fn hand_back(&self, cluster_id: ClusterId, broke: Option<&str>) {
        match broke {
            Some(reason) => self.teardown(cluster_id, reason).await,
            None => self.release(cluster_id).await,
        }
    }

    /// Hands a cluster back after a job: idle (kept warm) unless it is already going away.
    pub(crate) async fn release(&self, cluster_id: ClusterId) {
        let _guard = self.placement.lock().await;
        let store = &self.store;
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
                store
                    .set_cluster_state(cluster_id, ClusterState::Idle, None)
                    .await
                    .log_error("record the cluster's state");
            }
        }
        self.capacity_freed.notify_one();
    }

    /// Makes sure a job's runtime is installed; errors name what is missing.
    pub(crate) async fn ensure_runtime(
        &self,
        version: &str,
        progress: &dyn spool_runtime::Progress,
    ) -> Result<InstalledRuntime> {
        if let Some(runtime) = self.runtimes.installed(version) {
            return Ok(runtime);
        }
        self.runtimes.install(version, progress).await.map_err(|e| {
            invalid(
                "resources.runtime_version",
                format!("install runtime {version}: {e}"),
            )
        })
    }
}
