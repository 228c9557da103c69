//! Restarts never lose a job, a record or a log: a crashed server's work is adopted by the next
//! one; a stopped server ends what it started.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use spool_test::{TestServer, deadline, job_json, job_name, stderr, wait_for_status};

fn sleep_job(dir: &Path, seconds: u32) -> PathBuf {
    let code = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/src");
    let path = dir.join("sleep.yml");
    let yaml = format!(
        "type: spark\ncode: {}\nentry:\n  file: sleep.py\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\nargs: \"{seconds}\"\n",
        code.display()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spool-restart-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_crashed_servers_running_job_is_adopted_and_completes() {
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let dir = scratch("crash");
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        sleep_job(&dir, 15).to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let name = job_name(&out);
    let running = wait_for_status(&server, &name, &["Running"], deadline::COLD_START);
    let cluster_id = running["cluster"]["id"].clone();

    // A crash: the server dies, its Spark processes live on.
    server.kill9();
    assert!(
        !server.started_processes().is_empty(),
        "the driver and cluster outlive a crash"
    );
    server.restart();

    // The restart, adoption, and the rest of the job's 15 s.
    let done = wait_for_status(
        &server,
        &name,
        &["Completed", "Failed", "Canceled"],
        deadline::SERVER_UP + deadline::SHORT_WORK,
    );
    assert_eq!(done["status"], "Completed", "{done:#}\n{}", server.log());
    assert_eq!(done["cluster"]["id"], cluster_id);
    // Nothing was lost: every phase from before the crash and the driver's whole log.
    let phases: Vec<&str> = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "NotStarted",
            "Preparing",
            "Provisioning",
            "Starting",
            "Running",
            "Finalizing",
            "Completed"
        ]
    );
    let log = server
        .data_dir()
        .join("jobs")
        .join(&name)
        .join("logs/azureml/driver/stdout");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("sleeping") && text.contains("slept"),
        "{text}"
    );
    // The restart recorded what it adopted.
    let events = spool_test_events(&server);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "adopted" && e["subject"] == format!("job {name}")),
        "{events:?}"
    );
    assert!(
        events.iter().any(
            |e| e["kind"] == "adopted" && e["subject"].as_str().unwrap().starts_with("cluster")
        ),
        "{events:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

#[test]
fn a_job_on_a_pre_warmed_driver_is_adopted_after_a_crash_and_completes() {
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "1"], None);
    let dir = scratch("crash-warm");
    server.wait_prewarmed("a pre-warmed driver");
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        sleep_job(&dir, 12).to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let name = job_name(&out);
    let running = wait_for_status(&server, &name, &["Running"], deadline::STATE_CHANGE);
    assert_eq!(running["driver"]["path"], "warm_driver", "{running:#}");

    server.kill9();
    server.restart();

    let done = wait_for_status(
        &server,
        &name,
        &["Completed", "Failed", "Canceled"],
        deadline::SERVER_UP + deadline::SHORT_WORK,
    );
    assert_eq!(done["status"], "Completed", "{done:#}\n{}", server.log());
    let log = server
        .data_dir()
        .join("jobs")
        .join(&name)
        .join("logs/azureml/driver/stdout");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("sleeping") && text.contains("slept"),
        "{text}"
    );
    let events = spool_test_events(&server);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "adopted" && e["subject"] == format!("job {name}")),
        "{events:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

#[test]
fn a_restart_reaps_what_died_meanwhile_and_records_how_jobs_ended() {
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let dir = scratch("reap");
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        sleep_job(&dir, 300).to_str().unwrap(),
    ]);
    let name = job_name(&out);
    wait_for_status(&server, &name, &["Running"], deadline::COLD_START);
    server.kill9();
    // While no server runs, the driver dies (e.g. the OOM killer). Its master and worker remain.
    let driver_pids: Vec<u32> = server.processes_matching("sleep.py");
    assert!(!driver_pids.is_empty());
    for pid in driver_pids {
        let _ = nix_kill(pid);
    }
    server.restart();
    let done = wait_for_status(
        &server,
        &name,
        &["Completed", "Failed", "Canceled"],
        deadline::SERVER_UP + deadline::STATE_CHANGE,
    );
    assert_eq!(done["status"], "Failed");
    assert!(
        done["error"].as_str().unwrap().contains("signal")
            || done["error"].as_str().unwrap().contains("exit"),
        "{done:#}"
    );
    // The adopted cluster idles and is torn down at the next stop; nothing is left.
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

#[test]
fn a_graceful_stop_ends_running_jobs_and_their_clusters() {
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let dir = scratch("stop");
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        sleep_job(&dir, 300).to_str().unwrap(),
    ]);
    let name = job_name(&out);
    wait_for_status(&server, &name, &["Running"], deadline::COLD_START);
    assert_eq!(server.stop(), Some(0), "a graceful stop exits 0");
    let left = spool_test::wait_for_no_leftovers(server.data_dir(), deadline::STOP);
    assert!(left.is_empty(), "left after a graceful stop: {left:?}");
    server.restart();
    let job = job_json(&server, &name);
    assert_eq!(job["status"], "Failed", "{job:#}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("the server was stopped while the job ran"),
        "{job:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

#[test]
fn keep_running_on_stop_leaves_work_for_the_next_server() {
    let mut server = TestServer::start(
        env!("CARGO_BIN_EXE_spool"),
        &["--keep-running-on-stop"],
        None,
    );
    let dir = scratch("keep");
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        sleep_job(&dir, 12).to_str().unwrap(),
    ]);
    let name = job_name(&out);
    wait_for_status(&server, &name, &["Running"], deadline::COLD_START);
    assert_eq!(server.stop(), Some(0));
    assert!(
        !server.started_processes().is_empty(),
        "work keeps running across the stop"
    );
    server.restart();
    let done = wait_for_status(
        &server,
        &name,
        &["Completed", "Failed"],
        deadline::SERVER_UP + deadline::SHORT_WORK,
    );
    assert_eq!(done["status"], "Completed", "{done:#}");
    // Without the flag, the next stop ends everything, the kept cluster included.
    server.stop();
    server.set_args(&[]);
    server.restart();
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

fn spool_test_events(server: &TestServer) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = rt.block_on(server.client().events()).unwrap();
    events.as_array().unwrap().clone()
}

fn nix_kill(pid: u32) -> std::io::Result<()> {
    let status = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}
