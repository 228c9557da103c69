//! Test harness: a real `spool serve` on a free port with a temp data dir, the real CLI, and a
//! check that nothing Spool started is still running when a test ends.
//!
//! Only for tests (a dev-dependency); nothing here is faked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};

pub mod netns;
mod pool;
use nix::unistd::Pid;
pub use pool::StandalonePool;

/// The Spark runtime the tests use (installed once per machine, shared through the cache).
pub const TEST_RUNTIME: &str = "3.4";

/// Returns the runtime cache tests share: `$SPOOL_CACHE_DIR` or the default cache.
pub fn cache_dir() -> PathBuf {
    spool_core::paths::default_cache_dir()
}

/// Installs the test runtime unless present (idempotent, safe across parallel tests).
pub fn ensure_runtime() {
    let cache = spool_runtime::RuntimeCache::new(cache_dir());
    if cache.installed(TEST_RUNTIME).is_some() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(cache.install(TEST_RUNTIME, &spool_runtime::NoProgress))
        .expect("install the test runtime (needs network access to PyPI once)");
}

/// The Python with the Livy client packages, installed by `cargo xtask setup`.
pub fn client_python() -> PathBuf {
    let python = cache_dir().join("test-clients/bin/python");
    assert!(
        python.exists(),
        "the Python client venv is missing at {}: run `cargo xtask setup`",
        python.display()
    );
    python
}

/// A running `spool serve` owned by a test.
pub struct TestServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    extra_args: Vec<String>,
    pub token: String,
    /// The network namespace the server (and the CLI) run in, and the address it listens on.
    netns: Option<String>,
    host: String,
}

impl TestServer {
    /// Starts a server with the given extra `spool serve` flags and optional `config.toml`.
    pub fn start(binary: &str, extra_args: &[&str], config_toml: Option<&str>) -> TestServer {
        ensure_runtime();
        let dir = tempfile::Builder::new()
            .prefix("spool-test-")
            .tempdir()
            .expect("temp dir");
        if let Some(config) = config_toml {
            std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        }
        let port = free_port();
        let mut server = TestServer {
            binary: PathBuf::from(binary),
            dir,
            port,
            child: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            token: String::new(),
            netns: None,
            host: "127.0.0.1".into(),
        };
        server.spawn();
        server
    }

    /// Starts a server inside network namespace `netns`, listening on `host` (an address of that
    /// namespace). Its CLI calls run in the namespace too.
    pub fn start_in_netns(
        binary: &str,
        netns: &str,
        host: &str,
        extra_args: &[&str],
        config_toml: Option<&str>,
    ) -> TestServer {
        ensure_runtime();
        let dir = tempfile::Builder::new()
            .prefix("spool-test-")
            .tempdir()
            .expect("temp dir");
        if let Some(config) = config_toml {
            std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        }
        let mut server = TestServer {
            binary: PathBuf::from(binary),
            dir,
            port: free_port(),
            child: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            token: String::new(),
            netns: Some(netns.to_string()),
            host: host.to_string(),
        };
        server.spawn();
        server
    }

    /// A command for the spool binary, in the server's namespace if it has one.
    fn command(&self) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(&self.binary);
                cmd
            }
            None => Command::new(&self.binary),
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("server log");
        let child = self
            .command()
            .arg("serve")
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("--listen")
            .arg(format!("{}:{}", self.host, self.port))
            .arg("--no-runtime-install")
            // Pre-warmed drivers hold a cluster; only tests that ask for them get them.
            .args(if self.extra_args.iter().any(|a| a == "--prewarm") {
                &[][..]
            } else {
                &["--prewarm", "0"][..]
            })
            .args(&self.extra_args)
            .env("SPOOL_CACHE_DIR", cache_dir())
            .env("SPOOL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn spool serve");
        self.child = Some(child);
        let token_path = self.dir.path().join("admin.token");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(token) = std::fs::read_to_string(&token_path) {
                self.token = token.trim().to_string();
                let ok = self
                    .command()
                    .args(["datastore", "list", "-o", "json"])
                    .env("SPOOL_URL", self.url())
                    .env("SPOOL_TOKEN", &self.token)
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if ok {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("spool serve did not come up; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A typed API client for the admin.
    pub fn client(&self) -> spool_client::Client {
        spool_client::Client::new(&self.url(), &self.token)
    }

    /// Runs the real CLI against this server as the admin.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.token, args)
    }

    /// Runs the real CLI with another token.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .env("SPOOL_URL", self.url())
            .env("SPOOL_TOKEN", token)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run spool")
    }

    /// Kills the server with SIGKILL, as a crash would; its children stay.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("spool serve did not stop within 60 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Changes the extra `spool serve` flags used by the next `restart`.
    pub fn set_args(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
    }

    /// Starts the server again on the same data dir and port.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Processes the server started that are running now (the server itself excluded).
    pub fn started_processes(&self) -> Vec<u32> {
        let server = self.child.as_ref().map(|c| c.id());
        leftover_processes(self.dir.path())
            .into_iter()
            .filter(|pid| Some(*pid) != server)
            .collect()
    }

    /// Processes the server started whose command line contains `needle` (e.g. `driver.py`).
    pub fn processes_matching(&self, needle: &str) -> Vec<u32> {
        self.started_processes()
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(needle))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Waits until the server runs no process of its own; returns what is left at the deadline.
    pub fn wait_for_no_started_processes(&self, timeout: Duration) -> Vec<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = self.started_processes();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server and asserts that no process it started is left.
    pub fn finish(mut self) {
        self.stop();
        let left = wait_for_no_leftovers(self.dir.path(), Duration::from_secs(20));
        assert!(
            left.is_empty(),
            "processes left running after the server stopped: {left:?}\nserver log:\n{}",
            self.log()
        );
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Best effort for a test that panicked: leave nothing behind on the machine.
        self.stop();
        for pid in leftover_processes(self.dir.path()) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Processes whose working dir or command line is inside `dir`: everything Spool starts for a
/// data dir (Spark daemons, drivers, executors, Python workers) runs there.
pub fn leftover_processes(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(true);
            if zombie {
                return false;
            }
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            cwd.starts_with(&needle) || cmdline.contains(&needle)
        })
        .collect()
}

/// Waits until no process runs inside `dir`; returns what is still there at the deadline.
pub fn wait_for_no_leftovers(dir: &Path, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = leftover_processes(dir);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Picks a free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Text of a command's stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Text of a command's stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The shared sample data (`../shared/data` next to the repository).
pub fn shared_data(name: &str) -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("../../../shared/data").join(name);
    assert!(
        path.exists(),
        "sample data `{}` is missing; the repository expects ../shared beside it",
        path.display()
    );
    path
}

/// Reads a job's JSON through the CLI.
pub fn job_json(server: &TestServer, name: &str) -> serde_json::Value {
    let out = server.cli(&["job", "show", "--name", name, "-o", "json"]);
    assert!(out.status.success(), "job show failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("job JSON")
}

/// Waits until a job reaches one of `statuses`; returns its JSON.
pub fn wait_for_status(
    server: &TestServer,
    name: &str,
    statuses: &[&str],
    timeout: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let last = job_json(server, name);
        if statuses.iter().any(|s| last["status"] == *s) {
            return last;
        }
        if Instant::now() > deadline {
            panic!(
                "job {name} did not reach {statuses:?} within {timeout:?}; last: {last:#}\nserver log:\n{}",
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A plain HTTP GET to a local port (no proxy, no client library): the body on a 200.
pub fn http_get_local(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}
