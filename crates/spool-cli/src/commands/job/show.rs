//! `spool job show`, and the job's table that `create` and `cancel` print too.

use spool_api_types::{JobKind, JobStatus, JobView, NodeView};

use crate::Globals;
use crate::output::{self, Format};

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The job's name.
    #[arg(long, short)]
    name: String,
}

pub(super) async fn run(args: ShowArgs, globals: &Globals) -> anyhow::Result<i32> {
    let job = globals
        .client()?
        .job(&args.name)
        .await
        .map_err(super::unknown_job)?;
    print_job(globals.format(), &job)?;
    Ok(0)
}

/// Prints a job as JSON, YAML or a table of its fields (a pipeline's nodes as a tree).
pub(super) fn print_job(format: Format, job: &JobView) -> anyhow::Result<()> {
    if job.kind == JobKind::Pipeline {
        return output::print(format, job, || pipeline_table(job));
    }
    output::print(format, job, || job_table(job))
}

/// A pipeline's fields, then its nodes as a tree: each node under the deepest node it reads
/// from, with status, duration and child job.
fn pipeline_table(job: &JobView) -> comfy_table::Table {
    output::fields(&[
        ("name", job.name.clone()),
        ("display name", job.display_name.clone()),
        ("experiment", job.experiment_name.clone()),
        ("type", "pipeline".into()),
        ("status", job.status.to_string()),
        ("reason", job.status_reason.clone().unwrap_or_default()),
        ("owner", job.owner.clone()),
        ("created", job.created_at.clone()),
        ("ended", job.ended_at.clone().unwrap_or_default()),
        ("nodes", node_tree(&job.nodes)),
    ])
}

/// The nodes, indented by how many nodes they wait for in a row.
pub(super) fn node_tree(nodes: &[NodeView]) -> String {
    let mut depth: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut lines = Vec::new();
    for node in nodes {
        let d = node
            .depends_on
            .iter()
            .filter_map(|dep| depth.get(dep.as_str()))
            .max()
            .map_or(0, |d| d + 1);
        depth.insert(&node.node, d);
        let took = node
            .duration_seconds
            .map(|s| format!("  {s:.1} s"))
            .unwrap_or_default();
        let reused = node
            .reused_job_name
            .as_deref()
            .map(|r| format!("  (reused {r})"))
            .unwrap_or_default();
        let after = if node.depends_on.len() > 1 {
            format!("  after {}", node.depends_on.join(", "))
        } else {
            String::new()
        };
        let reason = match (&node.status_reason, node.status.is_terminal()) {
            (Some(reason), true) if node.status != JobStatus::Completed => {
                format!("  {reason}")
            }
            _ => String::new(),
        };
        let branch = if d == 0 {
            String::new()
        } else {
            format!("{}└─ ", "   ".repeat(d - 1))
        };
        lines.push(format!(
            "{branch}{}  {}{took}  {}{reused}{after}{reason}",
            node.node, node.status, node.job_name
        ));
    }
    lines.join("\n")
}

/// Seconds from the first phase to the end, e.g. `12.3 s`.
pub(super) fn total_time(job: &JobView) -> String {
    match (
        job.phases.first().and_then(|p| time::parse(&p.at)),
        job.ended_at.as_deref().and_then(time::parse),
    ) {
        (Some(start), Some(end)) => format!("{:.1} s", end.0 - start.0),
        _ => "?".into(),
    }
}

/// Tiny RFC 3339 reader for the store's fixed timestamp format (`2026-11-24T10:00:00.123Z`),
/// enough to show phase durations without another dependency.
mod time {
    pub struct Instant(pub f64);

    pub fn parse(text: &str) -> Option<Instant> {
        let (date, time) = text.trim_end_matches('Z').split_once('T')?;
        let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.split(':');
        let (h, min) = (
            t.next()?.parse::<i64>().ok()?,
            t.next()?.parse::<i64>().ok()?,
        );
        let s: f64 = t.next()?.parse().ok()?;
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(Instant((days * 86_400 + h * 3600 + min * 60) as f64 + s))
    }
}

fn job_table(job: &JobView) -> comfy_table::Table {
    let mut phases = String::new();
    let times: Vec<Option<time::Instant>> = job.phases.iter().map(|p| time::parse(&p.at)).collect();
    for (i, phase) in job.phases.iter().enumerate() {
        let took = match (
            times.get(i).and_then(|t| t.as_ref()),
            times.get(i + 1).and_then(|t| t.as_ref()),
        ) {
            (Some(a), Some(b)) => format!(" ({:.1} s)", b.0 - a.0),
            _ => String::new(),
        };
        phases.push_str(&format!("{} {}{took}\n", phase.at, phase.status));
    }
    let r = &job.resources;
    let size = match r.dynamic_allocation {
        _ if job.kind == spool_api_types::JobKind::Command => {
            "one process on the Spool host".to_string()
        }
        Some((min, max)) => format!(
            "driver {}c/{}, executors {}c/{} x {min}..{max} (dynamic)",
            r.driver_cores, r.driver_memory, r.executor_cores, r.executor_memory
        ),
        None => format!(
            "driver {}c/{}, executors {}c/{} x {}",
            r.driver_cores,
            r.driver_memory,
            r.executor_cores,
            r.executor_memory,
            r.executor_instances
        ),
    };
    let cluster = job
        .cluster
        .as_ref()
        .map(|c| format!("{} ({})", c.id, c.state))
        .unwrap_or_default();
    let outputs = job
        .outputs
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    output::fields(&[
        ("name", job.name.clone()),
        ("type", job.kind.to_string()),
        ("display name", job.display_name.clone()),
        ("experiment", job.experiment_name.clone()),
        ("pipeline", job.parent_job_name.clone().unwrap_or_default()),
        (
            "reused",
            job.properties
                .get("azureml.reusedrunid")
                .cloned()
                .unwrap_or_default(),
        ),
        ("status", job.status.to_string()),
        ("reason", job.status_reason.clone().unwrap_or_default()),
        ("error", job.error.clone().unwrap_or_default()),
        ("owner", job.owner.clone()),
        ("compute", job.compute.clone()),
        ("runtime", job.runtime.clone()),
        ("identity", job.identity.clone()),
        ("size", size),
        ("cluster", cluster),
        (
            "master UI",
            job.cluster
                .as_ref()
                .and_then(|c| c.master_ui_url.clone())
                .unwrap_or_default(),
        ),
        ("Spark UI", job.spark_ui_url.clone().unwrap_or_default()),
        ("Spark app", job.spark_app_id.clone().unwrap_or_default()),
        (
            "driver",
            job.driver
                .as_ref()
                .map(|d| {
                    let path = match d.path {
                        spool_core::DriverPath::WarmDriver => "pre-warmed driver",
                        spool_core::DriverPath::SparkSubmit => "spark-submit",
                    };
                    format!("{path}: {}", d.reason)
                })
                .unwrap_or_default(),
        ),
        (
            "start",
            job.start_kind
                .map(|kind| match kind {
                    spool_core::StartKind::Cold => "cold: a new cluster",
                    spool_core::StartKind::Warm => "warm: an idle cluster reused",
                    spool_core::StartKind::Prewarmed => "pre-warmed driver",
                    spool_core::StartKind::Pool => "attached pool",
                })
                .unwrap_or_default()
                .to_string(),
        ),
        ("outputs", outputs),
        ("phases", phases.trim_end().to_string()),
    ])
}
