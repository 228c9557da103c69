//! `spool runtime list|install`: this machine's runtime cache.

use std::io::IsTerminal;
use std::path::PathBuf;

use serde::Serialize;

use crate::Globals;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum RuntimeCommand {
    /// List supported runtimes and whether each is installed on this machine.
    List {
        /// Runtime cache. Defaults to $SPOOL_CACHE_DIR, else ~/.cache/spool.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Install a runtime (pyspark with pandas, numpy and pyarrow pinned for it) into this
    /// machine's cache. Idempotent; safe to run concurrently.
    Install {
        /// `3.4`, `3.5` or `4.3` (`3.4.0` and the like are accepted too).
        #[arg(value_name = "VERSION")]
        runtime_version: String,
        /// Runtime cache. Defaults to $SPOOL_CACHE_DIR, else ~/.cache/spool.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Serialize)]
struct RuntimeRow {
    version: String,
    pyspark: String,
    scala: String,
    packages: Vec<String>,
    default: bool,
    installed: bool,
    path: Option<String>,
}

fn normalize(version: &str) -> String {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() >= 2 {
        format!("{}.{}", parts[0], parts[1])
    } else {
        version.to_string()
    }
}

pub async fn run(command: RuntimeCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        RuntimeCommand::List { cache_dir } => {
            let cache = spool_runtime::RuntimeCache::new(
                cache_dir.unwrap_or_else(spool_core::paths::default_cache_dir),
            );
            let rows: Vec<RuntimeRow> = spool_runtime::RUNTIMES
                .iter()
                .map(|r| {
                    let installed = cache.installed(r.version);
                    RuntimeRow {
                        version: r.version.to_string(),
                        pyspark: r.pyspark.to_string(),
                        scala: r.scala.to_string(),
                        packages: r.packages.iter().map(|p| p.to_string()).collect(),
                        default: r.version == spool_runtime::DEFAULT_RUNTIME,
                        installed: installed.is_some(),
                        path: installed.map(|i| i.venv.display().to_string()),
                    }
                })
                .collect();
            output::print(globals.format(), &rows, || {
                let mut table =
                    output::table(&["VERSION", "PYSPARK", "PACKAGES", "DEFAULT", "INSTALLED"]);
                for r in &rows {
                    table.add_row(vec![
                        r.version.clone(),
                        r.pyspark.clone(),
                        r.packages.join(" "),
                        if r.default {
                            "yes".into()
                        } else {
                            String::new()
                        },
                        if r.installed {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                    ]);
                }
                table
            })?;
            Ok(0)
        }
        RuntimeCommand::Install {
            runtime_version,
            cache_dir,
        } => {
            let version = normalize(&runtime_version);
            let cache = spool_runtime::RuntimeCache::new(
                cache_dir.unwrap_or_else(spool_core::paths::default_cache_dir),
            );
            if let Some(installed) = cache.complete(&version) {
                eprintln!(
                    "runtime {version} (pyspark {}) is already installed at {}",
                    installed.pyspark,
                    installed.venv.display()
                );
                return Ok(0);
            }
            let progress =
                spool_server::InstallProgress::new(std::io::stderr().is_terminal(), &version);
            let result = cache.install(&version, &progress).await;
            progress.finish();
            let installed = result?;
            eprintln!(
                "runtime {version} (pyspark {}) installed at {} in {:.1} s",
                installed.pyspark,
                installed.venv.display(),
                installed.install_seconds
            );
            Ok(0)
        }
    }
}
