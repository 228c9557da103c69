//! The Livy REST API with real clients (pylivy) and raw HTTP: shapes, status codes, cancel,
//! inactivity timeout, a dying driver. Real server, real Spark.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spool_test::{Progress, ServerLogs, TestServer, client_python, deadline, stderr, stdout};

#[test]
fn pylivy_runs_code_reads_a_dataframe_and_runs_sql() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    run_client(&server, "pylivy_session.py", &[], &[], "pylivy ok");
    server.finish();
}

#[test]
fn sparkmagics_client_library_runs_statements_and_sql_to_pandas() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let home = std::env::temp_dir().join(format!("spool-sparkmagic-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    // sparkmagic writes its logs and config under HOME.
    run_client(
        &server,
        "sparkmagic_session.py",
        &[],
        &[("HOME", home.as_os_str())],
        "sparkmagic ok",
    );
    let _ = std::fs::remove_dir_all(&home);
    server.finish();
}

/// Runs the Python client `tests/clients/<script>` against the server as `admin`, with
/// `args` after the URL and user name and `env` added, and asserts that it succeeded and
/// printed `ok`. The token goes in the environment: on the command line it is visible in `ps`.
fn run_client(
    server: &TestServer,
    script: &str,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
    ok: &str,
) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = std::process::Command::new(client_python())
        .arg(path)
        .arg(server.url())
        .arg("admin")
        .args(args)
        .env("SPOOL_TOKEN", &server.token)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        server.log()
    );
    assert!(stdout(&out).contains(ok), "{script}:\n{}", stdout(&out));
}

