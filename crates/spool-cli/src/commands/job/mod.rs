//! `spool job create|show|list|stream|cancel|download`, mirroring `az ml job`.

mod cancel;
mod command_job;
pub(crate) mod create;
mod download;
mod list;
pub(crate) mod pipeline;
mod show;
mod stream;

use spool_client::ClientError;

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Submit a Spark job (`type: spark`) or a command job (`type: command`) from a job YAML
    /// file and print it (as `job show` does).
    ///
    /// Everything that can be checked before running is checked first (schema, the SDK's rules,
    /// that `code`, the entry file and inputs exist); nothing is created when a check fails.
    /// A command job runs as a process on the Spool host, in an environment built from its
    /// `conda_file`.
    Create(create::CreateArgs),
    /// Show a job.
    Show(show::ShowArgs),
    /// List jobs, newest first.
    List(list::ListArgs),
    /// Follow a job's driver logs (a command job's output) and status until it ends; exit 0 only
    /// if it Completed.
    Stream(stream::StreamArgs),
    /// Cancel a job: its driver and executors stop within seconds.
    Cancel(cancel::CancelArgs),
    /// Download a job's logs (default), one output, or everything, in Azure ML's layout
    /// (`artifacts/logs/...`, `named-outputs/<output>/...`).
    Download(download::DownloadArgs),
}

pub async fn run(command: JobCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        JobCommand::Create(args) => create::run(args, globals).await,
        JobCommand::Show(args) => show::run(args, globals).await,
        JobCommand::List(args) => list::run(args, globals).await,
        JobCommand::Stream(args) => stream::run(args, globals).await,
        JobCommand::Cancel(args) => cancel::run(args, globals).await,
        JobCommand::Download(args) => download::run(args, globals).await,
    }
}

/// Adds what to do when the server knows no job of that name.
fn unknown_job(error: ClientError) -> anyhow::Error {
    if error.status() == Some(404) {
        crate::error::with_hint(error, "list your jobs with `spool job list`")
    } else {
        error.into()
    }
}
