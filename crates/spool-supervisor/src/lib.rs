//! Starting, watching and stopping the child processes Spool runs (Spark JVMs, Python drivers).
//!
//! Every process is started in its own process group, with stdout and stderr captured to files in
//! its log dir and its exit code written to `exit_code` there, so that a restarted server can learn
//! how a process it did not spawn itself ended. This crate must not touch the state store: callers
//! record a process before calling [`spawn`] and record its pid after.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};

/// Errors from starting or stopping processes.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("create log dir `{path}`")]
    LogDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("open the network namespace `{path}`")]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spawn `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables the process gets besides the few it inherits from Spool
    /// ([`spool_core::env::INHERITED`]); they win over inherited ones.
    pub env: HashMap<String, String>,
    pub cwd: PathBuf,
    /// Where `stdout`, `stderr` and `exit_code` go (created 0700: only the server reads them).
    pub log_dir: PathBuf,
    /// The account the program runs under; the server's own when `None`.
    pub run_as: Option<RunAs>,
    /// When set, stdout and stderr both go to this one file (created 0700 in a folder of the
    /// server's, like `log_dir`), in the order they were written, instead of `stdout` and
    /// `stderr` in `log_dir`: Azure ML's `user_logs/std_log.txt` of a command.
    pub combined_log: Option<PathBuf>,
    /// When set, the network namespace (a file such as `/run/netns/<name>`) the program runs
    /// in; the wrapper joins it before anything of the program runs.
    pub netns: Option<PathBuf>,
    /// The niceness the program starts with (0: the server's own); what it starts inherits it.
    pub nice: i32,
}

/// Another OS account to run a program under. The `/bin/sh` wrapper stays the server's, so the
/// exit code file is written by the server and the program cannot fake it; the program is
/// started through `setpriv` with the account's uid, gid and groups, no capabilities, no way to
/// gain privileges (`no_new_privs`), and umask 077.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// `HOME` of the process: somewhere the account may write.
    pub home: PathBuf,
}

/// Where `setpriv` (util-linux) is: what starts a [`RunAs`] program.
pub const SETPRIV: &str = "/usr/bin/setpriv";

impl ProcessSpec {
    /// Renders the command line for records and logs.
    pub fn command_line(&self) -> String {
        let mut line = self.program.display().to_string();
        for arg in &self.args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }
}

/// A process this server spawned. Dropping it does not stop the process.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u32,
    /// Start time in clock ticks since boot, to tell the process apart from a later one that
    /// reuses its pid.
    pub start_ticks: Option<u64>,
    child: Child,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was ended by this signal number.
    Signal(i32),
    /// It is gone and nothing says how (it ended while no server watched it).
    Unknown,
}

impl Exit {
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    pub fn code(self) -> Option<i64> {
        match self {
            Exit::Code(c) => Some(i64::from(c)),
            Exit::Signal(s) => Some(128 + i64::from(s)),
            Exit::Unknown => None,
        }
    }
}

/// Name of the file in the log dir that receives the exit code.
pub const EXIT_CODE_FILE: &str = "exit_code";

/// Spawns a process in a new process group, wrapped by `/bin/sh` so that its exit code reaches
/// `<log_dir>/exit_code` even when no server is watching.
///
/// The process starts from a cleared environment: it inherits only the variables
/// [`spool_core::env::INHERITED`] names, then gets `spec.env`. Nothing of the server's own
/// environment (tokens, credentials) reaches it. Nor does any file descriptor besides stdin,
/// stdout and stderr (see [`close_inherited_descriptors`]).
pub fn spawn(spec: &ProcessSpec) -> Result<Spawned, SupervisorError> {
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let log_dir_error = |source| SupervisorError::LogDir {
            path: spec.log_dir.clone(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&spec.log_dir)
            .map_err(log_dir_error)?;
        fs::set_permissions(&spec.log_dir, fs::Permissions::from_mode(0o700))
            .map_err(log_dir_error)?;
    }
    let open = |name: &str| {
        File::options()
            .create(true)
            .append(true)
            .open(spec.log_dir.join(name))
            .map_err(|source| SupervisorError::LogDir {
                path: spec.log_dir.join(name),
                source,
            })
    };
    let (stdout, stderr) = match &spec.combined_log {
        None => (open("stdout")?, open("stderr")?),
        Some(path) => {
            let log_error = |source| SupervisorError::LogDir {
                path: path.clone(),
                source,
            };
            if let Some(dir) = path.parent() {
                use std::os::unix::fs::DirBuilderExt;
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(log_error)?;
            }
            // One open file for both: appends of either land in the order they were made.
            let file = File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(log_error)?;
            let copy = file.try_clone().map_err(log_error)?;
            (file, copy)
        }
    };
    let exit_file = spec.log_dir.join(EXIT_CODE_FILE);
    let _ = fs::remove_file(&exit_file);

    // The shell stays the group leader and parent of the real program, so the exit code is
    // written even if this server is gone by then. A signal to the group reaches both.
    let script = r#""$0" "$@"; code=$?; echo "$code" > "$SPOOL_EXIT_FILE"; exit "$code""#;
    let mut command = Command::new("/bin/sh");
    command.arg("-c");
    // Under another account, what the program creates outside folders with ACLs of their own
    // (Spark's scratch files in /tmp) is its account's alone.
    if spec.run_as.is_some() {
        command.arg(format!("umask 077; {script}"));
    } else {
        command.arg(script);
    }
    match &spec.run_as {
        None => {
            command.arg(&spec.program);
        }
        Some(run_as) => {
            let groups: Vec<String> = run_as.groups.iter().map(u32::to_string).collect();
            command.arg(SETPRIV).args([
                format!("--reuid={}", run_as.uid),
                format!("--regid={}", run_as.gid),
                if groups.is_empty() {
                    "--clear-groups".to_string()
                } else {
                    format!("--groups={}", groups.join(","))
                },
                "--inh-caps=-all".to_string(),
                "--no-new-privs".to_string(),
                "--".to_string(),
            ]);
            command.arg(&spec.program);
        }
    }
    command
        .args(&spec.args)
        .env_clear()
        .envs(spool_core::env::inherited());
    if let Some(run_as) = &spec.run_as {
        command
            .env("HOME", &run_as.home)
            .env("USER", &run_as.name)
            .env("LOGNAME", &run_as.name);
    }
    command
        .envs(&spec.env)
        .env("SPOOL_EXIT_FILE", &exit_file)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        // Own process group: a stop signals the whole tree (sh, JVM, Python workers), and a
        // Ctrl-C in the server's terminal does not reach the children directly.
        .process_group(0)
        .kill_on_drop(false);
    close_inherited_descriptors(&mut command);
    // Opened here, so a missing namespace is an error of this call; the descriptor is
    // close-on-exec, so the program does not keep it.
    let netns = match &spec.netns {
        Some(path) => Some(File::open(path).map_err(|source| SupervisorError::Netns {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    if let Some(netns) = &netns {
        join_netns(&mut command, netns.as_raw_fd());
    }
    if spec.nice != 0 {
        set_nice(&mut command, spec.nice);
    }
    let child = command.spawn().map_err(|source| SupervisorError::Spawn {
        program: spec.program.display().to_string(),
        source,
    })?;
    let pid = child.id().expect("a just-spawned child has a pid");
    Ok(Spawned {
        pid,
        start_ticks: start_ticks(pid),
        child,
    })
}

/// Makes every descriptor above stderr close-on-exec in the child, between fork and exec.
///
/// What a Spool process opens itself is close-on-exec already (Rust's standard library, tokio
/// and SQLite ask for it), but descriptors it inherited from whatever started it are not: a
/// shell's, a service manager's or a test harness's pipes would otherwise reach statement and
/// job code. [`mark_inherited_descriptors`] does the same once for a whole process.
#[allow(unsafe_code)]
fn close_inherited_descriptors(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and makes only async-signal-safe
    // system calls (close_range, fcntl); it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            mark_descriptors_from_3();
            Ok(())
        });
    }
}

/// Sets the child's niceness, between fork and exec.
#[allow(unsafe_code)]
fn set_nice(command: &mut Command, nice: i32) {
    use nix::libc;
    // SAFETY: one system call on the calling process; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            if libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sets the niceness of every process in the group `pgid` (a process Spool started and all it
/// started since); raising a priority needs root. Failures are logged.
#[allow(unsafe_code)]
pub fn set_group_nice(pgid: u32, nice: i32) {
    use nix::libc;
    // SAFETY: a plain system call on a process group id.
    let rc = unsafe { libc::setpriority(libc::PRIO_PGRP, pgid as libc::id_t, nice) };
    if rc != 0 {
        tracing::debug!(pgid, nice, error = %std::io::Error::last_os_error(), "set a process group's niceness");
    }
}

/// Moves the child into the network namespace open at `fd`, between fork and exec.
#[allow(unsafe_code)]
fn join_netns(command: &mut Command, fd: std::os::fd::RawFd) {
    use nix::libc;
    // SAFETY: one system call on a descriptor the parent keeps open until `spawn` returns; it
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Marks every descriptor above stderr that this process inherited close-on-exec, so no child
/// it starts by any means (environment builds, runtime installs) gets them. Call it first
/// thing; it closes nothing, so the descriptors stay usable here.
pub fn mark_inherited_descriptors() {
    mark_descriptors_from_3();
}

/// Sets close-on-exec on descriptors 3 and up; async-signal-safe.
#[allow(unsafe_code)]
fn mark_descriptors_from_3() {
    use nix::libc;
    // SAFETY: plain system calls on descriptor numbers; marking a descriptor close-on-exec
    // never invalidates it, and unused numbers only make the call fail.
    unsafe {
        // Marking instead of closing keeps the standard library's own close-on-exec pipe,
        // which reports a failed exec to the parent, open until the exec.
        let marked = libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if marked != 0 {
            // Kernels before 5.11 lack the flag: mark the usual range one by one.
            for fd in 3..4096 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

impl Spawned {
    /// Waits for the process to end and reaps it.
    pub async fn wait(mut self) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match self.child.wait().await {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(signal)) => Exit::Signal(signal),
                _ => Exit::Unknown,
            },
            Err(_) => Exit::Unknown,
        }
    }
}

/// Reads a process's start time (field 22 of `/proc/<pid>/stat`).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    // Fields after the command name start at field 3 (state); start time is field 22.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

fn stat_fields(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Returns true when `pid` is running (not a zombie) and, if given, started at `ticks`.
pub fn is_alive(pid: u32, ticks: Option<u64>) -> bool {
    match stat_fields(pid) {
        Some((state, _)) if state != 'Z' && state != 'X' => {
            ticks.is_none() || start_ticks(pid) == ticks
        }
        _ => false,
    }
}

/// Lists the live (non-zombie) members of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            matches!(stat_fields(*pid), Some((state, pgrp)) if pgrp == pgid && state != 'Z' && state != 'X')
        })
        .collect()
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The group was already gone.
    AlreadyGone,
    /// The group ended within the grace period after SIGTERM.
    Terminated,
    /// The group had to be killed with SIGKILL.
    Killed,
}

/// Stops process group `pgid`: SIGTERM, up to `grace` to end, then SIGKILL.
///
/// SIGTERM first lets the JVMs run their shutdown hooks (a Spark driver unregisters its
/// application, so the master frees its executors at once). SIGKILL after the grace period
/// makes sure nothing outlives its cluster or job.
pub async fn stop_group(pgid: u32, grace: Duration) -> Stopped {
    if group_members(pgid).is_empty() {
        return Stopped::AlreadyGone;
    }
    let group = Pid::from_raw(pgid as i32);
    if let Err(Errno::ESRCH) = killpg(group, Signal::SIGTERM) {
        return Stopped::AlreadyGone;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if group_members(pgid).is_empty() {
            return Stopped::Terminated;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let _ = killpg(group, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !group_members(pgid).is_empty() {
        sleep(Duration::from_millis(20)).await;
    }
    Stopped::Killed
}

/// Reads the exit code a wrapped process left in `log_dir`, if it ended on its own.
pub fn read_exit_file(log_dir: &Path) -> Option<i32> {
    fs::read_to_string(log_dir.join(EXIT_CODE_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Waits until a process this server did not spawn (adopted after a restart) has ended, then
/// returns its exit code from the exit file.
pub async fn wait_adopted(pid: u32, ticks: Option<u64>, log_dir: &Path) -> Exit {
    while is_alive(pid, ticks) {
        sleep(Duration::from_millis(200)).await;
    }
    // The shell writes the file just before it exits; give it a moment to land.
    for _ in 0..10 {
        if let Some(code) = read_exit_file(log_dir) {
            return Exit::Code(code);
        }
        sleep(Duration::from_millis(50)).await;
    }
    Exit::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: HashMap::from([("GREETING".to_string(), "hello".to_string())]),
            cwd: dir.to_path_buf(),
            log_dir: dir.join("logs"),
            run_as: None,
            combined_log: None,
            netns: None,
            nice: 0,
        }
    }

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let spawned = spawn(&spec(dir.path(), "echo $GREETING; echo oops >&2; exit 3")).unwrap();
        assert!(spawned.start_ticks.is_some());
        assert_eq!(spawned.wait().await, Exit::Code(3));
        let logs = dir.path().join("logs");
        assert_eq!(fs::read_to_string(logs.join("stdout")).unwrap(), "hello\n");
        assert_eq!(fs::read_to_string(logs.join("stderr")).unwrap(), "oops\n");
        assert_eq!(read_exit_file(&logs), Some(3));
    }

    #[tokio::test]
    async fn a_combined_log_keeps_both_streams_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("user_logs").join("std_log.txt");
        let spawned = spawn(&ProcessSpec {
            combined_log: Some(log.clone()),
            ..spec(dir.path(), "echo one; echo two >&2; echo three; exit 4")
        })
        .unwrap();
        assert_eq!(spawned.wait().await, Exit::Code(4));
        assert_eq!(fs::read_to_string(&log).unwrap(), "one\ntwo\nthree\n");
        let logs = dir.path().join("logs");
        assert!(!logs.join("stdout").exists() && !logs.join("stderr").exists());
        assert_eq!(read_exit_file(&logs), Some(4));
    }

    /// The variables and open descriptors of a running process.
    fn environ_and_fds(pid: u32) -> (Vec<String>, Vec<String>) {
        let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
        let environ = String::from_utf8_lossy(&environ)
            .split('\0')
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        let fds = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        (environ, fds)
    }

    #[tokio::test]
    async fn children_get_only_the_allowed_environment_and_no_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        // Open descriptors of this process that a child must not get.
        let _file = File::create(dir.path().join("state.db")).unwrap();
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // Under cargo and nextest this process has `CARGO_*` and `NEXTEST_*` variables.
        assert!(std::env::vars().any(|(name, _)| !spool_core::env::is_inherited(&name)));
        let spawned = spawn(&spec(dir.path(), "sleep 5")).unwrap();
        let (environ, mut fds) = environ_and_fds(spawned.pid);
        stop_group(spawned.pid, Duration::from_secs(1)).await;
        let unexpected: Vec<&String> = environ
            .iter()
            .filter(|var| {
                let name = var.split_once('=').map_or(var.as_str(), |(n, _)| n);
                !spool_core::env::is_inherited(name)
                    && name != "GREETING"
                    && name != "SPOOL_EXIT_FILE"
            })
            .collect();
        assert!(unexpected.is_empty(), "inherited: {unexpected:?}");
        assert!(
            environ.contains(&"GREETING=hello".to_string()),
            "{environ:?}"
        );
        fds.sort();
        assert_eq!(fds, ["0", "1", "2"]);
    }

    #[tokio::test]
    async fn stop_ends_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        // A child that ignores SIGTERM forces the SIGKILL path; a grandchild must die too.
        let spawned = spawn(&spec(dir.path(), "sleep 30 & trap '' TERM; sleep 30; wait")).unwrap();
        let pid = spawned.pid;
        let waiter = tokio::spawn(spawned.wait());
        // The second `sleep` starts only after the trap is set: until the group has three
        // members, SIGTERM could still end the shell.
        for _ in 0..500 {
            if group_members(pid).len() >= 3 {
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        assert!(group_members(pid).len() >= 3, "{:?}", group_members(pid));
        let how = stop_group(pid, Duration::from_millis(300)).await;
        assert_eq!(how, Stopped::Killed);
        assert!(matches!(waiter.await.unwrap(), Exit::Signal(_)));
        assert!(group_members(pid).is_empty());
        assert_eq!(
            stop_group(pid, Duration::from_millis(10)).await,
            Stopped::AlreadyGone
        );
    }

    #[tokio::test]
    async fn adopted_process_exit_is_read_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let spawned = spawn(&spec(dir.path(), "sleep 0.3; exit 7")).unwrap();
        let (pid, ticks) = (spawned.pid, spawned.start_ticks);
        assert!(is_alive(pid, ticks));
        assert!(!is_alive(pid, ticks.map(|t| t + 1)));
        // Reap in the background as the real parent would; observe as an adopter.
        tokio::spawn(spawned.wait());
        let exit = wait_adopted(pid, ticks, &dir.path().join("logs")).await;
        assert_eq!(exit, Exit::Code(7));
    }
}
