//! The workspace's managed network settings (one row, replaced whole by each update) and the
//! network namespaces of isolated clusters.

use serde::Serialize;
use spool_core::{ClusterId, IsolationMode, NetnsState, Owner, OwnerKind};
use sqlx::FromRow;

use crate::{Result, Store, conflict_on_unique, now};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct NetworkRow {
    pub isolation_mode: IsolationMode,
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
        isolation_mode: IsolationMode,
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

/// The network namespace of a serverless cluster or a command job, with its veth pair and
/// filter rules, as recorded.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct NetnsRow {
    pub id: i64,
    pub owner_kind: OwnerKind,
    pub owner_id: i64,
    /// The name under `/run/netns`.
    pub netns: String,
    /// The host's end of the veth pair (the namespace's end is `eth0` inside it).
    pub host_veth: String,
    /// Which /30 of the cluster subnet it uses.
    pub slot: i64,
    pub host_address: String,
    /// The address its processes bind to, inside the namespace.
    pub inner_address: String,
    pub isolation_mode: IsolationMode,
    /// The workspace's outbound rules it started under (JSON).
    pub outbound_rules: String,
    /// The nftables script applied inside the namespace.
    pub rules: String,
    pub state: NetnsState,
    pub created_at: String,
    pub removed_at: Option<String>,
}

impl NetnsRow {
    /// What the namespace belongs to.
    pub fn owner(&self) -> Owner {
        Owner::new(self.owner_kind, self.owner_id)
    }
}

/// What is recorded before a namespace is created.
#[derive(Debug, Clone)]
pub struct NewNetns<'a> {
    pub owner: Owner,
    pub netns: &'a str,
    pub host_veth: &'a str,
    pub slot: i64,
    pub host_address: &'a str,
    pub inner_address: &'a str,
    pub isolation_mode: IsolationMode,
    pub outbound_rules: &'a str,
    pub rules: &'a str,
}

impl Store {
    /// Records a namespace about to be created (`creating`); fails with `Conflict` when its
    /// slot is used by another live namespace (or its owner has one).
    pub async fn insert_netns(&self, new: &NewNetns<'_>) -> Result<NetnsRow> {
        sqlx::query_as(
            "INSERT INTO network_namespaces (owner_kind, owner_id, netns, host_veth, slot, \
             host_address, inner_address, isolation_mode, outbound_rules, rules, state, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?) RETURNING *",
        )
        .bind(new.owner.kind())
        .bind(new.owner.raw_id())
        .bind(new.netns)
        .bind(new.host_veth)
        .bind(new.slot)
        .bind(new.host_address)
        .bind(new.inner_address)
        .bind(new.isolation_mode)
        .bind(new.outbound_rules)
        .bind(new.rules)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_unique(format!("network slot {}", new.slot)))
    }

    /// Replaces the rules applied inside a namespace (a refresh of `fqdn` rules).
    pub async fn set_netns_rules(&self, id: i64, rules: &str) -> Result<()> {
        sqlx::query("UPDATE network_namespaces SET rules = ? WHERE id = ?")
            .bind(rules)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves a namespace's record to `state`; `removed` is final.
    pub async fn set_netns_state(&self, id: i64, state: NetnsState) -> Result<()> {
        sqlx::query(
            "UPDATE network_namespaces SET state = ?1, \
             removed_at = CASE WHEN ?1 = 'removed' THEN ?2 ELSE removed_at END \
             WHERE id = ?3 AND state != 'removed'",
        )
        .bind(state)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest namespace of an owner, if it ever had one.
    pub async fn netns_of(&self, owner: Owner) -> Result<Option<NetnsRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM network_namespaces WHERE owner_kind = ? AND owner_id = ? \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(owner.kind())
        .bind(owner.raw_id())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Namespaces not yet removed, oldest first.
    pub async fn live_namespaces(&self) -> Result<Vec<NetnsRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM network_namespaces WHERE state != 'removed' ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
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
