//! Spark Connect rows: the same calls from the thin client through the server's proxy (the
//! user's token, `x-spool-session`) and straight to the session driver's Connect port (the
//! session's secret), alternating in one run. The proxy's cost is the difference.

use std::path::Path;
use std::process::Command;

use super::{spool, start_server};

/// Calls per path and kind (p99 is then the fourth-slowest).
const CALLS: usize = 300;

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The port the session's driver serves Connect on, from the server's store.
fn connect_port(data_dir: &Path, id: &str) -> anyhow::Result<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT connect_port FROM sessions WHERE id = ?', (int(sys.argv[2]),)).fetchone()[0])",
        ])
        .arg(data_dir.join("state.db"))
        .arg(id)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "read the Connect port: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn connect_bench(scratch: &Path) -> anyhow::Result<()> {
    let python = spool_test::connect_client_python();
    let server = start_server(scratch, "connect", "10m")?;
    let out = spool(&server, &["-o", "json", "session", "create", "--connect"])?;
    anyhow::ensure!(
        out.status.success(),
        "session create --connect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let session: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let id = session["id"].to_string();
    let proxy = session["connect_url"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no connect_url: {session}"))?
        .to_string();
    let direct = format!("sc://localhost:{}/", connect_port(&server.data_dir, &id)?);
    let secret =
        std::fs::read_to_string(server.data_dir.join(format!("sessions/{id}/repl.secret")))?;
    let token = std::fs::read_to_string(server.data_dir.join("admin.token"))?;
    let out = Command::new(python)
        .arg(super::repo_root().join("bench/connect_rtt.py"))
        .args([&proxy, &direct, &CALLS.to_string()])
        .env("SPOOL_TOKEN", token.trim())
        .env("DIRECT_SECRET", secret.trim())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "connect_rtt.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let times: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let ms = |kind: &str, path: &str| -> Vec<f64> {
        times[kind][path]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
            .unwrap_or_default()
    };
    println!(
        "| Spark Connect call ({CALLS} each) | direct p50 / p99 | proxy p50 / p99 | proxy adds at p99 | goal |"
    );
    println!("|---|---|---|---|---|");
    for (kind, label) in [
        ("range_count", "`spark.range(10).count()`"),
        ("conf", "`spark.conf.get(...)` (one unary call)"),
    ] {
        let (direct, proxy) = (ms(kind, "direct"), ms(kind, "proxy"));
        anyhow::ensure!(!direct.is_empty() && !proxy.is_empty(), "no times: {times}");
        println!(
            "| {label} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:+.2} ms | <= +2 ms |",
            percentile(&direct, 50.0),
            percentile(&direct, 99.0),
            percentile(&proxy, 50.0),
            percentile(&proxy, 99.0),
            percentile(&proxy, 99.0) - percentile(&direct, 99.0),
        );
    }
    let _ = spool(&server, &["session", "delete", "--name", &id]);
    Ok(())
}
