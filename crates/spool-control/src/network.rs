//! The workspace's managed network settings: read by anyone, replaced by Owners from a
//! workspace file (`spool_spec::network`). Clusters started afterwards run under them
//! (`netns.rs` isolates them); the live ones still on older settings are listed.

use spool_api_types as api;
use std::collections::HashSet;

use spool_spec::network::{
    EndpointTarget, IsolationMode, OutboundRule, missing_endpoints, parse_workspace,
};
use spool_store::NetworkRow;

use crate::{Action, Caller, Control, ControlError, Result, invalid};

/// The settings as shown; the default (`disabled`, no rules, version 0) when never set.
fn view(row: Option<NetworkRow>) -> Result<api::ManagedNetworkView> {
    let Some(row) = row else {
        return Ok(api::ManagedNetworkView {
            isolation_mode: IsolationMode::default().as_str().to_string(),
            outbound_rules: Vec::new(),
            version: 0,
            updated_by: None,
            updated_at: None,
        });
    };
    let rules: Vec<api::OutboundRuleView> =
        serde_json::from_str(&row.rules_json).map_err(anyhow::Error::from)?;
    Ok(api::ManagedNetworkView {
        isolation_mode: row.isolation_mode.to_string(),
        outbound_rules: rules,
        version: row.version,
        updated_by: Some(row.updated_by),
        updated_at: Some(row.updated_at),
    })
}

impl Control {
    /// The workspace's settings (every role).
    pub async fn workspace(&self, caller: &Caller) -> Result<api::WorkspaceView> {
        caller.require(Action::ViewWorkspace)?;
        let managed_network = view(self.store().workspace_network().await?)?;
        let clusters_on_older_settings =
            self.older_clusters(caller, managed_network.version).await?;
        Ok(api::WorkspaceView {
            managed_network,
            clusters_on_older_settings,
        })
    }

    /// The caller's live serverless clusters started under settings before `version`.
    async fn older_clusters(
        &self,
        caller: &Caller,
        version: i64,
    ) -> Result<Vec<api::OlderCluster>> {
        Ok(self
            .store()
            .clusters_on_older_network(version)
            .await?
            .into_iter()
            .filter(|c| caller.sees(c.owner_id))
            .map(|c| api::OlderCluster {
                id: c.id,
                state: c.state,
                network_version: c.network_version,
            })
            .collect())
    }

    /// Replaces the managed network from a workspace file (Owners only). Every private
    /// endpoint must name a datastore or attached compute that exists, and a workspace with
    /// `allow_internet_outbound` never switches to `allow_only_approved_outbound` (Azure's rule).
    pub async fn update_workspace(
        &self,
        caller: &Caller,
        file: &str,
        text: &str,
    ) -> Result<api::WorkspaceView> {
        caller.require(Action::UpdateWorkspace)?;
        let network = crate::load_user_yaml(file, text, parse_workspace).await?;
        // Settings this host could not enforce are refused, rather than failing every cluster.
        if network.isolation_mode != IsolationMode::Disabled
            && let Some(reason) = crate::netns::why_not_isolatable()
        {
            return Err(ControlError::Conflict {
                target: "managed_network.isolation_mode".into(),
                message: format!(
                    "{file}: `managed_network.isolation_mode` is `{}`, but {reason}\nhint: run the server as root with nftables installed, or keep `isolation_mode: disabled`",
                    network.isolation_mode.as_str()
                ),
            });
        }
        // The lookups first; which rules name nothing is decided by `missing_endpoints`.
        let mut existing = HashSet::new();
        for rule in &network.outbound_rules {
            let OutboundRule::PrivateEndpoint { destination, .. } = rule else {
                continue;
            };
            let Some(target) = destination.target() else {
                continue;
            };
            let exists = match &target {
                EndpointTarget::Datastore(store) => self.store().datastore(store).await?.is_some(),
                EndpointTarget::Compute(compute) => self.store().compute(compute).await?.is_some(),
            };
            if exists {
                existing.insert(target);
            }
        }
        let missing = missing_endpoints(&network, |target| existing.contains(target));
        if let Some(first) = missing.first() {
            let lines: Vec<String> = missing.iter().map(|d| d.render(file)).collect();
            return Err(invalid(first.field.clone(), lines.join("\n")));
        }
        let current = self.store().workspace_network().await?;
        // A workspace that once allowed internet outbound is held to it as if it still did,
        // so going by way of `disabled` does not get around Azure's rule.
        let (version, held_to) = match &current {
            Some(row) if row.had_internet_outbound => {
                (row.version, IsolationMode::AllowInternetOutbound)
            }
            Some(row) => (row.version, row.isolation_mode),
            None => (0, IsolationMode::default()),
        };
        if let Some(refusal) = held_to.refuses_switch_to(network.isolation_mode) {
            let now = current
                .as_ref()
                .map_or(IsolationMode::default(), |row| row.isolation_mode);
            return Err(ControlError::Conflict {
                target: "managed_network.isolation_mode".into(),
                message: format!(
                    "{file}: `managed_network.isolation_mode`: {refusal} (the mode is `{now}` now)\nhint: keep `allow_internet_outbound` and write outbound rules for it, or `disabled`"
                ),
            });
        }
        let rules_json =
            serde_json::to_string(&network.outbound_rules).map_err(anyhow::Error::from)?;
        let row = self
            .store()
            .set_workspace_network(version, network.isolation_mode, &rules_json, &caller.name)
            .await?
            .ok_or_else(|| ControlError::Conflict {
                target: "managed_network".into(),
                message: "the workspace's network settings changed meanwhile; run the update again"
                    .into(),
            })?;
        tracing::info!(
            isolation_mode = %row.isolation_mode,
            version = row.version,
            by = %caller.name,
            "workspace network settings updated"
        );
        let managed_network = view(Some(row))?;
        let clusters_on_older_settings =
            self.older_clusters(caller, managed_network.version).await?;
        Ok(api::WorkspaceView {
            managed_network,
            clusters_on_older_settings,
        })
    }
}

/// Resolves the `fqdn` rules of running isolated clusters again every
/// [`crate::netns::FQDN_REFRESH`], so a name that moves keeps working.
pub(crate) async fn fqdn_refresh_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::netns::FQDN_REFRESH) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = control.provisioner().namespaces().refresh().await {
            tracing::warn!(error = %crate::error_chain(e.as_ref()), "refresh the addresses of `fqdn` rules");
        }
    }
}
