//! `spool session create|list|show|delete|run|shell`: interactive Spark sessions.

mod create;
mod delete;
mod list;
mod run;
mod shell;
mod show;

use spool_client::ClientError;

use crate::Globals;

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum SessionCommand {
    /// Start a session; waits until it is idle (or failed) unless --no-wait, then prints it.
    Create(create::CreateArgs),
    /// List sessions.
    List,
    /// Show a session with its start phases.
    Show(show::ShowArgs),
    /// End a session.
    Delete(delete::DeleteArgs),
    /// Run code in a session and print its output; exits 1 on an error result.
    Run(run::RunArgs),
    /// An interactive shell against a session (like `pyspark`); end a block with an empty line.
    Shell(shell::ShellArgs),
}

pub async fn run(command: SessionCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        SessionCommand::Create(args) => create::run(args, globals).await,
        SessionCommand::List => list::run(globals).await,
        SessionCommand::Show(args) => show::run(args, globals).await,
        SessionCommand::Delete(args) => delete::run(args, globals).await,
        SessionCommand::Run(args) => run::run(args, globals).await,
        SessionCommand::Shell(args) => shell::run(args, globals).await,
    }
}

/// Adds what to do when the server knows no session of that name or id.
fn unknown_session(error: ClientError) -> anyhow::Error {
    if error.status() == Some(404) {
        crate::error::with_hint(error, "list your sessions with `spool session list`")
    } else {
        error.into()
    }
}
