//! Test harness: a real `spool serve` on a free port with a temp data dir, the real CLI, and a
//! check that nothing Spool started is still running when a test ends.
//!
//! Only for tests (a dev-dependency); nothing here is faked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};

pub mod deadline;
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

/// The runtime the Spark Connect tests use: the test runtime's Spark 3 has no Connect plugin.
pub const CONNECT_RUNTIME: &str = "4.3";

/// Installs the test runtime unless present (idempotent, safe across parallel tests).
pub fn ensure_runtime() {
    ensure_runtime_version(TEST_RUNTIME);
}

/// Installs runtime `version` unless present (`cargo xtask setup` installs the ones tests use).
pub fn ensure_runtime_version(version: &str) {
    let cache = spool_runtime::RuntimeCache::new(cache_dir());
    if cache.complete(version).is_some() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(cache.install(version, &spool_runtime::NoProgress))
        .unwrap_or_else(|e| {
            panic!("install runtime {version} (needs network access to PyPI once): {e}")
        });
}

/// The Python of the thin Spark Connect client's venv, installed by `cargo xtask setup`.
pub fn connect_client_python() -> PathBuf {
    setup_python("connect-client", "the Spark Connect client venv")
}

/// The Python with the Livy client packages, installed by `cargo xtask setup`.
pub fn client_python() -> PathBuf {
    setup_python("test-clients", "the Python client venv")
}

/// The playwright-core package the studio tests drive Chromium with, and Debian's Chromium,
/// both installed by `cargo xtask setup`.
pub fn studio_browser() -> (PathBuf, PathBuf) {
    let playwright = cache_dir().join("studio-test/node_modules/playwright-core");
    let chromium = PathBuf::from("/usr/bin/chromium");
    for (path, what) in [(&playwright, "playwright-core"), (&chromium, "Chromium")] {
        assert!(
            path.exists(),
            "{what} is missing at {}: run `cargo xtask setup`",
            path.display()
        );
    }
    (playwright, chromium)
}

