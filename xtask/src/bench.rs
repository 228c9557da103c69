//! `cargo xtask bench`: the same PySpark script run three ways, timed end to end in one
//! invocation, with ratios against the baseline.
//!
//! - bare: by hand, without Spool: start a standalone master and worker from the runtime's
//!   jars, wait until the worker registered, `spark-submit` the script, stop both.
//! - cold: `spool job create --stream` when no cluster is up (Spool starts one).
//! - warm: `spool job create --stream` while the previous job's cluster is still up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::repo_root;

mod agents;
mod connect;
mod envs;
mod isolation;
mod pipelines;
mod studio;

struct Runtime {
    spark_home: PathBuf,
    python: PathBuf,
    venv: PathBuf,
    scala: String,
}

fn runtime() -> anyhow::Result<Runtime> {
    let cache = match std::env::var_os("SPOOL_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var("HOME")?).join(".cache/spool"),
    };
    let marker = cache.join("runtimes/3.4/spool-runtime.json");
    let text = std::fs::read_to_string(&marker)
        .map_err(|_| anyhow::anyhow!("runtime 3.4 is not installed: run `cargo xtask setup`"))?;
    let json: serde_like::Json = serde_like::parse(&text);
    Ok(Runtime {
        spark_home: PathBuf::from(json.get("spark_home")),
        python: PathBuf::from(json.get("python")),
        venv: PathBuf::from(json.get("venv")),
        scala: json.get("scala"),
    })
}

/// Just enough JSON reading for the runtime marker (flat string fields), to keep xtask free of
/// dependencies beyond anyhow.
mod serde_like {
    pub struct Json(String);

    pub fn parse(text: &str) -> Json {
        Json(text.to_string())
    }

    impl Json {
        pub fn get(&self, key: &str) -> String {
            let needle = format!("\"{key}\": \"");
            self.0
                .find(&needle)
                .map(|i| {
                    let rest = &self.0[i + needle.len()..];
                    rest[..rest.find('"').unwrap_or(0)].to_string()
                })
                .unwrap_or_default()
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

fn spark_env(cmd: &mut Command, rt: &Runtime) {
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("SPARK_HOME", &rt.spark_home)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("SPARK_SCALA_VERSION", &rt.scala)
        .env("PYSPARK_PYTHON", &rt.python)
        .env("PYSPARK_DRIVER_PYTHON", &rt.python)
        .env("PATH", format!("{}:{path}", rt.venv.join("bin").display()));
}

fn daemon(rt: &Runtime, class: &str, args: &[String], log: &Path) -> anyhow::Result<Child> {
    let mut cmd = Command::new("java");
    cmd.arg("-Xmx512m")
        .arg("-cp")
        .arg(format!("{0}/conf:{0}/jars/*", rt.spark_home.display()))
        .arg(class)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log.with_extension("out"))?)
        .stderr(std::fs::File::create(log.with_extension("err"))?);
    spark_env(&mut cmd, rt);
    Ok(cmd.spawn()?)
}

/// A standalone master and one worker started by hand, as a user would without Spool; stopped
/// when dropped.
struct BareCluster {
    port: u16,
    ui: u16,
    master: Child,
    worker: Child,
}

impl BareCluster {
    fn start(rt: &Runtime, scratch: &Path, tag: &str) -> anyhow::Result<BareCluster> {
        let (port, ui, worker_ui) = (free_port()?, free_port()?, free_port()?);
        let work = scratch.join(format!("{tag}-work"));
        std::fs::create_dir_all(&work)?;
        let master = daemon(
            rt,
            "org.apache.spark.deploy.master.Master",
            &[
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--webui-port",
                &ui.to_string(),
            ]
            .map(String::from),
            &scratch.join(format!("{tag}-master")),
        )?;
        let worker = daemon(
            rt,
            "org.apache.spark.deploy.worker.Worker",
            &[
                format!("spark://127.0.0.1:{port}"),
                "--host".into(),
                "127.0.0.1".into(),
                "--webui-port".into(),
                worker_ui.to_string(),
                "--cores".into(),
                "1".into(),
                "--memory".into(),
                "1g".into(),
                "--work-dir".into(),
                work.display().to_string(),
            ],
            &scratch.join(format!("{tag}-worker")),
        )?;
        Ok(BareCluster {
            port,
            ui,
            master,
            worker,
        })
    }
}

impl Drop for BareCluster {
    fn drop(&mut self) {
        let _ = self.worker.kill();
        let _ = self.master.kill();
        let _ = self.worker.wait();
        let _ = self.master.wait();
    }
}

/// One bare run: fresh master and worker, wait until the worker registered, spark-submit.
fn bare_run(rt: &Runtime, script: &Path, scratch: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let cluster = BareCluster::start(rt, scratch, "bare")?;
    let (port, ui) = (cluster.port, cluster.ui);
    let result = (|| -> anyhow::Result<f64> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let status = http_get(ui, "/json/").unwrap_or_default();
            if status.contains("\"aliveworkers\" : 1") || status.contains("\"aliveworkers\":1") {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("bare cluster did not come up");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut submit = Command::new(rt.spark_home.join("bin/spark-submit"));
        submit
            .args([
                "--master",
                &format!("spark://127.0.0.1:{port}"),
                "--deploy-mode",
                "client",
            ])
            .args([
                "--driver-memory",
                "1g",
                "--executor-memory",
                "1g",
                "--executor-cores",
                "1",
            ])
            .args(["--total-executor-cores", "1", "--name", "bench-pi"])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(scratch.join("bare-driver.err"))?);
        spark_env(&mut submit, rt);
        let status = submit.status()?;
        if !status.success() {
            anyhow::bail!(
                "bare spark-submit failed; see {}",
                scratch.join("bare-driver.err").display()
            );
        }
        Ok(started.elapsed().as_secs_f64())
    })();
    drop(cluster);
    result
}

