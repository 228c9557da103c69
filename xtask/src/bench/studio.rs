//! Studio and metrics rows: with 1,000 jobs in the store, how long the server takes to answer
//! the studio's job list (its first page) and `/metrics`, next to `GET /version` on the same
//! server and connection. Latencies over a keep-alive loopback connection are the server's time
//! plus a fraction of a millisecond.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Http, median, server_port, server_token, spool, start_server};
use crate::repo_root;

/// Jobs in the store while measuring.
const JOBS: usize = 1000;
/// Requests per route.
const REQUESTS: usize = 300;

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One request on its own connection; returns the head and body.
fn once(port: u16, request: &str) -> anyhow::Result<(String, String)> {
    let mut stream = BufReader::new(TcpStream::connect(("127.0.0.1", port))?);
    stream.get_mut().write_all(request.as_bytes())?;
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        anyhow::ensure!(stream.read_line(&mut head)? > 0, "connection closed");
    }
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok((head, body))
}

/// The value of cookie `name` a head sets.
fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if !key.eq_ignore_ascii_case("set-cookie") {
            return None;
        }
        let pair = value.trim().split(';').next()?;
        let (cookie, value) = pair.split_once('=')?;
        (cookie == name).then(|| value.to_string())
    })
}

/// Signs in to the studio with `token` as a browser does; returns the `Cookie` header line.
fn sign_in(port: u16, token: &str) -> anyhow::Result<String> {
    let (head, _) = once(
        port,
        "GET /studio/signin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )?;
    let csrf = set_cookie(&head, "spool_studio_signin")
        .ok_or_else(|| anyhow::anyhow!("no sign-in cookie: {head}"))?;
    let form = format!("token={token}&csrf={csrf}&next=/studio/jobs");
    let (head, _) = once(
        port,
        &format!(
            "POST /studio/signin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: spool_studio_signin={csrf}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )?;
    let session = set_cookie(&head, "spool_studio")
        .ok_or_else(|| anyhow::anyhow!("sign-in refused: {head}"))?;
    Ok(format!("Cookie: spool_studio={session}\r\n"))
}

/// Milliseconds of each of `REQUESTS` sequential `GET path`s on one connection.
fn latencies(http: &mut Http, path: &str) -> anyhow::Result<Vec<f64>> {
    // Warm-up: connection, caches, the allocator.
    for _ in 0..20 {
        http.request("GET", path, None)?;
    }
    let mut out = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let (status, body) = http.request("GET", path, None)?;
        out.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status == 200, "GET {path}: {status} {body}");
    }
    Ok(out)
}

/// Copies job `template`'s row `n` times under new names, straight into the store.
fn seed_jobs(data_dir: &std::path::Path, template: &str, n: usize) -> anyhow::Result<()> {
    let script = format!(
        "import sqlite3\n\
         c = sqlite3.connect('{}')\n\
         cols = [r[1] for r in c.execute('PRAGMA table_info(jobs)') if r[1] not in ('id', 'name')]\n\
         for i in range({n}):\n\
         \x20   c.execute(f\"INSERT INTO jobs (name, {{', '.join(cols)}}) SELECT ?, {{', '.join(cols)}} FROM jobs WHERE name = ?\", (f'seeded_{{i:04}}', '{template}'))\n\
         c.commit()\n",
        data_dir.join("state.db").display()
    );
    let status = Command::new("python3").arg("-c").arg(script).status()?;
    anyhow::ensure!(status.success(), "seeding jobs failed");
    Ok(())
}

pub(super) fn studio_bench(scratch: &std::path::Path) -> anyhow::Result<()> {
    let server = start_server(scratch, "studio", "10m")?;
    // One real job record (submitted, then canceled before it runs) is the template.
    let job = repo_root().join("bench/pi.yml");
    let out = spool(
        &server,
        &[
            "-o",
            "json",
            "job",
            "create",
            "--file",
            job.to_str().unwrap_or_default(),
        ],
    )?;
    anyhow::ensure!(out.status.success(), "job create failed");
    let created: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let name = created["name"].as_str().unwrap_or_default().to_string();
    spool(&server, &["job", "cancel", "--name", &name])?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = spool(&server, &["-o", "json", "job", "show", "--name", &name])?;
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if shown["status"] == "Canceled" {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the template job did not end");
        std::thread::sleep(Duration::from_millis(200));
    }
    seed_jobs(&server.data_dir, &name, JOBS - 1)?;

    let port = server_port(&server);
    let token = server_token(&server)?;
    let mut http = Http::connect(port, &token)?;
    http.extra = sign_in(port, &token)?;
    let version = latencies(&mut http, "/version")?;
    let page = latencies(&mut http, "/studio/jobs")?;
    let job_page = latencies(&mut http, &format!("/studio/jobs/{name}"))?;
    let metrics = latencies(&mut http, "/metrics")?;
    println!(
        "Studio and metrics, {JOBS} jobs in the store, {REQUESTS} requests each on one keep-alive connection\n"
    );
    println!("| request | median | p99 | median vs GET /version | goal |");
    println!("|---|---|---|---|---|");
    let base = median(&version);
    for (what, values, goal) in [
        ("GET /version", &version, "baseline"),
        ("GET /studio/jobs (first page of 50)", &page, "<= 100 ms"),
        ("GET /studio/jobs/{name}", &job_page, "<= 100 ms"),
        ("GET /metrics", &metrics, "<= 20 ms"),
    ] {
        println!(
            "| {what} | {:.2} ms | {:.2} ms | {:.1}× | {goal} |",
            median(values),
            percentile(values, 99.0),
            median(values) / base
        );
    }
    Ok(())
}
