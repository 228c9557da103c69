//! The native and Livy APIs in-process: the real router over a real `Control` on a temp SQLite
//! data dir, served on `127.0.0.1:0`, driven over HTTP. No background loop runs, so nothing
//! starts Spark: these need no Java and each runs in milliseconds.
//!
//! Request and response shapes and error bodies are snapshots (`expect-test`): update them with
//! `UPDATE_EXPECT=1 cargo nextest run -p spool-server --test api` and review the diff.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use expect_test::{Expect, expect};
use serde_json::Value;
use spool_control::config::{CapacityFile, ConfigFile, SessionsFile};
use spool_control::{Config, Control};
use spool_server::AppState;

/// A server over a fresh data dir and an empty runtime cache, with the admin and two users.
struct Api {
    url: String,
    http: reqwest::Client,
    admin: String,
    alice: String,
    bob: String,
    dir: tempfile::TempDir,
    log: Log,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Who makes a request, as the `Authorization` header says.
#[derive(Clone, Copy)]
enum Who {
    Nobody,
    Admin,
    /// The admin's token as a basic-auth password, as Livy clients send it.
    AdminBasic,
    Alice,
    Bob,
    /// A well-formed bearer token that belongs to no one.
    BadToken,
    /// The admin's token under another user's name.
    WrongName,
    /// A scheme the server does not speak.
    Digest,
}

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::Nobody => "nobody",
            Who::Admin => "admin",
            Who::AdminBasic => "admin (basic)",
            Who::Alice => "alice",
            Who::Bob => "bob",
            Who::BadToken => "bad token",
            Who::WrongName => "admin token as bob (basic)",
            Who::Digest => "digest",
        }
    }
}

/// One request of a table: method, path, caller, JSON body (sent as is, so it may be invalid).
type Case<'a> = (&'a str, &'a str, Who, Option<&'a str>);

