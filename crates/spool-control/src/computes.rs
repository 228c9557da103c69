//! Attached Spark pools: standalone clusters users already run, attached by name. Jobs and
//! sessions naming one run their drivers here (client mode) against its master; Spool never
//! starts or stops the pool itself.

use spool_api_types as api;
use spool_core::{ClusterId, SessionState};
use spool_spec::compute::{AttachSpec, parse_attach};
use spool_store::{ComputeRow, NewCompute, StoreError};

use crate::{Action, Caller, Control, ControlError, Result, invalid};

/// What a pool's master reports about itself.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub health: api::PoolHealth,
    pub spark_version: Option<String>,
}

impl Control {
    /// Reads a master's status (`/json/`) and its Spark version (from the UI's page).
    pub(crate) async fn probe_pool(
        &self,
        master_ui_url: &str,
    ) -> std::result::Result<Probe, String> {
        let http = &self.inner().http;
        // One message for every way this fails: whether nothing listens, something else
        // answers or the answer is not a master's status, the caller learns no more than
        // "no Spark master here" (attaching must not be a port scanner).
        let no_master = |e: &dyn std::fmt::Display| {
            tracing::debug!(%master_ui_url, error = %e, "pool probe failed");
            format!(
                "no Spark master answered at {master_ui_url}/json/; check `master_ui_url` (the master's web UI, e.g. http://host:8080) and that the master runs"
            )
        };
        let status: serde_json::Value = http
            .get(format!("{master_ui_url}/json/"))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| no_master(&e))?
            .json()
            .await
            .map_err(|e| no_master(&e))?;
        let number = |key: &str| {
            status
                .get(key)
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
        };
        let workers = status
            .get("workers")
            .and_then(serde_json::Value::as_array)
            .map(|w| w.iter().filter(|w| w["state"] == "ALIVE").count() as i64)
            .unwrap_or(0);
        let page = match http
            .get(format!("{master_ui_url}/"))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
        {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        Ok(Probe {
            health: api::PoolHealth {
                status: status
                    .get("status")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("UNKNOWN")
                    .to_string(),
                alive_workers: workers,
                cores: number("cores"),
                cores_used: number("coresused"),
                memory_mb: number("memory"),
                memory_used_mb: number("memoryused"),
                active_apps: status
                    .get("activeapps")
                    .and_then(serde_json::Value::as_array)
                    .map(|a| a.len() as i64)
                    .unwrap_or(0),
            },
            spark_version: spark_version_in_page(&page),
        })
    }

