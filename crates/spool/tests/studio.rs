//! Spool Studio in a real headless Chromium (Debian's, driven by playwright-core): a user signs
//! in, sees a completed job with its phase timeline and log, watches a running job's log grow,
//! runs a statement in a session and sees its output, and another user is refused the job; then
//! `/metrics` is read with the Prometheus project's own parser. Real server, real Spark.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::Path;
use std::time::Duration;

use spool_test::{
    Progress, TestServer, client_python, deadline, job_name, stderr, stdout, studio_browser,
    wait_for_status,
};

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// A Spark job whose entry is `script`, small enough to share the 2-core machine.
fn write_job(dir: &Path, name: &str, script: &str) -> std::path::PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("main.py"), script).unwrap();
    let file = dir.join(format!("{name}.yml"));
    std::fs::write(
        &file,
        format!(
            "type: spark\ncode: ./{name}-src\nentry:\n  file: main.py\ndisplay_name: {name}\n\
             experiment_name: studio\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n\
             \x20 spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\n\
             resources:\n  instance_type: standard_e4s_v3\n  runtime_version: \"{}\"\n",
            spool_test::TEST_RUNTIME
        ),
    )
    .unwrap();
    file
}

/// A pipeline of two Spark nodes: `second` reads the folder `first` wrote.
fn write_pipeline(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("pipe-src");
    std::fs::create_dir_all(&src).unwrap();
    let start = "import sys\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\n";
    std::fs::write(
        src.join("write.py"),
        format!("{start}spark.range(7).write.mode('overwrite').parquet(sys.argv[2])\n"),
    )
    .unwrap();
    std::fs::write(
        src.join("read.py"),
        format!("{start}print('rows read:', spark.read.parquet(sys.argv[2]).count())\n"),
    )
    .unwrap();
    let step = |entry: &str| {
        format!(
            "    type: spark\n    code: ./pipe-src\n    entry:\n      file: {entry}\n\
             \x20   resources:\n      instance_type: standard_e4s_v3\n      runtime_version: \"{}\"\n\
             \x20   conf:\n      spark.driver.cores: 1\n      spark.driver.memory: 1g\n\
             \x20     spark.executor.cores: 1\n      spark.executor.memory: 1g\n\
             \x20     spark.executor.instances: 1\n",
            spool_test::TEST_RUNTIME
        )
    };
    let file = dir.join("pipeline.yml");
    std::fs::write(
        &file,
        format!(
            "type: pipeline\ndisplay_name: studio pipeline\nexperiment_name: studio\njobs:\n\
             \x20 first:\n{}    args: --out ${{{{outputs.out}}}}\n    outputs:\n      out:\n\
             \x20       type: uri_folder\n        mode: direct\n\
             \x20 second:\n{}    args: --data ${{{{inputs.data}}}}\n    inputs:\n\
             \x20     data: ${{{{parent.jobs.first.outputs.out}}}}\n",
            step("write.py"),
            step("read.py"),
        ),
    )
    .unwrap();
    file
}