impl Api {
    async fn start() -> Api {
        let log = Log::install();
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile {
            // Fixed capacity, so messages with numbers do not depend on the machine.
            capacity: CapacityFile {
                cores: Some(2),
                memory: Some("8g".into()),
                ..Default::default()
            },
            sessions: SessionsFile { prewarm: Some(0) },
            ..Default::default()
        };
        let config = Config::from_file(&file).unwrap();
        let data_dir = dir.path().join("data");
        let control = Control::open(&data_dir, &dir.path().join("cache"), config)
            .await
            .unwrap();
        let admin = std::fs::read_to_string(data_dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(spool_server::serve(
            listener,
            AppState { control },
            async move {
                let _ = stopped.await;
            },
        ));
        let mut api = Api {
            url,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            admin,
            alice: String::new(),
            bob: String::new(),
            dir,
            log,
            stop: Some(stop),
        };
        api.alice = api.create_user("alice").await;
        api.bob = api.create_user("bob").await;
        api
    }

    async fn create_user(&self, name: &str) -> String {
        let body = format!(r#"{{"name":"{name}"}}"#);
        let (status, created) = self
            .call("POST", "/api/v1/users", Who::Admin, Some(&body))
            .await;
        assert_eq!(status, 201, "{created}");
        created["token"].as_str().unwrap().to_string()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn call(&self, method: &str, path: &str, who: Who, body: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        request = match who {
            Who::Nobody => request,
            Who::Admin => request.bearer_auth(&self.admin),
            Who::AdminBasic => request.basic_auth("admin", Some(&self.admin)),
            Who::Alice => request.bearer_auth(&self.alice),
            Who::Bob => request.bearer_auth(&self.bob),
            Who::BadToken => request.bearer_auth("spool_not-a-token"),
            Who::WrongName => request.basic_auth("bob", Some(&self.admin)),
            Who::Digest => request.header("authorization", "Digest username=admin"),
        };
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// Runs each case and renders `METHOD PATH (who) -> STATUS BODY`, one per line, with tokens,
    /// times and temp paths replaced.
    async fn render(&self, cases: &[Case<'_>]) -> String {
        let mut out = String::new();
        for (method, path, who, body) in cases {
            let (status, reply) = self.call(method, path, *who, *body).await;
            let reply = self.redact(&serde_json::to_string(&redact_fields(reply)).unwrap());
            writeln!(out, "{method} {path} ({}) -> {status} {reply}", who.label()).unwrap();
        }
        out
    }

    fn redact(&self, text: &str) -> String {
        text.replace(&self.admin, "[ADMIN_TOKEN]")
            .replace(&self.alice, "[ALICE_TOKEN]")
            .replace(&self.bob, "[BOB_TOKEN]")
            .replace(&self.dir.path().display().to_string(), "[TMP]")
    }

    /// Uploads a code snapshot holding `main.py`; returns the `code` value for a job spec.
    async fn snapshot(&self) -> String {
        let mut archive = tar::Builder::new(Vec::new());
        let script = b"print('hello')\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(script.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, "main.py", &script[..])
            .unwrap();
        let response = self
            .http
            .post(format!("{}/api/v1/snapshots", self.url))
            .bearer_auth(&self.alice)
            .header("content-type", "application/x-tar")
            .body(archive.into_inner().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        created["code"].as_str().unwrap().to_string()
    }

    /// Stops the server and fails the test if anything logged an ERROR.
    async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let errors = self.log.errors();
        assert!(
            errors.is_empty(),
            "the server logged errors:\n{}",
            errors.join("\n")
        );
    }
}

/// Replaces values that change from run to run (times, tokens) by placeholders.
fn redact_fields(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = match key.as_str() {
                        "created_at" | "at" | "submitted_at" | "updated_at" => {
                            Value::String("[TIME]".into())
                        }
                        "token" => Value::String("[TOKEN]".into()),
                        _ => redact_fields(value),
                    };
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact_fields).collect()),
        other => other,
    }
}

/// What the server logged. One subscriber per test process: nextest runs each test in its own
/// process; under `cargo test` the tests of this file share it, so an ERROR fails the test that
/// logged it or one that finishes soon after.
#[derive(Clone)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn install() -> Log {
        static LOG: OnceLock<Log> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = Log(Arc::default());
            let writer = log.clone();
            let _ = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_env_filter("info")
                .with_writer(move || writer.clone())
                .try_init();
            log
        })
        .clone()
    }

    fn errors(&self) -> Vec<String> {
        spool_test::error_entries(&String::from_utf8_lossy(&self.0.lock().unwrap()))
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[track_caller]
fn check(actual: String, expect: Expect) {
    expect.assert_eq(&actual);
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_with_the_json_error_shape() {
    let api = Api::start().await;
    let cases: &[Case] = &[
        ("GET", "/api/v1/jobs", Who::Nobody, None),
        ("GET", "/api/v1/jobs", Who::BadToken, None),
        ("GET", "/api/v1/jobs", Who::Digest, None),
        ("GET", "/api/v1/whoami", Who::WrongName, None),
        ("GET", "/api/v1/openapi.json", Who::Nobody, None),
        // Unknown routes do not tell strangers which routes exist.
        ("GET", "/api/v1/no-such-route", Who::Nobody, None),
        // Livy routes authenticate the same way, and answer in the native shape.
        ("GET", "/sessions", Who::Nobody, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            GET /api/v1/jobs (nobody) -> 401 {"error":{"code":"unauthorized","message":"missing `Authorization` header; send `Authorization: Bearer <token>`","target":"Authorization"}}
            GET /api/v1/jobs (bad token) -> 401 {"error":{"code":"unauthorized","message":"invalid token","target":"Authorization"}}
            GET /api/v1/jobs (digest) -> 401 {"error":{"code":"unauthorized","message":"unsupported `Authorization` scheme; use `Bearer <token>`","target":"Authorization"}}
            GET /api/v1/whoami (admin token as bob (basic)) -> 401 {"error":{"code":"unauthorized","message":"invalid token","target":"Authorization"}}
            GET /api/v1/openapi.json (nobody) -> 401 {"error":{"code":"unauthorized","message":"missing `Authorization` header; send `Authorization: Bearer <token>`","target":"Authorization"}}
            GET /api/v1/no-such-route (nobody) -> 401 {"error":{"code":"unauthorized","message":"missing `Authorization` header; send `Authorization: Bearer <token>`","target":"Authorization"}}
            GET /sessions (nobody) -> 401 {"error":{"code":"unauthorized","message":"missing `Authorization` header; send `Authorization: Bearer <token>`","target":"Authorization"}}
        "#]],
    );
    api.finish().await;
}

#[tokio::test]
async fn who_am_i_users_catalog_and_datastores_have_their_shapes() {
    let api = Api::start().await;
    let cases: &[Case] = &[
        ("GET", "/api/v1/whoami", Who::Admin, None),
        ("GET", "/api/v1/whoami", Who::AdminBasic, None),
        ("GET", "/api/v1/whoami", Who::Alice, None),
        (
            "POST",
            "/api/v1/users",
            Who::Admin,
            Some(r#"{"name":"carol"}"#),
        ),
        (
            "POST",
            "/api/v1/users",
            Who::Admin,
            Some(r#"{"name":"carol"}"#),
        ),
        (
            "POST",
            "/api/v1/users",
            Who::Alice,
            Some(r#"{"name":"mallory"}"#),
        ),
        ("GET", "/api/v1/datastores", Who::Alice, None),
        ("GET", "/api/v1/jobs", Who::Alice, None),
        // Clusters are listed in an object holding the array, as jobs and sessions are.
        ("GET", "/api/v1/clusters", Who::Alice, None),
        ("GET", "/api/v1/sessions", Who::Alice, None),
        ("GET", "/api/v1/events", Who::Alice, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            GET /api/v1/whoami (admin) -> 200 {"is_admin":true,"name":"admin"}
            GET /api/v1/whoami (admin (basic)) -> 200 {"is_admin":true,"name":"admin"}
            GET /api/v1/whoami (alice) -> 200 {"is_admin":false,"name":"alice"}
            POST /api/v1/users (admin) -> 201 {"name":"carol","token":"[TOKEN]"}
            POST /api/v1/users (admin) -> 409 {"error":{"code":"conflict","message":"user `carol` already exists","target":"name"}}
            POST /api/v1/users (alice) -> 403 {"error":{"code":"forbidden","message":"only the admin can create users"}}
            GET /api/v1/datastores (alice) -> 200 {"datastores":[{"created_at":"[TIME]","name":"workspaceblobstore","uri":"azureml://datastores/workspaceblobstore/paths/"}]}
            GET /api/v1/jobs (alice) -> 200 {"jobs":[]}
            GET /api/v1/clusters (alice) -> 200 {"clusters":[]}
            GET /api/v1/sessions (alice) -> 200 {"sessions":[]}
            GET /api/v1/events (alice) -> 403 {"error":{"code":"forbidden","message":"only the admin can read server events"}}
        "#]],
    );
    let (status, catalog) = api.call("GET", "/api/v1/catalog", Who::Alice, None).await;
    check(
        format!("{status} {:#}", redact_fields(catalog)),
        expect![[r#"
            200 {
              "capacity": {
                "cpu_oversubscription": 4.0,
                "host_cores": 2,
                "memory_mb": 8192,
                "schedulable_cores": 8,
                "used_cores": 0,
                "used_memory_mb": 0
              },
              "default_runtime": "3.4",
              "instance_types": [
                {
                  "cores": 4,
                  "memory_mb": 32768,
                  "name": "standard_e4s_v3"
                },
                {
                  "cores": 8,
                  "memory_mb": 65536,
                  "name": "standard_e8s_v3"
                },
                {
                  "cores": 16,
                  "memory_mb": 131072,
                  "name": "standard_e16s_v3"
                },
                {
                  "cores": 32,
                  "memory_mb": 262144,
                  "name": "standard_e32s_v3"
                },
                {
                  "cores": 64,
                  "memory_mb": 442368,
                  "name": "standard_e64s_v3"
                }
              ],
              "prewarmed_sessions_ready": 0,
              "runtimes": [
                {
                  "default": true,
                  "installed": false,
                  "packages": [
                    "pandas==1.5.3",
                    "numpy==1.26.4",
                    "pyarrow==14.0.2"
                  ],
                  "pyspark": "3.4.4",
                  "scala": "2.12",
                  "version": "3.4"
                },
                {
                  "default": false,
                  "installed": false,
                  "packages": [
                    "pandas==2.0.3",
                    "numpy==1.26.4",
                    "pyarrow==15.0.2"
                  ],
                  "pyspark": "3.5.9",
                  "scala": "2.12",
                  "version": "3.5"
                },
                {
                  "default": false,
                  "installed": false,
                  "packages": [
                    "pandas==2.3.3",
                    "numpy==2.3.5",
                    "pyarrow==21.0.0"
                  ],
                  "pyspark": "4.3.0",
                  "scala": "2.13",
                  "version": "4.3"
                }
              ]
            }"#]],
    );
    api.finish().await;
}

#[tokio::test]
async fn invalid_jobs_are_400_with_a_target_and_nothing_is_created() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let conf = r#""conf":{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}"#;
    let missing_snapshot = format!(
        r#"{{"spec":{{"code":"snapshot:{}","entry":{{"file":"main.py"}},{conf}}}}}"#,
        "0".repeat(64)
    );
    let missing_entry =
        format!(r#"{{"spec":{{"code":"{code}","entry":{{"file":"nope.py"}},{conf}}}}}"#);
    let local_code =
        format!(r#"{{"spec":{{"code":"./src","entry":{{"file":"main.py"}},{conf}}}}}"#);
    let too_big = format!(
        r#"{{"spec":{{"code":"{code}","entry":{{"file":"main.py"}},{}}}}}"#,
        conf.replace(
            r#""spark.executor.instances":1"#,
            r#""spark.executor.instances":9"#
        )
    );
    let cases: &[Case] = &[
        // A body that is not JSON, or JSON of the wrong shape, gets the `{"error": ...}` shape
        // every other error has.
        ("POST", "/api/v1/jobs", Who::Alice, Some("not json")),
        ("POST", "/api/v1/jobs", Who::Alice, Some(r#"{"job":{}}"#)),
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(r#"{"spec":{"code":1}}"#),
        ),
        ("POST", "/api/v1/jobs", Who::Alice, Some(r#"{"spec":{}}"#)),
        // A spec naming a snapshot that does not exist is an invalid request about `code`.
        ("POST", "/api/v1/jobs", Who::Alice, Some(&missing_snapshot)),
        ("POST", "/api/v1/jobs", Who::Alice, Some(&missing_entry)),
        ("POST", "/api/v1/jobs", Who::Alice, Some(&local_code)),
        ("POST", "/api/v1/jobs", Who::Alice, Some(&too_big)),
        ("GET", "/api/v1/jobs", Who::Alice, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"the request body is not valid JSON: expected ident at line 1 column 2","target":"body"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"the request body has the wrong shape: missing field `spec` at line 1 column 10","target":"body"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"the job spec is malformed: invalid type: integer `1`, expected a string","target":"spec"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"the job spec is malformed: missing field `code`","target":"spec"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"snapshot `0000000000000000000000000000000000000000000000000000000000000000` does not exist on the server; upload the code folder with `POST /api/v1/snapshots` first\nhint: `spool job create` uploads it for you","target":"code"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"`nope.py` does not exist in the code folder (Entry doesn't exist.)","target":"entry.file"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"`code` must name an uploaded snapshot (`snapshot:<sha256>`), got `./src`; the CLI uploads the code folder for you","target":"code"}}
            POST /api/v1/jobs (alice) -> 422 {"error":{"code":"exceeds_capacity","message":"the job needs 10 cores and 11 GiB (9 executors x 1 cores and 1 GiB, a driver with 1 cores and 1 GiB, and 1 GiB for the Spark master and worker), but this host can never give more than 8 cores (2 cores x 4 oversubscription) and 8 GiB\nhint: ask for fewer or smaller executors, or raise `capacity` in the server's config.toml","target":"conf"}}
            GET /api/v1/jobs (alice) -> 200 {"jobs":[]}
        "#]],
    );
    api.finish().await;
}

#[tokio::test]
async fn malformed_requests_get_the_error_shape_of_their_api() {
    let api = Api::start().await;
    let cases: &[Case] = &[
        // Native routes: `{"error": ...}` with the part of the request that is wrong.
        ("POST", "/api/v1/users", Who::Admin, Some("{")),
        (
            "POST",
            "/api/v1/users",
            Who::Admin,
            Some(r#"{"nom":"carol"}"#),
        ),
        (
            "POST",
            "/api/v1/sessions",
            Who::Alice,
            Some(r#"{"executors":"two"}"#),
        ),
        (
            "POST",
            "/api/v1/sessions/1/statements",
            Who::Alice,
            Some(r#"{"code":"1","colour":"blue"}"#),
        ),
        ("GET", "/api/v1/jobs?max_results=lots", Who::Alice, None),
        (
            "GET",
            "/api/v1/sessions/1/statements/first",
            Who::Alice,
            None,
        ),
        // Livy routes: `{"msg": ...}`.
        ("GET", "/sessions?from=first", Who::AdminBasic, None),
        ("GET", "/sessions/1/statements/first", Who::AdminBasic, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/users (admin) -> 400 {"error":{"code":"invalid_request","message":"the request body is not valid JSON: EOF while parsing an object at line 1 column 1","target":"body"}}
            POST /api/v1/users (admin) -> 400 {"error":{"code":"invalid_request","message":"the request body has the wrong shape: missing field `name` at line 1 column 15","target":"body"}}
            POST /api/v1/sessions (alice) -> 400 {"error":{"code":"invalid_request","message":"the request body has the wrong shape: executors: invalid type: string \"two\", expected u32 at line 1 column 18","target":"body"}}
            POST /api/v1/sessions/1/statements (alice) -> 400 {"error":{"code":"invalid_request","message":"the request body has the wrong shape: colour: unknown field `colour`, expected `code` or `kind` at line 1 column 20","target":"body"}}
            GET /api/v1/jobs?max_results=lots (alice) -> 400 {"error":{"code":"invalid_request","message":"the query string is invalid: max_results: invalid digit found in string","target":"query"}}
            GET /api/v1/sessions/1/statements/first (alice) -> 400 {"error":{"code":"invalid_request","message":"the path is invalid: Cannot parse value at index 1 with value `first` to a `i64`","target":"path"}}
            GET /sessions?from=first (admin (basic)) -> 400 {"msg":"Failed to deserialize query string: from: invalid digit found in string"}
            GET /sessions/1/statements/first (admin (basic)) -> 400 {"msg":"Invalid URL: Cannot parse value at index 1 with value `first` to a `i64`"}
        "#]],
    );
    api.finish().await;
}

#[tokio::test]
async fn another_users_job_is_not_found_for_them() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let job = format!(
        r#"{{"spec":{{"name":"alices_job","code":"{code}","entry":{{"file":"main.py"}},"conf":{{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}}}}}}"#
    );
    let (status, created) = api
        .call("POST", "/api/v1/jobs", Who::Alice, Some(&job))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "alices_job");
    assert_eq!(created["owner"], "alice");
    let cases: &[Case] = &[
        ("GET", "/api/v1/jobs/alices_job", Who::Bob, None),
        ("POST", "/api/v1/jobs/alices_job/cancel", Who::Bob, None),
        ("GET", "/api/v1/jobs/alices_job/logs", Who::Bob, None),
        (
            "GET",
            "/api/v1/jobs/alices_job/logs/azureml/driver/stdout",
            Who::Bob,
            None,
        ),
        ("GET", "/api/v1/jobs/no_such_job", Who::Alice, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
        GET /api/v1/jobs/alices_job (bob) -> 404 {"error":{"code":"not_found","message":"job `alices_job` not found","target":"alices_job"}}
        POST /api/v1/jobs/alices_job/cancel (bob) -> 404 {"error":{"code":"not_found","message":"job `alices_job` not found","target":"alices_job"}}
        GET /api/v1/jobs/alices_job/logs (bob) -> 404 {"error":{"code":"not_found","message":"job `alices_job` not found","target":"alices_job"}}
        GET /api/v1/jobs/alices_job/logs/azureml/driver/stdout (bob) -> 404 {"error":{"code":"not_found","message":"job `alices_job` not found","target":"alices_job"}}
        GET /api/v1/jobs/no_such_job (alice) -> 404 {"error":{"code":"not_found","message":"job `no_such_job` not found","target":"no_such_job"}}
    "#]],
    );
    // Alice and the admin see it; Bob's list is empty.
    for (who, count) in [(Who::Alice, 1), (Who::Admin, 1), (Who::Bob, 0)] {
        let (_, list) = api.call("GET", "/api/v1/jobs", who, None).await;
        assert_eq!(list["jobs"].as_array().unwrap().len(), count, "{list}");
    }
    api.finish().await;
}

#[tokio::test]
async fn every_documented_path_is_routed() {
    let api = Api::start().await;
    let doc: Value = serde_json::from_str(spool_server::OPENAPI).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{} paths", paths.len());
    let mut unrouted = Vec::new();
    for (path, methods) in paths {
        let concrete = path
            .replace("{name}", "no_such_thing")
            .replace("{path}", "azureml/driver/stdout")
            .replace("{output}", "out")
            .replace("{key}", "no_such_session")
            .replace("{seq}", "0")
            .replace("{version}", "0.0");
        for method in methods.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let body = (method == "POST").then_some("{}");
            let (status, reply) = api.call(&method, &concrete, Who::Admin, body).await;
            // Axum answers 405 for a known path with another method, and the fallback
            // `no route for` for an unknown one.
            if status == 405 || reply.to_string().contains("no route for") {
                unrouted.push(format!("{method} {path}: {status} {reply}"));
            }
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not routed:\n{}",
        unrouted.join("\n")
    );
    api.finish().await;
}

#[tokio::test]
async fn livy_routes_answer_with_livys_shapes_and_msg_errors() {
    let api = Api::start().await;
    let cases: &[Case] = &[
        ("GET", "/version", Who::AdminBasic, None),
        ("GET", "/sessions", Who::AdminBasic, None),
        ("GET", "/batches", Who::AdminBasic, None),
        ("GET", "/sessions/9999", Who::AdminBasic, None),
        ("GET", "/sessions/9999/statements/0", Who::AdminBasic, None),
        ("GET", "/batches/9999", Who::AdminBasic, None),
        // Unknown fields are rejected, as Livy's JSON parser does.
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"pyspark","colour":"blue"}"#),
        ),
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"spark"}"#),
        ),
        ("POST", "/sessions", Who::AdminBasic, Some("{not json")),
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"pyspark","idleTimeout":"soon"}"#),
        ),
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"pyspark","executorMemory":"lots"}"#),
        ),
        // Its unit is one character but two bytes: this panicked the handler (issue 11).
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"pyspark","driverMemory":"1é"}"#),
        ),
        ("POST", "/batches", Who::AdminBasic, Some(r#"{"args":[]}"#)),
        // Nothing above was created.
        ("GET", "/sessions", Who::AdminBasic, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
        GET /version (admin (basic)) -> 200 {"branch":"spool","date":"","revision":"0.0.0","url":"","user":"spool","version":"0.8.0-incubating"}
        GET /sessions (admin (basic)) -> 200 {"from":0,"sessions":[],"total":0}
        GET /batches (admin (basic)) -> 200 {"from":0,"sessions":[],"total":0}
        GET /sessions/9999 (admin (basic)) -> 404 {"msg":"Session '9999' not found."}
        GET /sessions/9999/statements/0 (admin (basic)) -> 404 {"msg":"Session '9999' not found."}
        GET /batches/9999 (admin (basic)) -> 404 {"msg":"Session '9999' not found."}
        POST /sessions (admin (basic)) -> 400 {"msg":"unknown field `colour`, expected one of `kind`, `proxyUser`, `jars`, `pyFiles`, `files`, `driverMemory`, `driverCores`, `executorMemory`, `executorCores`, `numExecutors`, `archives`, `queue`, `name`, `conf`, `heartbeatTimeoutInSecond`, `ttl`, `idleTimeout` at line 1 column 26"}
        POST /sessions (admin (basic)) -> 400 {"msg":"Rejected, Reason: session kind `spark` (Scala) is not supported by this Spool version; use `pyspark` or `sql`"}
        POST /sessions (admin (basic)) -> 400 {"msg":"key must be a string at line 1 column 2"}
        POST /sessions (admin (basic)) -> 400 {"msg":"Rejected, Reason: idleTimeout: `soon` is not a duration: write e.g. `30s`, `10m` or `1h`"}
        POST /sessions (admin (basic)) -> 400 {"msg":"Rejected, Reason: `executorMemory`: `lots` is not a memory size: write a whole number followed by k, m, g, t or p (e.g. `2g`, `512m`)"}
        POST /sessions (admin (basic)) -> 400 {"msg":"Rejected, Reason: `driverMemory`: `1é` is not a memory size: write a whole number followed by k, m, g, t or p (e.g. `2g`, `512m`)"}
        POST /batches (admin (basic)) -> 400 {"msg":"requirement failed: file is required"}
        GET /sessions (admin (basic)) -> 200 {"from":0,"sessions":[],"total":0}
    "#]],
    );
    assert!(!api.data_dir().join("sessions").exists());
    api.finish().await;
}