/// The Python of venv `dir` in the cache, which `cargo xtask setup` makes.
fn setup_python(dir: &str, what: &str) -> PathBuf {
    let python = cache_dir().join(dir).join("bin/python");
    assert!(
        python.exists(),
        "{what} is missing at {}: run `cargo xtask setup`",
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
    /// Variables added to the server's environment (on top of the test's own).
    extra_env: Vec<(String, String)>,
    pub token: String,
    /// The network namespace the server (and the CLI) run in, and the address it listens on.
    netns: Option<String>,
    host: String,
    /// Substrings of the ERROR lines the test expects; any other ERROR fails the test.
    allowed_errors: Mutex<Vec<String>>,
    /// Set by `finish`, so that dropping a finished server checks nothing twice.
    finished: bool,
}

impl TestServer {
    /// Starts a server with the given extra `spool serve` flags and optional `config.toml`.
    pub fn start(binary: &str, extra_args: &[&str], config_toml: Option<&str>) -> TestServer {
        Self::start_with_env(binary, extra_args, config_toml, &[])
    }

    /// As `start`, with variables `env` added to the server's environment (e.g. a secret its
    /// children must not see).
    pub fn start_with_env(
        binary: &str,
        extra_args: &[&str],
        config_toml: Option<&str>,
        env: &[(&str, &str)],
    ) -> TestServer {
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
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            token: String::new(),
            netns: None,
            host: "127.0.0.1".into(),
            allowed_errors: Mutex::default(),
            finished: false,
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
            extra_env: Vec::new(),
            token: String::new(),
            netns: Some(netns.to_string()),
            host: host.to_string(),
            allowed_errors: Mutex::default(),
            finished: false,
        };
        server.spawn();
        server
    }

    /// A command for the spool binary, in the server's namespace if it has one.
    fn command(&self) -> Command {
        match &self.netns {
            // Only the network namespace changes (not the mount namespace, as `ip netns exec`
            // would): namespaces the server creates under /run/netns are the host's to see.
            Some(ns) => {
                let mut cmd = Command::new("nsenter");
                cmd.arg(format!("--net=/run/netns/{ns}")).arg(&self.binary);
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
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn spool serve");
        self.child = Some(child);
        let token_path = self.dir.path().join("admin.token");
        let until = Instant::now() + deadline::SERVER_UP;
        let mut progress = Progress::new("spool serve to answer", deadline::SERVER_UP);
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
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "spool serve exited ({status}) before answering; log:\n{}",
                    self.log()
                );
            }
            if Instant::now() > until {
                panic!(
                    "spool serve did not answer within {:?}; log:\n{}",
                    deadline::SERVER_UP,
                    self.log()
                );
            }
            progress.tick();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's whole log (every start of it, for a restarted server).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// What to show when a wait times out: the server log's tail, and the tails of the logs of
    /// every driver and Spark daemon the server started.
    pub fn log_tails(&self) -> String {
        self.logs().tails()
    }

    /// The server's logs, readable without borrowing the server (e.g. across `kill9`).
    pub fn logs(&self) -> ServerLogs {
        ServerLogs {
            data_dir: self.dir.path().to_path_buf(),
        }
    }

    /// Polls `check` until it returns `Some`; on timeout, panics with `what` and the log tails.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl FnMut() -> Option<T>,
    ) -> T {
        wait_for_or(what, timeout, check, || self.log_tails())
    }

    /// Declares an ERROR the test expects the server to log: an ERROR entry containing
    /// `substring` does not fail the test. Say why next to the call.
    pub fn allow_error(&self, substring: &str) {
        self.allowed_errors
            .lock()
            .expect("no test panics while holding the lock")
            .push(substring.to_string());
    }

    /// ERROR entries and panics of the server log that no `allow_error` covers.
    pub fn unexpected_errors(&self) -> Vec<String> {
        let allowed = self
            .allowed_errors
            .lock()
            .expect("no test panics while holding the lock")
            .clone();
        error_entries(&self.log())
            .into_iter()
            .filter(|entry| !allowed.iter().any(|a| entry.contains(a.as_str())))
            .collect()
    }

    /// Fails the test if the server logged an ERROR it did not expect, or panicked.
    fn assert_no_unexpected_errors(&self) {
        let errors = self.unexpected_errors();
        assert!(
            errors.is_empty(),
            "the server logged {} unexpected ERROR or panic entr{} (declare expected ones with \
             `allow_error`):\n{}\n\nserver log (tail):\n{}",
            errors.len(),
            if errors.len() == 1 { "y" } else { "ies" },
            errors.join("\n"),
            tail(&self.log(), 60)
        );
    }

    /// A typed API client for the admin.
    pub fn client(&self) -> spool_client::Client {
        spool_client::Client::new(&self.url(), &self.token)
    }

    /// Waits until the server has a pre-warmed driver ready (a cold start the first time, the
    /// pool's refill after a session or job took one).
    pub fn wait_prewarmed(&self, what: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let client = self.client();
        self.wait_for(what, deadline::COLD_START, || {
            let catalog = rt.block_on(client.catalog()).ok()?;
            (catalog.prewarmed_sessions_ready > 0).then_some(())
        });
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
        let until = Instant::now() + deadline::STOP;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > until {
                let _ = child.kill();
                panic!(
                    "spool serve did not stop within {:?}; log:\n{}",
                    deadline::STOP,
                    self.log()
                );
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

    /// The pid of the running server process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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

    /// Stops the server and asserts that no process it started is left and that it logged no
    /// unexpected ERROR.
    pub fn finish(mut self) {
        self.finished = true;
        self.stop();
        let left = wait_for_no_leftovers(self.dir.path(), deadline::STOP);
        assert!(
            left.is_empty(),
            "processes left running after the server stopped: {left:?}\nserver log:\n{}",
            self.log()
        );
        let accounts = os_accounts(self.dir.path());
        let left = processes_of_accounts(&accounts);
        assert!(
            left.is_empty(),
            "processes of Spool's OS accounts {accounts:?} left running: {left:?}"
        );
        remove_os_accounts(&accounts);
        self.assert_no_unexpected_errors();
    }

    /// The OS accounts this server created (`spool-<instance>-<n>`), with their uids.
    pub fn os_accounts(&self) -> Vec<(String, u32)> {
        os_accounts(self.dir.path())
    }
}

/// The accounts of a data dir's server: `/etc/passwd` entries named after its instance id.
pub fn os_accounts(data_dir: &Path) -> Vec<(String, u32)> {
    let Ok(id) = std::fs::read_to_string(data_dir.join("instance-id")) else {
        return Vec::new();
    };
    let prefix = format!("spool-{}-", id.trim());
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            name.starts_with(&prefix).then(|| (name.to_string(), uid))
        })
        .collect()
}

/// Live processes running under any of `accounts`.
pub fn processes_of_accounts(accounts: &[(String, u32)]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
            !zombie && uid.is_some_and(|uid| accounts.iter().any(|(_, u)| *u == uid))
        })
        .collect()
}

