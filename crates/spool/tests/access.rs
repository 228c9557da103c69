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

/// Grants `role` at `scope` to `who` as the admin; returns the assignment.
fn grant(server: &TestServer, who: &str, role: &str, scope: &str) -> serde_json::Value {
    let out = ok(server.cli(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        who,
        "--role",
        role,
        "--scope",
        scope,
        "-o",
        "json",
    ]));
    serde_json::from_str(&out).unwrap()
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
    // A name that is taken is refused, and its creator's Owner grant is recorded once.
    let again = server.cli(&[
        "datastore",
        "create",
        "--name",
        "secret",
        "--path",
        secret_root.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("datastore `secret` already exists"),
        "{}",
        stderr(&again)
    );
    let grants: serde_json::Value = serde_json::from_str(&ok(server.cli(&[
        "role",
        "assignment",
        "list",
        "-o",
        "json",
    ])))
    .unwrap();
    let owners = grants
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["scope"] == "azureml://datastores/secret")
        .count();
    assert_eq!(owners, 1, "{grants:#}");
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
    grant(
        &server,
        "alice",
        "Storage Blob Data Contributor",
        "azureml://datastores/workspaceblobstore",
    );
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
    let assignment = grant(
        &server,
        "alice",
        "Storage Blob Data Reader",
        "azureml://datastores/secret/paths/hr",
    );
    let job = run(
        &server,
        &alice,
        &touch_job(scratch.path(), "peek-granted", "read", &salaries, ""),
    );
    assert_eq!(job["status"], "Completed", "{job:#}");
    // It ran on a copy of its code that is its account's; the snapshots the server copies
    // from are the server's alone (0700), and her account cannot even list them.
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let snapshots = server.data_dir().join("snapshots");
        let mode = std::fs::metadata(&snapshots).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "snapshots/ has mode {mode:o}");
        let work = server
            .data_dir()
            .join("jobs")
            .join(job["name"].as_str().unwrap())
            .join("work");
        let alice_uid = std::fs::metadata(work.join("touch.py")).unwrap().uid();
        assert_ne!(alice_uid, nix::unistd::geteuid().as_raw());
        let out = as_account(alice_uid, "/bin/ls", &[snapshots.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", stdout(&out));
    }
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
    grant(
        &server,
        "reader-uai",
        "Storage Blob Data Reader",
        "azureml://datastores/workspaceblobstore",
    );
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

/// The pid of a session driver's Python process and its REPL port (`driver.py --port N`),
/// among the processes of `uid`.
fn session_driver(uid: u32) -> Option<(u32, u16)> {
    spool_test::processes_of_accounts(&[(String::new(), uid)])
        .into_iter()
        .find_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_python = args.first().is_some_and(|a| a.contains("python"));
            let port = args
                .iter()
                .position(|a| a == "--port")
                .and_then(|i| args.get(i + 1)?.parse().ok())?;
            (is_python && args.iter().any(|a| a.ends_with("driver.py"))).then_some((pid, port))
        })
}

/// Runs a command as one of Spool's accounts, in the group `spool` as the server starts them.
fn as_account(uid: u32, program: &str, args: &[&str]) -> std::process::Command {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .unwrap()
        .unwrap();
    let spool = nix::unistd::Group::from_name("spool").unwrap().unwrap();
    let mut command = std::process::Command::new("/usr/bin/setpriv");
    command
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={}", user.gid),
            &format!("--groups={}", spool.gid),
            "--",
            program,
        ])
        .args(args);
    command
}

