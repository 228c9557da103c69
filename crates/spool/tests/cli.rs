//! The CLI's output and error text against a real server, as snapshots (`cargo insta review`):
//! what `create` prints, tables, errors with their position or hint. Paths, times and ids are
//! replaced by `[DATA_DIR]`, `[TIME]`, `[ID]` and the like.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::Path;
use std::process::Output;

use spool_test::{TestServer, shared_data, stderr, stdout};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// A run as one text: exit code, stdout and stderr.
fn run_text(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        stdout(out),
        stderr(out)
    )
}

/// Filters for what changes from run to run; `server` adds its data dir and URL.
fn settings(server: Option<&TestServer>) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    if let Some(server) = server {
        settings.add_filter(
            &regex_escape(&server.data_dir().to_string_lossy()),
            "[DATA_DIR]",
        );
        settings.add_filter(&regex_escape(&server.url()), "[URL]");
    }
    settings.add_filter(&regex_escape(&fixtures().to_string_lossy()), "[FIXTURES]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]");
    settings.add_filter(r"http://127\.0\.0\.1:\d+", "[URL]");
    // Content hashes of code snapshots.
    settings.add_filter(r"\b[0-9a-f]{16,64}\b", "[ID]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

#[test]
fn errors_without_a_server_name_what_was_tried_and_what_to_do() {
    let url = format!("http://127.0.0.1:{}", spool_test::free_port());
    let spool = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_spool"))
            .args(args)
            .env("SPOOL_URL", &url)
            .env("SPOOL_TOKEN", "not-checked")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let missing = fixtures().join("no-such-job.yml");
    settings(None).bind(|| {
        insta::assert_snapshot!("no_server", run_text(&spool(&["job", "list"])));
        insta::assert_snapshot!(
            "missing_job_file",
            run_text(&spool(&["job", "create", "-f", missing.to_str().unwrap()]))
        );
    });
}

#[test]
fn job_commands_print_what_they_did_and_errors_name_the_input() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let iris = shared_data("iris.csv");
    let out = server.cli(&[
        "datastore",
        "upload",
        "--src",
        iris.to_str().unwrap(),
        "--dest",
        "data/iris.csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let invalid = fixtures().join("invalid/14_yaml_syntax.yml");
    let valid = fixtures().join("valid_count.yml");
    settings(Some(&server)).bind(|| {
        insta::assert_snapshot!(
            "job_create_invalid_yaml",
            run_text(&server.cli(&["job", "create", "-f", invalid.to_str().unwrap()]))
        );
        insta::assert_snapshot!(
            "job_show_unknown",
            run_text(&server.cli(&["job", "show", "--name", "no_such_job"]))
        );

        let out = server.cli(&[
            "job",
            "create",
            "-f",
            valid.to_str().unwrap(),
            "--name",
            "cli_job",
            "-o",
            "json",
        ]);
        // Cancelled at once: only what `create` printed matters here, not Spark.
        let cancel = server.cli(&["job", "cancel", "--name", "cli_job", "-o", "json"]);
        assert!(cancel.status.success(), "{}", stderr(&cancel));
        let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(created["name"], "cli_job");
        // The status at submit depends on how fast the scheduler is; the rest does not.
        let mut created = created;
        created["status"] = "[STATUS]".into();
        created["phases"] = "[PHASES]".into();
        insta::assert_snapshot!(
            "job_create_json",
            serde_json::to_string_pretty(&created).unwrap()
        );
        let canceled: serde_json::Value = serde_json::from_slice(&cancel.stdout).unwrap();
        assert_eq!(canceled["status"], "Canceled", "{canceled:#}");

        // The global flag goes before or after the subcommand.
        let after = server.cli(&["job", "list", "-o", "table"]);
        let before = server.cli(&["-o", "table", "job", "list"]);
        assert_eq!(stdout(&after), stdout(&before));
        insta::assert_snapshot!("job_list_table", run_text(&after));
    });
    server.finish();
}

#[test]
fn session_create_without_waiting_prints_the_session_as_yaml() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let out = server.cli(&[
        "session",
        "create",
        "--name",
        "cli",
        "--no-wait",
        "-o",
        "yaml",
    ]);
    let delete = server.cli(&["session", "delete", "--name", "cli"]);
    assert!(delete.status.success(), "{}", stderr(&delete));
    settings(Some(&server)).bind(|| {
        insta::assert_snapshot!("session_create_no_wait_yaml", run_text(&out));
        insta::assert_snapshot!(
            "session_show_unknown",
            run_text(&server.cli(&["session", "show", "--name", "no_such_session"]))
        );
    });
    server.finish();
}
