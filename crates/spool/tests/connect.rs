//! Spark Connect sessions: the thin client (`pyspark-client`, no JVM) runs DataFrame code
//! through the server's authenticated gRPC endpoint with its user's token, is refused with
//! another user's or a wrong one, and reaches the session again after a server crash; Livy
//! clients ask for Connect with a conf key. Real server, real Spark 4 driver with the plugin.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::time::{Duration, Instant};

use spool_api_types as api;
use spool_client::{SessionState, StatementState};
use spool_test::{
    CONNECT_RUNTIME, Progress, TestServer, connect_client_python, deadline, stderr, stdout,
};

/// Runs `tests/clients/connect_client.py URL MODE` with `token` (on a blocking thread: the
/// client takes seconds); returns its output.
async fn client(url: &str, mode: &str, token: &str) -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/connect_client.py");
    let mut command = std::process::Command::new(connect_client_python());
    command
        .arg(script)
        .arg(url)
        .arg(mode)
        .env("SPOOL_TOKEN", token);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "connect_client.py {mode} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

async fn wait_idle(client: &spool_client::Client, id: &str) -> api::SessionView {
    let timeout = deadline::COLD_START;
    let until = Instant::now() + timeout;
    let mut progress = Progress::new("the Connect session to be idle", timeout);
    loop {
        let view = client.session(id).await.unwrap();
        match view.state {
            SessionState::Idle => return view,
            SessionState::NotStarted | SessionState::Starting => {}
            other => panic!("session {id} is {other}: {view:#?}"),
        }
        assert!(Instant::now() < until, "not idle in {timeout:?}: {view:#?}");
        progress.tick();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thin_client_runs_dataframes_through_the_endpoint_with_its_own_token_only() {
    spool_test::ensure_runtime_version(CONNECT_RUNTIME);
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let admin = server.client();

    // A runtime without Connect is refused before anything is created, naming the ones with it.
    let refused = admin
        .create_session(&api::CreateSession {
            kind: Some("connect".into()),
            runtime_version: Some(spool_test::TEST_RUNTIME.into()),
            ..Default::default()
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(spool_test::TEST_RUNTIME) && refused.contains(CONNECT_RUNTIME),
        "{refused}"
    );
    assert!(admin.sessions().await.unwrap().sessions.is_empty());

    // The CLI's `--connect` picks the newest runtime with Connect when none is named.
    let created = server.cli(&["-o", "json", "session", "create", "--connect", "--no-wait"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let created: serde_json::Value = serde_json::from_str(&stdout(&created)).unwrap();
    assert_eq!(created["runtime"], CONNECT_RUNTIME, "{created:#}");
    let id = created["id"].to_string();
    let idle = wait_idle(&admin, &id).await;
    let url = idle.connect_url.clone().expect("a Connect session's URL");
    assert_eq!(
        url,
        format!(
            "sc://localhost:{}/;x-spool-session={id}",
            server.url().rsplit(':').next().unwrap()
        )
    );

    let shown = server.cli(&["-o", "table", "session", "show", "--name", &id]);
    assert!(
        stdout(&shown).contains(&url),
        "`session show` prints the URL:\n{}",
        stdout(&shown)
    );

    // The owner's token: DataFrames, SQL, a large answer and an error all go through.
    let out = client(&url, "run", &server.token).await;
    assert!(out.contains("connect ok"), "{out}");
    assert!(out.contains("version 4."), "{out}");

    // Connect calls count as activity: the inactivity timeout starts again from them.
    let after = admin.session(&id).await.unwrap();
    assert!(
        after.last_activity_at > idle.last_activity_at,
        "{} then {}",
        idle.last_activity_at,
        after.last_activity_at
    );

    // Another user's token, a wrong token, and no session named are each refused with a reason.
    let bob = server.cli(&["user", "create", "bob"]);
    assert!(bob.status.success(), "{}", stderr(&bob));
    let bob = stdout(&bob).trim().to_string();
    let refusals = (
        client(&url, "refused", &bob).await,
        client(&url, "refused", "not-a-token").await,
        client(url.split(';').next().unwrap(), "refused", &bob).await,
    );
    assert!(
        refusals.0.contains("NOT_FOUND")
            && refusals.0.contains(&format!("session `{id}` not found")),
        "another user's session: {}",
        refusals.0
    );
    assert!(
        refusals.1.contains("UNAUTHENTICATED"),
        "a wrong token: {}",
        refusals.1
    );
    assert!(
        refusals.2.contains("INVALID_ARGUMENT") && refusals.2.contains("x-spool-session"),
        "no session named: {}",
        refusals.2
    );

    // The same session still runs Livy statements: Connect is an addition to the REPL.
    let statement = admin
        .run_statement(&id, "spark.range(5).count()", None)
        .await
        .unwrap();
    let timeout = deadline::SHORT_WORK;
    let until = Instant::now() + timeout;
    let done = loop {
        let s = admin.statement(&id, statement.id).await.unwrap();
        if s.state == StatementState::Available {
            break s;
        }
        assert!(Instant::now() < until, "statement not done: {s:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        done.output.unwrap()["data"]["text/plain"],
        "5",
        "the REPL's answer"
    );

    // A crashed server's successor adopts the session and serves its Connect URL again: the
    // port and the secret were recorded before the driver started.
    let mut server = server;
    server.kill9();
    server.restart();
    let admin = server.client();
    let adopted = wait_idle(&admin, &id).await;
    assert_eq!(adopted.connect_url.as_deref(), Some(url.as_str()));
    let out = client(&url, "run", &server.token).await;
    assert!(out.contains("connect ok"), "after a restart: {out}");
    admin.delete_session(&id).await.unwrap();

    // A Livy client asks for Connect with a conf key (no runtime named: one that has it).
    let livy = |request: reqwest::RequestBuilder| async {
        let response = request
            .basic_auth("admin", Some(&server.token))
            .send()
            .await
            .unwrap();
        response.json::<serde_json::Value>().await.unwrap()
    };
    let http = reqwest::Client::new();
    let created = livy(
        http.post(format!("{}/sessions", server.url()))
            .json(&serde_json::json!({"kind": "pyspark", "conf": {"spark.spool.connect": "true"}})),
    )
    .await;
    let livy_id = created["id"].to_string();
    let idle = wait_idle(&admin, &livy_id).await;
    assert_eq!(idle.runtime, CONNECT_RUNTIME);
    let url = idle.connect_url.expect("the Livy session's Connect URL");
    let view = livy(http.get(format!("{}/sessions/{livy_id}", server.url()))).await;
    assert_eq!(view["appInfo"]["connectUrl"], url.as_str(), "{view:#}");
    let out = client(&url, "run", &server.token).await;
    assert!(out.contains("connect ok"), "a Livy-created session: {out}");
    admin.delete_session(&livy_id).await.unwrap();
    server.finish();
}
