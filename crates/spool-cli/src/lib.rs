//! The `spool` command line: `spool <noun> <verb>`, mirroring `az ml job` for jobs.
//!
//! Commands talk to the server through `spool-client`, except `serve` (which runs the server) and
//! `runtime` (which manages this machine's runtime cache).

mod archive;
mod commands;
mod output;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use output::Format;

/// Spool: serverless Apache Spark compute on machines you own.
#[derive(Debug, Parser)]
#[command(name = "spool", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Spool server (REST API on 127.0.0.1:8998, local serverless Spark backend).
    Serve(commands::serve::ServeArgs),
    /// Submit and follow Spark batch jobs from Azure-ML-style job YAML.
    #[command(subcommand)]
    Job(commands::job::JobCommand),
    /// Interactive Spark sessions: create, run code, a shell.
    #[command(subcommand)]
    Session(commands::session::SessionCommand),
    /// List, create and upload to datastores (`azureml://datastores/<name>/paths/<path>`).
    #[command(subcommand)]
    Datastore(commands::datastore::DatastoreCommand),
    /// List and install Spark runtimes on this machine.
    #[command(subcommand)]
    Runtime(commands::runtime::RuntimeCommand),
    /// Show serverless clusters.
    #[command(subcommand)]
    Cluster(commands::cluster::ClusterCommand),
    /// Run an agent on a worker host: it starts and stops Spark workers for the server.
    Agent(commands::agent::AgentArgs),
    /// Register and list agents (worker hosts).
    #[command(subcommand)]
    Agents(commands::agent::AgentsCommand),
    /// Attach, list, show and detach Spark pools that you already run.
    #[command(subcommand)]
    Compute(commands::compute::ComputeCommand),
    /// List, show and prune cached Python environments (built from conda files).
    #[command(subcommand)]
    Env(commands::env::EnvCommand),
    /// Manage users and their tokens.
    #[command(subcommand)]
    User(commands::user::UserCommand),
}

/// Where the CLI finds the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Server URL.
    #[arg(long, env = "SPOOL_URL", default_value = spool_core::paths::DEFAULT_URL, global = true)]
    pub url: String,
    /// Bearer token. Defaults to the admin token in the local data dir (`$SPOOL_HOME/admin.token`).
    #[arg(long, env = "SPOOL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

impl ServerArgs {
    pub fn client(&self) -> anyhow::Result<spool_client::Client> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => {
                let path: PathBuf =
                    spool_core::paths::default_data_dir().join(spool_core::paths::ADMIN_TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_string())
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "no token: `{}` is not readable\nhint: set SPOOL_TOKEN, or start the server once with `spool serve` (it writes the admin token there)",
                            path.display()
                        )
                    })?
            }
        };
        Ok(spool_client::Client::new(&self.url, &token))
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Job(cmd) => commands::job::run(cmd).await,
            Command::Session(cmd) => commands::session::run(cmd).await,
            Command::Datastore(cmd) => commands::datastore::run(cmd).await,
            Command::Runtime(cmd) => commands::runtime::run(cmd).await,
            Command::Cluster(cmd) => commands::cluster::run(cmd).await,
            Command::Env(cmd) => commands::env::run(cmd).await,
            Command::Compute(cmd) => commands::compute::run(cmd).await,
            Command::Agent(args) => commands::agent::run_agent(args).await,
            Command::Agents(cmd) => commands::agent::run_agents(cmd).await,
            Command::User(cmd) => commands::user::run(cmd).await,
        }
    });
    // Everything the command owns has been stopped or handed over by now; watchers of
    // processes left running for the next server must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

/// Sets up logging to stderr: `info` for the server, `warn` for other commands, or `SPOOL_LOG`.
pub fn init_tracing(is_server: bool) {
    let default = if is_server { "info" } else { "warn" };
    let filter = std::env::var(spool_core::env::SPOOL_LOG).unwrap_or_else(|_| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