#[test]
fn one_principals_cluster_and_session_driver_refuse_every_other_account() {
    if !accounts_possible() {
        return;
    }
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let token = |name: &str| ok(server.cli(&["user", "create", name])).trim().to_string();
    let (alice, bob) = (token("alice"), token("bob"));
    for name in ["alice", "bob"] {
        grant(
            &server,
            name,
            "Storage Blob Data Reader",
            "azureml://datastores/workspaceblobstore",
        );
    }
    // A session's working folder belongs to the account its driver runs as.
    let uid_of = |who: &str, token: &str| -> u32 {
        use std::os::unix::fs::MetadataExt;
        let out = ok(server.cli_as(token, &["session", "create", "--name", who, "-o", "json"]));
        let session: serde_json::Value = serde_json::from_str(&out).unwrap();
        let work = server
            .data_dir()
            .join("sessions")
            .join(session["id"].to_string())
            .join("work");
        std::fs::metadata(work).unwrap().uid()
    };
    let (alice_uid, bob_uid) = (uid_of("alice", &alice), uid_of("bob", &bob));
    assert_ne!(alice_uid, bob_uid);
    let (alice_driver, alice_port) = session_driver(alice_uid).expect("alice's session driver");

    // Bob's account cannot read the environment of alice's driver (where its REPL secret is),
    // nor her cluster's RPC secret.
    let environ = format!("/proc/{alice_driver}/environ");
    let out = as_account(bob_uid, "/bin/cat", &[&environ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "bob read alice's driver's environment"
    );
    let clusters: serde_json::Value =
        serde_json::from_str(&ok(server.cli(&["cluster", "list", "-o", "json"]))).unwrap();
    let clusters = clusters.as_array().unwrap().clone();
    assert_eq!(clusters.len(), 2, "{clusters:#?}");
    let secrets: Vec<PathBuf> = clusters
        .iter()
        .map(|c| {
            server
                .data_dir()
                .join("clusters")
                .join(c["id"].to_string())
                .join("spark-auth.properties")
        })
        .collect();
    let readable: Vec<bool> = secrets
        .iter()
        .map(|s| {
            as_account(bob_uid, "/bin/cat", &[s.to_str().unwrap()])
                .output()
                .unwrap()
                .status
                .success()
        })
        .collect();
    assert_eq!(
        readable.iter().filter(|r| **r).count(),
        1,
        "bob reads exactly his own cluster's secret: {readable:?}"
    );

    // Alice's statements run as her: another datastore, on which she has no role, cannot
    // even be listed; her own (Reader) can.
    let vault = tempfile::tempdir().unwrap();
    std::fs::write(vault.path().join("plans.txt"), "secret plans\n").unwrap();
    ok(server.cli(&[
        "datastore",
        "create",
        "--name",
        "vault",
        "--path",
        vault.path().to_str().unwrap(),
    ]));
    let out = server.cli_as(
        &alice,
        &[
            "session",
            "run",
            "--name",
            "alice",
            &format!("import os; print(os.listdir({:?}))", vault.path()),
        ],
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        format!("{}{}", stdout(&out), stderr(&out)).contains("PermissionError"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let blobs = server.data_dir().join("datastores/workspaceblobstore");
    let out = server.cli_as(
        &alice,
        &[
            "session",
            "run",
            "--name",
            "alice",
            &format!("import os; print(sorted(os.listdir({blobs:?})))"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A connection to alice's REPL without her session's secret gets no answer: the driver
    // closes it.
    {
        use std::io::{BufRead, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", alice_port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"{\"op\":\"execute\",\"id\":1,\"kind\":\"pyspark\",\"code\":\"1+1\"}\n")
            .unwrap();
        let mut answer = String::new();
        let read = std::io::BufReader::new(&stream).read_line(&mut answer);
        assert!(
            matches!(read, Ok(0)) || read.is_err(),
            "alice's driver answered a stranger: {answer}"
        );
    }

    // An application without alice's cluster's secret never registers with her master.
    let alice_cluster = clusters
        .iter()
        .zip(&readable)
        .find(|(_, bob_can_read)| !**bob_can_read)
        .map(|(c, _)| c.clone())
        .unwrap();
    let master_url = alice_cluster["master_url"].as_str().unwrap().to_string();
    let master_ui = alice_cluster["master_ui_url"].as_str().unwrap().to_string();
    let python = spool_test::cache_dir().join("runtimes/3.4/venv/bin/python");
    let scratch = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(scratch.path(), Some(bob_uid), None).unwrap();
    let script = scratch.path().join("intrude.py");
    std::fs::write(
        &script,
        format!(
            "from pyspark.sql import SparkSession\nspark = SparkSession.builder.master({master_url:?}).appName('intruder').config('spark.authenticate', 'true').config('spark.authenticate.secret', 'guess').getOrCreate()\nprint(spark.range(5).count())\n"
        ),
    )
    .unwrap();
    let mut intruder = as_account(
        bob_uid,
        python.to_str().unwrap(),
        &[script.to_str().unwrap()],
    )
    .current_dir(scratch.path())
    .env("HOME", scratch.path())
    .env("SPARK_LOCAL_IP", "127.0.0.1")
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(scratch.path().join("intruder.log")).unwrap())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(20));
    let status = spool_test::spark_ui_json(&master_ui, "/json/").expect("the master's status");
    let apps: Vec<String> = status["activeapps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap_or_default().to_string())
        .collect();
    let _ = intruder.kill();
    let _ = intruder.wait();
    let log = std::fs::read_to_string(scratch.path().join("intruder.log")).unwrap();
    // It did try, and the master refused its handshake (wrong secret).
    assert!(
        log.contains("Failed to connect to master") && log.contains("SaslException"),
        "{log}"
    );
    assert_eq!(
        apps,
        ["alice"],
        "applications on alice's cluster: {apps:?}\n{log}"
    );
    server.finish();
}

/// Issue 12: a block cached on one principal's cluster cannot be read from another account.
/// The other account's client (`tests/clients/fetch_block.py`, Spark's own block transfer
/// client) connects to the executor's block manager like any local process can, and is refused
/// without the cluster's secret; the same request with the secret opens the block.
#[test]
fn a_block_cached_on_one_principals_cluster_is_refused_to_every_other_account() {
    use std::os::unix::fs::MetadataExt;
    if !accounts_possible() {
        return;
    }
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let token = |name: &str| ok(server.cli(&["user", "create", name])).trim().to_string();
    let (alice, bob) = (token("alice"), token("bob"));
    grant(
        &server,
        "alice",
        "Storage Blob Data Reader",
        "azureml://datastores/workspaceblobstore",
    );
    // Bob's account comes from work of his own; a command job needs no cluster.
    let scratch = tempfile::tempdir().unwrap();
    let bob_job = scratch.path().join("bob.yml");
    std::fs::write(&bob_job, "type: command\ncommand: \"true\"\n").unwrap();
    let out = server.cli_as(
        &bob,
        &["job", "create", "--file", bob_job.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let bob_job = job_name(&out);

    // Alice's session caches a partition on her cluster's executor and says where it is.
    ok(server.cli_as(&alice, &["session", "create", "--name", "alice"]));
    let code = "rdd = sc.parallelize(range(1000), 1).cache()\n\
                rdd.count()\n\
                jvm = sc._jvm.org.apache.spark\n\
                block = jvm.storage.BlockId.apply(f'rdd_{rdd.id()}_0')\n\
                where = jvm.SparkEnv.get().blockManager().master().getLocations(block).apply(0)\n\
                print(block.name(), where.host(), where.port(), where.executorId())";
    let place = ok(server.cli_as(&alice, &["session", "run", "--name", "alice", code]));
    let place: Vec<&str> = place.split_whitespace().collect();
    let [block, host, port, executor] = place[..] else {
        panic!("no block location in {place:?}");
    };
    assert_ne!(executor, "driver", "the block is on an executor");
    let clusters: serde_json::Value =
        serde_json::from_str(&ok(server.cli(&["cluster", "list", "-o", "json"]))).unwrap();
    let [alice_cluster] = clusters.as_array().unwrap().as_slice() else {
        panic!("one cluster, alice's: {clusters:#?}");
    };
    let cluster_dir = server
        .data_dir()
        .join("clusters")
        .join(alice_cluster["id"].to_string());
    let alice_uid = std::fs::metadata(cluster_dir.join("work")).unwrap().uid();

    wait_for_status(&server, &bob_job, &["Completed"], deadline::SHORT_WORK);
    let bob_work = server.data_dir().join("jobs").join(&bob_job).join("work");
    let bob_uid = std::fs::metadata(bob_work).unwrap().uid();
    assert_ne!(alice_uid, bob_uid);

    // Runs the block client as `uid`, in a home of its own.
    let fetch = |uid: u32, extra: &[&str]| -> String {
        let home = scratch.path().join(uid.to_string());
        std::fs::create_dir(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(uid), None).unwrap();
        let python = spool_test::cache_dir().join("runtimes/3.4/venv/bin/python");
        let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/fetch_block.py");
        let mut args = vec![client.to_str().unwrap(), host, port, executor, block];
        args.extend(extra);
        let out = as_account(uid, python.to_str().unwrap(), &args)
            .current_dir(&home)
            .env("HOME", &home)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    // Bob's account, without alice's cluster's secret, is refused the block: with no
    // authentication and with a guessed secret.
    let answers = fetch(bob_uid, &[]);
    let answers: Vec<&str> = answers.lines().collect();
    assert_eq!(answers.len(), 2, "{answers:#?}");
    assert!(
        answers[0].starts_with("refused: ") && answers[0].contains("Expected SaslMessage"),
        "{answers:#?}"
    );
    assert!(
        answers[1].starts_with("refused: ") && answers[1].contains("SaslException"),
        "{answers:#?}"
    );
    // The same request with the secret, from the cluster's own account, opens the block.
    let secret = cluster_dir.join("spark-auth.properties");
    let answer = fetch(alice_uid, &[secret.to_str().unwrap()]);
    assert!(
        answer.starts_with("opened: StreamHandle") && answer.contains("numChunks=1"),
        "{answer}"
    );
    server.finish();
}

/// The fields of Azure's `cli/jobs/spark/serverless-spark-standalone-*-identity.yml` samples
/// (titanic wrangling, 2 executors of 2 cores), with the sample's `identity` block.
fn azure_sample(dir: &Path, variant: &str, identity: &str) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/titanic/src/titanic.py"),
        src.join("titanic.py"),
    )
    .unwrap();
    let file = dir.join(format!(
        "serverless-spark-standalone-{variant}-identity.yml"
    ));
    std::fs::write(
        &file,
        format!(
            r#"$schema: https://azuremlschemas.azureedge.net/latest/sparkJob.schema.json
type: spark

code: ./src
entry:
  file: titanic.py

conf:
  spark.driver.cores: 1
  spark.driver.memory: 2g
  spark.executor.cores: 2
  spark.executor.memory: 2g
  spark.executor.instances: 2

inputs:
  titanic_data:
    type: uri_file
    path: azureml://datastores/workspaceblobstore/paths/data/titanic.csv
    mode: direct

outputs:
  wrangled_data:
    type: uri_folder
    path: azureml://datastores/workspaceblobstore/paths/data/wrangled/
    mode: direct

args: >-
  --titanic_data ${{{{inputs.titanic_data}}}}
  --wrangled_data ${{{{outputs.wrangled_data}}}}
{identity}
resources:
  instance_type: standard_e4s_v3
  runtime_version: "3.4"
"#
        ),
    )
    .unwrap();
    file
}

#[test]
fn the_azure_identity_samples_run_once_their_roles_are_granted() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let scratch = tempfile::tempdir().unwrap();
    let alice = ok(server.cli(&["user", "create", "alice"]))
        .trim()
        .to_string();
    ok(server.cli(&[
        "datastore",
        "upload",
        "--src",
        spool_test::shared_data("titanic.csv").to_str().unwrap(),
        "--dest",
        "data/titanic.csv",
    ]));
    let contributor = |who: &str| {
        grant(
            &server,
            who,
            "Storage Blob Data Contributor",
            "azureml://datastores/workspaceblobstore",
        )
    };
    let submit =
        |file: &Path| server.cli_as(&alice, &["job", "create", "--file", file.to_str().unwrap()]);
    let refused = |file: &Path, expected: &[&str]| {
        let out = submit(file);
        assert!(!out.status.success(), "{}", stdout(&out));
        for text in expected {
            assert!(stderr(&out).contains(text), "{}", stderr(&out));
        }
    };
    let default = azure_sample(&scratch.path().join("default"), "default", "");
    let user = azure_sample(
        &scratch.path().join("user"),
        "user",
        "\nidentity:\n  type: user_identity\n",
    );
    let managed = azure_sample(
        &scratch.path().join("managed"),
        "managed",
        "\nidentity:\n  type: managed\n",
    );

    // Without a data role, the user's jobs are refused at submit, with the command that grants
    // it; nothing is recorded.
    for file in [&default, &user] {
        refused(
            file,
            &[
                "alice has no data role",
                "spool role assignment create --assignee alice --role \"Storage Blob Data Reader\" --scope azureml://datastores/workspaceblobstore/paths/data/titanic.csv",
            ],
        );
    }
    // `managed` on serverless needs an identity attached to the workspace...
    refused(
        &managed,
        &["none is attached", "spool workspace identity add"],
    );
    ok(server.cli(&["identity", "create", "--name", "spark-uai"]));
    ok(server.cli(&["workspace", "identity", "add", "--name", "spark-uai"]));
    // ...and that identity's own data role: alice's roles do not count for it.
    contributor("alice");
    refused(
        &managed,
        &["spark-uai has no data role", "--assignee spark-uai"],
    );
    let jobs: serde_json::Value =
        serde_json::from_str(&ok(server.cli(&["job", "list", "-o", "json"]))).unwrap();
    assert_eq!(jobs.as_array().map(Vec::len), Some(0), "{jobs:#}");
    contributor("spark-uai");

    // Granted, all three run unchanged, each as its principal.
    for (file, principal) in [
        (&default, "alice"),
        (&user, "alice"),
        (&managed, "spark-uai"),
    ] {
        let job = run(&server, &alice, file);
        assert_eq!(job["status"], "Completed", "{job:#}");
        assert_eq!(job["principal"], principal, "{job:#}");
        assert_eq!(
            job["access_enforced"],
            nix::unistd::geteuid().is_root(),
            "{job:#}"
        );
    }
    // Their pipeline variants (the same titanic component as a step) too: the step is recorded
    // with its effective identity. The fixtures have the samples' fields.
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipelines/titanic");
    let titanic = scratch.path().join("titanic-pipelines");
    std::fs::create_dir_all(titanic.join("src")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/titanic/src/titanic.py"),
        titanic.join("src/titanic.py"),
    )
    .unwrap();
    for file in std::fs::read_dir(&pipelines).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, titanic.join(file.file_name().unwrap())).unwrap();
    }
    for (variant, principal) in [
        ("default", "alice"),
        ("user", "alice"),
        ("managed", "spark-uai"),
    ] {
        let file = titanic.join(format!("serverless-spark-pipeline-{variant}-identity.yml"));
        let out = server.cli_as(
            &alice,
            &[
                "job",
                "create",
                "--file",
                file.to_str().unwrap(),
                "-o",
                "json",
            ],
        );
        let created: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
        let name = created["name"].as_str().unwrap();
        let done = wait_for_status(
            &server,
            name,
            &["Completed", "Failed", "Canceled"],
            deadline::COLD_START * 2,
        );
        assert_eq!(done["status"], "Completed", "{variant}: {done:#}");
        let step = job_json(&server, done["nodes"][0]["job_name"].as_str().unwrap());
        assert_eq!(step["principal"], principal, "{variant}: {step:#}");
    }
    let wrangled = server
        .data_dir()
        .join("datastores/workspaceblobstore/data/wrangled");
    assert!(wrangled.join("_SUCCESS").exists());

    // The audit log has each refusal, grant and submit, with the identity the job acted as.
    let audit: serde_json::Value = serde_json::from_str(&ok(
        server.cli(&["audit", "list", "--limit", "1000", "-o", "json"])
    ))
    .unwrap();
    let entries = audit
        .as_array()
        .or_else(|| audit["entries"].as_array())
        .unwrap();
    let count = |action: &str, result: &str, identity: Option<&str>| {
        entries
            .iter()
            .filter(|e| {
                e["action"] == action
                    && e["result"] == result
                    && identity.is_none_or(|i| e["identity"] == i)
            })
            .count()
    };
    // Two missing data roles of alice, one of the identity (403); the missing workspace
    // identity is a bad request (400).
    assert_eq!(count("job.create", "denied", None), 3, "{audit:#}");
    assert_eq!(count("job.create", "failed", None), 1, "{audit:#}");
    // The standalone managed sample; a pipeline acts as its submitter (its step as spark-uai).
    assert_eq!(count("job.create", "ok", Some("spark-uai")), 1, "{audit:#}");
    assert_eq!(count("role_assignment.create", "ok", None), 2, "{audit:#}");
    server.finish();
}

/// The accounts running `driver.py` (session drivers and pre-warmed ones), leaving out the
/// server's own wrappers (root) that start them.
fn driver_uids(server: &TestServer) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let mut uids: Vec<u32> = server
        .processes_matching("driver.py")
        .into_iter()
        .filter_map(|pid| std::fs::metadata(format!("/proc/{pid}")).ok())
        .map(|m| m.uid())
        .filter(|uid| *uid != 0)
        .collect();
    uids.sort();
    uids.dedup();
    uids
}

/// Regression (a full pool kept its drivers): a pre-warmed driver is handed only to the
/// principal it runs as, so when another user's work comes, the pool's drivers, full as they
/// are, are retired and the pool is filled again as that user.
#[test]
fn a_full_pool_of_the_admins_drivers_is_replaced_after_another_users_work() {
    if !accounts_possible() {
        return;
    }
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "1"], None);
    server.wait_prewarmed("the admin's pre-warmed driver");
    let admin_uids = driver_uids(&server);
    assert_eq!(admin_uids.len(), 1, "{admin_uids:?}");
    let alice = ok(server.cli(&["user", "create", "alice"]))
        .trim()
        .to_string();
    grant(
        &server,
        "alice",
        "Storage Blob Data Reader",
        "azureml://datastores/workspaceblobstore",
    );
    // Alice's session cannot take the admin's driver: it starts its own, as her.
    let out = ok(server.cli_as(&alice, &["session", "create", "-o", "json"]));
    let session: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_ne!(
        session["state_reason"], "started from a pre-warmed driver",
        "{session:#}"
    );
    // Then the pool follows her: the admin's driver goes, one of hers is made ready.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = server.client();
    let uids = server.wait_for(
        "the pool to hold only alice's driver",
        deadline::COLD_START,
        || {
            let uids = driver_uids(&server);
            let ready = rt.block_on(client.catalog()).ok()?.prewarmed_sessions_ready;
            (uids.len() == 1 && uids != admin_uids && ready == 1).then_some(uids)
        },
    );
    let alice_uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(
            server
                .data_dir()
                .join("sessions")
                .join(session["id"].to_string())
                .join("work"),
        )
        .unwrap()
        .uid()
    };
    assert_eq!(uids, [alice_uid]);
    server.finish();
}