/// Removes a test server's OS accounts (they belong to its data dir, which goes with the test).
pub fn remove_os_accounts(accounts: &[(String, u32)]) {
    for pid in processes_of_accounts(accounts) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    for (name, _) in accounts {
        for _ in 0..50 {
            let done = std::process::Command::new("/usr/sbin/userdel")
                .arg(name)
                .output()
                .is_ok_and(|o| o.status.success() || o.status.code() == Some(6));
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Best effort for a test that panicked: leave nothing behind on the machine.
        self.stop();
        for pid in leftover_processes(self.dir.path()) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        remove_os_accounts(&os_accounts(self.dir.path()));
        // A test that ended without `finish` is still held to the log check; one that is
        // already failing is not (a second panic would abort and hide the first).
        if !self.finished && !std::thread::panicking() {
            self.assert_no_unexpected_errors();
        }
    }
}

/// The logs of a test server's data dir.
#[derive(Debug, Clone)]
pub struct ServerLogs {
    data_dir: PathBuf,
}

impl ServerLogs {
    /// The server log's tail, and the tails of the logs of the drivers and Spark daemons the
    /// server started, most recently written first.
    pub fn tails(&self) -> String {
        let log = std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default();
        let mut out = format!("server log (tail):\n{}", tail(&log, 60));
        for path in process_logs(&self.data_dir) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            let name = path.strip_prefix(&self.data_dir).unwrap_or(&path);
            out.push_str(&format!(
                "\n{} (tail):\n{}",
                name.display(),
                tail(&text, 20)
            ));
        }
        out
    }
}

