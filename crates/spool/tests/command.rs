//! Command jobs (`type: command`): a shell command run as a supervised process on the Spool
//! host, in its environment, with inputs and outputs resolved to datastore paths. Real server,
//! real CLI, real uv; no JVM starts (pre-warming is off and command jobs need no cluster).

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use spool_test::{TestServer, deadline, job_name, stderr, stdout, wait_for_status};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/command")
        .join(name)
}

fn start() -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None)
}

/// Submits `file` (with `--set`s) and returns the job's name.
fn submit(server: &TestServer, token: Option<&str>, file: &Path, sets: &[&str]) -> String {
    let mut args = vec!["job", "create", "--file", file.to_str().unwrap()];
    for set in sets {
        args.extend(["--set", set]);
    }
    let out = match token {
        Some(token) => server.cli_as(token, &args),
        None => server.cli(&args),
    };
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    job_name(&out)
}

fn statuses(job: &serde_json::Value) -> Vec<String> {
    job["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_command_job_reads_its_input_writes_its_output_fails_and_is_canceled() {
    let server = start();

    // Refused at submit, naming the field, before anything is uploaded or recorded.
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        fixture("cluster.yml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains("`compute`: Not found compute with name cpu-cluster"),
        "{text}"
    );
    assert!(
        text.contains("hint: command steps run as processes on the Spool host"),
        "{text}"
    );
    let list = server.cli(&["job", "list", "-o", "json"]);
    assert_eq!(stdout(&list).trim(), "[]", "nothing was recorded");

    // The sample: the local input is uploaded, the environment built, the output written.
    let name = submit(&server, None, &fixture("count.yml"), &[]);
    let job = wait_for_status(
        &server,
        &name,
        &["Completed", "Failed", "Canceled"],
        deadline::ENV_BUILD,
    );
    assert_eq!(
        job["status"],
        "Completed",
        "{job:#}\n{}",
        server.log_tails()
    );
    assert_eq!(job["kind"], "command");
    assert_eq!(job["compute"], "serverless");
    assert_eq!(job["experiment_name"], "command-tests");
    assert_eq!(
        statuses(&job),
        ["NotStarted", "Preparing", "Running", "Completed"],
        "{job:#}"
    );
    assert_eq!(
        job["outputs"]["counts"],
        format!("azureml://datastores/workspaceblobstore/paths/azureml/{name}/counts/")
    );
    // Stream prints the command's output (stdout and stderr, in order) and exits 0.
    let streamed = server.cli(&["job", "stream", "--name", &name]);
    assert!(streamed.status.success(), "{}", stderr(&streamed));
    let log = stdout(&streamed);
    assert!(log.contains("hello from the job"), "{log}");
    assert!(log.contains("azureml variables: []"), "{log}");
    assert!(log.contains("counted 6 words"), "{log}");
    // Logs and the output download in Azure ML's layout.
    let download = tempfile::tempdir().unwrap();
    let out = server.cli(&[
        "job",
        "download",
        "--name",
        &name,
        "--all",
        "--download-path",
        download.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let counts =
        std::fs::read_to_string(download.path().join("named-outputs/counts/counts.txt")).unwrap();
    assert_eq!(counts, "commands 1\nruns 2\nspark 1\nspool 2\n");
    let std_log =
        std::fs::read_to_string(download.path().join("artifacts/logs/user_logs/std_log.txt"))
            .unwrap();
    assert!(std_log.contains("counted 6 words"), "{std_log}");
    let shown = server.cli(&["job", "show", "--name", &name, "-o", "table"]);
    assert!(stdout(&shown).contains("command"), "{}", stdout(&shown));

    // A failing command: Failed, with its last line as the error.
    let failed = submit(&server, None, &fixture("fail.yml"), &[]);
    let job = wait_for_status(
        &server,
        &failed,
        &["Completed", "Failed", "Canceled"],
        deadline::STATE_CHANGE,
    );
    assert_eq!(job["status"], "Failed", "{job:#}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.starts_with("cat: /nonexistent/spool-input.txt: No such file or directory"),
        "{error}"
    );
    let streamed = server.cli(&["job", "stream", "--name", &failed]);
    assert_eq!(streamed.status.code(), Some(1));

    // Canceled while it runs: the process group is stopped.
    let sleeping = submit(&server, None, &fixture("sleep.yml"), &["name=sleeper"]);
    wait_for_status(&server, &sleeping, &["Running"], deadline::STATE_CHANGE);
    server.wait_for("the command to start", deadline::STATE_CHANGE, || {
        (!server.processes_matching("sleep 600").is_empty()).then_some(())
    });
    let out = server.cli(&["job", "cancel", "--name", &sleeping]);
    assert!(out.status.success(), "{}", stderr(&out));
    let job = wait_for_status(
        &server,
        &sleeping,
        &["Canceled", "Failed", "Completed"],
        deadline::STOP,
    );
    assert_eq!(job["status"], "Canceled", "{job:#}");
    assert!(
        server.processes_matching("sleep 600").is_empty(),
        "the canceled command is still running"
    );

    // Past its timeout: stopped and Failed, saying why.
    let timed = submit(&server, None, &fixture("sleep.yml"), &["limits.timeout=1"]);
    let job = wait_for_status(
        &server,
        &timed,
        &["Canceled", "Failed", "Completed"],
        deadline::STOP,
    );
    assert_eq!(job["status"], "Failed", "{job:#}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("ran longer than its timeout of 1 s (`limits.timeout`)"),
        "{job:#}"
    );
    let left = server.wait_for_no_started_processes(deadline::STOP);
    assert!(left.is_empty(), "left: {left:?}");
    server.finish();
}

/// Whether this machine lets the server create accounts; the OS-level case needs it.
fn accounts_possible() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let tools = ["/usr/sbin/useradd", "/usr/bin/setpriv"]
        .iter()
        .all(|t| Path::new(t).exists());
    if !(root && tools) {
        eprintln!("skipped: OS-level enforcement needs root and useradd/setpriv");
    }
    root && tools
}

#[test]
fn a_command_opening_data_without_a_role_gets_the_os_error() {
    if !accounts_possible() {
        return;
    }
    let server = start();
    let scratch = tempfile::tempdir().unwrap();
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    let alice = ok(server.cli(&["user", "create", "alice"]))
        .trim()
        .to_string();
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
    std::fs::write(&secret_csv, "id,salary\n1,100\n").unwrap();
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
    let salaries = secret_root.join("hr/salaries.csv");
    let file = scratch.path().join("peek.yml");
    std::fs::write(
        &file,
        format!("type: command\ncommand: cat {}\n", salaries.display()),
    )
    .unwrap();
    let name = submit(&server, Some(&alice), &file, &[]);
    let job = wait_for_status(
        &server,
        &name,
        &["Completed", "Failed", "Canceled"],
        deadline::STATE_CHANGE,
    );
    assert_eq!(job["status"], "Failed", "{job:#}");
    assert_eq!(job["access_enforced"], true, "{job:#}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("Permission denied") && error.contains(salaries.to_str().unwrap()),
        "{error}"
    );
    assert!(error.contains("the job ran as user `alice`"), "{error}");

    // Its input named through `${{inputs}}` is refused at submit instead, nothing recorded.
    let file = scratch.path().join("input.yml");
    std::fs::write(
        &file,
        "type: command\ncommand: cat ${{inputs.s}}\ninputs:\n  s:\n    type: uri_file\n    path: azureml://datastores/secret/paths/hr/salaries.csv\n",
    )
    .unwrap();
    let out = server.cli_as(&alice, &["job", "create", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("inputs.s.path"), "{}", stderr(&out));
    let jobs: serde_json::Value =
        serde_json::from_slice(&server.cli_as(&alice, &["job", "list", "-o", "json"]).stdout)
            .unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs:#}");
    server.finish();
}

#[test]
fn a_running_command_is_adopted_after_a_crash_and_one_that_ended_is_not_lost() {
    let mut server = start();
    let sleeping = submit(&server, None, &fixture("sleep.yml"), &[]);
    let quick = submit(
        &server,
        None,
        &fixture("sleep.yml"),
        &["command=sleep 3; echo done"],
    );
    wait_for_status(&server, &sleeping, &["Running"], deadline::STATE_CHANGE);
    wait_for_status(&server, &quick, &["Running"], deadline::STATE_CHANGE);
    server.kill9();
    // The short one ends while no server watches; the long one keeps running.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(!server.processes_matching("sleep 600").is_empty());
    server.restart();
    let job = wait_for_status(
        &server,
        &quick,
        &["Completed", "Failed", "Canceled"],
        deadline::STATE_CHANGE,
    );
    assert_eq!(job["status"], "Completed", "{job:#}");
    let job = spool_test::job_json(&server, &sleeping);
    assert_eq!(job["status"], "Running", "{job:#}");
    // The adopted command is still the job's: a cancel stops it.
    let out = server.cli(&["job", "cancel", "--name", &sleeping]);
    assert!(out.status.success(), "{}", stderr(&out));
    let job = wait_for_status(
        &server,
        &sleeping,
        &["Canceled", "Failed", "Completed"],
        deadline::STOP,
    );
    assert_eq!(job["status"], "Canceled", "{job:#}");
    assert!(server.processes_matching("sleep 600").is_empty());
    let events = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(server.client().events())
        .unwrap()
        .to_string();
    assert!(
        events.contains("its command was still running after a restart"),
        "{events}"
    );
    assert!(
        events.contains("its command ended while the server was down"),
        "{events}"
    );
    server.finish();
}

#[test]
fn command_jobs_past_max_command_steps_wait_queued() {
    let server = TestServer::start(
        env!("CARGO_BIN_EXE_spool"),
        &["--prewarm", "0"],
        Some("[jobs]\nmax_command_steps = 1\n"),
    );
    let first = submit(&server, None, &fixture("sleep.yml"), &[]);
    wait_for_status(&server, &first, &["Running"], deadline::STATE_CHANGE);
    let second = submit(&server, None, &fixture("sleep.yml"), &[]);
    let job = wait_for_status(&server, &second, &["Queued"], deadline::STATE_CHANGE);
    assert_eq!(
        job["status_reason"],
        "waiting for a command slot: 1 of 1 running (`[jobs] max_command_steps`)",
        "{job:#}"
    );
    assert!(
        server
            .cli(&["job", "cancel", "--name", &first])
            .status
            .success()
    );
    wait_for_status(&server, &second, &["Running"], deadline::STATE_CHANGE);
    assert!(
        server
            .cli(&["job", "cancel", "--name", &second])
            .status
            .success()
    );
    wait_for_status(&server, &second, &["Canceled"], deadline::STOP);
    server.finish();
}