/// The families and samples `tests/clients/parse_metrics.py` read from `/metrics`.
fn parsed_metrics(url: &str, token: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/parse_metrics.py");
    let out = std::process::Command::new(client_python())
        .arg(script)
        .arg(format!("{url}/metrics"))
        .env("SPOOL_TOKEN", token)
        .output()
        .unwrap();
    serde_json::from_str(&ok(out)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_follows_jobs_and_runs_statements_in_the_studio_and_sees_only_their_own() {
    spool_test::ensure_runtime();
    let (playwright, chromium) = studio_browser();
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let scratch = tempfile::tempdir().unwrap();
    let alice = ok(server.cli(&["user", "create", "alice"]))
        .trim()
        .to_string();
    let bob = ok(server.cli(&["user", "create", "bob"]))
        .trim()
        .to_string();
    ok(server.cli(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "alice",
        "--role",
        "Storage Blob Data Contributor",
        "--scope",
        "azureml://datastores/workspaceblobstore",
    ]));

    // A job that has completed (in an environment of its own, which the environments page
    // then shows with its build log), one still running, and an idle session, all alice's.
    let done = write_job(
        scratch.path(),
        "done",
        "import tabulate\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\n\
         print('hello from the studio test', spark.range(5).count(), flush=True)\n",
    );
    std::fs::write(
        scratch.path().join("conda.yml"),
        "name: studio\ndependencies:\n  - python=3.11\n  - pip:\n      - tabulate==0.9.0\n",
    )
    .unwrap();
    let mut yaml = std::fs::read_to_string(&done).unwrap();
    yaml.push_str("environment:\n  conda_file: conda.yml\n");
    std::fs::write(&done, yaml).unwrap();
    let out = server.cli_as(&alice, &["job", "create", "--file", done.to_str().unwrap()]);
    let done_job = job_name(&out);
    wait_for_status(&server, &done_job, &["Completed"], deadline::COLD_START);
    // A two-node pipeline, the second reading what the first wrote.
    let pipeline = write_pipeline(scratch.path());
    let out = server.cli_as(
        &alice,
        &["job", "create", "--file", pipeline.to_str().unwrap()],
    );
    let pipeline_job = job_name(&out);
    wait_for_status(&server, &pipeline_job, &["Completed"], deadline::COLD_START);
    let running = write_job(
        scratch.path(),
        "running",
        "import time\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\n\
         for i in range(1, 400):\n    print(f'tick {i}', flush=True)\n    time.sleep(1)\n",
    );
    let out = server.cli_as(
        &alice,
        &["job", "create", "--file", running.to_str().unwrap()],
    );
    let running_job = job_name(&out);
    let session: serde_json::Value = serde_json::from_str(&ok(
        server.cli_as(&alice, &["-o", "json", "session", "create"])
    ))
    .unwrap();
    let session_id = session["id"].to_string();

    let shots = std::env::temp_dir().join(format!("spool-studio-{}", std::process::id()));
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/studio.cjs");
    let mut browser = std::process::Command::new("node");
    browser
        .arg(script)
        .env("PLAYWRIGHT", &playwright)
        .env("CHROMIUM", &chromium)
        .env("STUDIO", server.url())
        .env("ALICE", &alice)
        .env("BOB", &bob)
        .env("DONE_JOB", &done_job)
        .env("RUNNING_JOB", &running_job)
        .env("SESSION", &session_id)
        .env("PIPELINE", &pipeline_job)
        .env("SHOTS", &shots);
    let progress = Progress::new("the studio walk in Chromium", Duration::from_secs(300));
    let out = tokio::task::spawn_blocking(move || browser.output())
        .await
        .unwrap()
        .unwrap();
    progress.done();
    let seen: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_default();
    assert!(
        out.status.success(),
        "studio.cjs failed after seeing {seen:#}:\n{}",
        stderr(&out)
    );
    eprintln!("screenshots: {}", shots.display());

    // Signed out, a page is the sign-in form (401); signed in, the header names the user.
    assert_eq!(seen["unsigned_status"], 401, "{seen:#}");
    assert_eq!(seen["user"], "alice · AzureML Data Scientist", "{seen:#}");
    let jobs = seen["jobs"].as_array().unwrap();
    let row = |name: &str| {
        jobs.iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {seen:#}"))
            .clone()
    };
    assert_eq!(row(&done_job)[3], "Completed", "{seen:#}");
    assert_eq!(row(&done_job)[2], "studio", "{seen:#}");
    assert_eq!(row(&done_job)[5], "alice", "{seen:#}");
    // The timeline has each phase the job went through, in order, with its duration.
    let phases: Vec<&str> = seen["done_phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for phase in [
        "NotStarted",
        "Preparing",
        "Starting",
        "Running",
        "Completed",
    ] {
        assert!(phases.contains(&phase), "{phase} missing: {seen:#}");
    }
    assert!(
        phases.iter().position(|p| *p == "Starting") < phases.iter().position(|p| *p == "Running")
    );
    assert!(
        seen["done_phases"][0]["duration"]
            .as_str()
            .unwrap()
            .ends_with('s'),
        "{seen:#}"
    );
    assert_eq!(seen["done_log"], true);
    assert_eq!(seen["running_status"], "Running", "{seen:#}");
    assert_eq!(seen["running_log_grew"], true, "{seen:#}");
    assert_eq!(seen["running_same_document"], true, "{seen:#}");
    // The root page redirects to the jobs page, and every link of it, through the server.
    let ui = format!("/api/v1/jobs/{running_job}/sparkui/");
    assert_eq!(seen["spark_ui_page"], format!("{ui}jobs/"), "{seen:#}");
    let links = seen["spark_ui_links"].as_array().unwrap();
    assert!(links.len() > 5, "{seen:#}");
    assert!(
        links.iter().all(|l| l.as_str().unwrap().starts_with(&ui)),
        "{seen:#}"
    );
    assert_eq!(seen["spark_ui_stylesheet"], 200, "{seen:#}");
    assert_eq!(seen["spark_ui_stages"], format!("{ui}stages/"), "{seen:#}");
    assert_eq!(seen["spark_ui_status"], 200, "{seen:#}");
    let app_id = spool_test::job_json(&server, &running_job)["spark_app_id"].clone();
    assert_eq!(seen["spark_ui_apps"][0], app_id, "{seen:#}");
    assert_eq!(seen["session_state"], "idle", "{seen:#}");
    assert_eq!(seen["statement_output"], "499500", "{seen:#}");
    assert!(
        seen["session_phases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "driver_starting"),
        "{seen:#}"
    );
    for (key, value) in seen.as_object().unwrap() {
        if key.starts_with("narrow_overflow") {
            assert!(value.as_i64().unwrap() <= 0, "{key}: {value}");
        }
    }
    assert_eq!(seen["after_signout_status"], 401, "{seen:#}");
    // Bob: another user's job is "not found", as in the API; his list is empty.
    assert_eq!(seen["bob_status"], 404, "{seen:#}");
    assert_eq!(
        seen["bob_message"],
        format!("job `{done_job}` not found"),
        "{seen:#}"
    );
    assert_eq!(seen["bob_jobs"], 0, "{seen:#}");
    assert_eq!(seen["forged_post_status"], 403, "{seen:#}");
    assert_eq!(seen["wrong_token_status"], 401, "{seen:#}");
    assert!(
        seen["wrong_token_message"]
            .as_str()
            .unwrap()
            .contains("belongs to no user"),
        "{seen:#}"
    );
    // Clusters of the running job and the session are in use; the session's start is charted.
    assert!(
        seen["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|state| state == "in_use"),
        "{seen:#}"
    );
    // Each cluster's worker on this host, with its executors.
    let workers = seen["cluster_workers"].as_array().unwrap();
    assert!(!workers.is_empty(), "{seen:#}");
    assert!(
        workers.iter().all(|w| {
            let w = w.as_str().unwrap();
            w.starts_with("this host: ") && w.contains(" executor")
        }),
        "{seen:#}"
    );
    // The session's start and the jobs' starts, each cold or warm as placement found an idle
    // cluster of alice's or not, split into phases and linked to its page.
    let starts = seen["starts"].as_array().unwrap();
    for what in ["session", "job"] {
        let found: Vec<_> = starts.iter().filter(|s| s["what"] == what).collect();
        assert!(!found.is_empty(), "no {what} start: {seen:#}");
        for start in found {
            let kind = start["kind"].as_str().unwrap();
            assert!(kind == "cold" || kind == "warm", "{start}");
            assert!(start["phases"].as_i64().unwrap() >= 3, "{start}");
            let page = format!("/studio/{what}s/");
            assert!(
                start["href"].as_str().unwrap().starts_with(&page),
                "{start}"
            );
        }
    }
    // The job that started first on a new cluster of its own started cold.
    assert!(
        starts
            .iter()
            .any(|s| s["what"] == "job" && s["kind"] == "cold"),
        "{seen:#}"
    );
    assert!(
        starts
            .iter()
            .any(|s| s["href"] == format!("/studio/jobs/{running_job}")),
        "{seen:#}"
    );
    // The first node's output folder is in the datastore under `azureml/<its job>/`.
    let first_node = spool_test::job_json(&server, &pipeline_job)["nodes"][0]["job_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        seen["datastore_folders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| *f == format!("{first_node}/")),
        "{seen:#}"
    );
    // The pipeline's graph: both nodes, completed, the second reached by a click; its input
    // links to the folder the first wrote.
    let graph: Vec<(String, String)> = seen["graph"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().to_string(),
                n["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        graph,
        [
            ("first".to_string(), "Completed".to_string()),
            ("second".to_string(), "Completed".to_string())
        ],
        "{seen:#}"
    );
    assert_eq!(seen["graph_edges"], 1, "{seen:#}");
    assert_eq!(seen["node_page_title"], "second", "{seen:#}");
    assert_eq!(seen["node_page_parent"], pipeline_job, "{seen:#}");
    assert!(
        seen["node_log"].as_str().unwrap().contains("rows read: 7"),
        "{seen:#}"
    );
    let files = seen["node_input_files"].as_array().unwrap();
    assert!(
        files.iter().any(|f| f == "_SUCCESS")
            && files
                .iter()
                .any(|f| f.as_str().unwrap().ends_with(".parquet")),
        "{seen:#}"
    );
    // The lists, and the environment's build log: what uv printed installing the package.
    assert_eq!(seen["sessions_rows"], 1, "{seen:#}");
    assert_eq!(
        seen["datastores_names"],
        serde_json::json!(["workspaceblobstore"]),
        "{seen:#}"
    );
    assert_eq!(seen["environments_rows"], 1, "{seen:#}");
    let log = seen["environment_log"].as_str().unwrap();
    assert!(log.contains("tabulate==0.9.0"), "{seen:#}");
    for shot in [
        "compute",
        "starts",
        "datastore",
        "pipeline",
        "node",
        "sessions",
        "datastores",
        "environments",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
    for shot in [
        "jobs",
        "job",
        "running-job",
        "session",
        "narrow-session",
        "refused",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
    // The forged cancel changed nothing.
    assert_eq!(
        spool_test::job_json(&server, &running_job)["status"],
        "Running"
    );
    ok(server.cli_as(&alice, &["job", "cancel", "--name", &running_job]));
    wait_for_status(&server, &running_job, &["Canceled"], deadline::STATE_CHANGE);

    // `/metrics`, read by the Prometheus project's parser: the work by state, the starts and
    // the statement just seen, the studio's requests by route.
    let metrics = parsed_metrics(&server.url(), &alice);
    let sample = |name: &str, labels: serde_json::Value| -> f64 {
        metrics["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name && s["labels"] == labels)
            .and_then(|s| s["value"].as_f64())
            .unwrap_or_else(|| panic!("no sample {name} {labels}: {metrics:#}"))
    };
    // The completed job and the pipeline's two nodes; the pipeline itself is of its own kind.
    assert_eq!(
        sample(
            "spool_jobs",
            serde_json::json!({"kind": "spark", "status": "Completed"})
        ),
        3.0
    );
    assert_eq!(
        sample(
            "spool_jobs",
            serde_json::json!({"kind": "pipeline", "status": "Completed"})
        ),
        1.0
    );
    assert_eq!(
        sample(
            "spool_jobs",
            serde_json::json!({"kind": "spark", "status": "Canceled"})
        ),
        1.0
    );
    assert_eq!(
        sample(
            "spool_sessions",
            serde_json::json!({"state": "idle", "prewarmed": "false"})
        ),
        1.0
    );
    assert!(
        sample(
            "spool_job_start_seconds_count",
            serde_json::json!({"kind": "cold"})
        ) >= 1.0
    );
    let session_starts: f64 = ["cold", "warm"]
        .iter()
        .map(|kind| {
            metrics["samples"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| {
                    s["name"] == "spool_session_start_seconds_count" && s["labels"]["kind"] == *kind
                })
                .filter_map(|s| s["value"].as_f64())
                .sum::<f64>()
        })
        .sum();
    assert_eq!(session_starts, 1.0, "{metrics:#}");
    assert!(sample("spool_statement_seconds_count", serde_json::json!({})) >= 1.0);
    assert!(
        sample(
            "spool_http_requests_total",
            serde_json::json!({"method": "GET", "route": "/studio/jobs/{name}", "status": "200"})
        ) >= 1.0
    );
    assert!(
        sample(
            "spool_http_requests_total",
            serde_json::json!({"method": "GET", "route": "/studio/jobs/{name}", "status": "404"})
        ) >= 1.0
    );
    assert!(sample("spool_executors", serde_json::json!({})) >= 1.0);
    // The done job's environment: built now, or taken from the cache an earlier test filled.
    let env_requests: f64 = metrics["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "spool_environment_requests_total")
        .filter_map(|s| s["value"].as_f64())
        .sum();
    assert_eq!(env_requests, 1.0, "{metrics:#}");
    server.finish();
}
