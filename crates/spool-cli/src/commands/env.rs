//! `spool env list|show|prune`: the cache of built environments.

use crate::ServerArgs;
use crate::output::{self, Format};

#[derive(Debug, clap::Subcommand)]
pub enum EnvCommand {
    /// List cached environments (those your sessions and jobs used; all for the admin).
    List {
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show one environment by its key (or a unique prefix).
    Show {
        key: String,
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove environments no live session or running job uses: those past the configured age
    /// and size limits, or all with `--all`. Admin only.
    Prune {
        #[arg(long)]
        all: bool,
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

pub async fn run(command: EnvCommand) -> anyhow::Result<i32> {
    match command {
        EnvCommand::List { output, server } => {
            let envs = server.client()?.environments().await?;
            output::print(output::resolve(output), &envs, || {
                let mut table =
                    output::table(&["KEY", "RUNTIME", "PACKAGES", "SIZE", "BUILD", "LAST USED"]);
                for e in &envs {
                    table.add_row(vec![
                        e.key.clone(),
                        e.runtime.clone(),
                        e.requirements.join(" "),
                        size(e.size_bytes),
                        format!("{:.1} s", e.build_seconds),
                        e.last_used.clone(),
                    ]);
                }
                table
            })?;
            Ok(0)
        }
        EnvCommand::Show {
            key,
            output,
            server,
        } => {
            let env = server.client()?.environment(&key).await?;
            output::print(output::resolve(output), &env, || {
                output::fields(&[
                    ("key", env.key.clone()),
                    (
                        "runtime",
                        format!("{} (pyspark {})", env.runtime, env.pyspark),
                    ),
                    ("packages", env.requirements.join("\n")),
                    ("python", env.python.clone()),
                    ("size", size(env.size_bytes)),
                    (
                        "built",
                        format!("{} in {:.1} s", env.built_at, env.build_seconds),
                    ),
                    ("last used", env.last_used.clone()),
                ])
            })?;
            Ok(0)
        }
        EnvCommand::Prune {
            all,
            output,
            server,
        } => {
            let pruned = server.client()?.prune_environments(all).await?;
            output::print(output::resolve(output), &pruned, || {
                let mut table = output::table(&["REMOVED"]);
                for key in &pruned.removed {
                    table.add_row(vec![key.clone()]);
                }
                table
            })?;
            Ok(0)
        }
    }
}
