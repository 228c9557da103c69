//! `spool cluster list|show`.

use crate::Globals;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// List live serverless clusters (yours; all of them for an Owner).
    List,
    /// Show a cluster, with its network namespace, veth pair and filter rules when isolated.
    Show {
        /// The cluster's id, as `cluster list` shows it.
        id: i64,
    },
}

/// Where a worker runs: an agent's name, or the server's own host.
fn host(worker: &spool_api_types::ClusterWorkerView) -> &str {
    worker.agent.as_deref().unwrap_or("server")
}

pub async fn run(command: ClusterCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        ClusterCommand::List => {
            let clusters = globals.client()?.clusters().await?;
            output::print(globals.format(), &clusters, || {
                let mut table = output::table(&[
                    "ID",
                    "STATE",
                    "RUNTIME",
                    "CORES",
                    "MEMORY",
                    "WORKERS",
                    "MASTER UI",
                    "IDLE SINCE",
                ]);
                for c in &clusters {
                    table.add_row(vec![
                        c.id.to_string(),
                        c.state.to_string(),
                        c.runtime.clone(),
                        c.cores.to_string(),
                        format!("{} MiB", c.memory_mb),
                        c.workers
                            .iter()
                            .map(|w| format!("{} ×{}", host(w), w.executors))
                            .collect::<Vec<_>>()
                            .join(", "),
                        c.master_ui_url.clone().unwrap_or_default(),
                        c.idle_since.clone().unwrap_or_default(),
                    ]);
                }
                table
            })?;
            Ok(0)
        }
        ClusterCommand::Show { id } => {
            let cluster = globals.client()?.cluster(id).await?;
            output::print(globals.format(), &cluster, || {
                let mut rows = vec![
                    ("id", cluster.id.to_string()),
                    ("state", cluster.state.to_string()),
                    ("runtime", cluster.runtime.clone()),
                    ("cores", cluster.cores.to_string()),
                    ("memory", format!("{} MiB", cluster.memory_mb)),
                    ("master_url", cluster.master_url.clone().unwrap_or_default()),
                    (
                        "master_ui",
                        cluster.master_ui_url.clone().unwrap_or_default(),
                    ),
                    ("created_at", cluster.created_at.clone()),
                    ("network_version", cluster.network_version.to_string()),
                ];
                for w in &cluster.workers {
                    rows.push((
                        "worker",
                        format!(
                            "{}: {} executor{} ({} core{}, {} MiB)",
                            host(w),
                            w.executors,
                            if w.executors == 1 { "" } else { "s" },
                            w.cores,
                            if w.cores == 1 { "" } else { "s" },
                            w.memory_mb
                        ),
                    ));
                }
                if let Some(end) = &cluster.end_reason {
                    rows.push(("end_reason", end.clone()));
                }
                match &cluster.network {
                    None => rows.push(("isolation", "none (on the host)".to_string())),
                    Some(net) => {
                        rows.push(("isolation", net.isolation_mode.clone()));
                        rows.push(("netns", format!("{} ({})", net.netns, net.state)));
                        rows.push((
                            "veth",
                            format!(
                                "{} {} <-> eth0 {}",
                                net.host_veth, net.host_address, net.cluster_address
                            ),
                        ));
                        rows.push(("rules", net.rules.trim_end().to_string()));
                    }
                }
                output::fields(&rows)
            })?;
            Ok(0)
        }
    }
}