struct Livy {
    logs: ServerLogs,
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Livy {
    fn new(server: &TestServer) -> Livy {
        Livy {
            logs: server.logs(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            url: server.url(),
            token: server.token.clone(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .basic_auth("admin", Some(&self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body, location)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body, _) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn wait_state(&self, session: i64, states: &[&str], timeout: Duration) -> Value {
        let until = Instant::now() + timeout;
        let mut progress = Progress::new(&format!("session {session} to be {states:?}"), timeout);
        loop {
            let view = self.get(&format!("/sessions/{session}")).await;
            if states.iter().any(|s| view["state"] == *s) {
                progress.done();
                return view;
            }
            assert!(
                Instant::now() < until,
                "session {session} never reached {states:?} within {timeout:?}: {view:#}\n{}",
                self.logs.tails()
            );
            progress.tick();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the session's driver has `n` executors registered; returns the tasks they
    /// run now. A statement that needs executors is timed from then on.
    async fn wait_executors(&self, session: i64, n: usize, timeout: Duration) -> i64 {
        self.wait_executors_where(session, timeout, |count, _| count >= n)
            .await
    }

    async fn wait_executors_where(
        &self,
        session: i64,
        timeout: Duration,
        ready: impl Fn(usize, i64) -> bool,
    ) -> i64 {
        let until = Instant::now() + timeout;
        let mut progress = Progress::new(&format!("executors of session {session}"), timeout);
        loop {
            let view = self.get(&format!("/sessions/{session}")).await;
            let ui = view["appInfo"]["sparkUiUrl"].as_str().map(str::to_string);
            let seen = match ui {
                Some(ui) => tokio::task::spawn_blocking(move || spool_test::driver_executors(&ui))
                    .await
                    .unwrap(),
                None => None,
            };
            if let Some((count, tasks)) = seen
                && ready(count, tasks)
            {
                progress.done();
                return tasks;
            }
            assert!(
                Instant::now() < until,
                "session {session}'s executors never got ready within {timeout:?} (executors, running tasks: {seen:?}): {view:#}\n{}",
                self.logs.tails()
            );
            progress.tick();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_statement(
        &self,
        session: i64,
        seq: i64,
        states: &[&str],
        timeout: Duration,
    ) -> Value {
        let until = Instant::now() + timeout;
        let mut progress = Progress::new(
            &format!("statement {seq} of session {session} to be {states:?}"),
            timeout,
        );
        loop {
            let view = self
                .get(&format!("/sessions/{session}/statements/{seq}"))
                .await;
            if states.iter().any(|s| view["state"] == *s) {
                progress.done();
                return view;
            }
            assert!(
                Instant::now() < until,
                "statement {seq} never reached {states:?} within {timeout:?}: {view:#}\n{}",
                self.logs.tails()
            );
            progress.tick();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn livy_shapes_statement_cancel_and_inactivity_timeout() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let livy = Livy::new(&server);

    let version = livy.get("/version").await;
    assert_eq!(version["version"], "0.8.0-incubating");

    // Unknown fields are rejected, as Livy's JSON parser does.
    let (status, body, _) = livy
        .call(
            reqwest::Method::POST,
            "/sessions",
            Some(json!({"kind": "pyspark", "colour": "blue"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["msg"].as_str().unwrap().contains("colour"), "{body}");
    let (status, body, _) = livy
        .call(
            reqwest::Method::POST,
            "/sessions",
            Some(json!({"kind": "spark"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("`spark` (Scala) is not supported"),
        "{body}"
    );

    let (status, view, location) = livy
        .call(
            reqwest::Method::POST,
            "/sessions",
            Some(json!({"kind": "pyspark", "name": "timeout-test", "idleTimeout": "20s"})),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_i64().unwrap();
    assert_eq!(
        location.as_deref(),
        Some(format!("/sessions/{id}").as_str())
    );
    for key in [
        "id",
        "name",
        "appId",
        "owner",
        "proxyUser",
        "state",
        "kind",
        "appInfo",
        "log",
    ] {
        assert!(
            view.get(key).is_some(),
            "session view lacks `{key}`: {view}"
        );
    }
    let view = livy.wait_state(id, &["idle"], deadline::COLD_START).await;
    assert!(
        view["appId"].as_str().unwrap().starts_with("app-"),
        "{view}"
    );
    let phases: Vec<&str> = view["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "not_started",
            "starting",
            "cluster_provisioning",
            "driver_starting",
            "idle"
        ]
    );
    // By name, as Livy allows.
    assert_eq!(
        livy.get("/sessions/timeout-test/state").await,
        json!({"id": id, "state": "idle"})
    );

    // A statement that would run for ten minutes is cancelled long before: within the
    // deadline of a state change, once its tasks run on the executors.
    let (status, statement, location) = livy
        .call(
            reqwest::Method::POST,
            &format!("/sessions/{id}/statements"),
            Some(json!({"code": "import time\nsc.parallelize(range(2), 2).foreach(lambda _: time.sleep(600))"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(statement["id"], 0);
    assert_eq!(statement["output"], Value::Null);
    assert_eq!(
        location.as_deref(),
        Some(format!("/sessions/{id}/statements/0").as_str())
    );
    livy.wait_statement(id, 0, &["running"], deadline::STATE_CHANGE)
        .await;
    assert_eq!(livy.get(&format!("/sessions/{id}")).await["state"], "busy");
    livy.wait_executors_where(id, deadline::EXECUTOR, |_, tasks| tasks >= 1)
        .await;
    let (status, body, _) = livy
        .call(
            reqwest::Method::POST,
            &format!("/sessions/{id}/statements/0/cancel"),
            None,
        )
        .await;
    assert_eq!((status, body), (200, json!({"msg": "canceled"})));
    livy.wait_statement(id, 0, &["cancelled"], deadline::STATE_CHANGE)
        .await;

    // The session is usable afterwards, and returns to idle.
    let (_, _, _) = livy
        .call(
            reqwest::Method::POST,
            &format!("/sessions/{id}/statements"),
            Some(json!({"code": "21 * 2"})),
        )
        .await;
    let done = livy
        .wait_statement(id, 1, &["available"], deadline::SHORT_WORK)
        .await;
    assert_eq!(done["output"]["data"]["text/plain"], "42");
    assert_eq!(done["output"]["status"], "ok");
    livy.wait_state(id, &["idle"], deadline::STATE_CHANGE).await;
    let list = livy.get(&format!("/sessions/{id}/statements")).await;
    assert_eq!(list["total_statements"], 2);

    // Errors carry Livy's shapes.
    let (status, body, _) = livy
        .call(reqwest::Method::GET, "/sessions/9999", None)
        .await;
    assert_eq!(
        (status, body),
        (404, json!({"msg": "Session '9999' not found."}))
    );
    let (status, body, _) = livy
        .call(
            reqwest::Method::GET,
            &format!("/sessions/{id}/statements/77"),
            None,
        )
        .await;
    assert_eq!((status, body), (404, json!({"msg": "Statement not found"})));
    let log = livy
        .get(&format!("/sessions/{id}/log?from=0&size=1000"))
        .await;
    assert!(
        log["total"].as_i64().unwrap() > 0 && log["log"].is_array(),
        "{log}"
    );

    // Left alone past its idle timeout (20 s), the session ends; its cluster stays warm.
    let ended = livy
        .wait_state(
            id,
            &["dead"],
            Duration::from_secs(20) + deadline::STATE_CHANGE,
        )
        .await;
    assert!(
        ended["stateReason"]
            .as_str()
            .unwrap()
            .starts_with("timed out after"),
        "{ended}"
    );
    let (status, body, _) = livy
        .call(reqwest::Method::DELETE, &format!("/sessions/{id}"), None)
        .await;
    assert_eq!(status, 404, "{body}");
    server.wait_for("no driver left", deadline::STOP, || {
        let drivers = server.processes_matching("driver.py").len();
        (drivers == 0).then_some(())
    });
    let clusters = server.client().clusters().await.unwrap();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].state, spool_client::ClusterState::Idle);
    server.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_driver_marks_its_session_dead_with_the_cause() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let livy = Livy::new(&server);
    let (_, view, _) = livy
        .call(
            reqwest::Method::POST,
            "/sessions",
            Some(json!({"kind": "pyspark"})),
        )
        .await;
    let id = view["id"].as_i64().unwrap();
    livy.wait_state(id, &["idle"], deadline::COLD_START).await;
    let drivers: Vec<u32> = server.processes_matching("driver.py");
    assert!(!drivers.is_empty());
    for pid in drivers {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status();
    }
    let dead = livy.wait_state(id, &["dead"], deadline::STATE_CHANGE).await;
    assert!(
        dead["stateReason"]
            .as_str()
            .unwrap()
            .contains("the driver exited unexpectedly"),
        "{dead}"
    );
    let (status, _, _) = livy
        .call(
            reqwest::Method::POST,
            &format!("/sessions/{id}/statements"),
            Some(json!({"code": "1"})),
        )
        .await;
    assert_eq!(status, 400, "a dead session takes no statements");
    server.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_survives_a_server_crash_with_its_statements() {
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let livy = Livy::new(&server);
    let (_, view, _) = livy
        .call(
            reqwest::Method::POST,
            "/sessions",
            Some(json!({"kind": "pyspark"})),
        )
        .await;
    let id = view["id"].as_i64().unwrap();
    livy.wait_state(id, &["idle"], deadline::COLD_START).await;
    livy.call(
        reqwest::Method::POST,
        &format!("/sessions/{id}/statements"),
        Some(json!({"code": "kept = 'state survives'"})),
    )
    .await;
    livy.wait_statement(id, 0, &["available"], deadline::SHORT_WORK)
        .await;

    // A statement is running when the server crashes.
    livy.call(
        reqwest::Method::POST,
        &format!("/sessions/{id}/statements"),
        Some(json!({"code": "import time\ntime.sleep(6)\nprint('finished while the server was down')"})),
    )
    .await;
    livy.wait_statement(id, 1, &["running"], deadline::STATE_CHANGE)
        .await;

    server.kill9();
    server.restart();

    // Same session, same driver, same variables; the running statement's result is not lost.
    let done = livy
        .wait_statement(id, 1, &["available"], deadline::SHORT_WORK)
        .await;
    assert_eq!(
        done["output"]["data"]["text/plain"], "finished while the server was down",
        "{done:#}"
    );
    let view = livy.wait_state(id, &["idle"], deadline::STATE_CHANGE).await;
    assert_eq!(view["stateReason"], "adopted after a server restart");
    livy.call(
        reqwest::Method::POST,
        &format!("/sessions/{id}/statements"),
        Some(json!({"code": "kept"})),
    )
    .await;
    let done = livy
        .wait_statement(id, 2, &["available"], deadline::SHORT_WORK)
        .await;
    assert_eq!(done["output"]["data"]["text/plain"], "'state survives'");
    assert_eq!(
        livy.get(&format!("/sessions/{id}/statements")).await["total_statements"],
        3
    );
    let (status, _, _) = livy
        .call(reqwest::Method::DELETE, &format!("/sessions/{id}"), None)
        .await;
    assert_eq!(status, 200);
    server.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_airflows_exact_payload_runs_as_a_spool_job() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (src, dest) in [
        (fixtures.join("src/count.py"), "scripts/count.py"),
        (spool_test::shared_data("iris.csv"), "data/iris.csv"),
    ] {
        let out = server.cli(&[
            "datastore",
            "upload",
            "--src",
            src.to_str().unwrap(),
            "--dest",
            dest,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let store = server.data_dir().join("datastores/workspaceblobstore");
    let output = store.join("out/iris-lines");
    // What Airflow's LivyHook.build_post_batch_body produces for
    // LivyOperator(file=..., args=[...], conf={...}, name=..., driver_memory="1g", executor_memory="1gb", num_executors=1).
    let payload = json!({
        "file": "scripts/count.py",
        "args": ["--data", store.join("data/iris.csv").display().to_string(), "--out", output.display().to_string(), "--label", "iris"],
        "conf": {"spark.sql.shuffle.partitions": "2"},
        "name": "airflow-iris-count",
        "driverMemory": "1g",
        "executorMemory": "1gb",
        "numExecutors": 1
    });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = http
        .post(format!("{}/batches", server.url()))
        .basic_auth("admin", Some(&server.token))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(payload.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"]
        .as_i64()
        .expect("an integer batch id, as Airflow int()s it");
    let livy = Livy::new(&server);
    // Airflow polls /state until a terminal state; it must never see `recovering`.
    let timeout = deadline::COLD_START + deadline::SHORT_WORK;
    let until = Instant::now() + timeout;
    let mut progress = Progress::new(&format!("batch {id} to end"), timeout);
    let mut seen = Vec::new();
    let final_state = loop {
        let state = livy.get(&format!("/batches/{id}/state")).await["state"]
            .as_str()
            .unwrap()
            .to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if ["success", "dead", "killed", "error"].contains(&state.as_str()) {
            progress.done();
            break state;
        }
        assert!(
            Instant::now() < until,
            "batch stuck in {seen:?}\n{}",
            server.log_tails()
        );
        progress.tick();
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(final_state, "success", "states {seen:?}");
    assert!(
        seen.iter()
            .all(|s| ["starting", "running", "success"].contains(&s.as_str())),
        "{seen:?}"
    );
    let batch = livy.get(&format!("/batches/{id}")).await;
    assert!(
        batch["appId"].as_str().unwrap().starts_with("app-"),
        "{batch}"
    );
    // Airflow's log dump: from/size paging until `from > total`.
    let log = livy
        .get(&format!("/batches/{id}/log?from=0&size=100"))
        .await;
    assert!(log["total"].as_i64().unwrap() > 0);
    let all = livy.get(&format!("/batches/{id}/log?from=0&size=-1")).await;
    assert!(
        all["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "iris: 151"),
        "{all}"
    );
    // The batch is a Spool job underneath.
    let out = server.cli(&["job", "list", "-o", "json"]);
    let jobs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = &jobs.as_array().unwrap()[0];
    assert_eq!(job["display_name"], "airflow-iris-count");
    assert_eq!(job["experiment_name"], "livy-batches");
    assert_eq!(job["status"], "Completed");
    server.finish();
}

#[test]
fn a_session_gets_its_py_files_jars_files_and_archives_from_datastores_and_allowed_folders() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/livy_files");
    let scratch = std::env::temp_dir().join(format!("spool-livy-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (allowed, build, deps) = (
        scratch.join("allowed"),
        scratch.join("build"),
        scratch.join("deps"),
    );
    for dir in [&allowed, &build, &deps] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let run = |program: &str, args: &[&std::ffi::OsStr]| {
        let status = std::process::Command::new(program)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "{program} {args:?} failed");
    };
    run(
        "javac",
        &[
            "-d".as_ref(),
            build.as_os_str(),
            fixtures.join("Marker.java").as_os_str(),
        ],
    );
    run(
        "jar",
        &[
            "cf".as_ref(),
            allowed.join("marker.jar").as_os_str(),
            "-C".as_ref(),
            build.as_os_str(),
            ".".as_ref(),
        ],
    );
    std::fs::write(deps.join("inside.txt"), "from the archive\n").unwrap();
    run(
        "jar",
        &[
            "cfM".as_ref(),
            allowed.join("deps.zip").as_os_str(),
            "-C".as_ref(),
            deps.as_os_str(),
            ".".as_ref(),
        ],
    );
    for name in ["words.txt", "local_batch.py"] {
        std::fs::copy(fixtures.join(name), allowed.join(name)).unwrap();
    }
    let outside = scratch.join("outside.txt");
    std::fs::write(&outside, "not for sessions").unwrap();

    let config = format!(
        "[livy]\nlocal_dir_allowlist = [\"{}\"]\n",
        allowed.display()
    );
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], Some(&config));
    let out = server.cli(&[
        "datastore",
        "upload",
        "--src",
        fixtures.join("spool_helper.py").to_str().unwrap(),
        "--dest",
        "libs/spool_helper.py",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    run_client(
        &server,
        "pylivy_files.py",
        &[allowed.as_os_str(), outside.as_os_str()],
        &[],
        "pylivy files ok",
    );
    server.finish();
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn the_cli_creates_a_session_runs_code_and_sql_and_deletes_it() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    // Sizes are checked before anything starts.
    let out = server.cli(&[
        "session",
        "create",
        "--instance-type",
        "standard_e4s_v3",
        "--executor-memory",
        "64g",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("one executor needs 1 cores and 64 GiB but instance type `standard_e4s_v3` has 4 cores and 32 GiB"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&[
        "session",
        "create",
        "--min-executors",
        "3",
        "--max-executors",
        "2",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Dynamic min executors should be bigger than 0"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&[
        "session",
        "create",
        "--name",
        "cli",
        "--timeout",
        "5",
        "--min-executors",
        "1",
        "--max-executors",
        "2",
        "--instance-type",
        "standard_e4s_v3",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let session: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(session["state"], "idle");
    assert_eq!(session["timeout_minutes"], 5.0);
    let phases: Vec<&str> = session["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "not_started",
            "starting",
            "cluster_provisioning",
            "driver_starting",
            "idle"
        ]
    );

    let out = server.cli(&[
        "session",
        "run",
        "--name",
        "cli",
        "spark.range(10).selectExpr('sum(id) AS s').first()['s']",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "45");
    let out = server.cli(&[
        "session",
        "run",
        "--name",
        "cli",
        "--kind",
        "sql",
        "SELECT 6 * 7 AS answer",
    ]);
    assert!(
        out.stdout.windows(2).any(|w| w == b"42"),
        "{}",
        stdout(&out)
    );
    let out = server.cli(&["session", "run", "--name", "cli", "undefined_name + 1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("NameError: name 'undefined_name' is not defined"),
        "{err}"
    );
    assert!(
        !err.contains("driver.py"),
        "the REPL's own frames leak into the traceback:\n{err}"
    );

    let out = server.cli(&["session", "delete", "--name", "cli"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["session", "show", "--name", "cli", "-o", "json"]);
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ended["state"], "dead");
    assert_eq!(ended["state_reason"], "deleted by its user");
    server.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_protection_requires_x_requested_by_when_enabled() {
    let server = TestServer::start(
        env!("CARGO_BIN_EXE_spool"),
        &[],
        Some("[livy]\ncsrf_protection = true\n"),
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = http
        .post(format!("{}/sessions", server.url()))
        .basic_auth("admin", Some(&server.token))
        .json(&json!({"kind": "pyspark", "idleTimeout": "nonsense"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"msg": "Missing Required Header for CSRF protection."})
    );
    // With the header the request gets through (and is then judged on its own merits).
    let response = http
        .post(format!("{}/sessions", server.url()))
        .basic_auth("admin", Some(&server.token))
        .header("X-Requested-By", "sparkmagic")
        .json(&json!({"kind": "pyspark", "idleTimeout": "nonsense"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["msg"].as_str().unwrap().contains("idleTimeout"),
        "{body}"
    );
    // GETs never need it.
    let response = http
        .get(format!("{}/sessions", server.url()))
        .basic_auth("admin", Some(&server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_with_default_settings_starts_from_a_pre_warmed_driver_at_once() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "1"], None);
    let client = server.client();
    wait_prewarmed(&server, &client, "a pre-warmed driver").await;
    // Pre-warmed drivers are nobody's sessions until claimed.
    assert!(client.sessions().await.unwrap().sessions.is_empty());
    // Pre-warming yields the CPU to user work (a root server can raise it back on a claim).
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let drivers = server.processes_matching("driver.py");
    assert!(!drivers.is_empty(), "the pre-warmed driver's processes");
    let niceness = |pid: u32| -> Option<i64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command's closing parenthesis; the niceness is the 19th field.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(16)?
            .parse()
            .ok()
    };
    if root {
        assert!(
            drivers
                .iter()
                .all(|pid| niceness(*pid).is_none_or(|n| n == 10)),
            "{:?}",
            drivers.iter().map(|p| niceness(*p)).collect::<Vec<_>>()
        );
    }
    let livy = Livy::new(&server);
    let started = Instant::now();
    let (status, view, _) = livy
        .call(
            reqwest::Method::POST,
            "/sessions",
            Some(json!({"kind": "pyspark"})),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 201);
    // Idle in the answer to the POST itself: no driver was started for it. (The bound on the
    // time only catches a claim that waited for something; a cold start takes far longer.)
    assert_eq!(view["state"], "idle", "{view:#}");
    assert!(took < Duration::from_secs(5), "claiming took {took:?}");
    assert_eq!(view["stateReason"], "started from a pre-warmed driver");
    assert!(
        drivers
            .iter()
            .all(|pid| niceness(*pid).is_none_or(|n| n == 0)),
        "a claimed driver runs at normal priority: {:?}",
        drivers.iter().map(|p| niceness(*p)).collect::<Vec<_>>()
    );
    let id = view["id"].as_i64().unwrap();
    // The driver was really warm: its executor had registered and run a warm-up job before
    // it was handed out, so the first statement waits for no executor launch.
    livy.wait_executors(id, 1, Duration::from_secs(2)).await;
    let ui = view["appInfo"]["sparkUiUrl"].as_str().unwrap().to_string();
    let app = view["appId"].as_str().unwrap().to_string();
    let jobs = tokio::task::spawn_blocking(move || {
        spool_test::spark_ui_json(&ui, &format!("/api/v1/applications/{app}/jobs"))
    })
    .await
    .unwrap()
    .expect("the driver's jobs");
    let jobs = jobs.as_array().unwrap();
    assert!(
        !jobs.is_empty() && jobs.iter().all(|j| j["status"] == "SUCCEEDED"),
        "the warm-up job ran: {jobs:#?}"
    );
    let native = client.session(&id.to_string()).await.unwrap();
    let phases: Vec<&str> = native.phases.iter().map(|p| p.status.as_str()).collect();
    assert!(phases.contains(&"executors_ready"), "{phases:?}");
    livy.call(
        reqwest::Method::POST,
        &format!("/sessions/{id}/statements"),
        Some(json!({"code": "spark.range(3).count()"})),
    )
    .await;
    let done = livy
        .wait_statement(id, 0, &["available"], deadline::SHORT_WORK)
        .await;
    assert_eq!(done["output"]["data"]["text/plain"], "3");
    // The pool is refilled for the next user; the claimed driver is never handed out again.
    wait_prewarmed(&server, &client, "the pre-warmed pool to be refilled").await;
    let (_, second, _) = livy
        .call(
            reqwest::Method::POST,
            "/sessions",
            Some(json!({"kind": "sql"})),
        )
        .await;
    assert_ne!(second["id"], view["id"]);
    assert_eq!(second["state"], "idle");
    let sessions = client.sessions().await.unwrap().sessions;
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.owner == "admin"));
    server.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_of_another_shape_hands_its_drivers_only_to_sessions_of_that_shape() {
    let config = "[[sessions.pools]]\nexecutor_memory = \"512m\"\nsize = 1\n";
    let server = TestServer::start(
        env!("CARGO_BIN_EXE_spool"),
        &["--prewarm", "0"],
        Some(config),
    );
    let client = server.client();
    wait_prewarmed(&server, &client, "a driver of the configured pool").await;
    // The default shape is not the pool's: that session starts a driver of its own.
    let default = client
        .create_session(&spool_api_types::CreateSession::default())
        .await
        .unwrap();
    assert_ne!(
        default.state_reason.as_deref(),
        Some("started from a pre-warmed driver"),
        "{default:#?}"
    );
    client
        .delete_session(&default.id.to_string())
        .await
        .unwrap();
    let shaped = client
        .create_session(&spool_api_types::CreateSession {
            executor_memory: Some("512m".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        shaped.state,
        spool_client::SessionState::Idle,
        "{shaped:#?}"
    );
    assert_eq!(
        shaped.state_reason.as_deref(),
        Some("started from a pre-warmed driver")
    );
    server.finish();
}

/// Waits until the server has a pre-warmed driver ready (a cold cluster and driver start).
async fn wait_prewarmed(server: &TestServer, client: &spool_client::Client, what: &str) {
    let timeout = deadline::COLD_START;
    let until = Instant::now() + timeout;
    let mut progress = Progress::new(what, timeout);
    while client.catalog().await.unwrap().prewarmed_sessions_ready < 1 {
        assert!(
            Instant::now() < until,
            "no {what} within {timeout:?}\n{}",
            server.log_tails()
        );
        progress.tick();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress.done();
}

#[test]
fn the_cli_uploads_a_sessions_local_py_files_and_files_and_the_driver_and_executors_use_them() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/livy_files");
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let helper = fixtures.join("spool_helper.py");
    let words = fixtures.join("words.txt").display().to_string();

    // What cannot be read is refused before anything is created: a folder by the CLI, a
    // missing file by the server, naming the native API's field.
    let out = server.cli(&["session", "create", "--files", fixtures.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is a folder; give a file"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&[
        "session",
        "create",
        "--files",
        "azureml://datastores/workspaceblobstore/paths/words.txt#w.txt",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`--files`: `azureml://datastores/workspaceblobstore/paths/words.txt#w.txt`: only archives take a `#name`"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&["session", "create", "--py-files", "libs/missing.py"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("`--py-files`: no file at `azureml://datastores/workspaceblobstore/paths/libs/missing.py`"),
        "{err}"
    );
    let out = server.cli(&["-o", "json", "session", "list"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!([]),
        "{}",
        stdout(&out)
    );

    let out = server.cli(&[
        "-o",
        "json",
        "session",
        "create",
        "--name",
        "files",
        "--py-files",
        helper.to_str().unwrap(),
        "--files",
        &words,
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let session: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(session["state"], "idle", "{session:#}");
    let uploaded = "azureml://datastores/workspaceblobstore/paths/LocalUpload/";
    let py = session["py_files"][0].as_str().unwrap();
    assert!(
        py.starts_with(uploaded) && py.ends_with("/spool_helper.py"),
        "{session:#}"
    );
    let file = session["files"][0].as_str().unwrap();
    assert!(
        file.starts_with(uploaded) && file.ends_with("/words.txt"),
        "{session:#}"
    );
    // The module imports on the driver and in a task; the file is there.
    let out = server.cli(&[
        "session",
        "run",
        "--name",
        "files",
        "import spool_helper\nfrom pyspark import SparkFiles\n\
         print(spool_helper.shout('driver'), open(SparkFiles.get('words.txt')).read().split()[:2], \
         spark.sparkContext.parallelize([1], 1).map(lambda _: __import__('spool_helper').shout('task')).collect())",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "DRIVER! ['spark', 'livy'] ['TASK!']");
    let out = server.cli(&["session", "show", "--name", "files"]);
    assert!(stdout(&out).contains("py_files"), "{}", stdout(&out));
    server.finish();
}
