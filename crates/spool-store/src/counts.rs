//! Counts over the work tables, for metrics: one grouped query each, so a scrape costs the same
//! whatever the store holds.

use spool_core::{JobStatus, SessionState};

use crate::{Result, Store, json_list};

/// Jobs and sessions waiting to be placed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waiting {
    pub count: i64,
    /// When the oldest of them was asked for (RFC 3339).
    pub oldest: Option<String>,
}

impl Store {
    /// Jobs by kind and status.
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status ORDER BY kind, status",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sessions by state and whether they are unclaimed pre-warmed drivers.
    pub async fn session_counts(&self) -> Result<Vec<(String, bool, i64)>> {
        Ok(sqlx::query_as(
            "SELECT state, prewarmed != 0, COUNT(*) FROM sessions GROUP BY state, prewarmed != 0 \
             ORDER BY state",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// What waits for placement: Spark and command jobs not yet placed whose dependencies
    /// completed, and sessions not started (pre-warmed drivers being filled included).
    pub async fn waiting_work(&self) -> Result<Waiting> {
        let (count, oldest): (i64, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM ( \
                 SELECT j.created_at FROM jobs j \
                 WHERE j.status IN (SELECT value FROM json_each(?1)) AND j.kind != 'pipeline' \
                 AND NOT EXISTS (SELECT 1 FROM job_dependencies d JOIN jobs up ON up.id = d.depends_on \
                                 WHERE d.job_id = j.id AND up.status != 'Completed') \
                 UNION ALL \
                 SELECT created_at FROM sessions WHERE state = ?2)",
        )
        .bind(json_list(JobStatus::WAITING))
        .bind(SessionState::NotStarted.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(Waiting { count, oldest })
    }
}
