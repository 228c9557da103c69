//! `spool env list|show|prune`: the cache of built environments.

use crate::Globals;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum EnvCommand {
    /// List cached environments (those your sessions and jobs used; all for an Owner).
    List,
    /// Show one environment by its key (or a unique prefix).
    Show {
        /// The environment's key, or a unique prefix of it.
        key: String,
    },
    /// Print what an environment's build printed (uv's output, with Spool's own lines).
    Log {
        /// The environment's key, or a unique prefix of it.
        key: String,
    },
    /// Remove environments no live session or running job uses: those past the configured age
    /// and size limits, or all with `--all`. Owners only.
    Prune {
        /// Every unused environment, whatever its age.
        #[arg(long)]
        all: bool,
    },
}

fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

pub async fn run(command: EnvCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        EnvCommand::List => {
            let envs = globals.client()?.environments().await?;
            output::print(globals.format(), &envs, || {
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
        EnvCommand::Show { key } => {
            let env = globals.client()?.environment(&key).await?;
            output::print(globals.format(), &env, || {
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
        EnvCommand::Log { key } => {
            let log = globals.client()?.environment_log(&key).await?;
            use std::io::Write;
            std::io::stdout().write_all(&log)?;
            Ok(0)
        }
        EnvCommand::Prune { all } => {
            let pruned = globals.client()?.prune_environments(all).await?;
            output::print(globals.format(), &pruned, || {
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
