//! Agents (worker hosts) and where clusters' workers run.

use serde::Serialize;
use sqlx::FromRow;

use spool_core::{AgentId, AgentState, ClusterId};

use crate::{Result, Store, conflict_on_unique, now};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct AgentRow {
    pub id: AgentId,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub address: Option<String>,
    pub cores: i64,
    pub memory_mb: i64,
    pub state: AgentState,
    pub state_reason: Option<String>,
    pub last_seen: Option<String>,
    pub created_at: String,
}

/// A share of a cluster's executors on one host.
#[derive(Debug, Clone, FromRow, Serialize, PartialEq)]
pub struct ClusterWorkerRow {
    pub id: i64,
    pub cluster_id: ClusterId,
    /// `None`: the server's own host.
    pub agent: Option<String>,
    pub executors: i64,
    pub cores: i64,
    pub memory_mb: i64,
}

impl Store {
    pub async fn create_agent(&self, name: &str, token_hash: &str) -> Result<AgentRow> {
        sqlx::query_as(
            "INSERT INTO agents (name, token_hash, created_at) VALUES (?, ?, ?) RETURNING *",
        )
        .bind(name)
        .bind(token_hash)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_unique(format!("agent {name}")))
    }

    pub async fn agent_by_token_hash(&self, token_hash: &str) -> Result<Option<AgentRow>> {
        Ok(sqlx::query_as("SELECT * FROM agents WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn agents(&self) -> Result<Vec<AgentRow>> {
        Ok(sqlx::query_as("SELECT * FROM agents ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Records a heartbeat: the agent is connected, at `address`, with this capacity.
    pub async fn agent_seen(
        &self,
        id: AgentId,
        address: &str,
        cores: i64,
        memory_mb: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET address = ?, cores = ?, memory_mb = ?, state = 'connected', \
             state_reason = NULL, last_seen = ? WHERE id = ?",
        )
        .bind(address)
        .bind(cores)
        .bind(memory_mb)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks an agent lost; true if it was connected.
    pub async fn agent_lost(&self, id: AgentId, reason: &str) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE agents SET state = 'lost', state_reason = ? WHERE id = ? AND state = 'connected'",
        )
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn add_cluster_worker(
        &self,
        cluster_id: ClusterId,
        agent: Option<&str>,
        executors: i64,
        cores: i64,
        memory_mb: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO cluster_workers (cluster_id, agent, executors, cores, memory_mb) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(cluster_id)
        .bind(agent)
        .bind(executors)
        .bind(cores)
        .bind(memory_mb)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn cluster_workers(&self, cluster_id: ClusterId) -> Result<Vec<ClusterWorkerRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM cluster_workers WHERE cluster_id = ? ORDER BY id")
                .bind(cluster_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Workers of clusters that are not gone, on any host.
    pub async fn live_cluster_workers(&self) -> Result<Vec<ClusterWorkerRow>> {
        Ok(sqlx::query_as(
            "SELECT w.* FROM cluster_workers w JOIN clusters c ON c.id = w.cluster_id \
             WHERE c.state != 'gone' ORDER BY w.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Workers on agents of clusters that are not gone (what agents should be running).
    pub async fn live_agent_workers(&self) -> Result<Vec<ClusterWorkerRow>> {
        Ok(sqlx::query_as(
            "SELECT w.* FROM cluster_workers w JOIN clusters c ON c.id = w.cluster_id \
             WHERE w.agent IS NOT NULL AND c.state NOT IN ('gone', 'tearing_down') ORDER BY w.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
