//! `spool job stream`, and following a job until it ends (also `job create --stream`).

use std::io::Write;
use std::time::Duration;

use spool_api_types::{JobKind, JobStatus, JobView};
use spool_client::Client;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// The job's name.
    #[arg(long, short)]
    name: String,
}

pub(super) async fn run(args: StreamArgs, globals: &Globals) -> anyhow::Result<i32> {
    // The driver's stdout is what this command prints.
    let job = follow(&globals.client()?, &args.name, DriverStdout::Stdout).await?;
    Ok(exit_code(&job))
}

/// Where the driver's stdout goes while following a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DriverStdout {
    /// To stdout: the logs are the command's data (`job stream`).
    Stdout,
    /// To stderr with everything else: stdout is kept for the job itself (`job create
    /// --stream`).
    Stderr,
}

/// 0 when the job Completed, 1 otherwise.
pub(super) fn exit_code(job: &JobView) -> i32 {
    if job.status == JobStatus::Completed {
        0
    } else {
        1
    }
}

/// Follows a job until it ends: driver stdout as `driver_stdout` says, driver stderr and
/// status changes to stderr. Returns the job as it ended.
pub(super) async fn follow(
    client: &Client,
    name: &str,
    driver_stdout: DriverStdout,
) -> anyhow::Result<JobView> {
    let mut offsets = [0u64, 0u64];
    let mut last_status = None;
    loop {
        let job = client.job(name).await.map_err(super::unknown_job)?;
        if last_status != Some(job.status) && !job.status.is_terminal() {
            let reason = job
                .status_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            eprintln!("[spool] {name}: {}{reason}", job.status);
            last_status = Some(job.status);
        }
        // A command's stdout and stderr are one log (Azure ML's `std_log.txt`), shown as stdout.
        let logs: &[&str] = match job.kind {
            JobKind::Command => &["user_logs/std_log.txt"],
            _ => &["azureml/driver/stdout", "azureml/driver/stderr"],
        };
        for (i, log) in logs.iter().enumerate() {
            let (bytes, size) = client.job_log(name, log, offsets[i]).await?;
            if !bytes.is_empty() {
                if i == 0 && driver_stdout == DriverStdout::Stdout {
                    std::io::stdout().write_all(&bytes)?;
                    std::io::stdout().flush()?;
                } else {
                    std::io::stderr().write_all(&bytes)?;
                }
            }
            offsets[i] = size.max(offsets[i]);
        }
        if job.status.is_terminal() {
            if job.status == JobStatus::Completed {
                eprintln!(
                    "[spool] {name}: Completed in {}",
                    super::show::total_time(&job)
                );
            } else {
                let error = job
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                eprintln!("[spool] {name}: {}{error}", job.status);
            }
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}
