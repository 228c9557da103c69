//! `spool workspace show|update` and `spool workspace identity ...`: the workspace's managed
//! network settings (serverless clusters started afterwards run under them) and its identities.

use std::path::PathBuf;

use anyhow::Context;
use spool_api_types as api;

use crate::Globals;
use crate::commands::identity::{self, WorkspaceIdentityCommand};
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum WorkspaceCommand {
    /// Show the workspace's managed network: isolation mode, outbound rules and the settings'
    /// version (`disabled` with no rules until first updated). Not enforced yet.
    Show,
    /// Replace the managed network from a workspace file shaped like Azure ML's
    /// (`managed_network: {isolation_mode, outbound_rules}`; Owners only). Clusters started
    /// afterwards are meant to use it; enforcement is not built yet.
    Update {
        /// The workspace YAML, e.g. `examples/workspace/network.yml`.
        #[arg(long)]
        file: PathBuf,
    },
    /// The user-assigned identities serverless jobs may act as.
    #[command(subcommand)]
    Identity(WorkspaceIdentityCommand),
}

pub async fn run(command: WorkspaceCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        WorkspaceCommand::Show => {
            let workspace = globals.client()?.workspace().await?;
            print(globals, &workspace)?;
        }
        WorkspaceCommand::Update { file } => {
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("read workspace file `{}`", file.display()))?;
            let workspace = globals
                .client()?
                .update_workspace(&file.display().to_string(), &yaml)
                .await?;
            let older = workspace.clusters_on_older_settings.len();
            eprintln!(
                "updated the managed network (version {}); serverless clusters started from now on run under it{}",
                workspace.managed_network.version,
                if older == 0 {
                    String::new()
                } else {
                    format!(" ({older} running cluster(s) keep their rules until torn down)")
                }
            );
            print(globals, &workspace)?;
        }
        WorkspaceCommand::Identity(command) => {
            return identity::run_workspace(command, globals).await;
        }
    }
    Ok(0)
}

/// A rule's destination on one line: the host, or its fields as `key=value`.
fn destination(rule: &api::OutboundRuleView) -> String {
    match &rule.destination {
        serde_json::Value::String(host) => host.clone(),
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(text) => format!("{key}={text}"),
                other => format!("{key}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn print(globals: &Globals, workspace: &api::WorkspaceView) -> anyhow::Result<()> {
    let network = &workspace.managed_network;
    output::print(globals.format(), workspace, || {
        let mut table = output::fields(&[
            ("isolation_mode", network.isolation_mode.clone()),
            ("version", network.version.to_string()),
            ("updated_by", network.updated_by.clone().unwrap_or_default()),
            ("updated_at", network.updated_at.clone().unwrap_or_default()),
        ]);
        let mut rules = output::table(&["RULE", "TYPE", "DESTINATION"]);
        for rule in &network.outbound_rules {
            rules.add_row(vec![
                rule.name.clone(),
                rule.kind.clone(),
                destination(rule),
            ]);
        }
        let rules = if network.outbound_rules.is_empty() {
            "none".to_string()
        } else {
            rules.to_string()
        };
        table.add_row(vec!["outbound_rules".to_string(), rules]);
        let older: Vec<String> = workspace
            .clusters_on_older_settings
            .iter()
            .map(|c| {
                format!(
                    "cluster {} ({}, version {})",
                    c.id, c.state, c.network_version
                )
            })
            .collect();
        table.add_row(vec![
            "clusters_on_older_settings".to_string(),
            if older.is_empty() {
                "none".to_string()
            } else {
                older.join("\n")
            },
        ]);
        table
    })
}
