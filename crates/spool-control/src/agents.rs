//! Agents: worker hosts. An agent heartbeats every second with its address and capacity, and is
//! answered with the Spark workers it should run (the server's placement); it starts the missing
//! ones and stops the others. An agent silent past the heartbeat timeout is lost: the work whose
//! cluster had a worker on it fails with the reason, and the cluster is torn down.

use spool_core::{AgentState, ClusterId, JobStatus};
use std::time::Duration;

use spool_api_types as api;
use spool_store::{AgentRow, StoreError};

use crate::{Action, Caller, Control, ControlError, Result, auth, invalid};

/// An agent whose token was checked: what a heartbeat or a runtime download acts as.
#[derive(Debug, Clone)]
pub struct AgentCaller {
    row: AgentRow,
}

impl AgentCaller {
    pub fn name(&self) -> &str {
        &self.row.name
    }
}

impl Control {
    /// The agent a token belongs to, if any; the HTTP layer asks this before reading a body.
    pub async fn authenticate_agent(&self, token: &str) -> Result<Option<AgentCaller>> {
        Ok(self
            .store()
            .agent_by_token_hash(&auth::hash_token(token))
            .await?
            .map(|row| AgentCaller { row }))
    }

    /// Registers an agent by name and returns its token (shown once). Owners only.
    pub async fn create_agent(&self, caller: &Caller, name: &str) -> Result<api::AgentCreated> {
        caller.require(Action::RegisterAgents)?;
        auth::check_user_name(name).map_err(|m| invalid("name", m))?;
        let token = auth::new_token();
        match self
            .store()
            .create_agent(name, &auth::hash_token(&token))
            .await
        {
            Ok(row) => Ok(api::AgentCreated {
                name: row.name,
                token,
            }),
            Err(StoreError::Conflict(_)) => Err(ControlError::Conflict {
                target: "name".into(),
                message: format!("an agent named `{name}` exists already"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn agents(&self, caller: &Caller) -> Result<Vec<api::AgentView>> {
        caller.require(Action::ViewAgents)?;
        let rows = self.store().agents().await?;
        let workers = self.store().live_agent_workers().await?;
        Ok(rows
            .into_iter()
            .map(|a| api::AgentView {
                workers: workers
                    .iter()
                    .filter(|w| w.agent.as_deref() == Some(a.name.as_str()))
                    .map(|w| w.cluster_id)
                    .collect(),
                name: a.name,
                address: a.address,
                cores: a.cores,
                memory_mb: a.memory_mb,
                state: a.state,
                state_reason: a.state_reason,
                last_seen: a.last_seen,
            })
            .collect())
    }

    /// A runtime packed for an agent host (built once, then reused): agents get runtimes
    /// through the server, not from the internet.
    pub async fn runtime_archive_for_agent(
        &self,
        agent: &AgentCaller,
        version: &str,
    ) -> Result<std::path::PathBuf> {
        let agent = &agent.row;
        if self.inner().runtimes.installed(version).is_none() {
            return Err(invalid(
                "version",
                format!("runtime `{version}` is not installed on the server"),
            ));
        }
        let runtimes = self.inner().runtimes.clone();
        let version = version.to_string();
        let archive = tokio::task::spawn_blocking(move || runtimes.runtime_archive(&version))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?;
        tracing::info!(agent = %agent.name, archive = %archive.display(), "runtime sent to an agent");
        Ok(archive)
    }

    /// An agent's heartbeat: records it and answers with the workers it should run.
    pub async fn agent_heartbeat(
        &self,
        agent: &AgentCaller,
        report: api::AgentReport,
    ) -> Result<api::AgentOrders> {
        let store = self.store();
        let agent = &agent.row;
        if agent.name != report.name {
            return Err(invalid(
                "name",
                format!(
                    "this token belongs to agent `{}`, not `{}`",
                    agent.name, report.name
                ),
            ));
        }
        let was = agent.state;
        store
            .agent_seen(
                agent.id,
                &report.address,
                i64::from(report.cores),
                report.memory_mb as i64,
            )
            .await?;
        if was != AgentState::Connected {
            tracing::info!(agent = %agent.name, address = %report.address, cores = report.cores, "agent connected");
            store
                .add_event(
                    "agent_connected",
                    &format!("agent {}", agent.name),
                    &format!(
                        "{} cores, {} MiB at {}",
                        report.cores, report.memory_mb, report.address
                    ),
                )
                .await?;
            // Capacity arrived: waiting work may fit now.
            self.inner().wake.notify_one();
        }
        let mut workers = Vec::new();
        for w in store.live_agent_workers().await? {
            if w.agent.as_deref() != Some(agent.name.as_str()) {
                continue;
            }
            let Some(cluster) = store.cluster(w.cluster_id).await? else {
                continue;
            };
            let Some(master_url) = cluster.master_url else {
                continue;
            };
            workers.push(api::WorkerOrder {
                cluster_id: w.cluster_id,
                master_url,
                runtime: cluster.runtime,
                cores: w.cores as u32,
                memory_mb: w.memory_mb as u64,
                daemon_memory_mb: Some(self.config().daemon_memory.0),
                auth_secret: self
                    .provisioner()
                    .auth_properties(w.cluster_id)
                    .and_then(|path| std::fs::read_to_string(path).ok())
                    .and_then(|text| spool_spark::auth_secret_of(&text).map(str::to_string)),
            });
        }
        Ok(api::AgentOrders {
            workers,
            heartbeat_ms: 1000,
        })
    }

    /// Marks an agent lost and fails the work that depended on its workers.
    async fn lose_agent(&self, agent: &AgentRow, silent_for: Duration) -> anyhow::Result<()> {
        let reason = format!(
            "agent `{}` was lost: no heartbeat for {:.0?}",
            agent.name, silent_for
        );
        if !self.store().agent_lost(agent.id, &reason).await? {
            return Ok(());
        }
        tracing::warn!(agent = %agent.name, "agent lost");
        self.store()
            .add_event("agent_lost", &format!("agent {}", agent.name), &reason)
            .await?;
        let clusters: std::collections::BTreeSet<ClusterId> = self
            .store()
            .live_agent_workers()
            .await?
            .into_iter()
            .filter(|w| w.agent.as_deref() == Some(agent.name.as_str()))
            .map(|w| w.cluster_id)
            .collect();
        for cluster_id in clusters {
            let message = format!("{reason}; it ran a Spark worker of cluster {cluster_id}");
            self.fail_cluster_work(cluster_id, &message).await?;
            self.provisioner().teardown(cluster_id, &reason).await;
        }
        Ok(())
    }

    /// Fails every job and ends every session running on a cluster, with `message`.
    async fn fail_cluster_work(&self, cluster_id: ClusterId, message: &str) -> anyhow::Result<()> {
        let store = self.store();
        let (jobs, sessions) = self.work_on_cluster(cluster_id).await?;
        for job in jobs {
            // Failed first (terminal, so the runner's own ending cannot overwrite it), then
            // the runner is told to stop the driver.
            store.set_job_error(job.id, message).await?;
            store
                .set_job_status(job.id, JobStatus::Failed, Some(message))
                .await?;
            if let Some(cancel) = self
                .inner()
                .running
                .lock()
                .expect("running map lock")
                .get(&job.id)
            {
                cancel.send_replace(true);
            }
            tracing::warn!(job = %job.name, "job failed: {message}");
        }
        for session in sessions {
            crate::sessions::stop_session(
                self,
                session.id,
                spool_core::SessionState::Dead,
                message,
            )
            .await;
        }
        Ok(())
    }
}

/// Finds agents silent past the heartbeat timeout.
pub(crate) async fn lost_agent_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
        let timeout = control.config().agent_heartbeat_timeout;
        let Ok(agents) = control.store().agents().await else {
            continue;
        };
        for agent in agents.iter().filter(|a| a.state == AgentState::Connected) {
            let Some(seen) = agent
                .last_seen
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            else {
                continue;
            };
            let silent = chrono::Utc::now()
                .signed_duration_since(seen)
                .to_std()
                .unwrap_or_default();
            if silent > timeout
                && let Err(e) = control.lose_agent(agent, silent).await
            {
                tracing::error!(agent = %agent.name, error = format!("{e:#}"), "handling a lost agent");
            }
        }
    }
}