struct Server {
    child: Child,
    url: String,
    data_dir: PathBuf,
    /// The network namespace it (and its CLI calls) run in, for the multi-host rows.
    netns: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: a graceful stop tears the clusters down.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        // Run as root, the server made OS accounts for its principals; they go with its data dir.
        spool_test::remove_os_accounts(&spool_test::os_accounts(&self.data_dir));
    }
}

fn spool_bin() -> PathBuf {
    repo_root().join("target/release/spool")
}

fn start_server(scratch: &Path, name: &str, teardown: &str) -> anyhow::Result<Server> {
    start_server_with(scratch, name, teardown, 0)
}

/// A server whose data dir has `config` as its `config.toml`.
fn start_server_configured(
    scratch: &Path,
    name: &str,
    teardown: &str,
    config: &str,
) -> anyhow::Result<Server> {
    std::fs::create_dir_all(scratch.join(name))?;
    std::fs::write(scratch.join(name).join("config.toml"), config)?;
    start_server_with(scratch, name, teardown, 0)
}

fn start_server_with(
    scratch: &Path,
    name: &str,
    teardown: &str,
    prewarm: u32,
) -> anyhow::Result<Server> {
    let data_dir = scratch.join(name);
    std::fs::create_dir_all(&data_dir)?;
    let port = free_port()?;
    let child = Command::new(spool_bin())
        .args([
            "serve",
            "--no-runtime-install",
            "--teardown-after",
            teardown,
            "--prewarm",
            &prewarm.to_string(),
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(scratch.join(format!("{name}.log")))?)
        .spawn()?;
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        data_dir,
        netns: None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.data_dir.join("admin.token").exists()
        || http_get(port, "/api/v1/whoami").is_none()
    {
        if Instant::now() > deadline {
            anyhow::bail!("spool serve did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

fn spool(server: &Server, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let token = std::fs::read_to_string(server.data_dir.join("admin.token"))?;
    let mut cmd = match &server.netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns]).arg(spool_bin());
            cmd
        }
        None => Command::new(spool_bin()),
    };
    Ok(cmd
        .args(args)
        .env("SPOOL_URL", &server.url)
        .env("SPOOL_TOKEN", token.trim())
        .stdin(Stdio::null())
        .output()?)
}

/// Waits until a server has a pre-warmed driver ready.
fn wait_prewarmed(server: &Server) -> anyhow::Result<()> {
    wait_prewarmed_count(server, 1)
}

/// Waits until a server has `wanted` pre-warmed drivers ready.
fn wait_prewarmed_count(server: &Server, wanted: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut http = Http::connect(server_port(server), &server_token(server)?)?;
        let (_, body) = http.request("GET", "/api/v1/catalog", None)?;
        if json_field(&body, "prewarmed_sessions_ready")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= wanted)
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no pre-warmed driver became ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `spark-submit --master local[1]` of the script by hand: one JVM, no cluster.
fn local_run(rt: &Runtime, script: &Path, scratch: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut submit = Command::new(rt.spark_home.join("bin/spark-submit"));
    submit
        .args([
            "--master",
            "local[1]",
            "--driver-memory",
            "1g",
            "--name",
            "bench-pi",
        ])
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(scratch.join("local-driver.err"))?);
    spark_env(&mut submit, rt);
    let status = submit.status()?;
    anyhow::ensure!(
        status.success(),
        "local spark-submit failed; see {}",
        scratch.join("local-driver.err").display()
    );
    Ok(started.elapsed().as_secs_f64())
}

