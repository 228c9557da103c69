//! Every API call is authenticated; users see only their own jobs.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use spool_test::{TestServer, stderr, stdout};

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_a_valid_token_get_401_with_a_json_error() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for (path, auth) in [
        ("/api/v1/jobs", None),
        ("/api/v1/jobs", Some("Bearer not-a-token")),
        ("/api/v1/openapi.json", None),
        ("/api/v1/no-such-route", None),
        ("/api/v1/catalog", Some("Basic YWRtaW46d3Jvbmc=")),
    ] {
        let mut request = http.get(format!("{}{path}", server.url()));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{path} with {auth:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 5);
    }
    // The admin token works as a bearer token and as a basic-auth password.
    let ok = http
        .get(format!("{}/api/v1/whoami", server.url()))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = http
        .get(format!("{}/api/v1/whoami", server.url()))
        .basic_auth("admin", Some(&server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let doc: serde_json::Value = http
        .get(format!("{}/api/v1/openapi.json", server.url()))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    server.finish();
}

#[test]
fn admin_token_file_is_private_and_only_its_hash_is_stored() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let token_file = server.data_dir().join("admin.token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let db = std::fs::read(server.data_dir().join("state.db")).unwrap();
    let wal = std::fs::read(server.data_dir().join("state.db-wal")).unwrap_or_default();
    let needle = server.token.as_bytes();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the token itself is in the store"
        );
    }
    server.finish();
}

