//! The native API against its own OpenAPI document: schemathesis (installed into the test
//! client venv by `cargo xtask setup`) generates requests from `/api/v1/openapi.json` and checks
//! that no answer is a 5xx, that every status and body is the documented one (errors included:
//! `{"error": ...}` everywhere), and that content types match. The server gets a capacity that
//! nothing fits, so generated sessions are refused at submit and no Spark process starts.
//!
//! The budget is bounded and the seed fixed, so a run is repeatable and takes about a minute on
//! two cores; raise `--max-examples` by hand for a longer hunt.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::process::Command;

use spool_test::TestServer;

/// Nothing fits in 1 MiB: sessions and jobs that schemathesis makes up are refused with 422
/// instead of starting clusters.
const CONFIG: &str = "[capacity]\ncores = 1\nmemory = \"1m\"\n";

/// Examples per operation and the seed; the same inputs every run.
const MAX_EXAMPLES: &str = "10";
const SEED: &str = "1";

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], Some(CONFIG));
    let schemathesis = spool_test::client_python().with_file_name("st");
    assert!(
        schemathesis.exists(),
        "schemathesis is missing at {}: run `cargo xtask setup`",
        schemathesis.display()
    );
    // Schemathesis keeps its example database in the working directory.
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(&schemathesis)
        .current_dir(work.path())
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.url()))
        .args(["--header", &format!("Authorization: Bearer {}", server.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            SEED,
            "--workers",
            "2",
            "--generation-database",
            "none",
            // Pruning as the admin would empty the machine-wide environment cache the other
            // tests share.
            "--exclude-path",
            "/api/v1/environments/prune",
            "--no-color",
            "--output-truncate",
            "false",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found responses that break the OpenAPI document ({}):\n{report}",
        output.status
    );
    assert!(
        report.contains("passed"),
        "schemathesis ran no test case:\n{report}"
    );
    server.finish();
}
