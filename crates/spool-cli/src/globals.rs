//! The flags every command takes, declared once: `-o/--output`, `--url` and `--token`.

use std::path::PathBuf;

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
/// `spool agent` declares its own `--token` (an agent's token, from `spool agents add`, with
/// `SPOOL_AGENT_TOKEN`): an argument of the same id in a subcommand shadows the global one,
/// which clap then does not propagate there.
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
    /// Bearer token [default: the admin token in the local data dir, `$SPOOL_HOME/admin.token`].
    #[arg(
        long,
        env = "SPOOL_TOKEN",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL
    )]
    pub token: Option<String>,
}

impl ServerArgs {
    /// A client for this server, with the token given or the local admin token.
    pub fn client(&self) -> anyhow::Result<spool_client::Client> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => {
                let path: PathBuf =
                    spool_core::paths::default_data_dir().join(spool_core::paths::ADMIN_TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_string())
                    .with_context(|| {
                        crate::error::hinted(
                            format!("read the admin token `{}`", path.display()),
                            "set SPOOL_TOKEN, or start the server once with `spool serve` (it writes the admin token there)",
                        )
                    })?
            }
        };
        Ok(spool_client::Client::new(&self.url, &token))
    }
}
