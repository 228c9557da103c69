//! Pipeline jobs: a parent and its nodes (child jobs), written together, and what the
//! pipeline loop and reuse read back.

use spool_core::{JobId, JobStatus};
use sqlx::{AssertSqlSafe, FromRow};

use crate::{JOB_COLUMNS, JobRow, NewJob, Result, Store, insert_job_row};

/// A pipeline's settings, by its job.
#[derive(Debug, Clone, FromRow)]
pub struct PipelineRow {
    pub job_id: JobId,
    pub continue_on_step_failure: bool,
    pub force_rerun: bool,
}

/// A node of a pipeline and the child job that runs it.
#[derive(Debug, Clone, FromRow)]
pub struct NodeRow {
    pub job_id: JobId,
    pub parent_id: JobId,
    pub node: String,
    pub component_id: String,
    pub reuse_key: Option<String>,
    pub reused_job_id: Option<JobId>,
    /// The reused job's name, when the node reused one.
    pub reused_job_name: Option<String>,
    /// The nodes this one waits for, as a JSON list of node names.
    pub depends_on_json: String,
}

impl NodeRow {
    pub fn depends_on(&self) -> Vec<String> {
        serde_json::from_str(&self.depends_on_json).unwrap_or_default()
    }
}

/// A node to record with its pipeline.
#[derive(Debug, Clone)]
pub struct NewNode {
    pub job: NewJob,
    pub node: String,
    pub component_id: String,
    pub reuse_key: Option<String>,
    pub reused_job_id: Option<JobId>,
    /// Names of the nodes it waits for (each recorded before it).
    pub depends_on: Vec<String>,
}

const NODE_COLUMNS: &str = "n.job_id, n.parent_id, n.node, n.component_id, n.reuse_key, \
    n.reused_job_id, r.name AS reused_job_name, \
    (SELECT json_group_array(dn.node) FROM job_dependencies d \
       JOIN pipeline_nodes dn ON dn.job_id = d.depends_on WHERE d.job_id = n.job_id) AS depends_on_json";

impl Store {
    /// Records a pipeline and all its nodes in one transaction: either all are there, or none.
    pub async fn insert_pipeline(
        &self,
        parent: &NewJob,
        continue_on_step_failure: bool,
        force_rerun: bool,
        nodes: &[NewNode],
    ) -> Result<JobRow> {
        let mut tx = self.pool.begin().await?;
        let parent_id = insert_job_row(&mut *tx, parent, None).await?;
        sqlx::query(
            "INSERT INTO pipelines (job_id, continue_on_step_failure, force_rerun) VALUES (?, ?, ?)",
        )
        .bind(parent_id)
        .bind(continue_on_step_failure)
        .bind(force_rerun)
        .execute(&mut *tx)
        .await?;
        let mut ids: Vec<(String, JobId)> = Vec::new();
        for node in nodes {
            let id = insert_job_row(&mut *tx, &node.job, Some(parent_id)).await?;
            sqlx::query(
                "INSERT INTO pipeline_nodes (job_id, parent_id, node, component_id, reuse_key, reused_job_id) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(parent_id)
            .bind(&node.node)
            .bind(&node.component_id)
            .bind(&node.reuse_key)
            .bind(node.reused_job_id)
            .execute(&mut *tx)
            .await?;
            for dep in &node.depends_on {
                let Some((_, dep_id)) = ids.iter().find(|(n, _)| n == dep) else {
                    continue;
                };
                sqlx::query("INSERT INTO job_dependencies (job_id, depends_on) VALUES (?, ?)")
                    .bind(id)
                    .bind(*dep_id)
                    .execute(&mut *tx)
                    .await?;
            }
            ids.push((node.node.clone(), id));
        }
        tx.commit().await?;
        self.job(parent_id)
            .await?
            .ok_or_else(|| crate::StoreError::Query(sqlx::Error::RowNotFound))
    }

    pub async fn pipeline(&self, job_id: JobId) -> Result<Option<PipelineRow>> {
        Ok(sqlx::query_as(
            "SELECT job_id, continue_on_step_failure, force_rerun FROM pipelines WHERE job_id = ?",
        )
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Pipelines that have not ended, oldest first.
    pub async fn active_pipelines(&self) -> Result<Vec<JobRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN users u ON u.id = j.owner_id \
             WHERE j.kind = 'pipeline' AND j.status NOT IN ({}) ORDER BY j.id",
            crate::sql_list(JobStatus::TERMINAL)
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// A pipeline's child jobs, in the order they were recorded (dependencies first).
    pub async fn children(&self, parent_id: JobId) -> Result<Vec<JobRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN users u ON u.id = j.owner_id \
             WHERE j.parent_id = ? ORDER BY j.id"
        )))
        .bind(parent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A pipeline's nodes, in the order they were recorded.
    pub async fn nodes(&self, parent_id: JobId) -> Result<Vec<NodeRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {NODE_COLUMNS} FROM pipeline_nodes n LEFT JOIN jobs r ON r.id = n.reused_job_id \
             WHERE n.parent_id = ? ORDER BY n.job_id"
        )))
        .bind(parent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The node a child job runs, if it is one.
    pub async fn node_of(&self, job_id: JobId) -> Result<Option<NodeRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {NODE_COLUMNS} FROM pipeline_nodes n LEFT JOIN jobs r ON r.id = n.reused_job_id \
             WHERE n.job_id = ?"
        )))
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The latest Completed node with `reuse_key` that ran itself (not one that reused
    /// another), with its job.
    pub async fn reusable_node(&self, reuse_key: &str) -> Result<Option<JobRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM pipeline_nodes n JOIN jobs j ON j.id = n.job_id \
             JOIN users u ON u.id = j.owner_id \
             WHERE n.reuse_key = ? AND n.reused_job_id IS NULL AND j.status = 'Completed' \
             ORDER BY j.id DESC LIMIT 1"
        )))
        .bind(reuse_key)
        .fetch_optional(&self.pool)
        .await?)
    }
}