#[test]
fn users_see_only_their_own_jobs() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let out = server.cli(&["user", "create", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alice = stdout(&out).trim().to_string();
    assert!(alice.starts_with("spool_"), "{alice}");
    let out = server.cli(&["user", "create", "bob"]);
    let bob = stdout(&out).trim().to_string();
    // Non-admins cannot create users.
    let out = server.cli_as(&bob, &["user", "create", "mallory"]);
    assert!(!out.status.success());

    // Alice submits a job and cancels it at once: only its record matters here.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let iris = spool_test::shared_data("iris.csv");
    let upload = [
        "datastore",
        "upload",
        "--src",
        iris.to_str().unwrap(),
        "--dest",
        "data/iris.csv",
    ];
    // A new user writes no datastore until the admin grants a data role.
    let out = server.cli_as(&alice, &upload);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("spool role assignment create --assignee alice"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "alice",
        "--role",
        "Storage Blob Data Contributor",
        "--scope",
        "azureml://datastores/workspaceblobstore",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli_as(&alice, &upload);
    assert!(out.status.success(), "{}", stderr(&out));
    let job_file = fixtures.join("valid_count.yml");
    let out = server.cli_as(
        &alice,
        &[
            "job",
            "create",
            "--file",
            job_file.to_str().unwrap(),
            "--name",
            "alices_job",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli_as(
        &alice,
        &["job", "cancel", "--name", "alices_job", "-o", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // Bob cannot see or touch it: it is "not found" for him.
    let out = server.cli_as(&bob, &["job", "show", "--name", "alices_job"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("job `alices_job` not found"),
        "{}",
        stderr(&out)
    );
    let out = server.cli_as(&bob, &["job", "cancel", "--name", "alices_job"]);
    assert!(!out.status.success());
    let out = server.cli_as(&bob, &["job", "list", "-o", "json"]);
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 0);
    // Alice and the admin see it.
    let out = server.cli_as(&alice, &["job", "list", "-o", "json"]);
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    let admin_view = spool_test::job_json(&server, "alices_job");
    assert_eq!(admin_view["owner"], "alice");
    server.finish();
}

/// The variables of a running process (empty if it is gone).
fn environ(pid: u32) -> Vec<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .split('\0')
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// Where a running process's descriptors point, by number.
fn descriptors(pid: u32) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        .collect()
}

/// Finding 1 of issue 11: statement code must not get the server's environment (its tokens
/// and credentials) or its open files and sockets.
#[test]
fn statements_see_neither_the_servers_environment_nor_its_descriptors() {
    let secret = "sekrit-4c8e1f";
    let server = TestServer::start_with_env(
        env!("CARGO_BIN_EXE_spool"),
        &[],
        None,
        &[("SPOOL_TEST_SECRET", secret), ("SPOOL_TOKEN", secret)],
    );
    let out = server.cli(&["session", "create", "--name", "env"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        server.log_tails()
    );
    let code = "import os\n\
        proc = open('/proc/self/environ', 'rb').read().decode()\n\
        print(sorted(k for k in os.environ if k.startswith('SPOOL')))\n\
        print(any('sekrit' in v for v in os.environ.values()), 'sekrit' in proc, 'HOME' in os.environ)";
    let out = server.cli(&["session", "run", "--name", "env", code]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        server.log_tails()
    );
    // Only the wrapper's exit-code file is Spool's; `HOME` is on the allow-list.
    assert_eq!(stdout(&out), "['SPOOL_EXIT_FILE']\nFalse False True\n");

    // Every process the server started (daemons, driver, executors), seen from outside.
    let server_pid = server.pid().unwrap();
    let server_sockets: Vec<String> = descriptors(server_pid)
        .into_iter()
        .map(|(_, target)| target)
        .filter(|target| target.starts_with("socket:"))
        .collect();
    let started = server.started_processes();
    assert!(!started.is_empty());
    for pid in &started {
        let leaked: Vec<String> = environ(*pid)
            .into_iter()
            .filter(|var| var.contains(secret) || var.starts_with("SPOOL_TOKEN="))
            .collect();
        assert!(leaked.is_empty(), "process {pid} has {leaked:?}");
        for (fd, target) in descriptors(*pid) {
            assert!(
                !target.contains("state.db")
                    && !target.contains("admin.token")
                    && !server_sockets.contains(&target),
                "process {pid} holds the server's {target} as fd {fd}"
            );
        }
    }
    // The server's direct children (the exit-code wrappers) hold only stdin, stdout, stderr.
    for pid in started {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(server_pid) {
            let mut fds: Vec<String> = descriptors(pid).into_iter().map(|(fd, _)| fd).collect();
            fds.sort();
            assert_eq!(fds, ["0", "1", "2"], "descriptors of process {pid}");
        }
    }
    let out = server.cli(&["session", "delete", "--name", "env"]);
    assert!(out.status.success(), "{}", stderr(&out));
    server.finish();
}

/// Issue 11: the data dir Spool creates was 0755 and `state.db*` 0644. They are 0700 and 0600
/// (and `snapshots/` 0700, issue 12), and looser modes left from before are tightened at start,
/// once, with a line in the log.
#[test]
fn the_data_dir_and_its_state_are_private_and_loose_modes_are_tightened_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let set = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let dir = server.data_dir().to_path_buf();
    // SQLite removes `-wal` and `-shm` when its last connection closes: check those present.
    let private = |dir: &std::path::Path| {
        ["state.db", "state.db-wal", "state.db-shm", "admin.token"]
            .into_iter()
            .map(|name| dir.join(name))
            .filter(|path| {
                path.ends_with("state.db") || path.ends_with("admin.token") || path.exists()
            })
            .collect::<Vec<_>>()
    };
    // Private, but for the ACL entry that lets Spool's OS accounts pass through (`--x` for the
    // group `spool`, shown in the group bits) when the server enforces access (run as root).
    let private_dir = |dir: &std::path::Path| {
        let mode = mode(dir);
        // `ls -l` marks a file with an ACL with a `+` after its mode.
        let acl = std::process::Command::new("/bin/ls")
            .arg("-ld")
            .arg(dir)
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split(' ')
                    .next()
                    .is_some_and(|m| m.ends_with('+'))
            });
        assert!(
            mode == 0o700 || (acl && mode == 0o710),
            "{} has mode {mode:o} (ACL: {acl})",
            dir.display()
        );
    };
    private_dir(&dir);
    for path in private(&dir) {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&dir.join("snapshots")), 0o700);
    // The harness's temp dir may have been tightened; the files were created private.
    assert!(!server.log().contains("state.db"), "{}", server.log());

    // As an earlier version left them.
    server.stop();
    set(&dir, 0o755);
    for path in private(&dir) {
        set(&path, 0o644);
    }
    set(&dir.join("snapshots"), 0o755);
    let first_start = server.log().len();
    server.restart();
    private_dir(&dir);
    for path in private(&dir) {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&dir.join("snapshots")), 0o700);
    let log = server.log()[first_start..].to_string();
    assert_eq!(log.matches("tightened permissions").count(), 1, "{log}");
    assert!(
        log.contains("state.db") && log.contains("admin.token") && log.contains("snapshots"),
        "{log}"
    );
    server.finish();
}

/// Issue 11: `--token` shows the token to every user of the host in `ps`. The CLI takes it from
/// `SPOOL_TOKEN` or `--token-file` too, and warns when it is given on the command line.
#[test]
fn the_cli_reads_its_token_from_a_file_or_the_environment_and_warns_about_the_flag() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let scratch = tempfile::tempdir().unwrap();
    let token_file = scratch.path().join("token");
    std::fs::write(&token_file, format!("{}\n", server.token)).unwrap();
    let spool = |args: &[&str], token_env: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spool"));
        command
            .args(["--url", &server.url()])
            .args(args)
            .env_remove("SPOOL_TOKEN")
            // No admin token to fall back on.
            .env("SPOOL_HOME", scratch.path().join("no-data-dir"));
        if let Some(token) = token_env {
            command.env("SPOOL_TOKEN", token);
        }
        command.output().unwrap()
    };
    let warning =
        "warning: --token is visible to other users in ps; use SPOOL_TOKEN or --token-file";

    // Deliberately on the command line, once, to see the warning.
    let out = spool(&["--token", &server.token, "datastore", "list"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), format!("{warning}\n"));

    let out = spool(
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "datastore",
            "list",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");

    let out = spool(&["datastore", "list"], Some(&server.token));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");

    let out = spool(
        &[
            "--token-file",
            scratch.path().join("missing").to_str().unwrap(),
            "job",
            "list",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).starts_with("error: read the token file `"),
        "{}",
        stderr(&out)
    );
    server.finish();
}