fn timed_job(server: &Server, job: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = spool(
        server,
        &[
            "job",
            "create",
            "--stream",
            "--file",
            job.to_str().unwrap_or_default(),
        ],
    )?;
    let took = started.elapsed().as_secs_f64();
    if !out.status.success() {
        anyhow::bail!(
            "spool job failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

fn wait_no_clusters(server: &Server) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = spool(server, &["cluster", "list", "-o", "json"])?;
        if String::from_utf8_lossy(&out.stdout).trim() == "[]" {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("cluster was not torn down");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// A keep-alive HTTP/1.1 connection, enough for the load generator and latency probes.
struct Http {
    stream: BufReader<TcpStream>,
    auth: String,
    /// Further header lines sent with every request (each ending in `\r\n`).
    extra: String,
}

impl Http {
    fn connect(port: u16, token: &str) -> anyhow::Result<Http> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        Ok(Http {
            stream: BufReader::new(stream),
            auth: format!("Bearer {token}"),
            extra: String::new(),
        })
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let body = body.unwrap_or("");
        write!(
            self.stream.get_mut(),
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.auth,
            self.extra,
            body.len()
        )?;
        // Buffered, so the load generator spends its share of the CPU on requests, not on
        // one read call per byte.
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            anyhow::ensure!(self.stream.read_line(&mut head)? > 0, "connection closed");
        }
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn json_field(body: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":");
    let rest = &body[body.find(&needle)? + needle.len()..];
    let rest = rest.trim_start();
    if let Some(stripped) = rest.strip_prefix('"') {
        Some(stripped[..stripped.find('"')?].to_string())
    } else {
        Some(rest[..rest.find([',', '}'])?].trim().to_string())
    }
}

fn server_port(server: &Server) -> u16 {
    server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

fn server_token(server: &Server) -> anyhow::Result<String> {
    Ok(
        std::fs::read_to_string(server.data_dir.join("admin.token"))?
            .trim()
            .to_string(),
    )
}

/// Creates a session through the Livy API and waits until it is idle; returns the seconds and id.
fn timed_session(server: &Server) -> anyhow::Result<(f64, String)> {
    let mut http = Http::connect(server_port(server), &server_token(server)?)?;
    let started = Instant::now();
    let (status, body) = http.request("POST", "/sessions", Some(r#"{"kind":"pyspark"}"#))?;
    anyhow::ensure!(status == 201, "create session: {status} {body}");
    let id = json_field(&body, "id").unwrap_or_default();
    loop {
        let (_, body) = http.request("GET", &format!("/sessions/{id}/state"), None)?;
        match json_field(&body, "state").as_deref() {
            Some("idle") => return Ok((started.elapsed().as_secs_f64(), id)),
            Some("dead" | "error") => anyhow::bail!("session failed: {body}"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn delete_session(server: &Server, id: &str) -> anyhow::Result<()> {
    let mut http = Http::connect(server_port(server), &server_token(server)?)?;
    http.request("DELETE", &format!("/sessions/{id}"), None)?;
    Ok(())
}

/// One `1+1` through the Livy API: submit, then poll until available.
fn statement_rtt(http: &mut Http, id: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let (status, body) = http.request(
        "POST",
        &format!("/sessions/{id}/statements"),
        Some(r#"{"code":"1+1"}"#),
    )?;
    anyhow::ensure!(status == 201, "statement: {status} {body}");
    let seq = json_field(&body, "id").unwrap_or_default();
    loop {
        let (_, body) = http.request("GET", &format!("/sessions/{id}/statements/{seq}"), None)?;
        if json_field(&body, "state").as_deref() == Some("available") {
            return Ok(started.elapsed().as_secs_f64());
        }
        // A client polls; polling without a pause would take a core of this 2-core machine
        // from the driver it waits for.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Statements run on a session before its `1+1` round trip is measured.
const STATEMENT_WARMUP: usize = 30;

/// Requests per second of `GET path` from `threads` keep-alive connections over `seconds`.
fn load(server: &Server, path: &str, threads: usize, seconds: f64) -> anyhow::Result<f64> {
    let port = server_port(server);
    let token = server_token(server)?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let token = token.clone();
            let path = path.to_string();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut http = Http::connect(port, &token)?;
                let mut n = 0;
                while Instant::now() < deadline {
                    let (status, _) = http.request("GET", &path, None)?;
                    anyhow::ensure!(status == 200, "GET {path}: {status}");
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle
            .join()
            .map_err(|_| anyhow::anyhow!("load thread panicked"))??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Request rates of the Livy session routes, each next to `GET /version` on the same server,
/// connections and run (absolute rates do not carry across machines; ratios do).
struct Rates {
    version: f64,
    one: f64,
    all: f64,
}

impl Rates {
    /// Measures with 4 keep-alive connections, 3 s per route; `id` is a session in the store.
    fn measure(server: &Server, id: &str) -> anyhow::Result<Rates> {
        Ok(Rates {
            version: load(server, "/version", 4, 3.0)?,
            one: load(server, &format!("/sessions/{id}"), 4, 3.0)?,
            all: load(server, "/sessions", 4, 3.0)?,
        })
    }

    fn print(&self) {
        println!(
            "\nRequest rates, 101 sessions in the store, 4 keep-alive connections, 3 s each\n"
        );
        println!("| route | req/s | ratio vs GET /version | goal |");
        println!("|---|---|---|---|");
        println!("| GET /version | {:.0} | 1.00 | baseline |", self.version);
        for (route, rate, goal) in [
            ("GET /sessions/{id}", self.one, ">= 0.50"),
            ("GET /sessions", self.all, ">= 0.20"),
        ] {
            println!(
                "| {route} | {rate:.0} | {:.2} | {goal} |",
                rate / self.version
            );
        }
    }
}

/// Adds finished session records straight into the store, so listing has 100 sessions to show.
fn seed_sessions(server: &Server, n: usize) -> anyhow::Result<()> {
    let script = format!(
        "import sqlite3,datetime\nc=sqlite3.connect('{}')\nnow=datetime.datetime.utcnow().isoformat()+'Z'\nfor i in range({n}):\n  c.execute(\"INSERT INTO sessions (owner_id,kind,state,runtime,sizing_json,conf_json,idle_timeout_s,phases_json,created_at,last_activity_at,ended_at) VALUES (1,'pyspark','dead','3.4','{{}}','{{}}',1800,'[]',?,?,?)\",(now,now,now))\nc.commit()\n",
        server.data_dir.join("state.db").display()
    );
    let status = Command::new("python3").arg("-c").arg(script).status()?;
    anyhow::ensure!(status.success(), "seeding sessions failed");
    Ok(())
}

/// The sessions part: bare driver start vs Spool cold and warm, `1+1` round trip, request rates.
fn sessions_bench(rt: &Runtime, scratch: &Path, runs: usize) -> anyhow::Result<()> {
    let mut bare = Vec::new();
    let mut bare_first = Vec::new();
    let mut bare_rtt = Vec::new();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut warm_first = Vec::new();
    let mut rtt = Vec::new();
    let cold_server = start_server(scratch, "sessions-cold", "1s")?;
    let warm_server = start_server(scratch, "sessions-warm", "10m")?;
    let (_, warmup) = timed_session(&warm_server)?;
    delete_session(&warm_server, &warmup)?;
    for i in 1..=runs {
        eprintln!("==> sessions round {i}/{runs}");
        let (seconds, first, rtt_ms) = bare_session(rt, scratch)?;
        bare.push(seconds);
        bare_first.push(first);
        bare_rtt.push(rtt_ms);
        wait_no_clusters(&cold_server)?;
        let (seconds, id) = timed_session(&cold_server)?;
        cold.push(seconds);
        delete_session(&cold_server, &id)?;
        let (seconds, id) = timed_session(&warm_server)?;
        warm.push(seconds);
        if i == runs {
            let mut http = Http::connect(server_port(&warm_server), &server_token(&warm_server)?)?;
            // The first statements of a driver are slower while the JVM compiles the py4j
            // path; the row reports the steady state.
            for _ in 0..STATEMENT_WARMUP {
                statement_rtt(&mut http, &id)?;
            }
            for _ in 0..50 {
                rtt.push(statement_rtt(&mut http, &id)? * 1000.0);
            }
        }
        delete_session(&warm_server, &id)?;
        // Create to first result on the warm cluster (a new driver, no pre-warmed one).
        let (seconds, id) = first_result(&warm_server)?;
        warm_first.push(seconds);
        delete_session(&warm_server, &id)?;
        eprintln!(
            "    bare {:.2} s, cold {:.2} s, warm {:.2} s",
            bare[i - 1],
            cold[i - 1],
            warm[i - 1]
        );
    }
    // Pre-warmed: a server keeping one driver ready; each start claims it, then waits for the
    // pool to be refilled before the next.
    let mut prewarmed = Vec::new();
    let mut prewarmed_first = Vec::new();
    {
        let server = start_server_with(scratch, "sessions-prewarm", "10m", 1)?;
        for _ in 0..runs {
            wait_prewarmed(&server)?;
            let (seconds, id) = timed_session(&server)?;
            prewarmed.push(seconds * 1000.0);
            let mut http = Http::connect(server_port(&server), &server_token(&server)?)?;
            prewarmed_first.push(seconds + timed_statement(&mut http, &id, FIRST_RESULT)?);
            delete_session(&server, &id)?;
        }
    }
    seed_sessions(&warm_server, 100)?;
    let rates = Rates::measure(&warm_server, "1")?;
    let base = median(&bare);
    println!(
        "\nSessions: Livy API, kind pyspark, 1 executor x 1 core, runtime 3.4, {runs} runs each, median (min)\n"
    );
    println!("| scenario | median | min | ratio vs bare | goal |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, values: &[f64], goal: &str| {
        let m = median(values);
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        println!(
            "| {name} | {m:.2} s | {min:.2} s | {:.2} | {goal} |",
            m / base
        );
    };
    row(
        "bare: master+worker by hand, pyspark driver until a statement can run",
        &bare,
        "baseline",
    );
    row(
        "spool session start, cluster down (cold)",
        &cold,
        "<= 1.0 x bare",
    );
    row(
        "spool session start, cluster up (warm)",
        &warm,
        "<= 0.6 x bare",
    );
    println!(
        "| spool session start, pre-warmed driver | {:.1} ms | {:.1} ms | {:.4} | <= 300 ms |",
        median(&prewarmed),
        prewarmed.iter().cloned().fold(f64::INFINITY, f64::min),
        median(&prewarmed) / 1000.0 / base
    );
    let first_base = median(&bare_first);
    let first_row = |name: &str, values: &[f64], goal: &str| {
        let m = median(values);
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        println!(
            "| {name} | {m:.2} s | {min:.2} s | {:.2} (vs first result by hand) | {goal} |",
            m / first_base
        );
    };
    println!(
        "| bare: master+worker by hand, pyspark driver, until its first result of `{FIRST_RESULT}` | {first_base:.2} s | {:.2} s | 1.00 | baseline |",
        bare_first.iter().cloned().fold(f64::INFINITY, f64::min)
    );
    first_row(
        "spool session create → first result, pre-warmed driver",
        &prewarmed_first,
        "<= 0.1 and <= 1 s",
    );
    first_row(
        "spool session create → first result, warm cluster",
        &warm_first,
        "<= 0.5",
    );
    println!(
        "| `1+1` in a local Python process holding a SparkSession | {:.4} ms | | | baseline |",
        median(&bare_rtt)
    );
    println!(
        "| `1+1` through the Livy API (submit, then poll every 1 ms, keep-alive) | {:.2} ms | {:.2} ms | | <= 10 ms |",
        median(&rtt),
        rtt.iter().cloned().fold(f64::INFINITY, f64::min)
    );
    rates.print();
    Ok(())
}

/// Only the API figures: `1+1` round trip and request rates, without the start-up rows.
fn api_bench(scratch: &Path) -> anyhow::Result<()> {
    let server = start_server(scratch, "api", "10m")?;
    let (_, id) = timed_session(&server)?;
    let mut http = Http::connect(server_port(&server), &server_token(&server)?)?;
    for _ in 0..STATEMENT_WARMUP {
        statement_rtt(&mut http, &id)?;
    }
    let mut rtt: Vec<f64> = Vec::new();
    for _ in 0..50 {
        rtt.push(statement_rtt(&mut http, &id)? * 1000.0);
    }
    seed_sessions(&server, 100)?;
    let rates = Rates::measure(&server, &id)?;
    delete_session(&server, &id)?;
    println!("| scenario | value | goal |");
    println!("|---|---|---|");
    println!(
        "| `1+1` through the Livy API (submit, then poll every 1 ms, keep-alive), median (min) | {:.2} ms ({:.2} ms) | <= 10 ms |",
        median(&rtt),
        rtt.iter().cloned().fold(f64::INFINITY, f64::min)
    );
    rates.print();
    Ok(())
}

/// Bare baseline: master and worker by hand, then a pyspark driver until `ready`.
/// The statement whose result is "the first result" (also in `bench/bare_session.py`).
const FIRST_RESULT: &str = "spark.range(10**6).selectExpr('sum(id)').first()[0]";

/// Seconds from submitting `code` to its output being available.
fn timed_statement(http: &mut Http, id: &str, code: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let body = serde_json::json!({ "code": code }).to_string();
    let (status, answer) =
        http.request("POST", &format!("/sessions/{id}/statements"), Some(&body))?;
    anyhow::ensure!(status == 201, "statement: {status} {answer}");
    let seq = json_field(&answer, "id").unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, body) = http.request("GET", &format!("/sessions/{id}/statements/{seq}"), None)?;
        match json_field(&body, "state").as_deref() {
            Some("available") => {
                anyhow::ensure!(!body.contains("\"error\""), "statement failed: {body}");
                return Ok(started.elapsed().as_secs_f64());
            }
            _ => {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "statement did not finish: {body}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// A session's start plus its first result, in seconds; the session is left running.
fn first_result(server: &Server) -> anyhow::Result<(f64, String)> {
    let (started, id) = timed_session(server)?;
    let mut http = Http::connect(server_port(server), &server_token(server)?)?;
    Ok((started + timed_statement(&mut http, &id, FIRST_RESULT)?, id))
}

/// The bare baseline: seconds until the driver is ready, until its first result, and the
/// in-process `1+1` in milliseconds.
fn bare_session(rt: &Runtime, scratch: &Path) -> anyhow::Result<(f64, f64, f64)> {
    let started = Instant::now();
    let cluster = BareCluster::start(rt, scratch, "bare-session")?;
    let (port, ui) = (cluster.port, cluster.ui);
    let result = (|| -> anyhow::Result<(f64, f64, f64)> {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !http_get(ui, "/json/").unwrap_or_default().contains("ALIVE") {
            anyhow::ensure!(Instant::now() < deadline, "bare master did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut driver = Command::new(&rt.python);
        driver
            .arg(repo_root().join("bench/bare_session.py"))
            .arg(format!("spark://127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(scratch.join("bare-session.err"))?);
        spark_env(&mut driver, rt);
        let mut child = driver.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let mut ready = None;
        let mut first = None;
        let mut rtt = 0.0;
        for line in lines.by_ref() {
            let line = line?;
            if line == "ready" {
                ready = Some(started.elapsed().as_secs_f64());
            } else if line == "first_result" {
                first = Some(started.elapsed().as_secs_f64());
            } else if let Some(ms) = line.strip_prefix("rtt_ms ") {
                rtt = ms.parse().unwrap_or(0.0);
            }
        }
        let _ = child.wait();
        Ok((
            ready.ok_or_else(|| anyhow::anyhow!("bare driver never got ready"))?,
            first.ok_or_else(|| anyhow::anyhow!("bare driver gave no first result"))?,
            rtt,
        ))
    })();
    drop(cluster);
    result
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    eprintln!("==> building spool (release)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(repo_root())
        .args(["build", "--release", "-p", "spool"])
        .status()?;
    anyhow::ensure!(status.success(), "release build failed");
    let rt = runtime()?;
    let script = repo_root().join("bench/pi.py");
    let job = repo_root().join("bench/pi.yml");
    let scratch = std::env::temp_dir().join(format!("spool-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;

    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    if only == "api" {
        let result = api_bench(&scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    if only == "agents" {
        let result = agents::agents_bench(&scratch, runs);
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    if only == "envs" {
        let result = envs::envs_bench(&rt, &scratch, runs);
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    if only == "pipelines" {
        let result = pipelines::pipelines_bench(&scratch, runs);
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    if only == "isolation" {
        let result = isolation::isolation_bench(&scratch, runs);
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    if only == "connect" {
        let result = connect::connect_bench(&scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    if only == "studio" {
        let result = studio::studio_bench(&scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    if only == "sessions" {
        let result = sessions_bench(&rt, &scratch, runs);
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    let mut bare = Vec::new();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut warm_unenforced = Vec::new();
    let mut local = Vec::new();
    let mut warm_driver = Vec::new();
    // Run as root, the servers run jobs under per-identity OS accounts; this one does not, to
    // show what the enforcement costs.
    let enforced = runs_as_root();
    {
        let cold_server = start_server(&scratch, "cold", "1s")?;
        let warm_server = start_server(&scratch, "warm", "10m")?;
        let unenforced_server = start_server_configured(
            &scratch,
            "warm-unenforced",
            "10m",
            "[access]\nenforce = \"off\"\n",
        )?;
        // Keeps one pre-warmed driver, which each job takes (and the pool refills).
        let prewarm_server = start_server_with(&scratch, "warm-driver", "10m", 1)?;
        eprintln!("==> warm-up (fills the page cache; its runs are not counted)");
        bare_run(&rt, &script, &scratch)?;
        local_run(&rt, &script, &scratch)?;
        timed_job(&warm_server, &job)?;
        timed_job(&unenforced_server, &job)?;
        wait_prewarmed(&prewarm_server)?;
        timed_job(&prewarm_server, &job)?;
        wait_prewarmed(&prewarm_server)?;
        for i in 1..=runs {
            eprintln!("==> round {i}/{runs}");
            bare.push(bare_run(&rt, &script, &scratch)?);
            wait_no_clusters(&cold_server)?;
            cold.push(timed_job(&cold_server, &job)?);
            warm.push(timed_job(&warm_server, &job)?);
            warm_unenforced.push(timed_job(&unenforced_server, &job)?);
            local.push(local_run(&rt, &script, &scratch)?);
            wait_prewarmed(&prewarm_server)?;
            warm_driver.push(timed_job(&prewarm_server, &job)?);
            // The pool refills now, not while the next round's rows run.
            wait_prewarmed(&prewarm_server)?;
            eprintln!(
                "    bare {:.2} s, cold {:.2} s, warm {:.2} s, warm without OS enforcement {:.2} s, local[1] {:.2} s, pre-warmed driver {:.2} s",
                bare[i - 1],
                cold[i - 1],
                warm[i - 1],
                warm_unenforced[i - 1],
                local[i - 1],
                warm_driver[i - 1]
            );
        }
    }
    let base = median(&bare);
    println!(
        "\nSpool benchmark: bench/pi.py (RDD pi, 200k samples + range sum), 1 executor x 1 core, runtime 3.4, {runs} runs each, median (min)\n"
    );
    println!("| scenario | median s | min s | ratio vs bare | goal |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, values: &[f64], goal: &str| {
        let m = median(values);
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        println!("| {name} | {m:.2} | {min:.2} | {:.2} | {goal} |", m / base);
    };
    row(
        "bare: standalone master+worker by hand, then spark-submit",
        &bare,
        "baseline",
    );
    row("spool job create --stream, cold cluster", &cold, "<= 1.25");
    row("spool job create --stream, warm cluster", &warm, "<= 1.10");
    row(
        "spool job create --stream, warm cluster, OS enforcement off",
        &warm_unenforced,
        "",
    );
    row(
        "spool job create --stream, pre-warmed driver",
        &warm_driver,
        "",
    );
    println!(
        "\nBatch jobs on pre-warmed drivers: bench/pi.py through `spool job create --stream`\n"
    );
    println!("| scenario | median s | min s | ratio | goal |");
    println!("|---|---|---|---|---|");
    let local_base = median(&local);
    let ratio_row = |name: &str, values: &[f64], against: f64, goal: &str| {
        let m = median(values);
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        println!(
            "| {name} | {m:.2} | {min:.2} | {:.2} | {goal} |",
            m / against
        );
    };
    ratio_row(
        "spark-submit --master local[1] by hand",
        &local,
        local_base,
        "baseline",
    );
    ratio_row(
        "pre-warmed driver, vs local[1]",
        &warm_driver,
        local_base,
        "<= 0.40",
    );
    ratio_row(
        "pre-warmed driver, vs the warm-cluster path",
        &warm_driver,
        median(&warm),
        "",
    );
    println!(
        "\nOS enforcement (an account per identity, datastore ACLs, Spark RPC secrets){}: warm job {:.2} s vs {:.2} s without, ratio {:.2} (goal <= 1.05)",
        if enforced {
            ""
        } else {
            " is off here (not root), so both servers run without it"
        },
        median(&warm),
        median(&warm_unenforced),
        median(&warm) / median(&warm_unenforced)
    );
    let result = if only == "jobs" {
        Ok(())
    } else {
        sessions_bench(&rt, &scratch, runs)
            .and_then(|()| envs::envs_bench(&rt, &scratch, runs))
            .and_then(|()| agents::agents_bench(&scratch, runs))
            .and_then(|()| pipelines::pipelines_bench(&scratch, runs))
            .and_then(|()| isolation::isolation_bench(&scratch, runs))
            .and_then(|()| connect::connect_bench(&scratch))
    };
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Whether the benchmark runs as root (only then do servers switch accounts).
fn runs_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
