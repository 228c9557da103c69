//! Issue 12: data roles are enforced by the operating system while work runs. Jobs run under an
//! OS account per principal; datastore trees carry ACLs for exactly the assigned roles; a job
//! that opens a path by itself (bypassing `${{inputs}}`) gets the OS's permission error.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use spool_test::{TestServer, deadline, job_json, job_name, stderr, stdout, wait_for_status};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/access")
}

/// Whether this machine lets the server create accounts; the OS-level cases need it.
fn accounts_possible() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let tools = ["/usr/sbin/useradd", "/usr/bin/setpriv"]
        .iter()
        .all(|t| Path::new(t).exists());
    if !(root && tools) {
        eprintln!(
            "skipped: OS-level enforcement needs root and useradd/setpriv (root: {root}, tools: {tools})"
        );
    }
    root && tools
}

/// A job file running `touch.py <action> <path>`, as `identity` if given.
fn touch_job(dir: &Path, name: &str, action: &str, path: &Path, identity: &str) -> PathBuf {
    let file = dir.join(format!("{name}.yml"));
    let yaml = format!(
        "type: spark\nname: {name}\ncode: {code}\nentry:\n  file: touch.py\nargs: {action} {path}\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\nresources:\n  instance_type: standard_e4s_v3\n  runtime_version: \"3.4\"\n{identity}",
        code = fixtures().display(),
        path = path.display(),
    );
    std::fs::write(&file, yaml).unwrap();
    file
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Submits a job as `token` and waits for it to end; returns its view.
fn run(server: &TestServer, token: &str, file: &Path) -> serde_json::Value {
    let out = server.cli_as(token, &["job", "create", "--file", file.to_str().unwrap()]);
    let name = job_name(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for_status(
        server,
        &name,
        &["Completed", "Failed"],
        deadline::COLD_START,
    );
    job_json(server, &name)
}

#[test]
fn the_os_enforces_data_roles_while_jobs_run() {
    if !accounts_possible() {
        return;
    }
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let scratch = tempfile::tempdir().unwrap();
    let alice = ok(server.cli(&["user", "create", "alice"]))
        .trim()
        .to_string();
    // A second datastore with a file alice has no role on.
    let secret_root = scratch.path().join("secret-store");
    std::fs::create_dir(&secret_root).unwrap();
    ok(server.cli(&[
        "datastore",
        "create",
        "--name",
        "secret",
        "--path",
        secret_root.to_str().unwrap(),
    ]));
    let secret_csv = scratch.path().join("secret.csv");
    std::fs::write(&secret_csv, "id,salary\n1,100\n2,200\n").unwrap();
    ok(server.cli(&[
        "datastore",
        "upload",
        "--name",
        "secret",
        "--src",
        secret_csv.to_str().unwrap(),
        "--dest",
        "hr/salaries.csv",
    ]));
    let salaries = secret_root.join("hr/salaries.csv");
    assert!(salaries.is_file());

    // Alice may read the default datastore, nothing of `secret`: her job opening the file by
    // its absolute path fails with the operating system's error, naming the path and her.
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
    let job = run(
        &server,
        &alice,
        &touch_job(scratch.path(), "peek", "read", &salaries, ""),
    );
    assert_eq!(job["status"], "Failed", "{job:#}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Permission denied") && error.contains(salaries.to_str().unwrap()),
        "{error}"
    );
    assert!(error.contains("the job ran as user `alice`"), "{error}");
    assert_eq!(job["access_enforced"], true, "{job:#}");

    // Granted, the same job reads the file; the role is removed, and the next job cannot.
    let out = ok(server.cli(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "alice",
        "--role",
        "Storage Blob Data Reader",
        "--scope",
        "azureml://datastores/secret/paths/hr",
        "-o",
        "json",
    ]));
    let assignment: serde_json::Value = serde_json::from_str(&out).unwrap();
    let job = run(
        &server,
        &alice,
        &touch_job(scratch.path(), "peek-granted", "read", &salaries, ""),
    );
    assert_eq!(job["status"], "Completed", "{job:#}");
    // Reader only: writing next to the file is refused by the OS.
    let job = run(
        &server,
        &alice,
        &touch_job(
            scratch.path(),
            "scribble",
            "write",
            &secret_root.join("hr/copy"),
            "",
        ),
    );
    assert_eq!(job["status"], "Failed", "{job:#}");
    assert!(!secret_root.join("hr/copy").exists());
    ok(server.cli(&[
        "role",
        "assignment",
        "delete",
        "--id",
        &assignment["id"].to_string(),
    ]));
    let job = run(
        &server,
        &alice,
        &touch_job(scratch.path(), "peek-revoked", "read", &salaries, ""),
    );
    assert_eq!(job["status"], "Failed", "{job:#}");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Permission denied"),
        "{job:#}"
    );

    // A job acting as a managed identity runs under the identity's own account: alice's roles
    // do not reach it, and its Reader role lets it read but not write her datastore.
    ok(server.cli(&["identity", "create", "--name", "reader-uai"]));
    ok(server.cli(&["workspace", "identity", "add", "--name", "reader-uai"]));
    ok(server.cli(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "reader-uai",
        "--role",
        "Storage Blob Data Reader",
        "--scope",
        "azureml://datastores/workspaceblobstore",
    ]));
    let blob_root = server.data_dir().join("datastores/workspaceblobstore");
    let job = run(
        &server,
        &alice,
        &touch_job(
            scratch.path(),
            "as-identity",
            "write",
            &blob_root.join("from-identity"),
            "identity:\n  type: managed\n",
        ),
    );
    assert_eq!(job["status"], "Failed", "{job:#}");
    assert_eq!(job["principal"], "reader-uai", "{job:#}");
    assert!(!blob_root.join("from-identity").exists());
    // Alice herself (Contributor) writes there.
    let job = run(
        &server,
        &alice,
        &touch_job(
            scratch.path(),
            "as-alice",
            "write",
            &blob_root.join("from-alice"),
            "",
        ),
    );
    assert_eq!(job["status"], "Completed", "{job:#}");
    assert!(blob_root.join("from-alice/_SUCCESS").exists());

    // Three principals ran work (alice, the identity, and the admin's pre-warmed driver at
    // most): each under an account of its own.
    let accounts = server.os_accounts();
    assert!(accounts.len() >= 2, "{accounts:?}");
    server.finish();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    for (name, _) in &accounts {
        assert!(
            !passwd.contains(&format!("{name}:")),
            "{name} outlived the test"
        );
    }
}
