//! `cargo xtask bench`: the same PySpark script run three ways, timed end to end in one
//! invocation, with ratios against the baseline.
//!
//! - bare: by hand, without Spool: start a standalone master and worker from the runtime's
//!   jars, wait until the worker registered, `spark-submit` the script, stop both.
//! - cold: `spool job create --stream` when no cluster is up (Spool starts one).
//! - warm: `spool job create --stream` while the previous job's cluster is still up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::repo_root;

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

/// One bare run: fresh master and worker, wait until the worker registered, spark-submit.
fn bare_run(rt: &Runtime, script: &Path, scratch: &Path) -> anyhow::Result<f64> {
    let (port, ui, worker_ui) = (free_port()?, free_port()?, free_port()?);
    let work = scratch.join("bare-work");
    std::fs::create_dir_all(&work)?;
    let started = Instant::now();
    let mut master = daemon(
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
        &scratch.join("master"),
    )?;
    let mut worker = daemon(
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
        &scratch.join("worker"),
    )?;
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
    let _ = worker.kill();
    let _ = master.kill();
    let _ = worker.wait();
    let _ = master.wait();
    result
}

struct Server {
    child: Child,
    url: String,
    data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: a graceful stop tears the clusters down.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn spool_bin() -> PathBuf {
    repo_root().join("target/release/spool")
}

fn start_server(scratch: &Path, name: &str, teardown: &str) -> anyhow::Result<Server> {
    let data_dir = scratch.join(name);
    std::fs::create_dir_all(&data_dir)?;
    let port = free_port()?;
    let child = Command::new(spool_bin())
        .args([
            "serve",
            "--no-runtime-install",
            "--teardown-after",
            teardown,
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
    Ok(Command::new(spool_bin())
        .args(args)
        .env("SPOOL_URL", &server.url)
        .env("SPOOL_TOKEN", token.trim())
        .stdin(Stdio::null())
        .output()?)
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

    let mut bare = Vec::new();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    {
        let cold_server = start_server(&scratch, "cold", "1s")?;
        let warm_server = start_server(&scratch, "warm", "10m")?;
        eprintln!("==> warm-up (fills the page cache; its runs are not counted)");
        bare_run(&rt, &script, &scratch)?;
        timed_job(&warm_server, &job)?;
        for i in 1..=runs {
            eprintln!("==> round {i}/{runs}");
            bare.push(bare_run(&rt, &script, &scratch)?);
            wait_no_clusters(&cold_server)?;
            cold.push(timed_job(&cold_server, &job)?);
            warm.push(timed_job(&warm_server, &job)?);
            eprintln!(
                "    bare {:.2} s, cold {:.2} s, warm {:.2} s",
                bare[i - 1],
                cold[i - 1],
                warm[i - 1]
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
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
