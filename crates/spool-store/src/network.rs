//! The workspace's managed network settings (one row, replaced whole by each update) and the
//! network namespaces of isolated clusters.

use serde::Serialize;
use spool_core::{ClusterId, NetnsState};
use sqlx::FromRow;

use crate::{Result, Store, conflict_on_unique, now};

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

/// An isolated cluster's network namespace, veth pair and filter rules, as recorded.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ClusterNetworkRow {
    pub cluster_id: ClusterId,
    /// The name under `/run/netns`.
    pub netns: String,
    /// The host's end of the veth pair (the namespace's end is `eth0` inside it).
    pub host_veth: String,
    /// Which /30 of the cluster subnet it uses.
    pub slot: i64,
    pub host_address: String,
    /// The address the cluster's processes bind to, inside the namespace.
    pub cluster_address: String,
    pub isolation_mode: String,
    /// The workspace's outbound rules the cluster started under (JSON).
    pub outbound_rules: String,
    /// The nftables script applied inside the namespace.
    pub rules: String,
    pub state: NetnsState,
    pub created_at: String,
    pub removed_at: Option<String>,
}

/// What is recorded before a namespace is created.
#[derive(Debug, Clone)]
pub struct NewClusterNetwork<'a> {
    pub cluster_id: ClusterId,
    pub netns: &'a str,
    pub host_veth: &'a str,
    pub slot: i64,
    pub host_address: &'a str,
    pub cluster_address: &'a str,
    pub isolation_mode: &'a str,
    pub outbound_rules: &'a str,
    pub rules: &'a str,
}

impl Store {
    /// Records a namespace about to be created (`creating`); fails with `Conflict` when its
    /// slot is used by another live namespace.
    pub async fn insert_cluster_network(
        &self,
        new: &NewClusterNetwork<'_>,
    ) -> Result<ClusterNetworkRow> {
        sqlx::query_as(
            "INSERT INTO cluster_networks (cluster_id, netns, host_veth, slot, host_address, \
             cluster_address, isolation_mode, outbound_rules, rules, state, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?) RETURNING *",
        )
        .bind(new.cluster_id)
        .bind(new.netns)
        .bind(new.host_veth)
        .bind(new.slot)
        .bind(new.host_address)
        .bind(new.cluster_address)
        .bind(new.isolation_mode)
        .bind(new.outbound_rules)
        .bind(new.rules)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_unique(format!("network slot {}", new.slot)))
    }

    /// Replaces the rules applied inside a namespace (a refresh of `fqdn` rules).
    pub async fn set_cluster_network_rules(
        &self,
        cluster_id: ClusterId,
        rules: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE cluster_networks SET rules = ? WHERE cluster_id = ?")
            .bind(rules)
            .bind(cluster_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves a namespace's record to `state`; `removed` is final.
    pub async fn set_cluster_network_state(
        &self,
        cluster_id: ClusterId,
        state: NetnsState,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE cluster_networks SET state = ?1, \
             removed_at = CASE WHEN ?1 = 'removed' THEN ?2 ELSE removed_at END \
             WHERE cluster_id = ?3 AND state != 'removed'",
        )
        .bind(state)
        .bind(now())
        .bind(cluster_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A cluster's namespace record, if it was isolated.
    pub async fn cluster_network(
        &self,
        cluster_id: ClusterId,
    ) -> Result<Option<ClusterNetworkRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM cluster_networks WHERE cluster_id = ?")
                .bind(cluster_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Namespaces not yet removed, oldest first.
    pub async fn live_cluster_networks(&self) -> Result<Vec<ClusterNetworkRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM cluster_networks WHERE state != 'removed' ORDER BY cluster_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records the version of the network settings a cluster started under.
    pub async fn set_cluster_network_version(
        &self,
        cluster_id: ClusterId,
        version: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE clusters SET network_version = ? WHERE id = ?")
            .bind(version)
            .bind(cluster_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Live clusters placed under settings older than `version`, oldest first.
    pub async fn clusters_on_older_network(&self, version: i64) -> Result<Vec<crate::ClusterRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM clusters WHERE state NOT IN ('gone', 'attached') \
             AND network_version < ? ORDER BY id",
        )
        .bind(version)
        .fetch_all(&self.pool)
        .await?)
    }
}
