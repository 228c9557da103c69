//! `spool compute attach|list|show|detach`: attached Spark pools.

use std::path::PathBuf;

use anyhow::Context;

use crate::Globals;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum ComputeCommand {
    /// Attach a running Spark standalone pool from a YAML file (`name`, `type: sparkpool`,
    /// `master_url: spark://host:7077`, optional `master_ui_url`, `identity`, `description`,
    /// `tags`). The master must answer; its Spark version selects the runtime. Owners and
    /// Contributors only.
    Attach {
        /// The pool's YAML.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// List attached pools.
    List,
    /// Show an attached pool with its live health (workers, cores, memory, running apps).
    Show {
        /// The pool's name.
        #[arg(long, short)]
        name: String,
    },
    /// Detach a pool (the pool keeps running): the Contributor who attached it, or an Owner.
    /// Refused while jobs or sessions run on it, unless `--force`, which ends them.
    Detach {
        /// The pool's name.
        #[arg(long, short)]
        name: String,
        /// End the jobs and sessions running on it.
        #[arg(long)]
        force: bool,
    },
}

fn print_one(format: output::Format, c: &spool_api_types::ComputeView) -> anyhow::Result<()> {
    output::print(format, c, || {
        let mut rows = vec![
            ("name", c.name.clone()),
            ("type", c.kind.clone()),
            ("master", c.master_url.clone()),
            ("master UI", c.master_ui_url.clone()),
            (
                "spark",
                format!("{} (runtime {})", c.spark_version, c.runtime),
            ),
            (
                "identity",
                if c.identity.user_assigned_identities.is_empty() {
                    c.identity.kind.clone()
                } else {
                    format!(
                        "{}: {}",
                        c.identity.kind,
                        c.identity.user_assigned_identities.join(", ")
                    )
                },
            ),
            ("description", c.description.clone().unwrap_or_default()),
            ("attached", c.attached_at.clone()),
        ];
        if let Some(h) = &c.health {
            rows.push(("status", h.status.clone()));
            rows.push((
                "workers",
                format!(
                    "{} alive, {}/{} cores used, {}/{} MiB used, {} running apps",
                    h.alive_workers,
                    h.cores_used,
                    h.cores,
                    h.memory_used_mb,
                    h.memory_mb,
                    h.active_apps
                ),
            ));
        }
        output::fields(&rows)
    })
}

pub async fn run(command: ComputeCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        ComputeCommand::Attach { file } => {
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("read pool file `{}`", file.display()))?;
            let compute = globals
                .client()?
                .attach_compute(&file.display().to_string(), &yaml)
                .await?;
            print_one(globals.format(), &compute)?;
            Ok(0)
        }
        ComputeCommand::List => {
            let computes = globals.client()?.computes().await?;
            output::print(globals.format(), &computes, || {
                let mut table =
                    output::table(&["NAME", "TYPE", "MASTER", "SPARK", "RUNTIME", "IDENTITY"]);
                for c in &computes {
                    table.add_row(vec![
                        c.name.clone(),
                        c.kind.clone(),
                        c.master_url.clone(),
                        c.spark_version.clone(),
                        c.runtime.clone(),
                        c.identity.kind.clone(),
                    ]);
                }
                table
            })?;
            Ok(0)
        }
        ComputeCommand::Show { name } => {
            let compute = globals.client()?.compute(&name).await?;
            print_one(globals.format(), &compute)?;
            Ok(0)
        }
        ComputeCommand::Detach { name, force } => {
            globals.client()?.detach_compute(&name, force).await?;
            eprintln!("[spool] detached `{name}` (the pool itself keeps running)");
            Ok(0)
        }
    }
}