/// Issue 11: no user could be removed and no token revoked. `spool user delete` and `spool
/// user token rotate` act at once, although the server caches users by token.
#[test]
fn deleted_users_and_rotated_tokens_stop_working_at_once() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let create = |name: &str| {
        let out = server.cli(&["user", "create", name]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    let works = |token: &str| server.cli_as(token, &["job", "list"]).status.success();
    let alice = create("alice");
    let bob = create("bob");
    // Both tokens are in the server's cache from here on.
    assert!(works(&alice) && works(&bob));

    // Users rotate their own token only; Owners rotate anyone's.
    let out = server.cli_as(&alice, &["user", "token", "rotate", "bob"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("user `alice` (AzureML Data Scientist) cannot rotate another user's token"),
        "{}",
        stderr(&out)
    );
    let out = server.cli_as(&alice, &["user", "token", "rotate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alice_new = stdout(&out).trim().to_string();
    assert!(alice_new.starts_with("spool_") && alice_new != alice);
    assert!(!works(&alice), "the old token still works");
    assert!(works(&alice_new));
    let out = server.cli(&["user", "token", "rotate", "bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bob_new = stdout(&out).trim().to_string();
    assert!(!works(&bob) && works(&bob_new));

    // Only Owners delete, never the last Owner, and never a user with live work.
    let out = server.cli_as(&alice_new, &["user", "delete", "bob"]);
    assert!(
        stderr(&out).contains("cannot delete users; this needs the Owner workspace role"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&["user", "delete", "admin"]);
    assert!(
        stderr(&out).contains("user `admin` is the last Owner"),
        "{}",
        stderr(&out)
    );
    // A session needs read on the default datastore.
    let out = server.cli(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "bob",
        "--role",
        "Storage Blob Data Reader",
        "--scope",
        "azureml://datastores/workspaceblobstore",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli_as(
        &bob_new,
        &[
            "session",
            "create",
            "--name",
            "bobs",
            "--no-wait",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let session: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = server.cli(&["user", "delete", "bob"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "user `bob` still has live work: sessions `{}`",
            session["id"]
        )),
        "{}",
        stderr(&out)
    );
    assert!(works(&bob_new), "a refused delete took the token");
    let out = server.cli_as(&bob_new, &["session", "delete", "--name", "bobs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["user", "delete", "bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!works(&bob_new), "a deleted user's token still works");
    let out = server.cli(&["user", "delete", "bob"]);
    assert!(
        stderr(&out).contains("user `bob` not found"),
        "{}",
        stderr(&out)
    );
    // The name stays taken: bob's ended session still names him.
    let out = server.cli(&["user", "create", "bob"]);
    assert!(!out.status.success());

    // The admin's own rotation also replaces `admin.token`, which the next start keeps.
    let out = server.cli(&["user", "token", "rotate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let admin_new = stdout(&out).trim().to_string();
    assert!(!works(&server.token) && works(&admin_new));
    let file = std::fs::read_to_string(server.data_dir().join("admin.token")).unwrap();
    assert_eq!(file.trim(), admin_new);
    server.finish();
}

/// Workspace roles from the command line: `user create --role`, `user list`, `user show`,
/// `user update`; a refused call prints whose role forbids what, and the command that fixes it.
#[test]
fn workspace_roles_are_given_listed_and_changed_from_the_command_line() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let out = server.cli(&["user", "create", "carol", "--role", "reader"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("created user `carol` (Reader)"),
        "{}",
        stderr(&out)
    );
    let carol = stdout(&out).trim().to_string();
    let out = server.cli(&["user", "create", "dave"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["user", "create", "eve", "--role", "boss"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown workspace role `boss`; expected one of `Owner`, `Contributor`, `AzureML Data Scientist`, `Reader`"),
        "{}",
        stderr(&out)
    );

    let out = server.cli(&["user", "list", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let roles: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("{}: {}", u["name"], u["role"]).replace('"', ""))
        .collect();
    assert_eq!(
        roles,
        [
            "admin: Owner",
            "carol: Reader",
            "dave: AzureML Data Scientist"
        ]
    );
    let out = server.cli_as(&carol, &["user", "show", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown[0]["role"], "Reader", "{shown}");

    // A Reader changes nothing, and is told who can change that.
    let out = server.cli_as(&carol, &["session", "create", "--no-wait"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("user `carol` (Reader) cannot create sessions; this needs the Owner, Contributor or AzureML Data Scientist workspace role")
            && text.contains("hint: ask an Owner to run `spool user update carol --role \"AzureML Data Scientist\"`"),
        "{text}"
    );
    let out = server.cli_as(&carol, &["user", "update", "carol", "--role", "owner"]);
    assert!(
        stderr(&out).contains("user `carol` (Reader) cannot change users' roles"),
        "{}",
        stderr(&out)
    );

    // An Owner changes roles, but never leaves the server without an Owner.
    let out = server.cli(&["user", "update", "carol", "--role", "data-scientist"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("user `carol` is now AzureML Data Scientist"),
        "{}",
        stderr(&out)
    );
    let out = server.cli_as(&carol, &["user", "show", "-o", "json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown[0]["role"], "AzureML Data Scientist", "{shown}");
    // Her role allows sessions now; her data roles do not yet, and she is told the grant.
    let out = server.cli_as(&carol, &["session", "create", "--no-wait"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("user `carol` cannot create sessions")
            && stderr(&out).contains("spool role assignment create --assignee carol --role \"Storage Blob Data Reader\" --scope azureml://datastores/workspaceblobstore"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&["user", "update", "admin", "--role", "reader"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("user `admin` is the last Owner"),
        "{}",
        stderr(&out)
    );
    server.finish();
}
