//! The audit log through the real binary: kept across restarts, listed by `spool audit list`,
//! and never holding a token, nor does the server's log. Starts no JVM.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use spool_test::{TestServer, stderr, stdout};

/// Lists the audit log with the real CLI as the holder of `token`, as JSON.
fn audit_list(server: &TestServer, token: &str, args: &[&str]) -> (String, Vec<serde_json::Value>) {
    let mut all = vec!["audit", "list", "-o", "json"];
    all.extend_from_slice(args);
    let out = server.cli_as(token, &all);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    (text, entries)
}

/// `principal action target status result` of each entry, oldest first.
fn lines(entries: &[serde_json::Value]) -> Vec<String> {
    entries
        .iter()
        .rev()
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e["principal"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap_or("-"),
                e["status"],
                e["result"].as_str().unwrap()
            )
        })
        .collect()
}

/// Issue 12: entries survive a restart, `spool audit list` shows the admin all of them and a
/// user their own, and no token (a user's first or rotated one, the admin's, a wrong one, one
/// sent where the user name goes) is in an entry or in the server's log.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_survives_restarts_and_never_holds_a_token() {
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let out = server.cli(&["user", "create", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = stdout(&out).trim().to_string();
    let out = server.cli(&["user", "token", "rotate", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rotated = stdout(&out).trim().to_string();
    assert!(
        rotated.starts_with("spool_") && rotated != first,
        "{rotated}"
    );

    // Denied: the old token, a made-up one, the token sent as the user name, and a user doing
    // what only the admin may.
    let wrong = format!("spool_{}", "0123456789abcdef".repeat(3));
    for token in [&first, &wrong] {
        let out = server.cli_as(token, &["job", "list"]);
        assert!(!out.status.success(), "{}", stdout(&out));
        assert!(!stderr(&out).contains(token.as_str()), "{}", stderr(&out));
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = http
        .get(format!("{}/sessions", server.url()))
        .basic_auth(&rotated, Some("password"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let out = server.cli_as(&rotated, &["user", "create", "mallory"]);
    assert!(!out.status.success());

    // A clean stop, then a crash: every entry is still there.
    server.stop();
    server.restart();
    server.kill9();
    server.restart();
    let (text, entries) = audit_list(&server, &server.token, &[]);
    assert_eq!(
        lines(&entries),
        [
            "admin user.create alice 201 ok",
            "admin user.rotate_token alice 200 ok",
            "anonymous job.list - 401 denied",
            "anonymous job.list - 401 denied",
            "anonymous livy.session.list - 401 denied",
            "alice user.create mallory 403 denied",
        ],
        "{text}"
    );
    let (text, mine) = audit_list(&server, &rotated, &["--since", "1h"]);
    assert_eq!(
        lines(&mine),
        ["alice user.create mallory 403 denied"],
        "{text}"
    );
    let (_, alices) = audit_list(
        &server,
        &server.token,
        &["--principal", "alice", "--limit", "1"],
    );
    assert_eq!(lines(&alices), ["alice user.create mallory 403 denied"]);

    let out = server.cli(&["audit", "list", "--since", "soon"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`since`: `soon` is neither"),
        "{}",
        stderr(&out)
    );

    let log = server.log();
    for token in [&first, &rotated, &wrong, &server.token] {
        assert!(
            !text.contains(token.as_str()),
            "a token is in the audit log:\n{text}"
        );
        assert!(
            !log.contains(token.as_str()),
            "a token is in the server log:\n{log}"
        );
    }
    server.finish();
}
