//! Environment rows: a small environment's first build against its cache hit and against raw
//! `uv pip install` and `python -m venv && pip install` of the same packages; session starts
//! (warm cluster) with a cached environment against without one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{Runtime, Server, median, spool, start_server};

/// Three small pure-Python packages no runtime has.
const PACKAGES: &[&str] = &["tabulate==0.9.0", "toolz==0.12.1", "humanize==4.9.0"];

fn conda_file(scratch: &Path) -> anyhow::Result<std::path::PathBuf> {
    let path = scratch.join("bench-env.yml");
    let mut text = String::from("name: bench\ndependencies:\n  - pip:\n");
    for package in PACKAGES {
        text.push_str(&format!("      - {package}\n"));
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

fn seconds_between(session: &serde_json::Value, from: &str, to: &str) -> anyhow::Result<f64> {
    let at = |status: &str| -> anyhow::Result<chrono::DateTime<chrono::FixedOffset>> {
        let text = session["phases"]
            .as_array()
            .and_then(|phases| phases.iter().rev().find(|p| p["status"] == status))
            .and_then(|p| p["at"].as_str())
            .ok_or_else(|| anyhow::anyhow!("no phase `{status}` in {session}"))?;
        Ok(chrono::DateTime::parse_from_rfc3339(text)?)
    };
    Ok((at(to)? - at(from)?).num_milliseconds() as f64 / 1000.0)
}

/// Starts a session through the CLI (which waits until it is idle), then deletes it; returns
/// the seconds it took and the session as shown.
fn timed_session(server: &Server, args: &[&str]) -> anyhow::Result<(f64, serde_json::Value)> {
    let started = Instant::now();
    let mut all = vec!["session", "create", "-o", "json"];
    all.extend_from_slice(args);
    let out = spool(server, &all)?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "session create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let session: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    anyhow::ensure!(session["state"] == "idle", "session not idle: {session}");
    let id = session["id"].to_string();
    spool(server, &["session", "delete", "--name", &id])?;
    Ok((seconds, session))
}

fn timed(mut cmd: Command) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "{cmd:?} failed");
    Ok(started.elapsed().as_secs_f64())
}

/// `uv venv` + `uv pip install` of the packages with the same uv and cache Spool uses.
fn raw_uv(rt: &Runtime, scratch: &Path) -> anyhow::Result<f64> {
    let cache = rt
        .venv
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent);
    let cache = cache.ok_or_else(|| anyhow::anyhow!("runtime outside the cache"))?;
    let uv = std::fs::read_dir(cache.join("tools"))?
        .flatten()
        .map(|e| e.path().join("bin/uv"))
        .find(|p| p.exists())
        .ok_or_else(|| anyhow::anyhow!("no uv in the cache"))?;
    let venv = scratch.join("raw-uv");
    let _ = std::fs::remove_dir_all(&venv);
    let started = Instant::now();
    let mut cmd = Command::new(&uv);
    cmd.args(["venv", "-q", "--python"])
        .arg(&rt.python)
        .arg(&venv)
        .env("UV_CACHE_DIR", cache.join("uv-cache"));
    timed(cmd)?;
    let mut cmd = Command::new(&uv);
    cmd.args(["pip", "install", "-q", "--python"])
        .arg(venv.join("bin/python"))
        .args(PACKAGES)
        .env("UV_CACHE_DIR", cache.join("uv-cache"));
    timed(cmd)?;
    Ok(started.elapsed().as_secs_f64())
}

/// `python -m venv` + `pip install` of the packages (pip's own cache as it is).
fn raw_pip(scratch: &Path) -> anyhow::Result<f64> {
    let venv = scratch.join("raw-pip");
    let _ = std::fs::remove_dir_all(&venv);
    let started = Instant::now();
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "venv"]).arg(&venv);
    timed(cmd)?;
    let mut cmd = Command::new(venv.join("bin/pip"));
    cmd.args(["install", "-q", "--disable-pip-version-check"])
        .args(PACKAGES);
    timed(cmd)?;
    Ok(started.elapsed().as_secs_f64())
}

pub(super) fn envs_bench(rt: &Runtime, scratch: &Path, runs: usize) -> anyhow::Result<()> {
    let conda = conda_file(scratch)?;
    let conda = conda.display().to_string();
    let server = start_server(scratch, "envs", "10m")?;
    // Warms the cluster (and uv's download cache), so every row below is a warm start.
    timed_session(&server, &[])?;
    let mut build = Vec::new();
    let mut hit = Vec::new();
    let mut uv = Vec::new();
    let mut pip = Vec::new();
    let mut with_env = Vec::new();
    let mut without_env = Vec::new();
    for i in 1..=runs {
        eprintln!("==> environments round {i}/{runs}");
        let (_, first) = timed_session(
            &server,
            &[
                "--conda-file",
                &conda,
                "--conf",
                "spark.hadoop.aml.enable_cache=false",
            ],
        )?;
        build.push(seconds_between(&first, "environment", "environment_ready")?);
        let (seconds, cached) = timed_session(&server, &["--conda-file", &conda])?;
        hit.push(seconds_between(
            &cached,
            "environment",
            "environment_ready",
        )?);
        with_env.push(seconds);
        let (seconds, _) = timed_session(&server, &[])?;
        without_env.push(seconds);
        uv.push(raw_uv(rt, scratch)?);
        pip.push(raw_pip(scratch)?);
        eprintln!(
            "    build {:.2} s, hit {:.3} s, uv {:.2} s, pip {:.2} s, session with env {:.2} s, without {:.2} s",
            build[i - 1],
            hit[i - 1],
            uv[i - 1],
            pip[i - 1],
            with_env[i - 1],
            without_env[i - 1]
        );
    }
    let (build, hit, uv, pip) = (median(&build), median(&hit), median(&uv), median(&pip));
    let (with_env, without_env) = (median(&with_env), median(&without_env));
    println!(
        "\nEnvironments: {} on runtime 3.4, warm cluster, {runs} runs each, median\n",
        PACKAGES.join(", ")
    );
    println!("| scenario | median | vs baseline | goal |");
    println!("|---|---|---|---|");
    println!("| raw `uv venv && uv pip install` (same uv cache) | {uv:.2} s | baseline | |");
    println!(
        "| raw `python -m venv && pip install` | {pip:.2} s | {:.2} x uv | |",
        pip / uv
    );
    println!(
        "| spool environment, first build (cache bypassed) | {build:.2} s | {:.2} x uv | <= 2 x uv |",
        build / uv
    );
    // Phase timestamps have millisecond resolution.
    let hit_text = if hit < 0.001 {
        "< 1 ms".to_string()
    } else {
        format!("{:.0} ms", hit * 1000.0)
    };
    println!(
        "| spool environment, cache hit (phase to phase) | {hit_text} | {:.3} x uv | <= 1 s |",
        hit / uv
    );
    println!(
        "| session start without an environment (warm cluster) | {without_env:.2} s | baseline | |"
    );
    println!(
        "| session start with a cached environment (warm cluster) | {with_env:.2} s | {:+.2} s | <= +1 s |",
        with_env - without_env
    );
    Ok(())
}