    /// Attaches a pool from an attach file: checks the file, that the master answers, and that
    /// Spool has a runtime for its Spark version.
    pub async fn attach_compute(
        &self,
        caller: &Caller,
        file: &str,
        text: &str,
    ) -> Result<api::ComputeView> {
        // Attaching makes the server fetch a URL the caller names: Owners and Contributors only.
        caller.require(Action::AttachComputes)?;
        let spec = crate::load_user_yaml(file, text, parse_attach).await?;
        let probe = self.probe_pool(&spec.master_ui_url).await.map_err(|e| {
            invalid(
                "master_ui_url",
                format!("cannot attach `{}`: {e}", spec.name),
            )
        })?;
        if probe.health.status != "ALIVE" {
            return Err(invalid(
                "master_url",
                format!(
                    "cannot attach `{}`: its master reports status {}, not ALIVE",
                    spec.name, probe.health.status
                ),
            ));
        }
        let version = probe.spark_version.clone().ok_or_else(|| {
            invalid(
                "master_ui_url",
                format!(
                    "cannot attach `{}`: {} does not show a Spark version",
                    spec.name, spec.master_ui_url
                ),
            )
        })?;
        let short: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        if spool_runtime::find(&short).is_none() {
            return Err(invalid(
                "master_url",
                format!(
                    "cannot attach `{}`: it runs Spark {version}, and Spool has runtimes for {} only",
                    spec.name,
                    spool_runtime::supported_versions().join(", ")
                ),
            ));
        }
        let new = NewCompute {
            name: spec.name.clone(),
            master_url: spec.master_url.clone(),
            master_ui_url: spec.master_ui_url.clone(),
            spark_version: version,
            runtime: short,
            spec_json: serde_json::to_string(&spec).map_err(anyhow::Error::from)?,
            attached_by: caller.id,
            workers: probe.health.alive_workers,
            cores: probe.health.cores,
            memory_mb: probe.health.memory_mb,
        };
        // The user-assigned identities the pool may act as must exist (an attach file cannot
        // make up an identity that holds roles).
        for name in &spec.identity.user_assigned_identities {
            if self.store().identity_by_name(name).await?.is_none() {
                return Err(invalid(
                    "identity.user_assigned_identities",
                    format!(
                        "cannot attach `{}`: identity `{name}` does not exist\nhint: create it with `spool identity create --name {name}`",
                        spec.name
                    ),
                ));
            }
        }
        let (row, _) = match self.store().attach_compute(&new).await {
            Ok(done) => done,
            Err(StoreError::Conflict(_)) => {
                return Err(ControlError::Conflict {
                    target: "name".into(),
                    message: format!(
                        "a compute named `{}` is already attached; detach it first to change it",
                        spec.name
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        };
        // Its system-assigned identity: jobs on the pool act as it by default.
        self.ensure_pool_identity(&row.name, &caller.name).await?;
        tracing::info!(compute = %row.name, master = %row.master_url, spark = %row.spark_version, "pool attached");
        Ok(compute_view(&row, Some(probe.health)))
    }

    pub async fn computes(&self, caller: &Caller) -> Result<Vec<api::ComputeView>> {
        caller.require(Action::ViewComputes)?;
        let rows = self.store().computes().await?;
        Ok(rows.iter().map(|row| compute_view(row, None)).collect())
    }

    /// One attached pool, with its live health.
    pub async fn compute(&self, caller: &Caller, name: &str) -> Result<api::ComputeView> {
        caller.require(Action::ViewComputes)?;
        let row = self.find_compute(name).await?;
        let health = match self.probe_pool(&row.master_ui_url).await {
            Ok(probe) => probe.health,
            Err(e) => api::PoolHealth {
                status: format!("UNREACHABLE: {e}"),
                alive_workers: 0,
                cores: 0,
                cores_used: 0,
                memory_mb: 0,
                memory_used_mb: 0,
                active_apps: 0,
            },
        };
        Ok(compute_view(&row, Some(health)))
    }

    pub(crate) async fn find_compute(&self, name: &str) -> Result<ComputeRow> {
        let name = name.strip_prefix("azureml:").unwrap_or(name);
        self.store()
            .compute(name)
            .await?
            .ok_or_else(|| ControlError::NotFound {
                kind: "compute",
                name: name.to_string(),
            })
    }

    /// Detaches a pool. Refused while jobs or sessions run on it, unless `force`, which ends
    /// them first. The pool itself keeps running.
    pub async fn detach_compute(&self, caller: &Caller, name: &str, force: bool) -> Result<()> {
        caller.require(Action::DetachComputes)?;
        let row = self.find_compute(name).await?;
        // Everyone sees the pool (computes are shared), so this is a refusal, not "not found".
        if !caller.sees(row.attached_by) {
            return Err(ControlError::Forbidden {
                message: format!(
                    "user `{}` cannot detach compute `{}`: another user attached it, and only they or an Owner can detach it",
                    caller.name, row.name
                ),
            });
        }
        let store = self.store();
        let (jobs, sessions) = self.work_on_cluster(row.cluster_id).await?;
        if !jobs.is_empty() || !sessions.is_empty() {
            if !force {
                return Err(ControlError::Conflict {
                    target: "name".into(),
                    message: format!(
                        "`{}` has {} running job(s) and {} live session(s); wait for them, or detach with --force to end them",
                        row.name,
                        jobs.len(),
                        sessions.len()
                    ),
                });
            }
            for session in sessions {
                crate::sessions::stop_session(
                    self,
                    session.id,
                    SessionState::Killed,
                    &format!("pool `{}` was detached", row.name),
                )
                .await;
            }
            for job in jobs {
                let owner = store
                    .user_by_name(&job.owner_name)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("job owner vanished"))?;
                self.cancel_job(&owner.into(), &job.name).await?;
            }
        }
        store.detach_compute(&row.name).await?;
        store
            .delete_identity(&crate::identities::system_identity_name(&row.name))
            .await?;
        tracing::info!(compute = %row.name, "pool detached");
        Ok(())
    }
}

impl Control {
    /// The running jobs and live sessions placed on a cluster.
    pub(crate) async fn work_on_cluster(
        &self,
        cluster_id: ClusterId,
    ) -> anyhow::Result<(Vec<spool_store::JobRow>, Vec<spool_store::SessionRow>)> {
        let store = self.store();
        let jobs = store
            .jobs_in_status(crate::JobStatus::ACTIVE)
            .await?
            .into_iter()
            .filter(|j| j.cluster_id == Some(cluster_id))
            .collect();
        let sessions = store
            .sessions_in_state(SessionState::ACTIVE)
            .await?
            .into_iter()
            .filter(|s| s.cluster_id == Some(cluster_id))
            .collect();
        Ok((jobs, sessions))
    }
}

/// The version a Spark UI page shows (`<span class="version" ...>3.4.4</span>`).
fn spark_version_in_page(page: &str) -> Option<String> {
    let at = page.find("class=\"version\"")?;
    let rest = &page[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    let version = rest[start..end].trim();
    (!version.is_empty() && version.starts_with(|c: char| c.is_ascii_digit()))
        .then(|| version.to_string())
}

fn compute_view(row: &ComputeRow, health: Option<api::PoolHealth>) -> api::ComputeView {
    let spec: Option<AttachSpec> = serde_json::from_str(&row.spec_json).ok();
    api::ComputeView {
        name: row.name.clone(),
        kind: row.kind.clone(),
        master_url: row.master_url.clone(),
        master_ui_url: row.master_ui_url.clone(),
        spark_version: row.spark_version.clone(),
        runtime: row.runtime.clone(),
        identity: spec
            .as_ref()
            .map(|s| api::PoolIdentityView {
                kind: s.identity.kind.clone(),
                user_assigned_identities: s.identity.user_assigned_identities.clone(),
            })
            .unwrap_or(api::PoolIdentityView {
                kind: "system_assigned".into(),
                user_assigned_identities: Vec::new(),
            }),
        description: spec.as_ref().and_then(|s| s.description.clone()),
        tags: spec.map(|s| s.tags).unwrap_or_default(),
        attached_at: row.attached_at.clone(),
        attached_capacity: api::PoolCapacity {
            workers: row.workers,
            cores: row.cores,
            memory_mb: row.memory_mb,
        },
        health,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_a_master_page() {
        let page = r#"<a href="/"><img src="/static/spark-logo.png" /><span class="version">3.4.4</span></a>"#;
        assert_eq!(spark_version_in_page(page).as_deref(), Some("3.4.4"));
        assert_eq!(spark_version_in_page("<html></html>"), None);
    }
}
