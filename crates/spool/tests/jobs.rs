//! Spark batch jobs end to end: the real server and CLI, real Spark JVMs, real files.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spool_test::{
    TestServer, deadline, job_json, job_name, shared_data, stderr, stdout, wait_for_status,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn upload(server: &TestServer, file: &str, dest: &str) {
    let src = shared_data(file);
    let out = server.cli(&[
        "datastore",
        "upload",
        "--src",
        src.to_str().unwrap(),
        "--dest",
        dest,
    ]);
    assert!(out.status.success(), "upload: {}", stderr(&out));
}

/// Writes a job file next to the fixtures' code, for a script and its args.
fn job_file(dir: &Path, entry: &str, args: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{}.yml", entry.trim_end_matches(".py")));
    let yaml = format!(
        "type: spark\ncode: {code}\nentry:\n  file: {entry}\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\nargs: {args}\nresources:\n  instance_type: standard_e4s_v3\n  runtime_version: \"3.4\"\n{extra}",
        code = fixtures().join("src").display(),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn titanic_job_writes_its_output_then_reuses_the_warm_cluster_then_tears_it_down() {
    let server = TestServer::start(
        env!("CARGO_BIN_EXE_spool"),
        &["--teardown-after", "5s"],
        None,
    );
    upload(&server, "titanic.csv", "data/titanic.csv");
    let job_yml = repo().join("examples/titanic/job.yml");

    // Cold: a new cluster.
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        job_yml.to_str().unwrap(),
        "--stream",
    ]);
    assert!(
        out.status.success(),
        "stream failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let first = job_name(&out);
    assert!(
        stderr(&out).contains("rows after wrangling: 712"),
        "{}",
        stderr(&out)
    );
    let job = job_json(&server, &first);
    assert_eq!(job["status"], "Completed");
    assert_eq!(job["identity"], "user_identity");
    let phases: Vec<&str> = job["phases"]
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
    let cluster_id = job["cluster"]["id"].as_i64().unwrap();
    let master_ui = job["cluster"]["master_ui_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(job["spark_app_id"].as_str().unwrap().starts_with("app-"));
    assert!(
        job["spark_ui_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    // The output folder holds CSV part files with the 712 wrangled rows (891 less the rows with
    // no Age or Embarked).
    let out_dir = server
        .data_dir()
        .join("datastores/workspaceblobstore/data/wrangled");
    let mut rows = 0;
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let text = std::fs::read_to_string(&path).unwrap();
            rows += text.lines().skip(1).filter(|l| !l.is_empty()).count();
        }
    }
    assert_eq!(rows, 712);

    // The Spark application carries the user's appName.
    let master: serde_json::Value = reqwest::blocking_get_json(&format!("{master_ui}/json/"));
    let apps = master["completedapps"].as_array().unwrap();
    assert!(
        apps.iter().any(|a| a["name"] == "titanic-wrangling"),
        "{master:#}"
    );

    // Warm: the same owner, runtime and shape reuses the idle cluster.
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        job_yml.to_str().unwrap(),
        "--stream",
        "--set",
        "display_name=second run",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = job_json(&server, &job_name(&out));
    assert_eq!(second["status"], "Completed");
    assert_eq!(
        second["cluster"]["id"].as_i64().unwrap(),
        cluster_id,
        "warm cluster not reused"
    );
    assert_eq!(second["display_name"], "second run");

    // Download in Azure ML's layout.
    let download = tempfile_dir();
    let out = server.cli(&[
        "job",
        "download",
        "--name",
        &first,
        "--all",
        "--download-path",
        download.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let driver_stdout =
        std::fs::read_to_string(download.join("artifacts/logs/azureml/driver/stdout")).unwrap();
    assert!(driver_stdout.contains("rows after wrangling: 712"));
    let parts: Vec<_> = std::fs::read_dir(download.join("named-outputs/wrangled_data"))
        .unwrap()
        .collect();
    assert!(
        parts.len() >= 2,
        "expected part files and _SUCCESS: {parts:?}"
    );
    let executor_logs = server
        .data_dir()
        .join("jobs")
        .join(&first)
        .join("logs/azureml/executors");
    assert!(
        executor_logs.is_dir(),
        "executor logs are kept with the job"
    );

    // Idle past the teardown window: the cluster is gone and so are its processes.
    // The window (5 s), the teardown loop's next round, and the daemons stopping.
    server.wait_for(
        "cluster teardown",
        Duration::from_secs(5) + deadline::STOP,
        || {
            let out = server.cli(&["cluster", "list", "-o", "json"]);
            let clusters: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            clusters.as_array()?.is_empty().then_some(())
        },
    );
    let left = server.wait_for_no_started_processes(deadline::STOP);
    assert!(left.is_empty(), "left after teardown: {left:?}");
    let _ = std::fs::remove_dir_all(&download);
    server.finish();
}

/// A fresh scratch dir, unique across tests that share a process.
fn tempfile_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("spool-scratch-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn drivers_and_executors_map_the_runtimes_class_archive() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let archive = spool_test::cache_dir().join("runtimes/3.4/classes.jsa");
    assert!(
        archive.exists(),
        "the runtime has no class archive at {}",
        archive.display()
    );
    let dir = tempfile_dir();
    // Without an environment, and with one (its virtualenv is layered on the runtime's).
    let conda = fixtures().join("envs/small.yml");
    for extra in [
        String::new(),
        format!("environment:\n  conda_file: {}\n", conda.display()),
    ] {
        let job = job_file(&dir, "class_archive.py", "\"\"", &extra);
        let out = server.cli(&["job", "create", "--file", job.to_str().unwrap(), "--stream"]);
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        assert!(
            stderr(&out).contains("class archive mapped: driver=True executor=True"),
            "{extra}\n{}",
            stderr(&out)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

#[test]
fn a_failing_job_shows_the_drivers_python_error() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let dir = tempfile_dir();
    let job = job_file(&dir, "fail.py", "\"\"", "display_name: failing\n");
    let out = server.cli(&["job", "create", "--file", job.to_str().unwrap(), "--stream"]);
    assert!(!out.status.success(), "a failed job must exit non-zero");
    let name = job_name(&out);
    let job = job_json(&server, &name);
    assert_eq!(job["status"], "Failed");
    assert_eq!(job["error"], "ValueError: boom: expected 11 rows, got 10");
    assert!(
        stderr(&out).contains("Failed: ValueError: boom"),
        "{}",
        stderr(&out)
    );
    // The Spark application was named after the job's display name.
    let master_ui = job["cluster"]["master_ui_url"].as_str().unwrap();
    let master: serde_json::Value = reqwest::blocking_get_json(&format!("{master_ui}/json/"));
    assert!(
        master["completedapps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "failing"),
        "{master:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

#[test]
fn cancel_stops_the_driver_and_executors_within_seconds() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let dir = tempfile_dir();
    let job = job_file(&dir, "sleep.py", "300", "");
    let out = server.cli(&["job", "create", "--file", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let name = job_name(&out);
    wait_for_status(&server, &name, &["Running"], deadline::COLD_START);
    server.wait_for("an executor", deadline::EXECUTOR, || {
        (!server
            .processes_matching("CoarseGrainedExecutorBackend")
            .is_empty())
        .then_some(())
    });
    let out = server.cli(&["job", "cancel", "--name", &name, "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["status"], "Canceled");
    // Within the stop deadline (SIGTERM, the grace period, SIGKILL), far less than the 300 s
    // the job would run.
    server.wait_for("executors and driver to stop", deadline::STOP, || {
        let left = server
            .processes_matching("CoarseGrainedExecutorBackend")
            .len()
            + server.processes_matching("sleep.py").len();
        (left == 0).then_some(())
    });
    let phases: Vec<String> = job["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap().to_string())
        .collect();
    assert!(
        phases.contains(&"CancelRequested".to_string()),
        "{phases:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

#[test]
fn a_job_that_fits_later_is_queued_with_the_reason_then_runs() {
    // 4 schedulable cores and 5 GiB: one small job (1 executor, driver, two daemons = 3 GiB)
    // fits; a second must wait for the first.
    let config = "[capacity]\ncores = 1\nmemory = \"5g\"\n";
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], Some(config));
    let dir = tempfile_dir();
    let job = job_file(&dir, "sleep.py", "6", "");
    let first = job_name(&server.cli(&["job", "create", "--file", job.to_str().unwrap()]));
    wait_for_status(&server, &first, &["Running"], deadline::COLD_START);
    let out = server.cli(&["job", "create", "--file", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = job_name(&out);
    let queued = wait_for_status(&server, &second, &["Queued"], deadline::STATE_CHANGE);
    let reason = queued["status_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("waiting for capacity: needs 2 cores and 3 GiB;"),
        "{reason}"
    );
    // The first job's 6 s, then the second on the warm cluster.
    let done = wait_for_status(
        &server,
        &second,
        &["Completed", "Failed"],
        deadline::COLD_START + deadline::SHORT_WORK,
    );
    assert_eq!(done["status"], "Completed", "{done:#}");
    let first = job_json(&server, &first);
    assert_eq!(first["status"], "Completed");
    assert_eq!(
        done["cluster"]["id"], first["cluster"]["id"],
        "the waiting job reuses the warm cluster"
    );
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}

/// What `tests/fixtures/warm/facts.py` printed of its process (the lines it prints, without
/// Spark's log lines or a traceback).
fn facts(server: &TestServer, name: &str) -> Vec<String> {
    let stdout = server
        .data_dir()
        .join("jobs")
        .join(name)
        .join("logs/azureml/driver/stdout");
    let keys = [
        "name ",
        "argv ",
        "cwd_is_work_copy ",
        "file_in_cwd ",
        "helper ",
        "files ",
        "sum ",
        "executors_see_helper ",
        "stopped",
    ];
    std::fs::read_to_string(&stdout)
        .unwrap_or_else(|e| panic!("{}: {e}", stdout.display()))
        .lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(k)))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_job_on_a_pre_warmed_driver_ends_as_it_would_under_spark_submit() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "1"], None);
    let job = fixtures().join("warm/job.yml");
    let run = |mode: &str, warm: bool| -> serde_json::Value {
        let args = format!("args={mode}");
        let mut cli = vec![
            "job",
            "create",
            "--file",
            job.to_str().unwrap(),
            "--set",
            &args,
        ];
        if !warm {
            cli.extend(["--set", "conf.spark.spool.warmDriver=false"]);
        }
        let out = server.cli(&cli);
        assert!(out.status.success(), "{}", stderr(&out));
        let name = job_name(&out);
        wait_for_status(
            &server,
            &name,
            &["Completed", "Failed", "Canceled"],
            deadline::COLD_START,
        )
    };
    for (mode, status, error) in [
        ("ok", "Completed", None),
        (
            "raise",
            "Failed",
            Some("ValueError: the entry failed on purpose"),
        ),
        (
            "exit3",
            "Failed",
            Some("the driver exited with code 3; see logs/azureml/driver/stderr"),
        ),
        ("stop", "Completed", None),
    ] {
        server.wait_prewarmed("a pre-warmed driver");
        let warm = run(mode, true);
        let submitted = run(mode, false);
        for (job, path) in [(&warm, "warm_driver"), (&submitted, "spark_submit")] {
            assert_eq!(job["driver"]["path"], path, "{mode}: {job:#}");
            assert_eq!(job["status"], status, "{mode}: {job:#}");
            assert_eq!(job["error"].as_str(), error, "{mode}: {job:#}");
        }
        assert_eq!(
            submitted["driver"]["reason"],
            "`spark.spool.warmDriver: false` asks for spark-submit"
        );
        // How each started, as the start-time chart shows it: the pre-warmed driver, and a
        // spark-submit on a cluster (an idle one reused, or a new one when the pool holds it).
        assert_eq!(warm["start_kind"], "prewarmed", "{mode}: {warm:#}");
        let kind = submitted["start_kind"].as_str().unwrap_or_default();
        assert!(kind == "warm" || kind == "cold", "{mode}: {submitted:#}");
        // The same `__name__`, `sys.argv`, working directory, `py_files` (driver and
        // executors), `files` and results on both paths.
        let warm_facts = facts(&server, warm["name"].as_str().unwrap());
        assert_eq!(
            warm_facts,
            facts(&server, submitted["name"].as_str().unwrap()),
            "{mode}"
        );
        assert!(
            warm_facts.contains(&format!("argv ['<work>/facts.py', '{mode}']")),
            "{warm_facts:?}"
        );
        assert!(
            warm_facts.contains(&"sum 499500".to_string()),
            "{warm_facts:?}"
        );
        // Spark's own log of the job is in the job's driver stderr on both paths.
        let stderr_log = server
            .data_dir()
            .join("jobs")
            .join(warm["name"].as_str().unwrap())
            .join("logs/azureml/driver/stderr");
        let spark_log = std::fs::read_to_string(&stderr_log).unwrap();
        assert!(spark_log.contains("SparkContext"), "{spark_log}");
    }
    // A job of another size runs with spark-submit and says why.
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        job.to_str().unwrap(),
        "--set",
        "args=ok",
        "--set",
        "conf.spark.executor.instances=2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let other = wait_for_status(
        &server,
        &job_name(&out),
        &["Completed", "Failed"],
        deadline::COLD_START,
    );
    assert_eq!(other["status"], "Completed", "{other:#}");
    assert_eq!(other["driver"]["path"], "spark_submit");
    assert!(
        other["driver"]["reason"]
            .as_str()
            .unwrap()
            .contains("2 executor(s)"),
        "{other:#}"
    );
    server.finish();
}

/// Blocking JSON GET for tests (the master UI is plain HTTP on loopback).
mod reqwest {
    pub fn blocking_get_json(url: &str) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            ::reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }
}

#[test]
fn py_files_files_local_inputs_dynamic_allocation_and_default_output_location() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let job = fixtures().join("wordcount/job.yml");
    let out = server.cli(&["job", "create", "--file", job.to_str().unwrap(), "--stream"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let name = job_name(&out);
    // Counts of words seen at least twice, stop words removed, normalized on the executors.
    let printed = stderr(&out);
    for line in ["spark: 4", "spool: 3"] {
        assert!(printed.contains(line), "missing `{line}` in:\n{printed}");
    }
    assert!(
        !printed.contains("the:"),
        "stop words were not removed:\n{printed}"
    );
    assert!(
        !printed.contains("engine:"),
        "min_count from the optional args section was not applied"
    );

    let job = job_json(&server, &name);
    assert_eq!(
        job["resources"]["dynamic_allocation"],
        serde_json::json!([1, 2])
    );
    assert_eq!(job["tags"]["purpose"], "test");
    // The local input was uploaded to the default datastore.
    let input = job["spec"]["inputs"]["text"]["path"].as_str().unwrap();
    assert!(
        input.starts_with("azureml://datastores/workspaceblobstore/paths/LocalUpload/"),
        "{input}"
    );
    assert!(input.ends_with("/poem.txt"));
    // An output without a path goes to Azure ML's default location.
    let expected = format!("azureml://datastores/workspaceblobstore/paths/azureml/{name}/counts/");
    assert_eq!(job["outputs"]["counts"], expected.as_str());
    let folder = server
        .data_dir()
        .join("datastores/workspaceblobstore/azureml")
        .join(&name)
        .join("counts");
    let json_part = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON part file");
    let rows = std::fs::read_to_string(json_part).unwrap();
    assert!(rows.contains(r#"{"word":"spark","count":4}"#), "{rows}");
    server.finish();
}

#[test]
fn a_jvm_job_runs_its_main_class_from_jars() {
    // Build the jar with the machine's JDK against the runtime's own Spark jars.
    spool_test::ensure_runtime();
    let marker = spool_test::cache_dir().join("runtimes/3.4/spool-runtime.json");
    let runtime: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(marker).unwrap()).unwrap();
    let spark_home = runtime["spark_home"].as_str().unwrap();
    let dir = tempfile_dir().join("jvm");
    let (build, src) = (dir.join("build"), dir.join("src"));
    std::fs::create_dir_all(&build).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    let status = std::process::Command::new("javac")
        .arg("-cp")
        .arg(format!("{spark_home}/jars/*"))
        .arg("-d")
        .arg(&build)
        .arg(fixtures().join("jvm/JavaCount.java"))
        .status()
        .unwrap();
    assert!(status.success(), "javac failed");
    let status = std::process::Command::new("jar")
        .arg("cf")
        .arg(src.join("javacount.jar"))
        .arg("-C")
        .arg(&build)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "jar failed");
    let job = dir.join("job.yml");
    std::fs::write(
        &job,
        "type: spark\ncode: ./src\nentry:\n  class_name: JavaCount\njars:\n  - javacount.jar\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\nargs: \"1234\"\n",
    )
    .unwrap();

    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let out = server.cli(&["job", "create", "--file", job.to_str().unwrap(), "--stream"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("java counted 1234"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
    server.finish();
}
