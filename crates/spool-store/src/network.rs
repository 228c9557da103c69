//! The workspace's managed network settings: one row, replaced whole by each update.

use serde::Serialize;
use sqlx::FromRow;

use crate::{Result, Store, now};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct NetworkRow {
    pub isolation_mode: String,
    /// The checked rules (`spool_spec::network::OutboundRule`), as a JSON list.
    pub rules_json: String,
    /// 1 for the first update, one more for each after it.
    pub version: i64,
    /// Whether the mode was ever `allow_internet_outbound`.
    pub had_internet_outbound: bool,
    /// The user's name.
    pub updated_by: String,
    pub updated_at: String,
}

impl Store {
    /// The settings, or `None` when they were never updated.
    pub async fn workspace_network(&self) -> Result<Option<NetworkRow>> {
        Ok(sqlx::query_as(
            "SELECT isolation_mode, rules_json, version, had_internet_outbound, updated_by, \
             updated_at \
             FROM workspace_network WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Replaces the settings if they are still at `expected_version` (0: never set), so an
    /// update decided on what it read never overwrites one that came in between; `None` when
    /// they are not.
    pub async fn set_workspace_network(
        &self,
        expected_version: i64,
        isolation_mode: &str,
        rules_json: &str,
        updated_by: &str,
    ) -> Result<Option<NetworkRow>> {
        Ok(sqlx::query_as(
            "INSERT INTO workspace_network \
             (id, isolation_mode, rules_json, version, had_internet_outbound, updated_by, \
             updated_at) \
             SELECT 1, ?1, ?2, 1, ?1 = 'allow_internet_outbound', ?3, ?4 \
             WHERE ?5 = 0 OR EXISTS (SELECT 1 FROM workspace_network WHERE id = 1) \
             ON CONFLICT (id) DO UPDATE SET isolation_mode = excluded.isolation_mode, \
             rules_json = excluded.rules_json, version = workspace_network.version + 1, \
             had_internet_outbound = workspace_network.had_internet_outbound \
             OR excluded.had_internet_outbound, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at \
             WHERE workspace_network.version = ?5 \
             RETURNING isolation_mode, rules_json, version, had_internet_outbound, updated_by, \
             updated_at",
        )
        .bind(isolation_mode)
        .bind(rules_json)
        .bind(updated_by)
        .bind(now())
        .bind(expected_version)
        .fetch_optional(&self.pool)
        .await?)
    }
}
