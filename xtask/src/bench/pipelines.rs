//! Pipeline rows: a three-node pipeline (two independent steps, then one reading both) on warm
//! clusters against the same three scripts run one after another as jobs, and a fully reused
//! resubmission's time to `Completed`.

use std::path::Path;
use std::time::Instant;

use super::{median, spool, start_server, start_server_with, wait_prewarmed_count};
use crate::repo_root;

/// Runs `spool job create --stream` of `file` with `extra` arguments; the seconds until it
/// returned, and the job as printed.
fn timed_create(
    server: &super::Server,
    file: &Path,
    extra: &[&str],
) -> anyhow::Result<(f64, serde_json::Value)> {
    let mut args = vec![
        "job",
        "create",
        "--stream",
        "-o",
        "json",
        "--file",
        file.to_str().unwrap_or_default(),
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let out = spool(server, &args)?;
    let took = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "`spool job create` of {} failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((took, serde_json::from_slice(&out.stdout)?))
}

/// Seconds for the pipeline's three steps as jobs, one after another.
fn steps_one_by_one(server: &super::Server, dir: &Path) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for step in ["left", "right", "join"] {
        total += timed_create(server, &dir.join(format!("{step}.yml")), &[])?.0;
    }
    Ok(total)
}

/// Seconds for the pipeline, run again in full (`force_rerun`), to `Completed`.
fn forced_pipeline(server: &super::Server, pipeline: &Path) -> anyhow::Result<f64> {
    let (took, job) = timed_create(server, pipeline, &["--set", "settings.force_rerun=True"])?;
    anyhow::ensure!(
        job["status"] == "Completed",
        "the pipeline did not complete: {job}"
    );
    Ok(took)
}

pub(super) fn pipelines_bench(scratch: &Path, runs: usize) -> anyhow::Result<()> {
    let dir = repo_root().join("bench/pipeline");
    let pipeline = dir.join("pipeline.yml");
    let server = start_server(scratch, "pipelines", "10m")?;
    eprintln!("==> pipelines: warm-up (two warm clusters; its runs are not counted)");
    timed_create(&server, &pipeline, &["--set", "settings.force_rerun=True"])?;
    for step in ["left", "right", "join"] {
        timed_create(&server, &dir.join(format!("{step}.yml")), &[])?;
    }
    let mut sequential = Vec::new();
    let mut side_by_side = Vec::new();
    let mut reused = Vec::new();
    // A run that others may reuse (forced runs are never reused).
    timed_create(&server, &pipeline, &[])?;
    for i in 1..=runs {
        eprintln!("==> pipelines: round {i}/{runs}");
        sequential.push(steps_one_by_one(&server, &dir)?);
        side_by_side.push(forced_pipeline(&server, &pipeline)?);
        let (took, job) = timed_create(&server, &pipeline, &[])?;
        let all_reused = job["nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.iter().all(|n| n["reused_job_name"].is_string()));
        anyhow::ensure!(all_reused, "the resubmission was not reused: {job}");
        reused.push(took);
        eprintln!(
            "    three jobs one after another {:.2} s, the pipeline {:.2} s, reused {:.2} s",
            sequential[i - 1],
            side_by_side[i - 1],
            reused[i - 1]
        );
    }
    // The same two runs on servers keeping pre-warmed drivers: the default one, and two (as
    // wide as the pipeline); each measurement starts with the pool full.
    let pooled: Vec<(u32, Vec<f64>, Vec<f64>)> = [1, 2]
        .into_iter()
        .map(|n| pooled_runs(scratch, &dir, runs, n).map(|(a, b)| (n, a, b)))
        .collect::<anyhow::Result<_>>()?;
    let base = median(&sequential);
    println!(
        "\nPipelines: bench/pipeline (two pi steps side by side, then a step reading both), 1 executor x 1 core each, warm clusters, {runs} runs, median (min)\n"
    );
    println!("| scenario | median s | min s | ratio vs one after another | goal |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, values: &[f64], goal: &str| {
        let m = median(values);
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        println!("| {name} | {m:.2} | {min:.2} | {:.2} | {goal} |", m / base);
    };
    row(
        "left.yml, right.yml, join.yml with `spool job create --stream`, one after another",
        &sequential,
        "baseline",
    );
    row(
        "pipeline.yml (force_rerun), `spool job create --stream` to Completed",
        &side_by_side,
        "<= 0.80",
    );
    row(
        "pipeline.yml resubmitted unchanged: every node reused, to Completed",
        &reused,
        "<= 1 s",
    );
    for (n, pooled_sequential, pooled_pipeline) in &pooled {
        println!(
            "\nThe same with `--prewarm {n}` ({n} pre-warmed driver(s), the pool full when each run starts)\n"
        );
        println!("| scenario | median s | min s | ratio vs one after another | goal |");
        println!("|---|---|---|---|---|");
        let pooled_base = median(pooled_sequential);
        for (name, values, goal) in [
            (
                "left.yml, right.yml, join.yml one after another",
                pooled_sequential,
                "baseline",
            ),
            (
                "pipeline.yml (force_rerun) to Completed",
                pooled_pipeline,
                "<= 0.80",
            ),
        ] {
            let m = median(values);
            let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
            println!(
                "| {name} | {m:.2} | {min:.2} | {:.2} | {goal} |",
                m / pooled_base
            );
        }
    }
    Ok(())
}

/// The three steps one after another and the pipeline, `runs` times each, on a server keeping
/// `prewarm` pre-warmed drivers, each run starting with the pool full.
fn pooled_runs(
    scratch: &Path,
    dir: &Path,
    runs: usize,
    prewarm: u32,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let pipeline = dir.join("pipeline.yml");
    let server = start_server_with(
        scratch,
        &format!("pipelines-pool-{prewarm}"),
        "10m",
        prewarm,
    )?;
    let ready = || wait_prewarmed_count(&server, prewarm);
    ready()?;
    timed_create(&server, &pipeline, &["--set", "settings.force_rerun=True"])?;
    let (mut sequential, mut side_by_side) = (Vec::new(), Vec::new());
    for i in 1..=runs {
        eprintln!("==> pipelines with {prewarm} pre-warmed driver(s): round {i}/{runs}");
        ready()?;
        sequential.push(steps_one_by_one(&server, dir)?);
        ready()?;
        side_by_side.push(forced_pipeline(&server, &pipeline)?);
        eprintln!(
            "    three jobs one after another {:.2} s, the pipeline {:.2} s",
            sequential[i - 1],
            side_by_side[i - 1]
        );
    }
    Ok((sequential, side_by_side))
}
