//! `spool cluster list`.

use crate::Globals;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// List live serverless clusters (yours; all of them for an Owner).
    List,
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
                        c.master_ui_url.clone().unwrap_or_default(),
                        c.idle_since.clone().unwrap_or_default(),
                    ]);
                }
                table
            })?;
            Ok(0)
        }
    }
}