/// Log entries at ERROR level: a line whose level field (after the timestamp) is `ERROR`,
/// with the lines that continue it (multi-line fields such as a log tail); and panics (Rust's
/// `thread '...' panicked at ...` report, with its message), which fail a test like an ERROR.
pub fn error_entries(log: &str) -> Vec<String> {
    let level = |line: &str| line.split_whitespace().nth(1).map(str::to_string);
    let starts_entry = |line: &str| {
        line.split_whitespace()
            .next()
            .is_some_and(|first| first.len() >= 20 && first.as_bytes()[4] == b'-')
    };
    let is_panic = |line: &str| line.starts_with("thread '") && line.contains("' panicked at ");
    let mut entries = Vec::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        if is_panic(line) {
            entries.extend(current.take());
            current = Some(line.to_string());
        } else if starts_entry(line) {
            entries.extend(current.take());
            if level(line).as_deref() == Some("ERROR") {
                current = Some(line.to_string());
            }
        } else if let Some(entry) = current.as_mut() {
            entry.push('\n');
            entry.push_str(line);
        }
    }
    entries.extend(current);
    entries
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Log files of the processes a server started under its data dir: drivers of jobs and
/// sessions, Spark masters and workers, newest first.
fn process_logs(data_dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![data_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                // Executors' work dirs hold copies of the job's files; their logs are not
                // what a timed-out wait needs first.
                Ok(t) if t.is_dir() && !path.ends_with("work") && !path.ends_with("datastores") => {
                    stack.push(path);
                }
                Ok(t) if t.is_file() => {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name == "stderr" || name == "stdout" {
                        files.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    files.sort_by_key(|p| std::cmp::Reverse(modified(p)));
    files.truncate(8);
    files
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

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`. A wait that
/// takes long says so on stderr (shown with the test's output) with the time it has taken.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    wait_for_or(what, timeout, check, String::new)
}

/// As `wait_for`, with `diagnostics()` (e.g. log tails) in the panic message on timeout.
pub fn wait_for_or<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    diagnostics: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut progress = Progress::new(what, timeout);
    loop {
        if let Some(value) = check() {
            progress.done();
            return value;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                diagnostics()
            );
        }
        progress.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reports a wait that passes some seconds on stderr: what it waits for and for how long, so a
/// slow run says where its time went.
pub struct Progress {
    what: String,
    timeout: Duration,
    started: Instant,
    next_report: Duration,
}

impl Progress {
    /// Waits shorter than this are normal and stay quiet.
    const FIRST_REPORT: Duration = Duration::from_secs(10);

    pub fn new(what: &str, timeout: Duration) -> Progress {
        Progress {
            what: what.to_string(),
            timeout,
            started: Instant::now(),
            next_report: Self::FIRST_REPORT,
        }
    }

    /// Call on every poll; prints at 10 s, 20 s, 40 s, ... of waiting.
    pub fn tick(&mut self) {
        let elapsed = self.started.elapsed();
        if elapsed >= self.next_report {
            eprintln!(
                "[spool-test] still waiting for {} after {:.0} s (deadline {} s)",
                self.what,
                elapsed.as_secs_f64(),
                self.timeout.as_secs()
            );
            self.next_report *= 2;
        }
    }

    /// Call when the wait succeeded; reports its duration if it was slow enough to be reported.
    pub fn done(&self) {
        let elapsed = self.started.elapsed();
        if elapsed >= Self::FIRST_REPORT {
            eprintln!(
                "[spool-test] {} after {:.1} s",
                self.what,
                elapsed.as_secs_f64()
            );
        }
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
/// The name of the job `spool job create` printed (as JSON: the tests' stdout is no terminal).
pub fn job_name(out: &Output) -> String {
    let job: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no job printed ({e}):\n{}\n{}", stdout(out), stderr(out)));
    job["name"]
        .as_str()
        .expect("a printed job has a name")
        .to_string()
}

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
    let mut progress = Progress::new(&format!("job {name} to reach {statuses:?}"), timeout);
    loop {
        let last = job_json(server, name);
        if statuses.iter().any(|s| last["status"] == *s) {
            progress.done();
            return last;
        }
        if Instant::now() > deadline {
            panic!(
                "job {name} did not reach {statuses:?} within {timeout:?}; last: {last:#}\n{}",
                server.log_tails()
            );
        }
        progress.tick();
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

/// A JSON document from a Spark UI on this host (`ui_url` as `http://127.0.0.1:<port>`), e.g.
/// the master's `/json/` or a driver's `/api/v1/applications`.
pub fn spark_ui_json(ui_url: &str, path: &str) -> Option<serde_json::Value> {
    let port: u16 = ui_url
        .trim_end_matches('/')
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    serde_json::from_str(&http_get_local(port, path)?).ok()
}

/// The executors (the driver not counted) registered with the application of a driver's UI,
/// and the tasks they run now.
pub fn driver_executors(spark_ui_url: &str) -> Option<(usize, i64)> {
    let apps = spark_ui_json(spark_ui_url, "/api/v1/applications")?;
    let app = apps.as_array()?.first()?["id"].as_str()?.to_string();
    let executors = spark_ui_json(
        spark_ui_url,
        &format!("/api/v1/applications/{app}/executors"),
    )?;
    let executors: Vec<&serde_json::Value> = executors
        .as_array()?
        .iter()
        .filter(|e| e["id"] != "driver")
        .collect();
    let active_tasks = executors
        .iter()
        .map(|e| e["activeTasks"].as_i64().unwrap_or(0))
        .sum();
    Some((executors.len(), active_tasks))
}

/// Every path under `dir`, sorted: folders end in `/`, symlinks (not followed) show their
/// targets (`out/passwd -> /etc/passwd`). For tests of what an unpack or download wrote.
pub fn tree_listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read a folder of the tree") {
            let entry = entry.expect("read a folder entry");
            let rel = entry
                .path()
                .strip_prefix(root)
                .expect("an entry under the root")
                .display()
                .to_string();
            let file_type = entry.file_type().expect("an entry's type");
            if file_type.is_symlink() {
                let target = std::fs::read_link(entry.path()).expect("a link's target");
                out.push(format!("{rel} -> {}", target.display()));
            } else if file_type.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &entry.path(), out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::error_entries;

    #[test]
    fn error_entries_are_error_lines_with_their_continuations() {
        let log = "\
2026-05-09T07:29:33.186Z  INFO spool is serving url=http://127.0.0.1:1
2026-05-09T07:29:34.000Z ERROR request failed error=start spark master: its log ends with:
line one of the tail
line two of the tail
2026-05-09T07:29:35.000Z  WARN the word ERROR in a warning is not an error
2026-05-09T07:29:36.000Z ERROR livy request failed error=boom
2026-05-09T07:29:37.000Z  INFO session submitted
thread 'tokio-runtime-worker' panicked at crates/spool-control/src/config.rs:1:1:
cannot convert float seconds to Duration: value is either too big or NaN
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
2026-05-09T07:29:38.000Z  INFO session submitted
";
        assert_eq!(
            error_entries(log),
            [
                "2026-05-09T07:29:34.000Z ERROR request failed error=start spark master: its log ends with:\nline one of the tail\nline two of the tail",
                "2026-05-09T07:29:36.000Z ERROR livy request failed error=boom",
                "thread 'tokio-runtime-worker' panicked at crates/spool-control/src/config.rs:1:1:\ncannot convert float seconds to Duration: value is either too big or NaN\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            ]
        );
        assert!(error_entries("").is_empty());
    }
}
