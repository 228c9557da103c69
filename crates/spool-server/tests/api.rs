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
use spool_control::config::{AccessFile, CapacityFile, ConfigFile, EnforceSetting, SessionsFile};
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
    /// Alice's token under `bearer`, in lower case (schemes are case-insensitive).
    LowerBearer,
    /// The admin's basic credentials under `BASIC`.
    UpperBasic,
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
            Who::LowerBearer => "alice (lowercase bearer)",
            Who::UpperBasic => "admin (BASIC)",
        }
    }
}

/// One request of a table: method, path, caller, JSON body (sent as is, so it may be invalid).
type Case<'a> = (&'a str, &'a str, Who, Option<&'a str>);

impl Api {
    async fn start() -> Api {
        Api::start_with(|_| {}).await
    }

    /// As `start`, with the config file changed by `edit` first.
    async fn start_with(edit: impl FnOnce(&mut ConfigFile)) -> Api {
        let log = Log::install();
        let dir = tempfile::tempdir().unwrap();
        let mut file = ConfigFile {
            // Fixed capacity, so messages with numbers do not depend on the machine.
            capacity: CapacityFile {
                cores: Some(2),
                memory: Some("8g".into()),
                ..Default::default()
            },
            sessions: SessionsFile {
                prewarm: Some(0),
                ..Default::default()
            },
            // These tests start no Spark and must leave no OS accounts behind; the OS-level
            // enforcement is tested with real jobs (`crates/spool/tests/access.rs`).
            access: AccessFile {
                enforce: Some(EnforceSetting::Off),
            },
            ..Default::default()
        };
        edit(&mut file);
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
            AppState::new(control),
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
            Who::LowerBearer => request.header("authorization", format!("bearer {}", self.alice)),
            Who::UpperBasic => {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("admin:{}", self.admin));
                request.header("authorization", format!("BASIC {encoded}"))
            }
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
            GET /api/v1/whoami (admin) -> 200 {"is_admin":true,"name":"admin","role":"Owner"}
            GET /api/v1/whoami (admin (basic)) -> 200 {"is_admin":true,"name":"admin","role":"Owner"}
            GET /api/v1/whoami (alice) -> 200 {"is_admin":false,"name":"alice","role":"AzureML Data Scientist"}
            POST /api/v1/users (admin) -> 201 {"name":"carol","token":"[TOKEN]"}
            POST /api/v1/users (admin) -> 409 {"error":{"code":"conflict","message":"user `carol` already exists","target":"name"}}
            POST /api/v1/users (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` (AzureML Data Scientist) cannot create users; this needs the Owner workspace role\nhint: ask an Owner to do it, or to run `spool user update alice --role Owner` (`spool user list` shows the Owners)"}}
            GET /api/v1/datastores (alice) -> 200 {"datastores":[{"created_at":"[TIME]","name":"workspaceblobstore","uri":"azureml://datastores/workspaceblobstore/paths/"}]}
            GET /api/v1/jobs (alice) -> 200 {"jobs":[]}
            GET /api/v1/clusters (alice) -> 200 {"clusters":[]}
            GET /api/v1/sessions (alice) -> 200 {"sessions":[]}
            GET /api/v1/events (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` (AzureML Data Scientist) cannot read server events; this needs the Owner workspace role\nhint: ask an Owner to do it, or to run `spool user update alice --role Owner` (`spool user list` shows the Owners)"}}
        "#]],
    );
    let (status, catalog) = api.call("GET", "/api/v1/catalog", Who::Alice, None).await;
    check(
        format!("{status} {:#}", redact_fields(catalog)),
        expect![[r#"
            200 {
              "capacity": {
                "cpu_oversubscription": 5.0,
                "host_cores": 2,
                "memory_mb": 8192,
                "schedulable_cores": 10,
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
            POST /api/v1/jobs (alice) -> 422 {"error":{"code":"exceeds_capacity","message":"the job needs 10 cores and 11 GiB (9 executors x 1 cores and 1 GiB, a driver with 1 cores and 1 GiB, and 1 GiB for the Spark master and worker), but this host can never give more than 10 cores (2 cores x 5 oversubscription) and 8 GiB\nhint: ask for fewer or smaller executors, or raise `capacity` in the server's config.toml","target":"conf"}}
            GET /api/v1/jobs (alice) -> 200 {"jobs":[]}
        "#]],
    );
    api.finish().await;
}

#[tokio::test]
async fn invalid_command_jobs_are_400_with_a_target_and_nothing_is_created() {
    // A valid command job is run by `crates/spool/tests/command.rs` (it needs a runtime).
    let api = Api::start().await;
    let cases: &[Case] = &[
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(r#"{"spec":{"type":"command","command":"ls","image":"ubuntu"}}"#),
        ),
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(r#"{"spec":{"type":"command","command":"ls","compute":"cpu-cluster"}}"#),
        ),
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(r#"{"spec":{"type":"command","command":"cat ${{inputs.data}}"}}"#),
        ),
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(r#"{"spec":{"type":"command","command":"ls","code":"./src"}}"#),
        ),
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(
                r#"{"spec":{"type":"command","command":"cat ${{inputs.data}}","inputs":{"data":{"kind":"data","type":"uri_file","path":"azureml://datastores/workspaceblobstore/paths/none.txt"}}}}"#,
            ),
        ),
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(r#"{"spec":{"type":"sweep"}}"#),
        ),
        ("GET", "/api/v1/jobs", Who::Alice, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"the job spec is malformed: unknown field `image`, expected one of `type`, `name`, `display_name`, `experiment_name`, `description`, `tags`, `properties`, `code`, `command`, `environment`, `environment_variables`, `inputs`, `outputs`, `identity`, `identity_selector`, `compute`, `timeout_seconds`","target":"spec"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"job: `compute`: Not found compute with name cpu-cluster\nhint: command steps run as processes on the Spool host: write `compute: serverless` or leave `compute` out","target":"compute"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"job: `command`: the command references input `data`, which the job does not declare (none are declared)","target":"command"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"`code` must name an uploaded snapshot (`snapshot:<sha256>`), got `./src`; the CLI uploads the code folder for you","target":"code"}}
            POST /api/v1/jobs (alice) -> 403 {"error":{"code":"forbidden","message":"inputs.data.path: alice has no data role that allows read access to `azureml://datastores/workspaceblobstore/paths/none.txt`: it needs Storage Blob Data Reader (or a role above it) on that path or above it\nhint: a workspace Owner, or a Storage Blob Data Owner of that path, grants it with: spool role assignment create --assignee alice --role \"Storage Blob Data Reader\" --scope azureml://datastores/workspaceblobstore/paths/none.txt"}}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"unknown job type `sweep`; accepted: `command`, `pipeline` (a Spark job's spec has no `type`)","target":"spec.type"}}
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

impl Api {
    /// Sends `body` as it is, with `content_type` if given, as `who`; returns status and body.
    async fn send(
        &self,
        method: &str,
        path: &str,
        who: Who,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        request = match who {
            Who::Admin => request.bearer_auth(&self.admin),
            Who::AdminBasic => request.basic_auth("admin", Some(&self.admin)),
            Who::Alice => request.bearer_auth(&self.alice),
            Who::Nobody => request,
            _ => unimplemented!("`send` speaks only as the admin, alice or nobody"),
        };
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Regression (issue 11, finding 5): a huge Livy `idleTimeout` panicked the handler, and the
/// client got an empty reply. Out-of-range timeouts are a 400 naming the field and the maximum.
#[tokio::test]
async fn regression_11_out_of_range_idle_timeouts_are_400() {
    let api = Api::start().await;
    let cases: &[Case] = &[
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"pyspark","idleTimeout":"99999999999999999999d"}"#),
        ),
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"pyspark","idleTimeout":"31d"}"#),
        ),
        (
            "POST",
            "/api/v1/sessions",
            Who::Alice,
            Some(r#"{"timeout_minutes":1e30}"#),
        ),
        (
            "POST",
            "/api/v1/sessions",
            Who::Alice,
            Some(r#"{"timeout_minutes":-5}"#),
        ),
        ("GET", "/sessions", Who::AdminBasic, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /sessions (admin (basic)) -> 400 {"msg":"Rejected, Reason: `idleTimeout` must be between 1s and 30d, got 99999999999999999999d"}
            POST /sessions (admin (basic)) -> 400 {"msg":"Rejected, Reason: `idleTimeout` must be between 1s and 30d, got 31d"}
            POST /api/v1/sessions (alice) -> 400 {"error":{"code":"invalid_request","message":"`timeout_minutes` must be between 1s and 30d, got 1000000000000000000000000000000 minutes","target":"timeout_minutes"}}
            POST /api/v1/sessions (alice) -> 400 {"error":{"code":"invalid_request","message":"`timeout_minutes` must be between 1s and 30d, got -5 minutes","target":"timeout_minutes"}}
            GET /sessions (admin (basic)) -> 200 {"from":0,"sessions":[],"total":0}
        "#]],
    );
    api.finish().await;
}

/// Regression (issue 11, finding 7): `executor_cores: 4294967295` was accepted everywhere and
/// wrapped the capacity ledger. Sizes are range-checked where requests enter.
#[tokio::test]
async fn regression_11_sizes_out_of_range_are_400_naming_field_value_and_range() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let job = format!(
        r#"{{"spec":{{"code":"{code}","entry":{{"file":"main.py"}},"conf":{{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":4294967295,"spark.executor.memory":"1g","spark.executor.instances":2}}}}}}"#
    );
    let cases: &[Case] = &[
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"pyspark","executorCores":4294967295}"#),
        ),
        (
            "POST",
            "/sessions",
            Who::AdminBasic,
            Some(r#"{"kind":"pyspark","driverMemory":"99999t"}"#),
        ),
        (
            "POST",
            "/api/v1/sessions",
            Who::Alice,
            Some(r#"{"executors":4294967295}"#),
        ),
        (
            "POST",
            "/batches",
            Who::AdminBasic,
            Some(r#"{"file":"main.py","numExecutors":20000}"#),
        ),
        ("POST", "/api/v1/jobs", Who::Alice, Some(&job)),
        ("GET", "/api/v1/jobs", Who::Alice, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /sessions (admin (basic)) -> 400 {"msg":"Rejected, Reason: `executorCores` must be between 1 and 1024, got 4294967295"}
            POST /sessions (admin (basic)) -> 400 {"msg":"Rejected, Reason: `driverMemory` must be between 1m and 16384g, got 102398976g"}
            POST /api/v1/sessions (alice) -> 400 {"error":{"code":"invalid_request","message":"`executors` must be between 0 and 10000, got 4294967295","target":"executors"}}
            POST /batches (admin (basic)) -> 400 {"msg":"Rejected, Reason: `numExecutors` must be between 0 and 10000, got 20000"}
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"job: `conf.spark.executor.cores`: `conf.spark.executor.cores` must be between 1 and 1024, got 4294967295","target":"conf.spark.executor.cores"}}
            GET /api/v1/jobs (alice) -> 200 {"jobs":[]}
        "#]],
    );
    api.finish().await;
}

/// Regression (issue 11, finding 9): the CLI checks output names, the API did not, so an output
/// named `../../x` was accepted and its download answered 500.
#[tokio::test]
async fn regression_11_api_job_specs_get_the_clis_name_rules() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let job = format!(
        r#"{{"spec":{{"code":"{code}","entry":{{"file":"main.py"}},"outputs":{{"../../x":{{"type":"uri_folder"}}}},"conf":{{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}}}}}}"#
    );
    let cases: &[Case] = &[
        ("POST", "/api/v1/jobs", Who::Alice, Some(&job)),
        ("GET", "/api/v1/jobs", Who::Alice, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/jobs (alice) -> 400 {"error":{"code":"invalid_request","message":"job: `outputs.../../x`: Key name  ../../x must be composed letters, numbers, and underscore\n  accepted: a name matching `^[a-zA-Z_]+[a-zA-Z0-9_]*$`","target":"outputs.../../x"}}
            GET /api/v1/jobs (alice) -> 200 {"jobs":[]}
        "#]],
    );
    api.finish().await;
}

/// Regression (issue 11, finding 6): bodies were bounded only at 2 GiB, names not at all (a
/// 100 MB session name was stored), and the agent heartbeat parsed its body before checking
/// the token.
#[tokio::test]
async fn regression_11_bodies_and_texts_are_bounded_and_auth_comes_first() {
    let api = Api::start().await;
    // Creating a session needs read on the default datastore.
    api.grant_alice_the_default_datastore().await;
    let json = Some("application/json");
    let mut out = String::new();
    let mut row = |label: &str, (status, body): (u16, Value)| {
        writeln!(out, "{label} -> {status} {}", redact_fields(body)).unwrap();
    };
    // Over the 1 MiB JSON limit.
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    row(
        "POST /api/v1/users, 2 MiB",
        api.send(
            "POST",
            "/api/v1/users",
            Who::Admin,
            json,
            big.clone().into_bytes(),
        )
        .await,
    );
    row(
        "POST /sessions (livy), 2 MiB",
        api.send(
            "POST",
            "/sessions",
            Who::AdminBasic,
            json,
            big.clone().into_bytes(),
        )
        .await,
    );
    // Within the body limit, over the name limit: refused before it is stored.
    let long_name = format!(r#"{{"kind":"pyspark","name":"{}"}}"#, "n".repeat(300));
    row(
        "POST /sessions (livy), 300-byte name",
        api.send(
            "POST",
            "/sessions",
            Who::AdminBasic,
            json,
            long_name.into_bytes(),
        )
        .await,
    );
    let long_conf = format!(
        r#"{{"conf":{{"spark.app.name":"{}"}}}}"#,
        "c".repeat(70_000)
    );
    row(
        "POST /api/v1/sessions, 70000-byte conf value",
        api.send(
            "POST",
            "/api/v1/sessions",
            Who::Alice,
            json,
            long_conf.into_bytes(),
        )
        .await,
    );
    // Statement code may be up to 1 MiB in a body of up to 4 MiB.
    let (status, session) = api
        .call("POST", "/api/v1/sessions", Who::Alice, Some("{}"))
        .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["id"], 1, "{session}");
    let long_code = format!(r#"{{"code":"{}"}}"#, "1".repeat(1024 * 1024 + 1));
    row(
        "POST /api/v1/sessions/1/statements, code of 1 MiB + 1",
        api.send(
            "POST",
            "/api/v1/sessions/1/statements",
            Who::Alice,
            json,
            long_code.clone().into_bytes(),
        )
        .await,
    );
    row(
        "POST /sessions/1/statements (livy), code of 1 MiB + 1",
        api.send(
            "POST",
            "/sessions/1/statements",
            Who::AdminBasic,
            json,
            long_code.into_bytes(),
        )
        .await,
    );
    // A stranger's heartbeat is refused before its body is read.
    row(
        "POST /api/v1/agents/heartbeat, no token, not JSON",
        api.send(
            "POST",
            "/api/v1/agents/heartbeat",
            Who::Nobody,
            json,
            b"not json".to_vec(),
        )
        .await,
    );
    row(
        "POST /api/v1/agents/heartbeat, a user's token, 2 MiB",
        api.send(
            "POST",
            "/api/v1/agents/heartbeat",
            Who::Alice,
            json,
            big.into_bytes(),
        )
        .await,
    );
    let (_, sessions) = api.call("GET", "/sessions", Who::AdminBasic, None).await;
    row("GET /sessions (livy)", (200, sessions));
    check(
        out,
        expect![[r#"
            POST /api/v1/users, 2 MiB -> 413 {"error":{"code":"payload_too_large","message":"the request body is larger than this route accepts: 1 MiB for JSON, 4 MiB for jobs and statements, `max_upload` under `[server]` in the server's config.toml for uploads","target":"body"}}
            POST /sessions (livy), 2 MiB -> 413 {"msg":"the request body is larger than this route accepts: 1 MiB for JSON, 4 MiB for jobs and statements, `max_upload` under `[server]` in the server's config.toml for uploads"}
            POST /sessions (livy), 300-byte name -> 400 {"msg":"Rejected, Reason: `name` is 300 bytes long; at most 255 bytes are accepted"}
            POST /api/v1/sessions, 70000-byte conf value -> 400 {"error":{"code":"invalid_request","message":"`conf.spark.app.name` is 70000 bytes long; at most 65536 bytes are accepted","target":"conf.spark.app.name"}}
            POST /api/v1/sessions/1/statements, code of 1 MiB + 1 -> 400 {"error":{"code":"invalid_request","message":"`code` is 1048577 bytes long; at most 1048576 bytes are accepted","target":"code"}}
            POST /sessions/1/statements (livy), code of 1 MiB + 1 -> 400 {"msg":"Rejected, Reason: `code` is 1048577 bytes long; at most 1048576 bytes are accepted"}
            POST /api/v1/agents/heartbeat, no token, not JSON -> 401 {"error":{"code":"unauthorized","message":"agents send `Authorization: Bearer <agent token>`","target":"Authorization"}}
            POST /api/v1/agents/heartbeat, a user's token, 2 MiB -> 401 {"error":{"code":"unauthorized","message":"invalid agent token","target":"Authorization"}}
            GET /sessions (livy) -> 200 {"from":0,"sessions":[{"appId":null,"appInfo":{"driverLogUrl":null,"sparkUiUrl":null},"archives":[],"conf":{},"driverCores":1,"driverMemory":"1g","executorCores":1,"executorMemory":"1g","files":[],"heartbeatTimeoutInSecond":0,"id":1,"idleTimeout":"1800s","jars":[],"kind":"pyspark","log":[],"name":null,"numExecutors":1,"owner":"alice","phases":[{"at":"[TIME]","state":"not_started"}],"proxyUser":null,"pyFiles":[],"queue":null,"runtime":"3.4","state":"not_started","stateReason":null,"ttl":null}],"total":1}
        "#]],
    );
    api.finish().await;
}

/// Issue 11, finding 11: axum's own rejections (unknown routes, wrong methods, missing
/// content type) answered `text/plain`; they answer in the error shape of their API.
#[tokio::test]
async fn regression_11_rejections_have_the_error_shape_of_their_api() {
    let api = Api::start().await;
    let mut cases: Vec<(&str, &str, Who, Option<&str>)> = vec![
        ("GET", "/api/v1/no-such-route", Who::Alice, None),
        ("DELETE", "/api/v1/jobs", Who::Alice, None),
        ("PUT", "/api/v1/sessions/1", Who::Alice, None),
        ("GET", "/api/v1/agents/heartbeat", Who::Alice, None),
        ("GET", "/no-such-route", Who::AdminBasic, None),
        ("PUT", "/sessions", Who::AdminBasic, None),
        ("DELETE", "/batches/1/state", Who::AdminBasic, None),
    ];
    cases.push(("GET", "/sessions/1/statements/-", Who::AdminBasic, None));
    let mut out = api.render(&cases).await;
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/users",
            Who::Admin,
            None,
            br#"{"name":"carol"}"#.to_vec(),
        )
        .await;
    writeln!(
        out,
        "POST /api/v1/users without Content-Type -> {status} {body}"
    )
    .unwrap();
    check(
        out,
        expect![[r#"
        GET /api/v1/no-such-route (alice) -> 404 {"error":{"code":"not_found","message":"no route for `/api/v1/no-such-route`","target":"/api/v1/no-such-route"}}
        DELETE /api/v1/jobs (alice) -> 405 {"error":{"code":"method_not_allowed","message":"`/api/v1/jobs` does not serve `DELETE`; see `/api/v1/openapi.json` for its methods","target":"method"}}
        PUT /api/v1/sessions/1 (alice) -> 405 {"error":{"code":"method_not_allowed","message":"`/api/v1/sessions/1` does not serve `PUT`; see `/api/v1/openapi.json` for its methods","target":"method"}}
        GET /api/v1/agents/heartbeat (alice) -> 405 {"error":{"code":"method_not_allowed","message":"`/api/v1/agents/heartbeat` does not serve `GET`; see `/api/v1/openapi.json` for its methods","target":"method"}}
        GET /no-such-route (admin (basic)) -> 404 {"msg":"no route for `/no-such-route`"}
        PUT /sessions (admin (basic)) -> 405 {"msg":"`/sessions` does not serve `PUT`"}
        DELETE /batches/1/state (admin (basic)) -> 405 {"msg":"`/batches/1/state` does not serve `DELETE`"}
        GET /sessions/1/statements/- (admin (basic)) -> 400 {"msg":"Invalid URL: Cannot parse value at index 1 with value `-` to a `i64`"}
        POST /api/v1/users without Content-Type -> 400 {"error":{"code":"invalid_request","message":"the request body must be JSON, sent with `Content-Type: application/json`","target":"Content-Type"}}
    "#]],
    );
    api.finish().await;
}

/// Issue 11, finding 11: admin-only routes answered 403, 404 or 400; all answer 403 naming
/// the action.
#[tokio::test]
async fn regression_11_admin_only_routes_are_403_naming_the_action() {
    let api = Api::start().await;
    let cases: &[Case] = &[
        (
            "POST",
            "/api/v1/users",
            Who::Alice,
            Some(r#"{"name":"eve"}"#),
        ),
        (
            "POST",
            "/api/v1/datastores",
            Who::Alice,
            Some(r#"{"name":"mine"}"#),
        ),
        (
            "POST",
            "/api/v1/agents",
            Who::Alice,
            Some(r#"{"name":"a1"}"#),
        ),
        ("POST", "/api/v1/environments/prune", Who::Alice, Some("{}")),
        ("GET", "/api/v1/events", Who::Alice, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/users (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` (AzureML Data Scientist) cannot create users; this needs the Owner workspace role\nhint: ask an Owner to do it, or to run `spool user update alice --role Owner` (`spool user list` shows the Owners)"}}
            POST /api/v1/datastores (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` (AzureML Data Scientist) cannot create datastores; this needs the Owner workspace role\nhint: ask an Owner to do it, or to run `spool user update alice --role Owner` (`spool user list` shows the Owners)"}}
            POST /api/v1/agents (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` (AzureML Data Scientist) cannot register agents; this needs the Owner workspace role\nhint: ask an Owner to do it, or to run `spool user update alice --role Owner` (`spool user list` shows the Owners)"}}
            POST /api/v1/environments/prune (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` (AzureML Data Scientist) cannot prune environments; this needs the Owner workspace role\nhint: ask an Owner to do it, or to run `spool user update alice --role Owner` (`spool user list` shows the Owners)"}}
            GET /api/v1/events (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` (AzureML Data Scientist) cannot read server events; this needs the Owner workspace role\nhint: ask an Owner to do it, or to run `spool user update alice --role Owner` (`spool user list` shows the Owners)"}}
        "#]],
    );
    api.finish().await;
}

/// Issue 11, finding 11: `bearer` and `BASIC` were refused; schemes are case-insensitive.
#[tokio::test]
async fn regression_11_auth_schemes_are_case_insensitive() {
    let api = Api::start().await;
    let cases: &[Case] = &[
        ("GET", "/api/v1/whoami", Who::LowerBearer, None),
        ("GET", "/api/v1/whoami", Who::UpperBasic, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            GET /api/v1/whoami (alice (lowercase bearer)) -> 200 {"is_admin":false,"name":"alice","role":"AzureML Data Scientist"}
            GET /api/v1/whoami (admin (BASIC)) -> 200 {"is_admin":true,"name":"admin","role":"Owner"}
        "#]],
    );
    api.finish().await;
}

/// Attaching makes the server fetch a URL its caller names: only the admin may, and a failed
/// probe says the same whether nothing listens there or something other than a Spark master
/// answers, so attaching cannot be used to scan ports.
#[tokio::test]
async fn attaching_is_for_the_admin_and_probes_reveal_no_ports() {
    let api = Api::start().await;
    // Something that answers HTTP but is not a Spark master.
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = other.local_addr().unwrap().port();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "hello" });
        axum::serve(other, app).await.unwrap();
    });
    // A port where nothing listens.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let attach = |port: u16| {
        serde_json::json!({
            "file": "pool.yml",
            "yaml": format!("name: p\ntype: sparkpool\nmaster_url: spark://127.0.0.1:7077\nmaster_ui_url: http://127.0.0.1:{port}\n"),
        })
        .to_string()
    };
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/computes",
            Who::Alice,
            Some(&attach(other_port)),
        )
        .await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot attach computes; this needs the Owner or Contributor workspace role"),
        "{reply}"
    );
    let mut messages = Vec::new();
    for port in [other_port, closed_port] {
        let (status, reply) = api
            .call("POST", "/api/v1/computes", Who::Admin, Some(&attach(port)))
            .await;
        assert_eq!(status, 400, "{reply}");
        let message = reply["error"]["message"].as_str().unwrap().to_string();
        messages.push(message.replace(&port.to_string(), "PORT"));
    }
    assert_eq!(messages[0], messages[1]);
    expect![[r#"cannot attach `p`: no Spark master answered at http://127.0.0.1:PORT/json/; check `master_ui_url` (the master's web UI, e.g. http://host:8080) and that the master runs"#]]
    .assert_eq(&messages[0]);
    let (_, computes) = api.call("GET", "/api/v1/computes", Who::Admin, None).await;
    assert_eq!(computes, serde_json::json!([]));
    api.finish().await;
}

impl Api {
    /// Gives alice Storage Blob Data Contributor on the whole default datastore.
    async fn grant_alice_the_default_datastore(&self) {
        let body = r#"{"assignee":"alice","role":"Storage Blob Data Contributor","scope":"azureml://datastores/workspaceblobstore"}"#;
        let (status, reply) = self
            .call("POST", "/api/v1/role-assignments", Who::Admin, Some(body))
            .await;
        assert_eq!(status, 201, "{reply}");
    }

    /// Uploads a tar of `files` (path, text) into `datastore` as `who`; returns status and body.
    async fn upload(&self, who: Who, datastore: &str, files: &[(&str, &str)]) -> (u16, Value) {
        let mut archive = tar::Builder::new(Vec::new());
        for (path, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            archive
                .append_data(&mut header, path, text.as_bytes())
                .unwrap();
        }
        let token = match who {
            Who::Admin => &self.admin,
            Who::Alice => &self.alice,
            Who::Bob => &self.bob,
            _ => unreachable!("uploads are made by users"),
        };
        let response = self
            .http
            .post(format!("{}/api/v1/datastores/{datastore}/upload", self.url))
            .bearer_auth(token)
            .header("content-type", "application/x-tar")
            .body(archive.into_inner().unwrap())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Users read and write only the datastore paths their data roles cover: uploads, a job's
/// inputs and outputs at submit, and output downloads. The admin grants and removes roles.
#[tokio::test]
async fn data_roles_decide_which_datastore_paths_a_user_reads_and_writes() {
    let api = Api::start().await;
    let ws = "workspaceblobstore";
    // No role yet: refused, with the command that grants exactly this.
    let (status, reply) = api
        .upload(Who::Alice, ws, &[("users/alice/a.csv", "x\n")])
        .await;
    assert_eq!(status, 403, "{reply}");
    expect![[r#"
        body: alice has no data role that allows write access to `azureml://datastores/workspaceblobstore/paths/users/alice/a.csv`: it needs Storage Blob Data Contributor (or a role above it) on that path or above it
        hint: a workspace Owner, or a Storage Blob Data Owner of that path, grants it with: spool role assignment create --assignee alice --role "Storage Blob Data Contributor" --scope azureml://datastores/workspaceblobstore/paths/users/alice/a.csv"#]]
    .assert_eq(reply["error"]["message"].as_str().unwrap());
    assert!(
        !api.data_dir()
            .join("datastores/workspaceblobstore/users")
            .exists()
    );

    let grant = |assignee: &str, role: &str, scope: &str| {
        serde_json::json!({"assignee": assignee, "role": role, "scope": scope}).to_string()
    };
    let alice_folder = grant(
        "alice",
        "Storage Blob Data Contributor",
        "azureml://datastores/workspaceblobstore/paths/users/alice/",
    );
    let cases: &[Case] = &[
        (
            "POST",
            "/api/v1/role-assignments",
            Who::Alice,
            Some(&alice_folder),
        ),
        (
            "POST",
            "/api/v1/role-assignments",
            Who::Admin,
            Some(&grant(
                "alice",
                "Storage Blob Data Writer",
                "azureml://datastores/workspaceblobstore",
            )),
        ),
        (
            "POST",
            "/api/v1/role-assignments",
            Who::Admin,
            Some(&grant(
                "alice",
                "Storage Blob Data Reader",
                "azureml://datastores/nope",
            )),
        ),
        (
            "POST",
            "/api/v1/role-assignments",
            Who::Admin,
            Some(&grant(
                "alice",
                "Storage Blob Data Reader",
                "workspaceblobstore/data",
            )),
        ),
        (
            "POST",
            "/api/v1/role-assignments",
            Who::Admin,
            Some(&grant(
                "mallory",
                "Storage Blob Data Reader",
                "azureml://datastores/workspaceblobstore",
            )),
        ),
        (
            "POST",
            "/api/v1/role-assignments",
            Who::Admin,
            Some(&alice_folder),
        ),
        (
            "POST",
            "/api/v1/role-assignments",
            Who::Admin,
            Some(&alice_folder),
        ),
        ("GET", "/api/v1/role-assignments", Who::Alice, None),
        ("GET", "/api/v1/role-assignments", Who::Bob, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/role-assignments (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` cannot assign or remove data roles at `azureml://datastores/workspaceblobstore/paths/users/alice`: that needs the Owner workspace role, or Storage Blob Data Owner on `azureml://datastores/workspaceblobstore/paths/users/alice` or a scope above it\nhint: ask a workspace Owner to grant it, or to give you Storage Blob Data Owner on that scope"}}
            POST /api/v1/role-assignments (admin) -> 400 {"error":{"code":"invalid_request","message":"unknown data role `Storage Blob Data Writer`; expected one of Storage Blob Data Reader, Storage Blob Data Contributor, Storage Blob Data Owner","target":"role"}}
            POST /api/v1/role-assignments (admin) -> 400 {"error":{"code":"invalid_request","message":"scope `azureml://datastores/nope`: datastore `nope` not found\nhint: `spool datastore list` shows the datastores","target":"scope"}}
            POST /api/v1/role-assignments (admin) -> 400 {"error":{"code":"invalid_request","message":"scope `workspaceblobstore/data`: expected `azureml://datastores/<name>` or `azureml://datastores/<name>/paths/<prefix>`","target":"scope"}}
            POST /api/v1/role-assignments (admin) -> 400 {"error":{"code":"invalid_request","message":"assignee `mallory`: no user or identity has that name\nhint: `spool identity list` shows the identities","target":"assignee"}}
            POST /api/v1/role-assignments (admin) -> 201 {"assignee":"alice","assignee_type":"user","created_at":"[TIME]","created_by":"admin","id":1,"role":"Storage Blob Data Contributor","scope":"azureml://datastores/workspaceblobstore/paths/users/alice"}
            POST /api/v1/role-assignments (admin) -> 409 {"error":{"code":"conflict","message":"alice already has Storage Blob Data Contributor on azureml://datastores/workspaceblobstore/paths/users/alice","target":"scope"}}
            GET /api/v1/role-assignments (alice) -> 200 {"role_assignments":[{"assignee":"alice","assignee_type":"user","created_at":"[TIME]","created_by":"admin","id":1,"role":"Storage Blob Data Contributor","scope":"azureml://datastores/workspaceblobstore/paths/users/alice"}]}
            GET /api/v1/role-assignments (bob) -> 200 {"role_assignments":[]}
        "#]],
    );

    // Inside the granted folder: written. Outside it: refused, and nothing of it is written.
    let (status, reply) = api
        .upload(Who::Alice, ws, &[("users/alice/a.csv", "x\n")])
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = api
        .upload(
            Who::Alice,
            ws,
            &[("users/alice/b.csv", "x\n"), ("users/bob/c.csv", "x\n")],
        )
        .await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        !api.data_dir()
            .join("datastores/workspaceblobstore/users/alice/b.csv")
            .exists()
    );

    // A job writing into another user's folder is refused at submit, and nothing is recorded.
    let code = api.snapshot().await;
    let conf = r#""conf":{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}"#;
    let job = |input: &str, output: &str| {
        format!(
            r#"{{"name":"j1","spec":{{"code":"{code}","entry":{{"file":"main.py"}},{conf},"inputs":{{"data":{{"kind":"data","type":"uri_file","path":"{input}"}}}},"outputs":{{"out":{{"type":"uri_folder","path":"{output}"}}}}}}}}"#
        )
    };
    let mine = "azureml://datastores/workspaceblobstore/paths/users/alice/a.csv";
    let cases: &[Case] = &[
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(&job(
                mine,
                "azureml://datastores/workspaceblobstore/paths/users/bob/out/",
            )),
        ),
        (
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(&job(
                "azureml://datastores/workspaceblobstore/paths/admin/secret.csv",
                "azureml://datastores/workspaceblobstore/paths/users/alice/out/",
            )),
        ),
        ("GET", "/api/v1/jobs", Who::Alice, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/jobs (alice) -> 403 {"error":{"code":"forbidden","message":"outputs.out.path: alice has no data role that allows write access to `azureml://datastores/workspaceblobstore/paths/users/bob/out`: it needs Storage Blob Data Contributor (or a role above it) on that path or above it\nhint: a workspace Owner, or a Storage Blob Data Owner of that path, grants it with: spool role assignment create --assignee alice --role \"Storage Blob Data Contributor\" --scope azureml://datastores/workspaceblobstore/paths/users/bob/out"}}
            POST /api/v1/jobs (alice) -> 403 {"error":{"code":"forbidden","message":"inputs.data.path: alice has no data role that allows read access to `azureml://datastores/workspaceblobstore/paths/admin/secret.csv`: it needs Storage Blob Data Reader (or a role above it) on that path or above it\nhint: a workspace Owner, or a Storage Blob Data Owner of that path, grants it with: spool role assignment create --assignee alice --role \"Storage Blob Data Reader\" --scope azureml://datastores/workspaceblobstore/paths/admin/secret.csv"}}
            GET /api/v1/jobs (alice) -> 200 {"jobs":[]}
        "#]],
    );

    // Removed: the next request is refused again.
    let (_, listed) = api
        .call("GET", "/api/v1/role-assignments", Who::Admin, None)
        .await;
    let id = listed["role_assignments"][0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/role-assignments/{id}");
    let cases: &[Case] = &[
        ("DELETE", &path, Who::Alice, None),
        ("DELETE", &path, Who::Admin, None),
        ("DELETE", &path, Who::Admin, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            DELETE /api/v1/role-assignments/1 (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` cannot assign or remove data roles at `azureml://datastores/workspaceblobstore/paths/users/alice`: that needs the Owner workspace role, or Storage Blob Data Owner on `azureml://datastores/workspaceblobstore/paths/users/alice` or a scope above it\nhint: ask a workspace Owner to grant it, or to give you Storage Blob Data Owner on that scope"}}
            DELETE /api/v1/role-assignments/1 (admin) -> 204 ""
            DELETE /api/v1/role-assignments/1 (admin) -> 404 {"error":{"code":"not_found","message":"role assignment `1` not found","target":"1"}}
        "#]],
    );
    let (status, _) = api
        .upload(Who::Alice, ws, &[("users/alice/a.csv", "y\n")])
        .await;
    assert_eq!(status, 403);
    api.finish().await;
}

/// Names are unique on the server, so a taken one is refused; only its owner learns that it is
/// theirs, another user learns no more than "not available".
#[tokio::test]
async fn a_taken_name_says_whose_only_to_its_owner() {
    let api = Api::start().await;
    api.grant_alice_the_default_datastore().await;
    let code = api.snapshot().await;
    let job = format!(
        r#"{{"spec":{{"name":"j1","code":"{code}","entry":{{"file":"main.py"}},"conf":{{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}}}}}}"#
    );
    let session = r#"{"kind":"pyspark","name":"s1"}"#;
    let cases: &[Case] = &[
        ("POST", "/api/v1/jobs", Who::Alice, Some(&job)),
        ("POST", "/api/v1/jobs", Who::Alice, Some(&job)),
        ("POST", "/api/v1/jobs", Who::Bob, Some(&job)),
    ];
    let rendered = api.render(cases).await;
    let replies: Vec<&str> = rendered.lines().skip(1).collect();
    check(
        replies.join("\n"),
        expect![[r#"
        POST /api/v1/jobs (alice) -> 409 {"error":{"code":"conflict","message":"you already have a job named `j1`; choose another name","target":"name"}}
        POST /api/v1/jobs (bob) -> 409 {"error":{"code":"conflict","message":"the job name `j1` is not available (job names are unique on this server); choose another name, or leave it out for a generated one","target":"name"}}"#]],
    );
    let (status, _) = api
        .call("POST", "/sessions", Who::AdminBasic, Some(session))
        .await;
    assert_eq!(status, 201);
    let (status, reply) = api
        .call("POST", "/sessions", Who::Alice, Some(session))
        .await;
    // Livy answers a duplicate name with 400.
    assert_eq!(status, 400, "{reply}");
    check(
        reply.to_string(),
        expect![[
            r#"{"msg":"Duplicate session name: the session name `s1` is not available (session names are unique on this server); choose another name, or leave it out for a generated one"}"#
        ]],
    );
    api.finish().await;
}

impl Api {
    /// Posts a tar archive as `who`; returns the status and the reply (JSON when it is).
    async fn post_tar(&self, path: &str, who: Who, archive: Vec<u8>) -> (u16, Value) {
        let token = match who {
            Who::Alice => &self.alice,
            Who::Bob => &self.bob,
            _ => &self.admin,
        };
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .header("content-type", "application/x-tar")
            .body(archive)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GETs `path` as Alice; returns the status and the raw body.
    async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.alice)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }

    fn datastore(&self) -> PathBuf {
        self.data_dir().join("datastores/workspaceblobstore")
    }

    /// Creates Alice's job `name` with output `result` at `path` in the default datastore.
    async fn job_with_output(&self, name: &str, path: &str) {
        let code = self.snapshot().await;
        let job = format!(
            r#"{{"spec":{{"name":"{name}","code":"{code}","entry":{{"file":"main.py"}},"outputs":{{"result":{{"type":"uri_folder","path":"azureml://datastores/workspaceblobstore/paths/{path}"}}}},"conf":{{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}}}}}}"#
        );
        let (status, created) = self
            .call("POST", "/api/v1/jobs", Who::Alice, Some(&job))
            .await;
        assert_eq!(status, 201, "{created}");
    }
}

/// A tar archive of regular files; names go into the header as they are.
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, content.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A downloaded archive's entries: `path` for files and folders, `path -> target` for links.
fn tar_entries(archive: &[u8]) -> Vec<String> {
    let mut reader = tar::Archive::new(archive);
    let mut out = Vec::new();
    for entry in reader.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        match entry.link_name().unwrap() {
            Some(target) => out.push(format!("{path} -> {}", target.display())),
            None => out.push(path),
        }
    }
    out
}

/// The first line of `/etc/passwd`, which no download may contain.
fn passwd_line() -> Vec<u8> {
    let passwd = std::fs::read("/etc/passwd").unwrap();
    passwd.split(|b| *b == b'\n').next().unwrap().to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Issue 11, finding 3: user code planted `evil -> /` in a datastore; an upload through it would
/// write anywhere on the host.
#[tokio::test]
async fn regression_11_an_upload_never_writes_through_a_planted_symlink() {
    let api = Api::start().await;
    api.grant_alice_the_default_datastore().await;
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/", api.datastore().join("evil")).unwrap();
    let through = format!("evil{}/pwned.txt", outside.path().display());
    let archive = tar_of(&[("data/ok.txt", "fine"), (&through, "owned")]);
    let (status, reply) = api
        .post_tar(
            "/api/v1/datastores/workspaceblobstore/upload",
            Who::Alice,
            archive,
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("`{through}`: `evil` is a symbolic link")),
        "{message}"
    );
    assert!(!outside.path().join("pwned.txt").exists());
    // All or nothing: the good entry before the bad one is not there either, nor a temp dir.
    let mut left: Vec<String> = std::fs::read_dir(api.datastore())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["evil"]);
    api.finish().await;
}

/// Issue 11, finding 3: an output download follows no symlink out of the datastore, whether the
/// output folder itself or a link inside it leads out.
#[tokio::test]
async fn regression_11_an_output_download_never_returns_a_file_outside_the_datastore() {
    let api = Api::start().await;
    api.grant_alice_the_default_datastore().await;
    let passwd = passwd_line();

    // The output's path goes through `results -> /`.
    api.job_with_output("through_link", "results/etc").await;
    let results = api.datastore().join("results");
    std::fs::remove_dir_all(&results).unwrap();
    std::os::unix::fs::symlink("/", &results).unwrap();
    let (status, body) = api
        .get_bytes("/api/v1/jobs/through_link/download/outputs/result")
        .await;
    assert!(!contains(&body, &passwd), "the download holds /etc/passwd");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let reply: Value = serde_json::from_slice(&body).unwrap();
    check(
        reply["error"]["message"].as_str().unwrap().to_string(),
        expect![
            "output `result` of job `through_link` goes through a symbolic link leading out of its datastore, so it is not downloaded"
        ],
    );

    // Links inside the output: the ones leading out are left out, the others kept as links.
    api.job_with_output("links_inside", "out/").await;
    let out = api.datastore().join("out");
    std::fs::create_dir_all(out.join("sub")).unwrap();
    std::fs::write(out.join("sub/part-0.csv"), "a,b\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", out.join("passwd")).unwrap();
    std::os::unix::fs::symlink("/", out.join("root")).unwrap();
    std::os::unix::fs::symlink("../../..", out.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("sub/part-0.csv", out.join("latest.csv")).unwrap();
    let (status, body) = api
        .get_bytes("/api/v1/jobs/links_inside/download/outputs/result")
        .await;
    assert_eq!(status, 200);
    assert!(!contains(&body, &passwd), "the download holds /etc/passwd");
    assert_eq!(
        tar_entries(&body),
        [
            "result",
            "result/latest.csv -> sub/part-0.csv",
            "result/sub",
            "result/sub/part-0.csv",
        ]
    );
    api.finish().await;
}

/// Issue 11, finding 3: the job's code can write into its log folder; reading or downloading its
/// logs never follows a link out of it.
#[tokio::test]
async fn regression_11_job_logs_never_return_a_file_outside_the_log_folder() {
    let api = Api::start().await;
    api.grant_alice_the_default_datastore().await;
    let passwd = passwd_line();
    api.job_with_output("logs_job", "logs_job/").await;
    let logs = api.data_dir().join("jobs/logs_job/logs");
    std::fs::create_dir_all(logs.join("azureml/driver")).unwrap();
    std::fs::write(logs.join("azureml/driver/stderr"), "started\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", logs.join("azureml/driver/stdout")).unwrap();
    std::os::unix::fs::symlink("/", logs.join("root")).unwrap();

    for path in ["azureml/driver/stdout", "root/etc/passwd"] {
        let (status, body) = api
            .get_bytes(&format!("/api/v1/jobs/logs_job/logs/{path}"))
            .await;
        assert!(!contains(&body, &passwd), "log `{path}` holds /etc/passwd");
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (status, body) = api
        .get_bytes("/api/v1/jobs/logs_job/logs/azureml/driver/stderr?offset=2")
        .await;
    assert_eq!((status, body.as_slice()), (200, &b"arted\n"[..]));

    let (status, body) = api.get_bytes("/api/v1/jobs/logs_job/download/logs").await;
    assert_eq!(status, 200);
    assert!(
        !contains(&body, &passwd),
        "the logs download holds /etc/passwd"
    );
    assert_eq!(
        tar_entries(&body),
        [
            "logs",
            "logs/azureml",
            "logs/azureml/driver",
            "logs/azureml/driver/stderr"
        ]
    );
    let (_, list) = api
        .call("GET", "/api/v1/jobs/logs_job/logs", Who::Alice, None)
        .await;
    check(
        list.to_string(),
        expect![[r#"{"files":[{"path":"azureml/driver/stderr","size":8}]}"#]],
    );
    api.finish().await;
}

/// Issue 11, finding 3: downloads are streamed as the tree is read (chunked, no length known up
/// front), not built in memory first.
#[tokio::test]
async fn regression_11_downloads_are_streamed() {
    let api = Api::start().await;
    api.grant_alice_the_default_datastore().await;
    api.job_with_output("big_output", "big/").await;
    let out = api.datastore().join("big");
    std::fs::create_dir_all(&out).unwrap();
    // Sparse: 64 MiB on the wire, nothing on disk.
    let size = 64 * 1024 * 1024;
    std::fs::File::create(out.join("part-0.bin"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let logs = api.data_dir().join("jobs/big_output/logs/azureml/driver");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("stdout"), "hello\n").unwrap();
    for path in [
        "/api/v1/jobs/big_output/download/outputs/result",
        "/api/v1/jobs/big_output/download/logs",
        "/api/v1/jobs/big_output/logs/azureml/driver/stdout",
    ] {
        let response = api
            .http
            .get(format!("{}{path}", api.url))
            .bearer_auth(&api.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers().get("content-length"),
            None,
            "{path} was built in memory before it was sent"
        );
        assert_eq!(response.headers()["transfer-encoding"], "chunked", "{path}");
        let body = response.bytes().await.unwrap();
        if path.ends_with("/result") {
            let mut archive = tar::Archive::new(&body[..]);
            let sizes: Vec<(String, u64)> = archive
                .entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.path().unwrap().display().to_string(), e.size())
                })
                .collect();
            assert_eq!(
                sizes,
                [
                    ("result".to_string(), 0),
                    ("result/part-0.bin".to_string(), size)
                ]
            );
        }
    }
    api.finish().await;
}

/// A job acts as a principal by Azure ML's rules (the user, or a managed identity attached to
/// the workspace), and that principal's data roles are checked at submit.
#[tokio::test]
async fn a_managed_identity_job_acts_as_the_workspace_identity_with_its_roles() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let job = |identity: &str, output: &str| {
        format!(
            r#"{{"spec":{{"code":"{code}","entry":{{"file":"main.py"}},"conf":{{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}},"identity":"{identity}","outputs":{{"out":{{"type":"uri_folder","path":"azureml://datastores/workspaceblobstore/paths/{output}"}}}}}}}}"#
        )
    };
    let managed = job("managed", "etl/out/");
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/identities",
            Who::Alice,
            Some(r#"{"name":"etl"}"#),
        )
        .await;
    assert_eq!(status, 403, "{reply}");
    let (status, created) = api
        .call(
            "POST",
            "/api/v1/identities",
            Who::Admin,
            Some(r#"{"name":"etl"}"#),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["type"], "user_assigned");
    assert_eq!(created["in_workspace"], false);
    assert_eq!(
        created["client_id"].as_str().unwrap().len(),
        36,
        "{created}"
    );
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/identities",
            Who::Admin,
            Some(r#"{"name":"alice"}"#),
        )
        .await;
    assert_eq!(status, 400, "{reply}");

    // Not attached to the workspace: `managed` has no identity to act as.
    let (status, reply) = api
        .call("POST", "/api/v1/jobs", Who::Alice, Some(&managed))
        .await;
    assert_eq!(status, 400, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("none is attached") && message.contains("spool workspace identity add"),
        "{message}"
    );
    let (status, reply) = api
        .call("PUT", "/api/v1/workspace/identities/etl", Who::Admin, None)
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["in_workspace"], true);

    // Attached but holding no role: refused, naming the identity and the grant.
    let (status, reply) = api
        .call("POST", "/api/v1/jobs", Who::Alice, Some(&managed))
        .await;
    assert_eq!(status, 403, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("outputs.out.path: etl has no data role that allows write access"),
        "{message}"
    );
    assert!(message.contains("--assignee etl"), "{message}");
    let grant = r#"{"assignee":"etl","role":"Storage Blob Data Contributor","scope":"azureml://datastores/workspaceblobstore/paths/etl"}"#;
    let (status, reply) = api
        .call("POST", "/api/v1/role-assignments", Who::Admin, Some(grant))
        .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["assignee_type"], "identity");

    // Granted: the job is recorded as acting as the identity; as the user, it is still refused.
    let (status, reply) = api
        .call("POST", "/api/v1/jobs", Who::Alice, Some(&managed))
        .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["principal"], "etl");
    assert_eq!(reply["identity"], "managed");
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(&job("user_identity", "etl/out2/")),
        )
        .await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("alice has no data role"),
        "{reply}"
    );

    // Deleting the identity deletes its role assignments.
    let (status, _) = api
        .call("DELETE", "/api/v1/identities/etl", Who::Admin, None)
        .await;
    assert_eq!(status, 204);
    let (_, listed) = api
        .call("GET", "/api/v1/role-assignments", Who::Admin, None)
        .await;
    assert_eq!(listed["role_assignments"], serde_json::json!([]));
    api.finish().await;
}

/// Uploads are streamed to a file under the data dir, never held in memory: one over
/// `max_upload` is a 413 that leaves nothing behind, one within it is unpacked from the file.
#[tokio::test]
async fn uploads_stream_to_disk_within_max_upload() {
    let api = Api::start_with(|file| file.server.max_upload = Some("1m".into())).await;
    api.grant_alice_the_default_datastore().await;
    let big = "x".repeat(2 * 1024 * 1024);
    let (status, reply) = api
        .upload(Who::Alice, "workspaceblobstore", &[("big.txt", &big)])
        .await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "payload_too_large", "{reply}");
    let leftovers: Vec<_> = std::fs::read_dir(api.data_dir().join("uploads"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(
        !api.data_dir()
            .join("datastores/workspaceblobstore/big.txt")
            .exists()
    );
    let (status, reply) = api
        .upload(
            Who::Alice,
            "workspaceblobstore",
            &[("small.txt", "hello\n")],
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        std::fs::read_to_string(
            api.data_dir()
                .join("datastores/workspaceblobstore/small.txt")
        )
        .unwrap(),
        "hello\n"
    );
    api.finish().await;
}

/// A datastore may be an existing directory on the server's host (a shared mount, say), never
/// one overlapping the data dir; its creator gets Storage Blob Data Owner on it.
#[tokio::test]
async fn a_datastore_can_be_an_existing_directory_outside_the_data_dir() {
    let api = Api::start().await;
    let mount = tempfile::tempdir().unwrap();
    let create =
        |name: &str, path: &str| serde_json::json!({"name": name, "path": path}).to_string();
    let inside = api.data_dir().join("datastores").display().to_string();
    let missing = mount.path().join("missing").display().to_string();
    for (body, part) in [
        (create("rel", "relative/dir"), "must be absolute"),
        (
            create("gone", &missing),
            "create the directory on the server's host first",
        ),
        (create("inside", &inside), "overlaps the server's data dir"),
        (create("above", "/"), "overlaps the server's data dir"),
    ] {
        let (status, reply) = api
            .call("POST", "/api/v1/datastores", Who::Admin, Some(&body))
            .await;
        assert_eq!(status, 400, "{reply}");
        assert!(
            reply["error"]["message"].as_str().unwrap().contains(part),
            "{reply}"
        );
    }
    let body = create("shared", &mount.path().display().to_string());
    let (status, reply) = api
        .call("POST", "/api/v1/datastores", Who::Alice, Some(&body))
        .await;
    assert_eq!(status, 403, "{reply}");
    let (status, reply) = api
        .call("POST", "/api/v1/datastores", Who::Admin, Some(&body))
        .await;
    assert_eq!(status, 201, "{reply}");
    let (_, roles) = api
        .call("GET", "/api/v1/role-assignments", Who::Admin, None)
        .await;
    let roles = &roles["role_assignments"];
    assert_eq!(roles[0]["assignee"], "admin", "{roles}");
    assert_eq!(roles[0]["role"], "Storage Blob Data Owner", "{roles}");
    assert_eq!(roles[0]["scope"], "azureml://datastores/shared", "{roles}");
    let (status, reply) = api
        .upload(Who::Admin, "shared", &[("team/a.csv", "x\n")])
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        std::fs::read_to_string(mount.path().join("team/a.csv")).unwrap(),
        "x\n"
    );
    api.finish().await;
}

impl Api {
    /// As `call`, with a bearer token of the caller's choosing.
    async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates a user with a workspace role; returns their token.
    async fn create_user_with_role(&self, name: &str, role: &str) -> String {
        let body = serde_json::json!({"name": name, "role": role}).to_string();
        let (status, created) = self
            .call("POST", "/api/v1/users", Who::Admin, Some(&body))
            .await;
        assert_eq!(status, 201, "{created}");
        created["token"].as_str().unwrap().to_string()
    }

    /// Gives `name` another workspace role, as the admin.
    async fn set_role(&self, name: &str, role: &str) {
        let body = serde_json::json!({"role": role}).to_string();
        let (status, reply) = self
            .call(
                "PATCH",
                &format!("/api/v1/users/{name}"),
                Who::Admin,
                Some(&body),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
    }
}

/// A job spec that passes every check of `create_job` (sizes, snapshot, entry).
fn small_job(name: &str, code: &str) -> String {
    serde_json::json!({"spec": {
        "name": name,
        "code": code,
        "entry": {"file": "main.py"},
        "conf": {"spark.driver.cores": 1, "spark.driver.memory": "1g", "spark.executor.cores": 1,
                 "spark.executor.memory": "1g", "spark.executor.instances": 1},
    }})
    .to_string()
}

/// Users get a workspace role at creation (default AzureML Data Scientist), see it in `whoami`
/// and `GET /users`, and only Owners change roles; the last Owner stays one, and a new role
/// applies from the next request although callers are cached.
#[tokio::test]
async fn workspace_roles_are_given_shown_and_changed_by_owners() {
    let api = Api::start().await;
    let cases: &[Case] = &[
        (
            "POST",
            "/api/v1/users",
            Who::Admin,
            Some(r#"{"name":"carol","role":"reader"}"#),
        ),
        (
            "POST",
            "/api/v1/users",
            Who::Admin,
            Some(r#"{"name":"dave","role":"admin"}"#),
        ),
        ("GET", "/api/v1/users", Who::Alice, None),
        ("GET", "/api/v1/users/carol", Who::Alice, None),
        ("GET", "/api/v1/users/nobody", Who::Alice, None),
        (
            "PATCH",
            "/api/v1/users/bob",
            Who::Alice,
            Some(r#"{"role":"Owner"}"#),
        ),
        (
            "PATCH",
            "/api/v1/users/admin",
            Who::Admin,
            Some(r#"{"role":"Contributor"}"#),
        ),
        (
            "PATCH",
            "/api/v1/users/alice",
            Who::Admin,
            Some(r#"{"role":"contributor"}"#),
        ),
        (
            "PATCH",
            "/api/v1/users/nobody",
            Who::Admin,
            Some(r#"{"role":"Reader"}"#),
        ),
        (
            "PATCH",
            "/api/v1/users/bob",
            Who::Admin,
            Some(r#"{"role":"Reader","name":"x"}"#),
        ),
        ("GET", "/api/v1/whoami", Who::Alice, None),
        ("DELETE", "/api/v1/users/admin", Who::Admin, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/users (admin) -> 201 {"name":"carol","token":"[TOKEN]"}
            POST /api/v1/users (admin) -> 400 {"error":{"code":"invalid_request","message":"unknown workspace role `admin`; expected one of `Owner`, `Contributor`, `AzureML Data Scientist`, `Reader`","target":"role"}}
            GET /api/v1/users (alice) -> 200 {"users":[{"created_at":"[TIME]","is_admin":true,"name":"admin","role":"Owner"},{"created_at":"[TIME]","is_admin":false,"name":"alice","role":"AzureML Data Scientist"},{"created_at":"[TIME]","is_admin":false,"name":"bob","role":"AzureML Data Scientist"},{"created_at":"[TIME]","is_admin":false,"name":"carol","role":"Reader"}]}
            GET /api/v1/users/carol (alice) -> 200 {"created_at":"[TIME]","is_admin":false,"name":"carol","role":"Reader"}
            GET /api/v1/users/nobody (alice) -> 404 {"error":{"code":"not_found","message":"user `nobody` not found","target":"nobody"}}
            PATCH /api/v1/users/bob (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` (AzureML Data Scientist) cannot change users' roles; this needs the Owner workspace role\nhint: ask an Owner to do it, or to run `spool user update alice --role Owner` (`spool user list` shows the Owners)"}}
            PATCH /api/v1/users/admin (admin) -> 409 {"error":{"code":"conflict","message":"user `admin` is the last Owner; a server needs one\nhint: make another user an Owner first (`spool user update NAME --role Owner`)","target":"role"}}
            PATCH /api/v1/users/alice (admin) -> 200 {"created_at":"[TIME]","is_admin":false,"name":"alice","role":"Contributor"}
            PATCH /api/v1/users/nobody (admin) -> 404 {"error":{"code":"not_found","message":"user `nobody` not found","target":"nobody"}}
            PATCH /api/v1/users/bob (admin) -> 400 {"error":{"code":"invalid_request","message":"the request body has the wrong shape: name: unknown field `name`, expected `role` at line 1 column 23","target":"body"}}
            GET /api/v1/whoami (alice) -> 200 {"is_admin":false,"name":"alice","role":"Contributor"}
            DELETE /api/v1/users/admin (admin) -> 409 {"error":{"code":"conflict","message":"user `admin` is the last Owner; a server needs one\nhint: rotate its token with `spool user token rotate admin` instead, or make another user an Owner first (`spool user update NAME --role Owner`)","target":"name"}}
        "#]],
    );
    // A Contributor attaches computes (the probe of nothing fails), a data scientist may not.
    let attach = r#"{"file":"pool.yml","yaml":"name: p\ntype: sparkpool\nmaster_url: spark://127.0.0.1:1\nmaster_ui_url: http://127.0.0.1:1\n"}"#;
    let (status, reply) = api
        .call("POST", "/api/v1/computes", Who::Alice, Some(attach))
        .await;
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = api
        .call("POST", "/api/v1/computes", Who::Bob, Some(attach))
        .await;
    assert_eq!(status, 403, "{reply}");
    // Alice, now an Owner, sees everyone's work and may demote the admin: a server needs one
    // Owner, not the `admin` user.
    api.set_role("alice", "Owner").await;
    let (status, reply) = api
        .call(
            "PATCH",
            "/api/v1/users/admin",
            Who::Alice,
            Some(r#"{"role":"Reader"}"#),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/users",
            Who::Admin,
            Some(r#"{"name":"eve"}"#),
        )
        .await;
    assert_eq!(status, 403, "{reply}");
    api.finish().await;
}

/// Routes that the Livy API adds at the root, which no OpenAPI document lists.
const LIVY_ROUTES: &[(&str, &str)] = &[
    ("GET", "/version"),
    ("GET", "/sessions"),
    ("POST", "/sessions"),
    ("GET", "/sessions/{id}"),
    ("DELETE", "/sessions/{id}"),
    ("GET", "/sessions/{id}/state"),
    ("GET", "/sessions/{id}/log"),
    ("GET", "/sessions/{id}/statements"),
    ("POST", "/sessions/{id}/statements"),
    ("GET", "/sessions/{id}/statements/{seq}"),
    ("POST", "/sessions/{id}/statements/{seq}/cancel"),
    ("POST", "/sessions/{id}/completion"),
    ("GET", "/batches"),
    ("POST", "/batches"),
    ("GET", "/batches/{id}"),
    ("DELETE", "/batches/{id}"),
    ("GET", "/batches/{id}/state"),
    ("GET", "/batches/{id}/log"),
];

/// Every route of both APIs, as (method, path template): the native ones from the OpenAPI
/// document, the Livy ones from the list above. Agents' own routes (agent tokens) are left out.
fn every_user_route() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(spool_server::OPENAPI).unwrap();
    let mut routes = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/api/v1/agents/") {
            continue;
        }
        for method in methods.as_object().unwrap().keys() {
            routes.push((method.to_uppercase(), path.clone()));
        }
    }
    routes.extend(
        LIVY_ROUTES
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string())),
    );
    routes
}

/// The workspace roles are checked by `spool-control` on every route of both APIs: a Reader
/// gets 403 on every route that changes something, even on their own session, statement and
/// job, and no 403 on a route that reads (but server events, which are an Owner's). The routes
/// come from the OpenAPI document and the Livy list, and each listed path answers 405 for the
/// methods not listed: a route added without its check, or without being listed, fails here.
#[tokio::test]
async fn a_reader_changes_nothing_through_any_route_but_reads() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    // Carol works as a data scientist first, so her own session, statement and job exist.
    let carol = api
        .create_user_with_role("carol", "AzureML Data Scientist")
        .await;
    let grant = r#"{"assignee":"carol","role":"Storage Blob Data Reader","scope":"azureml://datastores/workspaceblobstore"}"#;
    let (status, reply) = api
        .call("POST", "/api/v1/role-assignments", Who::Admin, Some(grant))
        .await;
    assert_eq!(status, 201, "{reply}");
    let grant_id = reply["id"].to_string();
    let (status, session) = api
        .call_as(
            &carol,
            "POST",
            "/api/v1/sessions",
            Some(r#"{"kind":"pyspark"}"#),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["id"].to_string();
    let (status, job) = api
        .call_as(
            &carol,
            "POST",
            "/api/v1/jobs",
            Some(&small_job("carols_job", &code)),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let (_, batches) = api.call_as(&carol, "GET", "/batches", None).await;
    let batch_id = batches["sessions"][0]["id"].to_string();
    api.set_role("carol", "Reader").await;

    let concrete = |path: &str| -> String {
        let name = if path.starts_with("/api/v1/users/") {
            "alice"
        } else if path.starts_with("/api/v1/jobs/") {
            "carols_job"
        } else if path.starts_with("/api/v1/datastores/") {
            "workspaceblobstore"
        } else {
            "some_name"
        };
        let id = if path.starts_with("/batches/") {
            &batch_id
        } else if path.starts_with("/api/v1/role-assignments/") {
            &grant_id
        } else {
            &session_id
        };
        path.replace("{name}", name)
            .replace("{key}", &session_id)
            .replace("{id}", id)
            .replace("{seq}", "0")
            .replace("{path}", "azureml/driver/stdout")
            .replace("{output}", "out")
    };
    // Bodies that get past the handlers' parsing, so the answer is the role check's.
    let job_body = small_job("readers_job", &code);
    let body = |method: &str, path: &str| -> Option<String> {
        let json = match (method, path) {
            ("POST", "/api/v1/users") => r#"{"name":"eve"}"#,
            ("PATCH", "/api/v1/users/{name}") => r#"{"role":"Owner"}"#,
            ("POST", "/api/v1/datastores") => r#"{"name":"mine"}"#,
            ("POST", "/api/v1/identities") => r#"{"name":"etl"}"#,
            ("POST", "/api/v1/role-assignments") => {
                r#"{"assignee":"carol","role":"Storage Blob Data Owner","scope":"azureml://datastores/workspaceblobstore"}"#
            }
            ("POST", "/api/v1/jobs") => &job_body,
            ("POST", "/api/v1/sessions/{key}/statements") => r#"{"code":"1"}"#,
            ("POST", "/api/v1/computes") => r#"{"file":"pool.yml","yaml":"name: p\n"}"#,
            ("PUT", "/api/v1/workspace") => {
                r#"{"file":"workspace.yml","yaml":"managed_network: {}\n"}"#
            }
            ("POST", "/api/v1/components") => {
                r#"{"spec":{"name":"c","body":{"type":"spark","code":"x","entry":{"file":"main.py"}}}}"#
            }
            ("POST", "/api/v1/agents") => r#"{"name":"a1"}"#,
            ("POST", "/sessions") => r#"{"kind":"pyspark"}"#,
            ("POST", "/sessions/{id}/statements") => r#"{"code":"1"}"#,
            ("POST", "/batches") => {
                r#"{"file":"azureml://datastores/workspaceblobstore/paths/main.py"}"#
            }
            ("GET" | "DELETE", _) => return None,
            _ => "{}",
        };
        Some(json.to_string())
    };
    let mut wrong = Vec::new();
    let mut changing = 0;
    for (method, path) in every_user_route() {
        let (status, reply) = api
            .call_as(
                &carol,
                &method,
                &concrete(&path),
                body(&method, &path).as_deref(),
            )
            .await;
        let reads = method == "GET";
        let expected = match (reads, path.as_str()) {
            (true, "/api/v1/events") => status == 403,
            (true, _) => status != 403 && status < 500,
            (false, _) => {
                changing += 1;
                status == 403 && reply.to_string().contains("user `carol` (Reader) cannot")
            }
        };
        if !expected {
            wrong.push(format!("{method} {path}: {status} {reply}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "a Reader was not refused a change, or was refused a read:\n{}",
        wrong.join("\n")
    );
    assert!(changing >= 30, "only {changing} routes change anything");

    // Every listed path serves only the listed methods.
    let mut unlisted = Vec::new();
    let routes = every_user_route();
    for (_, path) in &routes {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if routes.iter().any(|(m, p)| m == method && p == path) {
                continue;
            }
            let (status, _) = api.call(method, &concrete(path), Who::Admin, None).await;
            if status != 405 {
                unlisted.push(format!("{method} {path}: {status}"));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "routed but not listed (add them to openapi.json or LIVY_ROUTES):\n{}",
        unlisted.join("\n")
    );

    // Nothing changed: her work is as it was, and so is the workspace.
    let (_, session) = api
        .call_as(
            &carol,
            "GET",
            &format!("/api/v1/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(session["state"], "not_started", "{session}");
    let (_, job) = api
        .call_as(&carol, "GET", "/api/v1/jobs/carols_job", None)
        .await;
    assert_eq!(job["status"], "NotStarted", "{job}");
    let (_, users) = api.call("GET", "/api/v1/users", Who::Admin, None).await;
    assert_eq!(users["users"].as_array().unwrap().len(), 4, "{users}");
    let (_, assignments) = api
        .call("GET", "/api/v1/role-assignments", Who::Admin, None)
        .await;
    assert_eq!(
        assignments["role_assignments"].as_array().unwrap().len(),
        1,
        "{assignments}"
    );
    // A Reader still replaces their own token (a leaked credential must be replaceable).
    let (status, reply) = api
        .call_as(&carol, "POST", "/api/v1/users/carol/token", None)
        .await;
    assert_eq!(status, 200, "{reply}");
    api.finish().await;
}

/// A session acts as its user, so creating one (native or Livy) needs at least Storage Blob
/// Data Reader on the whole default datastore, checked before anything is recorded; the
/// refusal names the user, the datastore, the role and the command that grants it.
#[tokio::test]
async fn creating_a_session_needs_read_on_the_default_datastore() {
    let api = Api::start().await;
    // A role on a prefix only is not the datastore.
    let prefix = r#"{"assignee":"bob","role":"Storage Blob Data Owner","scope":"azureml://datastores/workspaceblobstore/paths/users/bob"}"#;
    let (status, reply) = api
        .call("POST", "/api/v1/role-assignments", Who::Admin, Some(prefix))
        .await;
    assert_eq!(status, 201, "{reply}");
    let cases: &[Case] = &[
        ("POST", "/api/v1/sessions", Who::Alice, Some("{}")),
        (
            "POST",
            "/sessions",
            Who::Alice,
            Some(r#"{"kind":"pyspark"}"#),
        ),
        ("POST", "/api/v1/sessions", Who::Bob, Some("{}")),
        ("GET", "/api/v1/sessions", Who::Admin, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            POST /api/v1/sessions (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` cannot create sessions: a session runs as its user and reads the default datastore `workspaceblobstore`, which needs Storage Blob Data Reader (or a role above it) on the whole datastore\nhint: a workspace Owner grants it with: spool role assignment create --assignee alice --role \"Storage Blob Data Reader\" --scope azureml://datastores/workspaceblobstore"}}
            POST /sessions (alice) -> 403 {"msg":"user `alice` cannot create sessions: a session runs as its user and reads the default datastore `workspaceblobstore`, which needs Storage Blob Data Reader (or a role above it) on the whole datastore\nhint: a workspace Owner grants it with: spool role assignment create --assignee alice --role \"Storage Blob Data Reader\" --scope azureml://datastores/workspaceblobstore"}
            POST /api/v1/sessions (bob) -> 403 {"error":{"code":"forbidden","message":"user `bob` cannot create sessions: a session runs as its user and reads the default datastore `workspaceblobstore`, which needs Storage Blob Data Reader (or a role above it) on the whole datastore\nhint: a workspace Owner grants it with: spool role assignment create --assignee bob --role \"Storage Blob Data Reader\" --scope azureml://datastores/workspaceblobstore"}}
            GET /api/v1/sessions (admin) -> 200 {"sessions":[]}
        "#]],
    );
    assert!(!api.data_dir().join("sessions").exists());
    // The command the refusal names is the fix; the Owner needs none.
    let grant = r#"{"assignee":"alice","role":"Storage Blob Data Reader","scope":"azureml://datastores/workspaceblobstore"}"#;
    let (status, reply) = api
        .call("POST", "/api/v1/role-assignments", Who::Admin, Some(grant))
        .await;
    assert_eq!(status, 201, "{reply}");
    for (path, who) in [
        ("/api/v1/sessions", Who::Alice),
        ("/sessions", Who::Alice),
        ("/api/v1/sessions", Who::Admin),
    ] {
        let (status, reply) = api.call("POST", path, who, Some("{}")).await;
        assert_eq!(status, 201, "{path} as {}: {reply}", who.label());
    }
    api.finish().await;
}

/// A Storage Blob Data Owner grants and removes data roles at their scope and inside it, never
/// wider; they see the assignments there, and another's elsewhere stays "not found". A Reader
/// changes nothing, whatever data roles they hold; workspace Owners grant anywhere.
#[tokio::test]
async fn data_owners_grant_and_remove_roles_at_their_scope_only() {
    let api = Api::start().await;
    let ws = "azureml://datastores/workspaceblobstore/paths";
    let grant = |assignee: &str, role: &str, scope: &str| {
        serde_json::json!({"assignee": assignee, "role": role, "scope": scope}).to_string()
    };
    let team = format!("{ws}/teams/a");
    let bob_in_team = format!("{ws}/teams/a/bob");
    let teams = format!("{ws}/teams");
    let elsewhere = format!("{ws}/other");
    let setup = [
        ("alice", "Storage Blob Data Owner", team.as_str()),
        ("bob", "Storage Blob Data Reader", elsewhere.as_str()),
    ];
    for (assignee, role, scope) in setup {
        let body = grant(assignee, role, scope);
        let (status, reply) = api
            .call("POST", "/api/v1/role-assignments", Who::Admin, Some(&body))
            .await;
        assert_eq!(status, 201, "{reply}");
    }
    let inside = grant("bob", "Storage Blob Data Contributor", &bob_in_team);
    let wider = grant("bob", "Storage Blob Data Contributor", &teams);
    let whole = grant(
        "bob",
        "Storage Blob Data Reader",
        "azureml://datastores/workspaceblobstore",
    );
    let cases: &[Case] = &[
        (
            "POST",
            "/api/v1/role-assignments",
            Who::Alice,
            Some(&inside),
        ),
        ("POST", "/api/v1/role-assignments", Who::Alice, Some(&wider)),
        ("POST", "/api/v1/role-assignments", Who::Alice, Some(&whole)),
        ("POST", "/api/v1/role-assignments", Who::Bob, Some(&inside)),
        ("GET", "/api/v1/role-assignments", Who::Alice, None),
        // Bob's role elsewhere is not alice's to see, nor to remove.
        ("DELETE", "/api/v1/role-assignments/2", Who::Alice, None),
        // Bob may not remove even his own role outside a scope he owns.
        ("DELETE", "/api/v1/role-assignments/2", Who::Bob, None),
        ("DELETE", "/api/v1/role-assignments/3", Who::Alice, None),
        ("GET", "/api/v1/role-assignments", Who::Bob, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
        POST /api/v1/role-assignments (alice) -> 201 {"assignee":"bob","assignee_type":"user","created_at":"[TIME]","created_by":"alice","id":3,"role":"Storage Blob Data Contributor","scope":"azureml://datastores/workspaceblobstore/paths/teams/a/bob"}
        POST /api/v1/role-assignments (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` cannot assign or remove data roles at `azureml://datastores/workspaceblobstore/paths/teams`: that needs the Owner workspace role, or Storage Blob Data Owner on `azureml://datastores/workspaceblobstore/paths/teams` or a scope above it\nhint: you may grant at `azureml://datastores/workspaceblobstore/paths/teams/a` and inside it"}}
        POST /api/v1/role-assignments (alice) -> 403 {"error":{"code":"forbidden","message":"user `alice` cannot assign or remove data roles at `azureml://datastores/workspaceblobstore`: that needs the Owner workspace role, or Storage Blob Data Owner on `azureml://datastores/workspaceblobstore` or a scope above it\nhint: you may grant at `azureml://datastores/workspaceblobstore/paths/teams/a` and inside it"}}
        POST /api/v1/role-assignments (bob) -> 403 {"error":{"code":"forbidden","message":"user `bob` cannot assign or remove data roles at `azureml://datastores/workspaceblobstore/paths/teams/a/bob`: that needs the Owner workspace role, or Storage Blob Data Owner on `azureml://datastores/workspaceblobstore/paths/teams/a/bob` or a scope above it\nhint: ask a workspace Owner to grant it, or to give you Storage Blob Data Owner on that scope"}}
        GET /api/v1/role-assignments (alice) -> 200 {"role_assignments":[{"assignee":"alice","assignee_type":"user","created_at":"[TIME]","created_by":"admin","id":1,"role":"Storage Blob Data Owner","scope":"azureml://datastores/workspaceblobstore/paths/teams/a"},{"assignee":"bob","assignee_type":"user","created_at":"[TIME]","created_by":"alice","id":3,"role":"Storage Blob Data Contributor","scope":"azureml://datastores/workspaceblobstore/paths/teams/a/bob"}]}
        DELETE /api/v1/role-assignments/2 (alice) -> 404 {"error":{"code":"not_found","message":"role assignment `2` not found","target":"2"}}
        DELETE /api/v1/role-assignments/2 (bob) -> 403 {"error":{"code":"forbidden","message":"user `bob` cannot assign or remove data roles at `azureml://datastores/workspaceblobstore/paths/other`: that needs the Owner workspace role, or Storage Blob Data Owner on `azureml://datastores/workspaceblobstore/paths/other` or a scope above it\nhint: ask a workspace Owner to grant it, or to give you Storage Blob Data Owner on that scope"}}
        DELETE /api/v1/role-assignments/3 (alice) -> 204 ""
        GET /api/v1/role-assignments (bob) -> 200 {"role_assignments":[{"assignee":"bob","assignee_type":"user","created_at":"[TIME]","created_by":"admin","id":2,"role":"Storage Blob Data Reader","scope":"azureml://datastores/workspaceblobstore/paths/other"}]}
    "#]],
    );
    // What a data Owner grants takes effect: bob writes inside the team's folder once given.
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/role-assignments",
            Who::Alice,
            Some(&inside),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = api
        .upload(
            Who::Bob,
            "workspaceblobstore",
            &[("teams/a/bob/x.csv", "x\n")],
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    // A Reader changes nothing, data Owner or not.
    api.set_role("alice", "Reader").await;
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/role-assignments",
            Who::Alice,
            Some(&inside),
        )
        .await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply
            .to_string()
            .contains("user `alice` (Reader) cannot assign or remove data roles"),
        "{reply}"
    );
    api.finish().await;
}

/// Renders audit entries, one a line, as the API lists them (newest first):
/// `principal [as identity] action target -> status result`.
fn audit_lines(list: &Value) -> String {
    let mut out = String::new();
    for entry in list["entries"].as_array().unwrap() {
        let identity = entry["identity"]
            .as_str()
            .map(|i| format!(" as {i}"))
            .unwrap_or_default();
        let target = entry["target"].as_str().unwrap_or("-");
        writeln!(
            out,
            "{}{identity} {} {target} -> {} {}",
            entry["principal"].as_str().unwrap(),
            entry["action"].as_str().unwrap(),
            entry["status"],
            entry["result"].as_str().unwrap(),
        )
        .unwrap();
    }
    out
}

impl Api {
    /// The audit log as `who` lists it with `query` (e.g. `?principal=alice`).
    async fn audit(&self, who: Who, query: &str) -> Value {
        let (status, list) = self
            .call("GET", &format!("/api/v1/audit{query}"), who, None)
            .await;
        assert_eq!(status, 200, "{list}");
        list
    }
}

/// Issue 12: every state-changing call and every denial is in the audit log, with who made it,
/// the identity its work acts as, the action, the target and the result; reads are not.
#[tokio::test]
async fn the_audit_log_records_changes_and_denials_with_who_and_as_whom() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let job = format!(
        r#"{{"spec":{{"name":"alices_job","code":"{code}","entry":{{"file":"main.py"}},"conf":{{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}}}}}}"#
    );
    let (status, created) = api
        .call("POST", "/api/v1/jobs", Who::Alice, Some(&job))
        .await;
    assert_eq!(status, 201, "{created}");
    // Reads are not recorded.
    let (status, _) = api.call("GET", "/api/v1/jobs", Who::Alice, None).await;
    assert_eq!(status, 200);
    let grant = r#"{"assignee":"bob","role":"Storage Blob Data Reader","scope":"azureml://datastores/workspaceblobstore/paths/shared"}"#;
    let (status, granted) = api
        .call("POST", "/api/v1/role-assignments", Who::Admin, Some(grant))
        .await;
    assert_eq!(status, 201, "{granted}");
    let id = granted["id"].as_i64().unwrap();
    let cases: &[Case] = &[
        // Denied: not the admin, for a read and for changes.
        ("POST", "/api/v1/role-assignments", Who::Alice, Some(grant)),
        (
            "POST",
            "/api/v1/users",
            Who::Bob,
            Some(r#"{"name":"carol"}"#),
        ),
        ("GET", "/api/v1/events", Who::Bob, None),
        // Denied: not authenticated, on any route and any method.
        ("GET", "/api/v1/jobs", Who::BadToken, None),
        ("GET", "/api/v1/whoami", Who::WrongName, None),
        ("POST", "/sessions", Who::Nobody, Some("{}")),
        ("GET", "/api/v1/no-such-route", Who::Nobody, None),
        // Failed, not denied.
        ("POST", "/api/v1/jobs/no_such_job/cancel", Who::Alice, None),
    ];
    api.render(cases).await;
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/v1/role-assignments/{id}"),
            Who::Admin,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call("POST", "/api/v1/jobs/alices_job/cancel", Who::Alice, None)
        .await;
    assert_eq!(status, 200);
    check(
        audit_lines(&api.audit(Who::Admin, "").await),
        expect![[r#"
            alice job.cancel alices_job -> 200 ok
            admin role_assignment.delete bob: Storage Blob Data Reader on azureml://datastores/workspaceblobstore/paths/shared (id 1) -> 204 ok
            alice job.cancel no_such_job -> 404 failed
            anonymous route.unknown /api/v1/no-such-route -> 401 denied
            anonymous livy.session.create - -> 401 denied
            bob whoami - -> 401 denied
            anonymous job.list - -> 401 denied
            bob event.list - -> 403 denied
            bob user.create carol -> 403 denied
            alice role_assignment.create bob: Storage Blob Data Reader on azureml://datastores/workspaceblobstore/paths/shared -> 403 denied
            admin role_assignment.create bob: Storage Blob Data Reader on azureml://datastores/workspaceblobstore/paths/shared (id 1) -> 201 ok
            alice as alice job.create alices_job -> 201 ok
            alice snapshot.create snapshot:ea33e8ec6d15522914c0fdf138a2796b8209702c370c0f71bbb5f15bae306d41 -> 201 ok
            admin user.create bob -> 201 ok
            admin user.create alice -> 201 ok
        "#]],
    );
    api.finish().await;
}

/// Issue 12: the admin reads every entry, filtered by time and principal and page by page; a
/// user reads only the calls they made. A managed identity job is recorded as acting as the
/// identity, not as its user.
#[tokio::test]
async fn audit_entries_are_filtered_paged_and_a_users_own() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    for (path, body) in [
        ("/api/v1/identities", Some(r#"{"name":"etl"}"#)),
        ("/api/v1/workspace/identities/etl", None),
        (
            "/api/v1/role-assignments",
            Some(
                r#"{"assignee":"etl","role":"Storage Blob Data Contributor","scope":"azureml://datastores/workspaceblobstore/paths/etl"}"#,
            ),
        ),
    ] {
        let method = if body.is_some() { "POST" } else { "PUT" };
        let (status, reply) = api.call(method, path, Who::Admin, body).await;
        assert!(status == 200 || status == 201, "{path}: {status} {reply}");
    }
    let job = format!(
        r#"{{"spec":{{"name":"etl_job","code":"{code}","entry":{{"file":"main.py"}},"conf":{{"spark.driver.cores":1,"spark.driver.memory":"1g","spark.executor.cores":1,"spark.executor.memory":"1g","spark.executor.instances":1}},"identity":"managed","outputs":{{"out":{{"type":"uri_folder","path":"azureml://datastores/workspaceblobstore/paths/etl/out/"}}}}}}}}"#
    );
    let (status, reply) = api
        .call("POST", "/api/v1/jobs", Who::Alice, Some(&job))
        .await;
    assert_eq!(status, 201, "{reply}");
    let (status, _) = api
        .call("DELETE", "/api/v1/sessions/no_such", Who::Bob, None)
        .await;
    assert_eq!(status, 404);

    check(
        audit_lines(&api.audit(Who::Admin, "?principal=alice").await),
        expect![[r#"
            alice as etl job.create etl_job -> 201 ok
            alice snapshot.create snapshot:ea33e8ec6d15522914c0fdf138a2796b8209702c370c0f71bbb5f15bae306d41 -> 201 ok
        "#]],
    );
    // A user reads the calls they made, and nobody else's, whatever they filter by.
    check(
        audit_lines(&api.audit(Who::Bob, "").await),
        expect![[r#"
            bob session.delete no_such -> 404 failed
        "#]],
    );
    let others = api.audit(Who::Bob, "?principal=alice").await;
    assert_eq!(others["entries"], serde_json::json!([]), "{others}");

    // Pages: newest first, `next_before` until the last page.
    let first = api.audit(Who::Admin, "?limit=4").await;
    check(
        audit_lines(&first),
        expect![[r#"
            bob session.delete no_such -> 404 failed
            alice as etl job.create etl_job -> 201 ok
            admin role_assignment.create etl: Storage Blob Data Contributor on azureml://datastores/workspaceblobstore/paths/etl (id 1) -> 201 ok
            admin workspace_identity.add etl -> 200 ok
        "#]],
    );
    let next = first["next_before"].as_i64().unwrap();
    let second = api
        .audit(Who::Admin, &format!("?limit=4&before={next}"))
        .await;
    check(
        audit_lines(&second),
        expect![[r#"
            admin identity.create etl -> 201 ok
            alice snapshot.create snapshot:ea33e8ec6d15522914c0fdf138a2796b8209702c370c0f71bbb5f15bae306d41 -> 201 ok
            admin user.create bob -> 201 ok
            admin user.create alice -> 201 ok
        "#]],
    );
    let last = second["next_before"].as_i64().unwrap();
    let third = api
        .audit(Who::Admin, &format!("?limit=4&before={last}"))
        .await;
    assert_eq!(third["entries"], serde_json::json!([]), "{third}");
    assert!(third.get("next_before").is_none(), "{third}");

    // Since: a duration back from now, or a time.
    let all = api.audit(Who::Admin, "?since=1h").await;
    assert_eq!(all["entries"].as_array().unwrap().len(), 8, "{all}");
    let future = api.audit(Who::Admin, "?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future["entries"], serde_json::json!([]), "{future}");
    let cases: &[Case] = &[
        ("GET", "/api/v1/audit?since=yesterday", Who::Admin, None),
        ("GET", "/api/v1/audit?limit=0", Who::Admin, None),
        ("GET", "/api/v1/audit?limit=1001", Who::Alice, None),
        ("GET", "/api/v1/audit?user=alice", Who::Admin, None),
    ];
    check(
        api.render(cases).await,
        expect![[r#"
            GET /api/v1/audit?since=yesterday (admin) -> 400 {"error":{"code":"invalid_request","message":"`since`: `yesterday` is neither a duration back from now (`30m`, `1h`, `7d`) nor an RFC 3339 time (`2025-01-31T12:00:00Z`)","target":"since"}}
            GET /api/v1/audit?limit=0 (admin) -> 400 {"error":{"code":"invalid_request","message":"`limit` must be 1 to 1000, not `0`; read older entries page by page with `before`","target":"limit"}}
            GET /api/v1/audit?limit=1001 (alice) -> 400 {"error":{"code":"invalid_request","message":"`limit` must be 1 to 1000, not `1001`; read older entries page by page with `before`","target":"limit"}}
            GET /api/v1/audit?user=alice (admin) -> 400 {"error":{"code":"invalid_request","message":"the query string is invalid: user: unknown field `user`, expected one of `since`, `principal`, `limit`, `before`","target":"query"}}
        "#]],
    );
    api.finish().await;
}

/// A component registration body: `wc` reads `data` and writes `out`, running `main.py`.
fn component_body(version: Option<&str>, code: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut spec = serde_json::json!({
        "name": "wc",
        "display_name": "Word count",
        "inputs": {
            "data": {"kind": "data", "type": "uri_file"},
            "rate": {"kind": "parameter", "type": "number", "default": "0.5"},
        },
        "outputs": {"out": {"type": "uri_folder"}},
        "body": {
            "type": "spark",
            "code": code,
            "entry": {"file": "main.py"},
            "args": "--data ${{inputs.data}} --rate ${{inputs.rate}} --out ${{outputs.out}}",
        },
    });
    if let Some(version) = version {
        spec["version"] = Value::String(version.into());
    }
    edit(&mut spec);
    serde_json::json!({ "spec": spec }).to_string()
}

/// What a component call answered, in short: `status name:version`, a listing's versions, or
/// the error's target and message.
fn component_summary(status: u16, reply: &Value) -> String {
    let one = |c: &Value| {
        format!(
            "{}:{}{}",
            c["name"].as_str().unwrap_or("?"),
            c["version"].as_str().unwrap_or("?"),
            if c["archived"] == true {
                " (archived)"
            } else {
                ""
            }
        )
    };
    let text = if let Some(error) = reply.get("error") {
        format!(
            "{}: {}",
            error["target"].as_str().unwrap_or(""),
            error["message"].as_str().unwrap_or("")
        )
    } else if let Some(list) = reply.get("components") {
        let items: Vec<String> = list.as_array().unwrap().iter().map(one).collect();
        format!("[{}]", items.join(", "))
    } else if reply.get("version").is_some() {
        one(reply)
    } else {
        reply.to_string()
    };
    format!("{status} {text}")
}

/// Registering versions (the next one, explicit ones, a taken one), showing by version, label
/// and default (the most recently created, not the highest), the SDK's messages for unknown
/// names and labels, and archiving a version or a whole component; components are the
/// workspace's: another user sees and archives them, a Reader only reads.
#[tokio::test]
async fn components_are_versioned_shown_by_label_and_archived() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let carol = api.create_user_with_role("carol", "Reader").await;
    let create = |version: Option<&str>| component_body(version, &code, |_| {});
    let mut out = Vec::new();
    let steps: Vec<(&str, String, Who, Option<String>)> = vec![
        (
            "POST",
            "/api/v1/components".into(),
            Who::Alice,
            Some(create(None)),
        ),
        (
            "POST",
            "/api/v1/components".into(),
            Who::Alice,
            Some(create(None)),
        ),
        (
            "POST",
            "/api/v1/components".into(),
            Who::Alice,
            Some(create(Some("1"))),
        ),
        (
            "POST",
            "/api/v1/components".into(),
            Who::Alice,
            Some(create(Some("10"))),
        ),
        (
            "POST",
            "/api/v1/components".into(),
            Who::Bob,
            Some(create(Some("5"))),
        ),
        (
            "GET",
            "/api/v1/components/wc?label=latest".into(),
            Who::Alice,
            None,
        ),
        ("GET", "/api/v1/components/wc".into(), Who::Alice, None),
        (
            "GET",
            "/api/v1/components/wc?version=10".into(),
            Who::Alice,
            None,
        ),
        (
            "GET",
            "/api/v1/components/wc?version=7".into(),
            Who::Alice,
            None,
        ),
        (
            "GET",
            "/api/v1/components/wc?label=prod".into(),
            Who::Alice,
            None,
        ),
        (
            "GET",
            "/api/v1/components/wc?version=1&label=latest".into(),
            Who::Alice,
            None,
        ),
        ("GET", "/api/v1/components/nope".into(), Who::Alice, None),
        ("GET", "/api/v1/components".into(), Who::Bob, None),
        (
            "GET",
            "/api/v1/components?all_versions=true".into(),
            Who::Bob,
            None,
        ),
        (
            "POST",
            "/api/v1/components/wc/archive?version=5".into(),
            Who::Alice,
            None,
        ),
        ("GET", "/api/v1/components".into(), Who::Alice, None),
        (
            "GET",
            "/api/v1/components/wc?label=latest".into(),
            Who::Alice,
            None,
        ),
        (
            "GET",
            "/api/v1/components?all_versions=true&include_archived=true".into(),
            Who::Alice,
            None,
        ),
        (
            "POST",
            "/api/v1/components/wc/archive".into(),
            Who::Bob,
            None,
        ),
        ("GET", "/api/v1/components".into(), Who::Alice, None),
        (
            "GET",
            "/api/v1/components?include_archived=true".into(),
            Who::Alice,
            None,
        ),
        (
            "POST",
            "/api/v1/components/wc/restore?version=2".into(),
            Who::Alice,
            None,
        ),
        (
            "POST",
            "/api/v1/components/wc/restore".into(),
            Who::Alice,
            None,
        ),
        (
            "GET",
            "/api/v1/components?all_versions=true".into(),
            Who::Alice,
            None,
        ),
        (
            "POST",
            "/api/v1/components/wc/restore?version=5".into(),
            Who::Alice,
            None,
        ),
        (
            "POST",
            "/api/v1/components".into(),
            Who::Alice,
            Some(create(None)),
        ),
    ];
    for (method, path, who, body) in &steps {
        let (status, reply) = api.call(method, path, *who, body.as_deref()).await;
        out.push(format!(
            "{method} {path} ({}) -> {}",
            who.label(),
            component_summary(status, &reply)
        ));
    }
    // A Reader lists and shows, but registers and archives nothing.
    for (method, path, body) in [
        ("GET", "/api/v1/components", None),
        ("GET", "/api/v1/components/wc?label=latest", None),
        ("POST", "/api/v1/components", Some(create(Some("99")))),
        ("POST", "/api/v1/components/wc/archive", None),
    ] {
        let (status, reply) = api.call_as(&carol, method, path, body.as_deref()).await;
        out.push(format!(
            "{method} {path} (carol, Reader) -> {}",
            component_summary(status, &reply)
        ));
    }
    check(
        out.join("\n"),
        expect![[r#"
            POST /api/v1/components (alice) -> 201 wc:1
            POST /api/v1/components (alice) -> 201 wc:2
            POST /api/v1/components (alice) -> 409 version: component `wc` has a version `1` already; a registered version never changes
            hint: pass another version (`--version 3`), or leave `version` out to get the next one
            POST /api/v1/components (alice) -> 201 wc:10
            POST /api/v1/components (bob) -> 201 wc:5
            GET /api/v1/components/wc?label=latest (alice) -> 200 wc:5
            GET /api/v1/components/wc (alice) -> 200 wc:5
            GET /api/v1/components/wc?version=10 (alice) -> 200 wc:10
            GET /api/v1/components/wc?version=7 (alice) -> 404 version: Asset wc with version 7 does not exist in workspace spool.
            hint: its versions are `5`, `10`, `2`, `1`; `spool component list --all-versions` shows them
            GET /api/v1/components/wc?label=prod (alice) -> 404 label: Asset wc with version label prod does not exist in workspace.
            hint: Spool's labels are `latest` and `default`, both the most recently created version; or name a version (`spool component list --all-versions` shows them)
            GET /api/v1/components/wc?version=1&label=latest (alice) -> 400 version: Cannot specify both version and label.
            GET /api/v1/components/nope (alice) -> 404 name: Asset nope does not exist in workspace spool.
            hint: `spool component list` shows the registered components; register one with `spool component create --file component.yml`
            GET /api/v1/components (bob) -> 200 [wc:5]
            GET /api/v1/components?all_versions=true (bob) -> 200 [wc:5, wc:10, wc:2, wc:1]
            POST /api/v1/components/wc/archive?version=5 (alice) -> 204 ""
            GET /api/v1/components (alice) -> 200 [wc:10]
            GET /api/v1/components/wc?label=latest (alice) -> 200 wc:10
            GET /api/v1/components?all_versions=true&include_archived=true (alice) -> 200 [wc:5 (archived), wc:10, wc:2, wc:1]
            POST /api/v1/components/wc/archive (bob) -> 204 ""
            GET /api/v1/components (alice) -> 200 []
            GET /api/v1/components?include_archived=true (alice) -> 200 [wc:5 (archived)]
            POST /api/v1/components/wc/restore?version=2 (alice) -> 409 version: component `wc` is archived as a whole, so its version `2` cannot be restored alone
            hint: restore the whole component with `spool component restore --name wc`
            POST /api/v1/components/wc/restore (alice) -> 204 ""
            GET /api/v1/components?all_versions=true (alice) -> 200 [wc:10, wc:2, wc:1]
            POST /api/v1/components/wc/restore?version=5 (alice) -> 204 ""
            POST /api/v1/components (alice) -> 201 wc:11
            GET /api/v1/components (carol, Reader) -> 200 [wc:11]
            GET /api/v1/components/wc?label=latest (carol, Reader) -> 200 wc:11
            POST /api/v1/components (carol, Reader) -> 403 : user `carol` (Reader) cannot register, archive or restore components; this needs the Owner, Contributor or AzureML Data Scientist workspace role
            hint: ask an Owner to run `spool user update carol --role "AzureML Data Scientist"` (`spool user list` shows the Owners)
            POST /api/v1/components/wc/archive (carol, Reader) -> 403 : user `carol` (Reader) cannot register, archive or restore components; this needs the Owner, Contributor or AzureML Data Scientist workspace role
            hint: ask an Owner to run `spool user update carol --role "AzureML Data Scientist"` (`spool user list` shows the Owners)"#]],
    );
    api.finish().await;
}

/// What registration refuses, at the field a CLI can point into the file: the name (the API
/// bypasses the loader), ports `args` does not declare, an incomplete `conf`, an entry or file
/// missing from the snapshot, a snapshot that does not exist. Nothing is recorded.
#[tokio::test]
async fn a_component_is_registered_only_when_a_pipeline_could_run_it() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let cases: Vec<(&str, String)> = vec![
        (
            "bad name",
            component_body(None, &code, |s| s["name"] = "Word-Count".into()),
        ),
        ("bad version", component_body(Some("1@2"), &code, |_| {})),
        (
            "undeclared port",
            component_body(None, &code, |s| {
                s["body"]["args"] = "--x ${{inputs.nope}} $[[--y ${{inputs.maybe}}]]".into();
            }),
        ),
        (
            "incomplete conf",
            component_body(None, &code, |s| {
                s["body"]["conf"] = serde_json::json!({"spark.executor.instances": 2});
            }),
        ),
        (
            "no entry",
            component_body(None, &code, |s| {
                s["body"]["entry"]["file"] = "gone.py".into()
            }),
        ),
        (
            "no file",
            component_body(None, &code, |s| {
                s["body"]["py_files"] = serde_json::json!(["main.py", "lib.zip"])
            }),
        ),
        (
            "no snapshot",
            component_body(None, &format!("snapshot:{}", "0".repeat(64)), |_| {}),
        ),
        ("malformed", r#"{"spec":{"name":"wc"}}"#.to_string()),
    ];
    let mut out = Vec::new();
    for (what, body) in &cases {
        let (status, reply) = api
            .call("POST", "/api/v1/components", Who::Alice, Some(body))
            .await;
        out.push(format!("{what} -> {}", component_summary(status, &reply)));
    }
    let (_, list) = api
        .call(
            "GET",
            "/api/v1/components?include_archived=true",
            Who::Alice,
            None,
        )
        .await;
    out.push(format!("recorded: {}", component_summary(200, &list)));
    check(
        out.join("\n"),
        expect![[r#"
            bad name -> 400 name: component: `name`: Component name should only contain lower letter, number, underscore and start with a lower letter. Currently got Word-Count. (got `Word-Count`)
              accepted: a name matching `^[a-z][a-z0-9_]*$`
            bad version -> 400 version: component: `version`: a version may contain only letters, digits, `.`, `_` and `-` (got `1@2`)
              accepted: letters, digits, `.`, `_` and `-`, at most 255, e.g. `1` or `2.0.1`; leave it out for the next version
            undeclared port -> 400 args: component: `args`: Inputs to job does not contain 'nope' referenced in args (got `${{inputs.nope}}`)
              accepted: declared: `data`, `rate`
            incomplete conf -> 400 conf: component:1:1: `conf`: spark.driver.cores, spark.driver.memory, spark.executor.cores, spark.executor.memory and spark.executor.instances are mandatory fields.
              accepted: add the missing `spark.driver.cores`, `spark.driver.memory`, `spark.executor.cores`, `spark.executor.memory`
            no entry -> 400 entry.file: `gone.py` does not exist in the code folder (Entry doesn't exist.)
            no file -> 400 py_files[1]: `lib.zip` does not exist in the code folder (a file it lists)
            no snapshot -> 400 code: snapshot `0000000000000000000000000000000000000000000000000000000000000000` does not exist on the server; upload the code folder with `POST /api/v1/snapshots` first
            hint: `spool job create` uploads it for you
            malformed -> 400 spec: the component spec is malformed: missing field `body`
            recorded: 200 []"#]],
    );
    api.finish().await;
}

/// A pipeline step's `azureml:` reference resolves to a registered version (explicit, `@latest`
/// or the default, archived ones too), and an unknown name, version or label is the step's
/// error in the SDK's words. Resolving shows in the next check: the component's required
/// input, which the step does not bind.
#[tokio::test]
async fn pipeline_steps_resolve_registered_components() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/components",
            Who::Alice,
            Some(&component_body(Some("3"), &code, |_| {})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let pipeline = |component: Value| {
        serde_json::json!({"spec": {
            "type": "pipeline",
            "jobs": {"count": {
                "component": component,
                "resources": {"instance_type": "standard_e4s_v3", "runtime_version": "3.4"},
            }},
        }})
        .to_string()
    };
    let reference = |name: &str, version: Option<&str>, label: Option<&str>| {
        let mut r = serde_json::json!({"kind": "registered", "name": name});
        if let Some(v) = version {
            r["version"] = v.into();
        }
        if let Some(l) = label {
            r["label"] = l.into();
        }
        r
    };
    let mut out = Vec::new();
    let mut submit = async |what: &str, component: Value| {
        let (status, reply) = api
            .call(
                "POST",
                "/api/v1/jobs",
                Who::Alice,
                Some(&pipeline(component)),
            )
            .await;
        out.push(format!("{what} -> {}", component_summary(status, &reply)));
    };
    submit("wc:3", reference("wc", Some("3"), None)).await;
    submit("wc@latest", reference("wc", None, Some("latest"))).await;
    submit("wc", reference("wc", None, None)).await;
    submit("wc:4", reference("wc", Some("4"), None)).await;
    submit("wc@prod", reference("wc", None, Some("prod"))).await;
    submit("nope:1", reference("nope", Some("1"), None)).await;
    let (status, _) = api
        .call("POST", "/api/v1/components/wc/archive", Who::Alice, None)
        .await;
    assert_eq!(status, 204);
    submit("archived wc@latest", reference("wc", None, Some("latest"))).await;
    check(
        out.join("\n"),
        expect![[r#"
        wc:3 -> 400 jobs.count.inputs.data: pipeline: `jobs.count.inputs.data`: Required input 'data' for component 'count' not provided.
          accepted: `data: ${{parent.inputs.<name>}}`, a step's output, or a value
        wc@latest -> 400 jobs.count.inputs.data: pipeline: `jobs.count.inputs.data`: Required input 'data' for component 'count' not provided.
          accepted: `data: ${{parent.inputs.<name>}}`, a step's output, or a value
        wc -> 400 jobs.count.inputs.data: pipeline: `jobs.count.inputs.data`: Required input 'data' for component 'count' not provided.
          accepted: `data: ${{parent.inputs.<name>}}`, a step's output, or a value
        wc:4 -> 400 jobs.count.component: step `count`: `azureml:wc:4`: Asset wc with version 4 does not exist in workspace spool.
        hint: its versions are `3`; `spool component list --all-versions` shows them
        wc@prod -> 400 jobs.count.component: step `count`: `azureml:wc@prod`: Asset wc with version label prod does not exist in workspace.
        hint: Spool's labels are `latest` and `default`, both the most recently created version; or name a version (`spool component list --all-versions` shows them)
        nope:1 -> 400 jobs.count.component: step `count`: `azureml:nope:1`: Asset nope does not exist in workspace spool.
        hint: `spool component list` shows the registered components; register one with `spool component create --file component.yml`
        archived wc@latest -> 400 jobs.count.inputs.data: pipeline: `jobs.count.inputs.data`: Required input 'data' for component 'count' not provided.
          accepted: `data: ${{parent.inputs.<name>}}`, a step's output, or a value"#]],
    );
    api.finish().await;
}

/// The sample lines of an exposition whose name starts with `family`, sorted (label sets of
/// one family come in no fixed order).
fn metric_lines<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with(family))
        .collect();
    lines.sort();
    lines
}

/// `/metrics` is Prometheus' text exposition: state read from the store (jobs, sessions,
/// queue, capacity) and every answered request by route template, never by path. It asks
/// for a token unless `[server] metrics_auth = false`.
#[tokio::test]
async fn metrics_count_work_by_state_and_requests_by_route() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let (status, job) = api
        .call(
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(&small_job("counted", &code)),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let (status, _) = api
        .call("GET", "/api/v1/jobs/counted", Who::Alice, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .call("GET", "/api/v1/jobs/no_such_job", Who::Alice, None)
        .await;
    assert_eq!(status, 404);

    let (status, reply) = api.call("GET", "/metrics", Who::Nobody, None).await;
    assert_eq!(status, 401, "{reply}");
    let response = api
        .http
        .get(format!("{}/metrics", api.url))
        .bearer_auth(&api.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(name.starts_with("spool_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    expect![[r#"
        spool_jobs{kind="spark",status="NotStarted"} 1.0"#]]
    .assert_eq(&metric_lines(&text, "spool_jobs").join("\n"));
    assert_eq!(
        metric_lines(&text, "spool_queue_length"),
        ["spool_queue_length 1.0"]
    );
    let oldest = metric_lines(&text, "spool_queue_oldest_wait_seconds");
    let waited: f64 = oldest[0].rsplit_once(' ').unwrap().1.parse().unwrap();
    assert!((0.0..60.0).contains(&waited), "{oldest:?}");
    expect![[r#"
        spool_capacity_cores{state="free"} 10.0
        spool_capacity_cores{state="used"} 0.0"#]]
    .assert_eq(&metric_lines(&text, "spool_capacity_cores").join("\n"));
    let jobs_requests: Vec<&str> = metric_lines(&text, "spool_http_requests_total")
        .into_iter()
        .filter(|l| l.contains("/jobs"))
        .collect();
    expect![[r#"
        spool_http_requests_total{method="GET",route="/api/v1/jobs/{name}",status="200"} 1
        spool_http_requests_total{method="GET",route="/api/v1/jobs/{name}",status="404"} 1
        spool_http_requests_total{method="POST",route="/api/v1/jobs",status="201"} 1"#]]
    .assert_eq(&jobs_requests.join("\n"));
    assert!(
        !text.contains("no_such_job") && !text.contains("counted"),
        "paths and names never become labels"
    );
    api.finish().await;

    let open = Api::start_with(|file| file.server.metrics_auth = Some(false)).await;
    let (status, reply) = open.call("GET", "/metrics", Who::Nobody, None).await;
    assert_eq!(status, 200, "{reply}");
    open.finish().await;
}

/// A urlencoded form body, as a browser sends it.
fn form_body(fields: &[(&str, &str)]) -> String {
    let escape = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A studio sign-in by form, as a browser does it: the form's CSRF cookie, then the session
/// cookie. Returns the `Cookie` header value for later pages.
async fn studio_sign_in(api: &Api, http: &reqwest::Client, token: &str) -> String {
    let form = http
        .get(format!("{}/studio/signin?next=/studio/jobs", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let set_cookie = form.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let csrf_cookie = set_cookie.split(';').next().unwrap().to_string();
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_string();
    let page = form.text().await.unwrap();
    assert!(
        page.contains(&format!("value=\"{csrf}\"")),
        "the form carries its CSRF token"
    );
    let signed = http
        .post(format!("{}/studio/signin", api.url))
        .header("cookie", &csrf_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("token", token),
            ("csrf", &csrf),
            ("next", "/studio/jobs"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/studio/jobs");
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("spool_studio="))
        .unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Path=/;")
            || session.ends_with("Path=/"),
        "{session}"
    );
    assert!(!session.contains(token), "the cookie is not the token");
    session.split(';').next().unwrap().to_string()
}

/// The studio signs users in with a form (CSRF-checked, `HttpOnly` and `SameSite=Strict`
/// cookie, never the token itself), shows each user only what the API shows them, refuses
/// forms without the session's CSRF token, and ends its session when the token is rotated.
#[tokio::test]
async fn the_studio_signs_in_by_form_and_shows_each_user_only_their_own() {
    let api = Api::start().await;
    let code = api.snapshot().await;
    let (status, job) = api
        .call(
            "POST",
            "/api/v1/jobs",
            Who::Alice,
            Some(&small_job("alices_job", &code)),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |cookie: Option<String>, path: &str| {
        let mut request = http.get(format!("{}{path}", api.url));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };

    // Signed out: the sign-in form in place of the page, returning to it.
    let (status, body) = page(None, "/studio/jobs/alices_job").await;
    assert_eq!(status, 401);
    assert!(
        body.contains("name=\"next\" value=\"/studio/jobs/alices_job\""),
        "{body}"
    );
    // A sign-in without the form's CSRF cookie is refused, and so is a wrong token.
    let forged = http
        .post(format!("{}/studio/signin", api.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("token", api.alice.as_str()), ("csrf", "x")]))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    let alice = studio_sign_in(&api, &http, &api.alice).await;
    let (status, body) = page(Some(alice.clone()), "/studio/jobs").await;
    assert_eq!(status, 200);
    assert!(body.contains("href=\"/studio/jobs/alices_job\""), "{body}");
    let (status, body) = page(Some(alice.clone()), "/studio/jobs/alices_job").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("NotStarted") && body.contains("data-testid=\"timeline\""),
        "{body}"
    );
    let (status, body) = page(Some(alice.clone()), "/studio/jobs?status=Running").await;
    assert_eq!(status, 200);
    assert!(!body.contains("alices_job"), "filtered out: {body}");
    let (status, body) = page(Some(alice.clone()), "/studio/jobs?status=Runing").await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown job status `Runing`"), "{body}");

    for (path, expected) in [
        ("/studio/environments", "No environment is cached"),
        ("/studio/starts", "No session or job has started yet"),
        ("/studio/sessions", "No sessions"),
    ] {
        let (status, body) = page(Some(alice.clone()), path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(expected), "{path}: {body}");
    }
    let (_, body) = page(Some(alice.clone()), "/studio/compute").await;
    assert!(body.contains("0 of 10 used"), "{body}");

    // Datastores: browsing needs read on the folder, as the API's data roles decide.
    let (status, _) = api
        .upload(
            Who::Admin,
            "workspaceblobstore",
            &[("shared/data/a.csv", "x,y\n1,2\n")],
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = page(Some(alice.clone()), "/studio/datastores/workspaceblobstore").await;
    assert_eq!(status, 403, "{body}");
    let grant = r#"{"assignee":"alice","role":"Storage Blob Data Reader","scope":"azureml://datastores/workspaceblobstore/paths/shared"}"#;
    let (status, reply) = api
        .call("POST", "/api/v1/role-assignments", Who::Admin, Some(grant))
        .await;
    assert_eq!(status, 201, "{reply}");
    let (status, body) = page(
        Some(alice.clone()),
        "/studio/datastores/workspaceblobstore?path=shared",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(
            "href=\"/studio/datastores/workspaceblobstore?path=shared%2Fdata\">data/</a>"
        ),
        "{body}"
    );
    let (status, body) = page(
        Some(alice.clone()),
        "/studio/datastores/workspaceblobstore/files/shared/data/a.csv",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "x,y\n1,2\n"));
    let (status, _) = page(
        Some(alice.clone()),
        "/studio/datastores/workspaceblobstore?path=../../",
    )
    .await;
    assert_eq!(status, 400);

    // Uploading from the folder's page: the form's CSRF token, then the data roles decide.
    let (_, body) = page(
        Some(alice.clone()),
        "/studio/datastores/workspaceblobstore?path=shared%2Fdata",
    )
    .await;
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let upload = |csrf: String, file: &'static str| {
        let boundary = "spoolboundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\nshared/data\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\n\
             Content-Type: text/csv\r\n\r\nid\n7\n\r\n--{boundary}--\r\n"
        );
        http.post(format!(
            "{}/studio/datastores/workspaceblobstore/upload",
            api.url
        ))
        .header("cookie", &alice)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
    };
    let refused = upload("forged".into(), "b.csv").await.unwrap();
    assert_eq!(refused.status(), 403);
    let refused = upload(csrf.clone(), "b.csv").await.unwrap();
    assert_eq!(refused.status(), 403, "alice may only read there");
    let text = refused.text().await.unwrap();
    assert!(text.contains("Storage Blob Data"), "{text}");
    let grant = r#"{"assignee":"alice","role":"Storage Blob Data Contributor","scope":"azureml://datastores/workspaceblobstore/paths/shared"}"#;
    let (status, reply) = api
        .call("POST", "/api/v1/role-assignments", Who::Admin, Some(grant))
        .await;
    assert_eq!(status, 201, "{reply}");
    let done = upload(csrf.clone(), "b.csv").await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"],
        "/studio/datastores/workspaceblobstore?path=shared%2Fdata"
    );
    assert_eq!(
        std::fs::read_to_string(api.datastore().join("shared/data/b.csv")).unwrap(),
        "id\n7\n"
    );
    let refused = upload(csrf.clone(), "..").await.unwrap();
    assert_eq!(refused.status(), 400);

    let bob = studio_sign_in(&api, &http, &api.bob).await;
    let (status, body) = page(Some(bob.clone()), "/studio/jobs/alices_job").await;
    assert_eq!(status, 404);
    assert!(body.contains("job `alices_job` not found"), "{body}");
    let (_, body) = page(Some(bob.clone()), "/studio/jobs").await;
    assert!(!body.contains("alices_job"), "{body}");
    let (status, _) = page(
        Some(bob.clone()),
        "/studio/jobs/alices_job/logs/azureml/driver/stdout",
    )
    .await;
    assert_eq!(status, 404);

    // The sign-in cookie opens a driver's Spark UI through the server, and nothing else of the
    // API: alice's job has no UI running (404, as with a token), a cookie POST is 401.
    let (status, body) = page(Some(alice.clone()), "/api/v1/jobs/alices_job/sparkui").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("runs only while the driver does"), "{body}");
    let (status, _) = page(None, "/api/v1/jobs/alices_job/sparkui").await;
    assert_eq!(status, 401);
    let (status, body) = page(Some(bob.clone()), "/api/v1/jobs/alices_job/sparkui/jobs/").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("job `alices_job` not found"), "{body}");
    let (status, _) = page(Some(alice.clone()), "/api/v1/jobs/alices_job").await;
    assert_eq!(status, 401);
    let cancel = http
        .post(format!("{}/api/v1/jobs/alices_job/cancel", api.url))
        .header("cookie", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 401);

    // A form without the session's CSRF token changes nothing.
    let cancel = http
        .post(format!("{}/studio/jobs/alices_job/cancel", api.url))
        .header("cookie", &alice)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf", "not-the-token")]))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 403);
    let (_, job) = api
        .call("GET", "/api/v1/jobs/alices_job", Who::Alice, None)
        .await;
    assert_eq!(job["status"], "NotStarted");

    // Rotating alice's token ends her studio session at once.
    let (status, _) = api
        .call("POST", "/api/v1/users/alice/token", Who::Admin, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = page(Some(alice), "/studio/jobs").await;
    assert_eq!(status, 401);
    api.finish().await;
}
