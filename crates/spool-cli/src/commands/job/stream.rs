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
    let first = client.job(name).await.map_err(super::unknown_job)?;
    if first.kind == spool_api_types::JobKind::Pipeline {
        return follow_pipeline(client, name, driver_stdout).await;
    }
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

/// The driver logs of one node, followed line by line.
#[derive(Default)]
struct NodeLogs {
    offsets: [u64; 2],
    partial: [Vec<u8>; 2],
    status: Option<JobStatus>,
}

/// Follows a pipeline until it ends: every node's driver logs, each line prefixed by the
/// node's name, and status changes; then an execution summary (as `az ml job stream` prints).
async fn follow_pipeline(
    client: &Client,
    name: &str,
    driver_stdout: DriverStdout,
) -> anyhow::Result<JobView> {
    eprintln!("RunId: {name}");
    let mut logs: std::collections::BTreeMap<String, NodeLogs> = Default::default();
    let mut last_status = None;
    loop {
        let job = client.job(name).await.map_err(super::unknown_job)?;
        if last_status != Some(job.status) && !job.status.is_terminal() {
            eprintln!("[spool] {name}: {}", job.status);
            last_status = Some(job.status);
        }
        let ended = job.status.is_terminal();
        for node in &job.nodes {
            let state = logs.entry(node.node.clone()).or_default();
            if state.status != Some(node.status) {
                let reason = node
                    .status_reason
                    .as_deref()
                    .filter(|_| node.status != JobStatus::Completed)
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                let reused = node
                    .reused_job_name
                    .as_deref()
                    .map(|r| format!(" (reused {r})"))
                    .unwrap_or_default();
                eprintln!("[spool] {}: {}{reason}{reused}", node.node, node.status);
                state.status = Some(node.status);
            }
            if node.reused_job_name.is_some() || node.status == JobStatus::NotStarted {
                continue;
            }
            // A command step's stdout and stderr are one log, as for a command job.
            let node_logs: &[&str] = match node.kind {
                JobKind::Command => &["user_logs/std_log.txt"],
                _ => &["azureml/driver/stdout", "azureml/driver/stderr"],
            };
            for (i, log) in node_logs.iter().enumerate() {
                let Ok((bytes, size)) = client.job_log(&node.job_name, log, state.offsets[i]).await
                else {
                    continue;
                };
                state.offsets[i] = size.max(state.offsets[i]);
                state.partial[i].extend_from_slice(&bytes);
                let finished = node.status.is_terminal();
                let text = std::mem::take(&mut state.partial[i]);
                let (complete, rest) = match text.iter().rposition(|b| *b == b'\n') {
                    Some(at) if !finished => (&text[..=at], &text[at + 1..]),
                    None if !finished => (&text[..0], &text[..]),
                    _ => (&text[..], &text[..0]),
                };
                let mut out = Vec::new();
                for line in complete.split_inclusive(|b| *b == b'\n') {
                    out.extend_from_slice(format!("[{}] ", node.node).as_bytes());
                    out.extend_from_slice(line);
                    if !line.ends_with(b"\n") {
                        out.push(b'\n');
                    }
                }
                state.partial[i] = rest.to_vec();
                if !out.is_empty() {
                    if i == 0 && driver_stdout == DriverStdout::Stdout {
                        std::io::stdout().write_all(&out)?;
                        std::io::stdout().flush()?;
                    } else {
                        std::io::stderr().write_all(&out)?;
                    }
                }
            }
        }
        if ended {
            eprintln!();
            eprintln!("Execution Summary");
            eprintln!("=================");
            eprintln!("RunId: {name}");
            eprintln!("{}", super::show::node_tree(&job.nodes));
            let reason = job
                .status_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            eprintln!("[spool] {name}: {}{reason}", job.status);
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
