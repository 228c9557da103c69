//! Attached Spark pools.

use serde::Serialize;
use spool_core::{ClusterId, ComputeId, UserId};
use sqlx::FromRow;

use crate::{ClusterRow, Result, Store, conflict_on_unique, now};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ComputeRow {
    pub id: ComputeId,
    pub name: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub master_url: String,
    pub master_ui_url: String,
    pub spark_version: String,
    pub runtime: String,
    /// The attach file as checked (`spool_spec::compute::AttachSpec`).
    pub spec_json: String,
    pub cluster_id: ClusterId,
    pub attached_by: UserId,
    pub attached_at: String,
    /// As the master reported them at attach time.
    pub workers: i64,
    pub cores: i64,
    pub memory_mb: i64,
}

/// What attaching records.
#[derive(Debug, Clone)]
pub struct NewCompute {
    pub name: String,
    pub master_url: String,
    pub master_ui_url: String,
    pub spark_version: String,
    pub runtime: String,
    pub spec_json: String,
    pub attached_by: UserId,
    pub workers: i64,
    pub cores: i64,
    pub memory_mb: i64,
}

impl Store {
    /// Records an attached pool and its cluster row (state `attached`, nothing reserved) in one
    /// transaction; `Conflict` when the name is taken.
    pub async fn attach_compute(&self, new: &NewCompute) -> Result<(ComputeRow, ClusterRow)> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        let cluster: ClusterRow = sqlx::query_as(
            "INSERT INTO clusters (owner_id, runtime, shape_key, shape_json, state, reserved_cores, \
             reserved_memory_mb, master_url, master_ui_url, created_at, ready_at) \
             VALUES (?, ?, ?, '{}', 'attached', 0, 0, ?, ?, ?, ?) RETURNING *",
        )
        .bind(new.attached_by)
        .bind(&new.runtime)
        .bind(format!("attached:{}", new.name))
        .bind(&new.master_url)
        .bind(&new.master_ui_url)
        .bind(&at)
        .bind(&at)
        .fetch_one(&mut *tx)
        .await?;
        let compute = sqlx::query_as::<_, ComputeRow>(
            "INSERT INTO computes (name, type, master_url, master_ui_url, spark_version, runtime, \
             spec_json, cluster_id, attached_by, attached_at, workers, cores, memory_mb) \
             VALUES (?, 'sparkpool', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(&new.name)
        .bind(&new.master_url)
        .bind(&new.master_ui_url)
        .bind(&new.spark_version)
        .bind(&new.runtime)
        .bind(&new.spec_json)
        .bind(cluster.id)
        .bind(new.attached_by)
        .bind(&at)
        .bind(new.workers)
        .bind(new.cores)
        .bind(new.memory_mb)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_on_unique(format!("compute {}", new.name)))?;
        tx.commit().await?;
        Ok((compute, cluster))
    }

    pub async fn compute(&self, name: &str) -> Result<Option<ComputeRow>> {
        Ok(sqlx::query_as("SELECT * FROM computes WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn computes(&self) -> Result<Vec<ComputeRow>> {
        Ok(sqlx::query_as("SELECT * FROM computes ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Forgets an attached pool: its record goes, its cluster row is `gone` (nothing is stopped;
    /// the pool is not Spool's).
    pub async fn detach_compute(&self, name: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE clusters SET state = 'gone', ended_at = ?, end_reason = 'detached' \
             WHERE id = (SELECT cluster_id FROM computes WHERE name = ?)",
        )
        .bind(now())
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM computes WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
