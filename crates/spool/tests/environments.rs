//! Conda environments for sessions and jobs: packages from PyPI layered on the runtime, the
//! content-addressed cache, rejected version changes, unknown packages and the install timeout.
//! Real server, real uv, real PyPI, real Spark.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use spool_test::{TestServer, cache_dir, deadline, stderr, stdout};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/envs")
        .join(name)
}

fn fixture_str(name: &str) -> String {
    fixture(name).display().to_string()
}

/// Seconds between two phases of a session view.
fn phase_seconds(session: &Value, from: &str, to: &str) -> f64 {
    let at = |status: &str| {
        let phases = session["phases"].as_array().unwrap();
        let text = phases
            .iter()
            .rev()
            .find(|p| p["status"] == status)
            .unwrap_or_else(|| panic!("no phase {status} in {session}"))["at"]
            .as_str()
            .unwrap()
            .to_string();
        chrono::DateTime::parse_from_rfc3339(&text).unwrap()
    };
    (at(to) - at(from)).num_milliseconds() as f64 / 1000.0
}

/// One HTTP call to the server as the admin; returns the status and body.
fn http(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut request = client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", server.url()),
            )
            .bearer_auth(&server.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    })
}

fn env_dirs() -> Vec<String> {
    std::fs::read_dir(cache_dir().join("envs"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_session_uses_packages_from_its_conda_file_on_the_driver_and_executors_and_hits_the_cache() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    // First session: the cache is bypassed, so this is a real build.
    let out = server.cli(&[
        "session",
        "create",
        "--name",
        "env-first",
        "--conda-file",
        &fixture_str("small.yml"),
        "--conf",
        "spark.hadoop.aml.enable_cache=false",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["state"], "idle", "{first}");
    // The build's progress shows in the CLI's progress lines.
    assert!(
        stderr(&out).contains("preparing environment from"),
        "{}",
        stderr(&out)
    );
    let build = phase_seconds(&first, "environment", "environment_ready");

    // The package is there on the driver, and in a UDF on the executors, from the same Python.
    // The driver's interpreter path travels to the executors as a string and is compared
    // with theirs: both are the environment's Python.
    let code = "import sys, tabulate, toolz\nprint(tabulate.__version__, toolz.__version__)\ndriver_python = sys.executable\nprint('/envs/' in driver_python, sorted(set(spark.sparkContext.parallelize(range(4), 2).map(lambda _: (__import__('tabulate').__version__, __import__('sys').executable == driver_python)).collect())))";
    let out = server.cli(&["session", "run", "--name", "env-first", code]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("0.9.0 0.12.1"), "{text}");
    assert!(text.contains("True [('0.9.0', True)]"), "{text}");
    // The runtime itself is untouched: its Python does not have the package.
    let runtime_python = cache_dir().join("runtimes/3.4/venv/bin/python");
    let plain = std::process::Command::new(runtime_python)
        .args(["-c", "import tabulate"])
        .output()
        .unwrap();
    assert!(!plain.status.success(), "the runtime gained tabulate");

    // Second session with the same file (packages in another order would be the same too):
    // a cache hit, measurably faster than the build.
    let out = server.cli(&[
        "session",
        "create",
        "--name",
        "env-second",
        "--conda-file",
        &fixture_str("small.yml"),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hit = phase_seconds(&second, "environment", "environment_ready");
    assert!(
        hit < build && hit < 1.0,
        "cache hit took {hit:.3} s, the build {build:.3} s"
    );
    assert!(
        second["state_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("ready")
            || second["state"] == "idle"
    );
    let out = server.cli(&[
        "session",
        "run",
        "--name",
        "env-second",
        "import tabulate; print(tabulate.__version__)",
    ]);
    assert!(stdout(&out).contains("0.9.0"), "{}", stdout(&out));

    // The session log shows the build's output.
    let (_, log) = http(
        &server,
        "GET",
        &format!("/sessions/{}/log?size=-1", first["id"]),
        None,
    );
    assert!(log.contains("tabulate==0.9.0"), "{log}");

    // `spool env list` shows it, with the key both sessions used.
    let out = server.cli(&["env", "list", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let envs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        envs.as_array()
            .unwrap()
            .iter()
            .any(|e| e["requirements"] == json!(["tabulate==0.9.0", "toolz==0.12.1"])),
        "{envs}"
    );
    for name in ["env-first", "env-second"] {
        assert!(
            server
                .cli(&["session", "delete", "--name", name])
                .status
                .success()
        );
    }
    server.finish();
}

#[test]
fn a_job_imports_a_package_from_its_environment() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        &fixture_str("job/job.yml"),
        "--stream",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        server.log()
    );
    // The driver's output goes to stderr; stdout carries the job.
    let text = stderr(&out);
    assert!(text.contains("driver     0.9.0"), "{text}");
    assert!(text.contains("executors  0.9.0"), "{text}");
    server.finish();
}

#[test]
fn version_changes_and_unmappable_specs_are_rejected_before_anything_starts() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let before = env_dirs();
    let out = server.cli(&[
        "session",
        "create",
        "--conda-file",
        &fixture_str("version_change.yml"),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("version_change.yml:3:5"), "{err}");
    assert!(
        err.contains("asks for Python `==3.9.*`, but runtime 3.4 has Python 3.11"),
        "{err}"
    );
    assert!(err.contains("version_change.yml:6:9"), "{err}");
    assert!(err.contains("PySpark and Spark 3.4.4"), "{err}");
    // Through Livy's conf as well, with Livy's error shape.
    let response = http(
        &server,
        "POST",
        "/sessions",
        Some(
            json!({"kind": "pyspark", "conf": {"spark.synapse.library.python.env": "dependencies:\n  - openjdk=11\n"}}),
        ),
    );
    assert_eq!(response.0, 400, "{}", response.1);
    assert!(
        response.1.contains("runtime 3.4 has Java 17"),
        "{}",
        response.1
    );
    // Nothing was created.
    let (_, sessions) = http(&server, "GET", "/sessions", None);
    assert!(sessions.contains("\"total\":0"), "{sessions}");
    assert_eq!(env_dirs(), before);
    server.finish();
}

#[test]
fn an_unknown_package_fails_the_session_with_the_name_and_keeps_the_log() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let out = server.cli(&[
        "session",
        "create",
        "--name",
        "unknown",
        "--conda-file",
        &fixture_str("unknown.yml"),
        "-o",
        "json",
    ]);
    let session: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(session["state"], "error", "{session}");
    let reason = session["state_reason"].as_str().unwrap();
    assert!(reason.contains("spool-no-such-package-7c1e"), "{reason}");
    assert!(reason.contains("envs/failed/"), "{reason}");
    // Not cached, and no half-built environment is left.
    assert!(
        env_dirs().iter().all(|d| !d.starts_with(".build-")),
        "{:?}",
        env_dirs()
    );
    server.finish();
}

/// Writes a source distribution whose build sleeps, recording in `pid_file` its pid and whether
/// it sees `SPOOL_TEST_SECRET` (build scripts are user code: they must not).
fn slow_sdist(dir: &Path, pid_file: &Path) {
    let src = dir.join("src/spool-slow-build-0.1");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("setup.py"),
        format!(
            "import os, time\nopen({:?}, 'w').write(f\"{{os.getpid()}} {{'SPOOL_TEST_SECRET' in os.environ}}\")\ntime.sleep(600)\nfrom setuptools import setup\nsetup(name='spool-slow-build', version='0.1')\n",
            pid_file.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        src.join("PKG-INFO"),
        "Metadata-Version: 2.1\nName: spool-slow-build\nVersion: 0.1\n",
    )
    .unwrap();
    let links = dir.join("links");
    std::fs::create_dir_all(&links).unwrap();
    let status = std::process::Command::new("tar")
        .arg("czf")
        .arg(links.join("spool_slow_build-0.1.tar.gz"))
        .arg("-C")
        .arg(dir.join("src"))
        .arg("spool-slow-build-0.1")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_build_past_its_install_timeout_is_stopped_and_leaves_nothing_in_the_cache() {
    let scratch = tempfile::tempdir().unwrap();
    let pid_file = scratch.path().join("build.pid");
    slow_sdist(scratch.path(), &pid_file);
    let config = format!(
        "[environments]\ninstall_timeout = \"6s\"\nfind_links = [{:?}]\n",
        scratch.path().join("links").display().to_string()
    );
    let server = TestServer::start_with_env(
        env!("CARGO_BIN_EXE_spool"),
        &[],
        Some(&config),
        &[("SPOOL_TEST_SECRET", "sekrit")],
    );
    let out = server.cli(&[
        "session",
        "create",
        "--name",
        "slow",
        "--conda-file",
        &fixture_str("slow.yml"),
        "-o",
        "json",
    ]);
    let session: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(session["state"], "error", "{session}\n{}", server.log());
    let reason = session["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("longer than its 6s limit")
            && reason.contains("still installing: spool-slow-build"),
        "{reason}"
    );
    // The build reached the sleeping setup.py, and it was stopped with the build.
    let recorded = std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|_| panic!("the slow build never started: {reason}"));
    let (pid, saw_secret) = recorded.trim().split_once(' ').unwrap();
    let pid: i32 = pid.parse().unwrap();
    // The build starts from a cleared environment, like every process Spool starts.
    assert_eq!(
        saw_secret, "False",
        "the build saw the server's environment"
    );
    server.wait_for("the stopped build to be gone", deadline::STOP, || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(
        env_dirs().iter().all(|d| !d.starts_with(".build-")),
        "{:?}",
        env_dirs()
    );
    server.finish();
}

#[test]
fn two_sessions_asking_for_the_same_new_environment_at_once_share_one_build() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    // A requirement no earlier run wrote (an excluded version that does not exist), so the
    // environment is new to the cache: exactly one of the two sessions may build it.
    let scratch = tempfile::tempdir().unwrap();
    let conda = scratch.path().join("shared.yml");
    let requirement = format!("toolz==0.12.1,!=0.0.{}", std::process::id());
    std::fs::write(
        &conda,
        format!("name: shared\ndependencies:\n  - pip:\n      - {requirement}\n"),
    )
    .unwrap();
    let mut ids = Vec::new();
    for name in ["shared-a", "shared-b"] {
        let out = server.cli(&[
            "session",
            "create",
            "--name",
            name,
            "--conda-file",
            conda.to_str().unwrap(),
            "--no-wait",
            "-o",
            "json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let session: Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(session["id"].clone());
    }
    let mut builds = 0;
    for id in &ids {
        // Both build (or wait for) the environment while their clusters start.
        let state = server.wait_for("the session to start", deadline::COLD_START, || {
            let (_, body) = http(&server, "GET", &format!("/sessions/{id}/state"), None);
            let state: Value = serde_json::from_str(&body).unwrap();
            let state = state["state"].as_str().unwrap().to_string();
            (state != "starting" && state != "not_started").then_some(state)
        });
        assert_eq!(state, "idle", "{}", server.log());
        let (_, log) = http(&server, "GET", &format!("/sessions/{id}/log?size=-1"), None);
        if log.contains("building environment") {
            builds += 1;
        } else {
            assert!(log.contains("from the cache"), "{log}");
        }
        let out = server.cli(&[
            "session",
            "run",
            "--name",
            &id.to_string(),
            "import toolz; print(toolz.__version__)",
        ]);
        assert!(stdout(&out).contains("0.12.1"), "{}", stdout(&out));
    }
    assert_eq!(builds, 1, "both sessions built the environment");
    // `env show` finds it by a prefix of its key.
    let out = server.cli(&["env", "list", "-o", "json"]);
    let envs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["requirements"] == json!([requirement]))
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let out = server.cli(&["env", "show", &key[..8], "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["key"], key.as_str());
    // `env log` prints the one build: Spool's lines around uv's own.
    let out = server.cli(&["env", "log", &key[..8]]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stdout(&out);
    assert!(log.starts_with("[spool] building environment "), "{log}");
    assert!(log.contains("toolz==0.12.1"), "{log}");
    assert_eq!(
        log.matches("[spool] building environment").count(),
        1,
        "{log}"
    );
    assert!(
        log.trim_end().ends_with(" s") && log.contains("[spool] environment "),
        "{log}"
    );
    let out = server.cli(&["env", "log", "nosuchkey"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("environment `nosuchkey` not found"),
        "{}",
        stderr(&out)
    );
    for id in &ids {
        server.cli(&["session", "delete", "--name", &id.to_string()]);
    }
    server.finish();
}
