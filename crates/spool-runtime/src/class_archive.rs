//! A runtime's class archive: the classes a PySpark driver and its executors load, written once
//! by the JVM's class data sharing (a dynamic CDS archive) so that every Spark JVM of the runtime
//! maps them from one file instead of reading and verifying them from the JARs at each start.
//! On a small host that is about a third of a job's CPU time.
//!
//! The archive is trained once per runtime, as its install's last step, by a local-mode run of
//! `class_archive/train.py`. A failed training leaves a note instead of an archive, so the next
//! install does not try again, and the runtime works without it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::InstalledRuntime;

/// The training application.
const TRAINING_SCRIPT: &str = include_str!("class_archive/train.py");

/// What a failed training leaves in the runtime's folder: the reason.
const FAILED: &str = "classes.jsa.failed";

/// How long the training may take before it is stopped (it takes about 20 s on 2 cores).
const TIMEOUT: Duration = Duration::from_secs(300);

/// The name of a runtime's class archive in its folder.
const ARCHIVE: &str = "classes.jsa";

/// Where the training runs, in the runtime's folder (removed once it ended).
const SCRATCH: &str = "class-archive-training";

/// The archive of the runtime in `dir`.
fn path(dir: &Path) -> PathBuf {
    dir.join(ARCHIVE)
}

/// The archive of the runtime in `dir`, if it has one.
pub(crate) fn existing(dir: &Path) -> Option<PathBuf> {
    Some(path(dir)).filter(|archive| archive.exists())
}

/// Whether the runtime in `dir` has its archive, or tried and failed to train it.
pub(crate) fn settled(dir: &Path) -> bool {
    path(dir).exists() || dir.join(FAILED).exists()
}

/// Trains the archive of `runtime` (installed in `dir`), appending the run's output to `log`;
/// the reason when it failed (also left in `dir`).
pub(crate) async fn train(
    runtime: &InstalledRuntime,
    dir: &Path,
    log: &Path,
) -> Result<(), String> {
    let scratch = dir.join(SCRATCH);
    let result = train_in(runtime, dir, &scratch, log).await;
    if let Err(reason) = &result {
        let _ = std::fs::write(dir.join(FAILED), format!("{reason}\n"));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn train_in(
    runtime: &InstalledRuntime,
    dir: &Path,
    scratch: &Path,
    log: &Path,
) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).map_err(|e| format!("create {}: {e}", scratch.display()))?;
    let script = scratch.join("train.py");
    std::fs::write(&script, TRAINING_SCRIPT)
        .map_err(|e| format!("write {}: {e}", script.display()))?;
    // Written next to the archive and renamed once complete: a JVM never maps half an archive.
    let partial = dir.join(format!("{ARCHIVE}.partial"));
    let _ = std::fs::remove_file(&partial);
    let install = spool_spark::Install {
        class_archive: None,
        ..runtime.spark_install("127.0.0.1")
    };
    let command =
        spool_spark::train_class_archive(&install, &script, &scratch.join("out"), &partial);
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    let err_file = log_file
        .try_clone()
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    {
        use std::io::Write;
        let mut header = &log_file;
        let _ = writeln!(header, "$ train the class archive: {}", command.render());
    }
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args)
        .envs(&command.env)
        .current_dir(scratch)
        .stdin(std::process::Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        // Its own process group, so a stopped training takes its Python with it.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("start {}: {e}", command.program.display()))?;
    let pid = child.id();
    let status = match tokio::time::timeout(TIMEOUT, child.wait()).await {
        Ok(status) => status.map_err(|e| format!("wait for the training: {e}"))?,
        Err(_) => {
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(format!(
                "the training run took over {} s and was stopped; see {}",
                TIMEOUT.as_secs(),
                log.display()
            ));
        }
    };
    if !status.success() || !partial.exists() {
        let _ = std::fs::remove_file(&partial);
        return Err(format!(
            "the training run ended with {status} and wrote no archive; see {}",
            log.display()
        ));
    }
    std::fs::rename(&partial, path(dir)).map_err(|e| format!("move the archive in place: {e}"))
}
