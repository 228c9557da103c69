//! The flags every command takes, declared once: `-o/--output`, `--url`, `--token` and
//! `--token-file`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::output::{self, Format};

/// The heading of the global flags in every command's `--help`.
const GLOBAL: &str = "Global options";

/// What every command receives besides its own arguments. The flags are global: they may
/// come before or after the subcommand (`spool -o json job list`, `spool job list -o json`).
#[derive(Debug, Clone, clap::Args)]
pub struct Globals {
    /// How to print resources [default: table on a terminal, else json].
    #[arg(short, long, value_enum, global = true, help_heading = GLOBAL)]
    pub output: Option<Format>,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Globals {
    /// The output format: the flag, else table on a terminal and JSON otherwise.
    pub fn format(&self) -> Format {
        output::resolve(self.output)
    }

    /// A client for the server the flags name.
    pub fn client(&self) -> anyhow::Result<spool_client::Client> {
        self.server.client()
    }
}

/// Where the CLI finds the server.
///
/// `spool agent` declares its own `--token` and `--token-file` (an agent's token, from `spool
/// agents add`, with `SPOOL_AGENT_TOKEN`): an argument of the same id in a subcommand shadows
/// the global one, which clap then does not propagate there.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The Spool server the command talks to.
    #[arg(
        long,
        env = "SPOOL_URL",
        default_value = spool_core::paths::DEFAULT_URL,
        global = true,
        help_heading = GLOBAL
    )]
    pub url: String,
    /// Bearer token. Visible to other users in `ps`: prefer `SPOOL_TOKEN` or `--token-file`
    /// [default: `$SPOOL_TOKEN`, else the admin token in the local data dir,
    /// `$SPOOL_HOME/admin.token`].
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub token: Option<String>,
    /// Read the bearer token from this file (its first line).
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        conflicts_with = "token",
        help_heading = GLOBAL
    )]
    pub token_file: Option<PathBuf>,
}

/// What `--token` costs: every user of the host sees the command line.
pub(crate) const TOKEN_IN_PS_WARNING: &str =
    "warning: --token is visible to other users in ps; use SPOOL_TOKEN or --token-file";

/// Finds a token: the flag (with a warning on stderr), else the file, else the variable.
/// `None` when none is given.
pub(crate) fn resolve_token(
    flag: Option<&str>,
    file: Option<&Path>,
    variable: &str,
    flag_warning: &str,
) -> anyhow::Result<Option<String>> {
    if let Some(token) = flag {
        eprintln!("{flag_warning}");
        return Ok(Some(token.to_string()));
    }
    if let Some(path) = file {
        return read_token_file(path).map(Some);
    }
    Ok(std::env::var(variable)
        .ok()
        .filter(|t| !t.trim().is_empty()))
}

/// Reads a token from the first line of a file.
pub(crate) fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the token file `{}`", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        anyhow::bail!(crate::error::hinted(
            format!("the token file `{}` is empty", path.display()),
            "write the token on its first line",
        ));
    }
    Ok(token.to_string())
}

impl ServerArgs {
    /// A client for this server, with the token given or the local admin token.
    pub fn client(&self) -> anyhow::Result<spool_client::Client> {
        let given = resolve_token(
            self.token.as_deref(),
            self.token_file.as_deref(),
            spool_core::env::SPOOL_TOKEN,
            TOKEN_IN_PS_WARNING,
        )?;
        let token = match given {
            Some(token) => token,
            None => {
                let path: PathBuf =
                    spool_core::paths::default_data_dir().join(spool_core::paths::ADMIN_TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_string())
                    .with_context(|| {
                        crate::error::hinted(
                            format!("read the admin token `{}`", path.display()),
                            "set SPOOL_TOKEN or pass --token-file, or start the server once with `spool serve` (it writes the admin token there)",
                        )
                    })?
            }
        };
        Ok(spool_client::Client::new(&self.url, &token))
    }
}
