//! The `spool` command line: `spool <noun> <verb>`, mirroring `az ml job` for jobs.
//!
//! Commands talk to the server through `spool-client`, except `serve` (which runs the server) and
//! `runtime` (which manages this machine's runtime cache).

mod archive;
mod commands;
mod error;
mod globals;
mod output;

use anyhow::Context;
use clap::{Parser, Subcommand};

pub use error::render_error;
pub use globals::{Globals, ServerArgs};
pub use output::Format;

/// Spool: serverless Apache Spark compute on machines you own.
#[derive(Debug, Parser)]
#[command(name = "spool", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Spool server (REST API on 127.0.0.1:8998, local serverless Spark backend).
    ///
    /// Data access: every job, session and batch is checked at submit against its identity's
    /// data roles. Run as root, the server also has the operating system enforce them while
    /// work runs: each identity's Spark processes run under an OS account of its own
    /// (`spool-<instance>-<n>`, in the group `spool`), and datastore folders carry ACLs for
    /// exactly the assigned roles. Not run as root, it cannot switch accounts: it says so at
    /// start, keeps the submit-time checks, and marks jobs `access_enforced: false`. Set
    /// `[access] enforce = "on"` in config.toml to refuse to start without it, `"off"` to
    /// turn it off.
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
    /// Register, list, show, archive and restore components that pipelines use
    /// (`azureml:<name>:<version>`).
    #[command(subcommand)]
    Component(commands::component::ComponentCommand),
    /// Attach, list, show and detach Spark pools that you already run.
    #[command(subcommand)]
    Compute(commands::compute::ComputeCommand),
    /// List, show and prune cached Python environments (built from conda files).
    #[command(subcommand)]
    Env(commands::env::EnvCommand),
    /// Manage users, their workspace roles and their tokens.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Grant, list and remove data roles on datastores (`spool role assignment ...`).
    #[command(subcommand)]
    Role(commands::role::RoleCommand),
    /// Create, list, show and delete managed identities jobs act as.
    #[command(subcommand)]
    Identity(commands::identity::IdentityCommand),
    /// Workspace settings: its managed network and the identities serverless jobs may act as.
    #[command(subcommand)]
    Workspace(commands::workspace::WorkspaceCommand),
    /// The audit log: who changed what, and which calls were denied.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    // Descriptors this process inherited must not reach what it starts (statement code).
    spool_supervisor::mark_inherited_descriptors();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let Cli { globals, command } = cli;
    let result = runtime.block_on(async move {
        let globals = &globals;
        match command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Job(cmd) => commands::job::run(cmd, globals).await,
            Command::Session(cmd) => commands::session::run(cmd, globals).await,
            Command::Datastore(cmd) => commands::datastore::run(cmd, globals).await,
            Command::Runtime(cmd) => commands::runtime::run(cmd, globals).await,
            Command::Cluster(cmd) => commands::cluster::run(cmd, globals).await,
            Command::Env(cmd) => commands::env::run(cmd, globals).await,
            Command::Component(cmd) => commands::component::run(cmd, globals).await,
            Command::Compute(cmd) => commands::compute::run(cmd, globals).await,
            Command::Agent(args) => commands::agent::run_agent(args).await,
            Command::Agents(cmd) => commands::agent::run_agents(cmd, globals).await,
            Command::User(cmd) => commands::user::run(cmd, globals).await,
            Command::Role(cmd) => commands::role::run(cmd, globals).await,
            Command::Identity(cmd) => commands::identity::run(cmd, globals).await,
            Command::Workspace(cmd) => commands::workspace::run(cmd, globals).await,
            Command::Audit(cmd) => commands::audit::run(cmd, globals).await,
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

    use clap::Parser;

    use super::{Cli, Command, Format};

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        for args in [
            &["spool", "-o", "yaml", "--url", "http://h:1", "job", "list"][..],
            &["spool", "job", "list", "-o", "yaml", "--url", "http://h:1"][..],
            &["spool", "job", "-o", "yaml", "list", "--url=http://h:1"][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.globals.output, Some(Format::Yaml), "{args:?}");
            assert_eq!(cli.globals.server.url, "http://h:1", "{args:?}");
        }
    }

    #[test]
    fn job_create_takes_the_output_format() {
        let cli = Cli::try_parse_from(["spool", "job", "create", "-f", "j.yml", "-o", "json"]);
        assert_eq!(cli.unwrap().globals.output, Some(Format::Json));
    }

    #[test]
    fn the_agent_keeps_its_own_token() {
        let cli = Cli::try_parse_from([
            "spool",
            "agent",
            "--server",
            "http://s:1",
            "--token",
            "agent-secret",
            "--name",
            "w1",
            "--address",
            "10.0.0.2",
        ])
        .unwrap();
        let Command::Agent(args) = cli.command else {
            panic!("not the agent: {:?}", cli.command)
        };
        assert_eq!(args.token.as_deref(), Some("agent-secret"));
        // `--token` before the subcommand is the agent's own flag too (clap shadows the global
        // one); a user's `SPOOL_TOKEN` is never read for it (the agent reads only
        // `SPOOL_AGENT_TOKEN`), and without a flag the token is left to the environment.
        let cli = Cli::try_parse_from([
            "spool",
            "agent",
            "--server",
            "http://s:1",
            "--name",
            "w1",
            "--address",
            "10.0.0.2",
        ])
        .unwrap();
        let Command::Agent(args) = cli.command else {
            panic!("not the agent: {:?}", cli.command)
        };
        assert_eq!(args.token, None);
    }

    #[test]
    fn a_token_comes_from_the_flag_the_file_or_the_variable() {
        let dir = std::env::temp_dir().join(format!("spool-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let resolve = |flag, file| {
            crate::globals::resolve_token(flag, file, "SPOOL_TEST_NO_SUCH_VARIABLE", "warning")
                .map_err(|e| crate::render_error(&e))
        };
        assert_eq!(resolve(Some("flag"), None), Ok(Some("flag".into())));
        assert_eq!(
            resolve(None, Some(file.as_path())),
            Ok(Some("from-file".into()))
        );
        assert_eq!(resolve(None, None), Ok(None));
        std::fs::write(&file, "\n").unwrap();
        let empty = resolve(None, Some(file.as_path())).unwrap_err();
        assert!(empty.contains("is empty"), "{empty}");
        let missing = resolve(None, Some(dir.join("missing").as_path())).unwrap_err();
        assert!(
            missing.starts_with("error: read the token file `"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn token_and_token_file_exclude_each_other() {
        let error =
            Cli::try_parse_from(["spool", "--token", "t", "--token-file", "f", "job", "list"])
                .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
