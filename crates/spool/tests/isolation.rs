//! Network isolation, end to end: the server runs on a host made of a network namespace, next
//! to a test host with two services; serverless clusters get namespaces of their own, and
//! statements of real sessions try to reach the services, the Spool API and another cluster.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use spool_test::netns::Net;
use spool_test::{TestServer, stderr, stdout, wait_for_or};

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// A TCP service on a test host: a Python listener that accepts and closes.
fn service(net: &Net, host: &str, port: u16) -> std::process::Child {
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', {port}))\ns.listen(16)\nwhile True:\n    c, _ = s.accept()\n    c.close()\n"
    );
    Command::new("ip")
        .args(["netns", "exec", &net.ns(host), "python3", "-c", &script])
        .spawn()
        .expect("start a test service")
}

/// `probe(host, port)`: `open`, or the name of the errno connecting gives.
const PROBE: &str = "import socket, errno
def probe(h, p):
    s = socket.socket(); s.settimeout(5)
    try:
        s.connect((h, p)); return 'open'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
";

/// `[(host, port), ...]` in Python.
fn python_list(targets: &[(String, u16)]) -> String {
    let items: Vec<String> = targets
        .iter()
        .map(|(h, p)| format!("({h:?}, {p})"))
        .collect();
    format!("[{}]", items.join(", "))
}

/// Code printing what connecting to each `(host, port)` gives.
fn probe_code(targets: &[(String, u16)]) -> String {
    format!(
        "{PROBE}print(' '.join(probe(h, p) for h, p in {}))",
        python_list(targets)
    )
}

/// Runs a statement in a session and returns its output, trimmed.
fn run(server: &TestServer, session: &str, code: &str) -> String {
    ok(server.cli(&["session", "run", "--name", session, code]))
        .trim()
        .to_string()
}

/// A GET from the server's host with a bearer token: the status and the body.
fn http_get(net: &Net, url: &str, token: &str) -> (u16, String) {
    let script = format!(
        "import urllib.request, urllib.error, sys\n\
         req = urllib.request.Request({url:?}, headers={{'Authorization': 'Bearer ' + {token:?}}})\n\
         try:\n    r = urllib.request.urlopen(req, timeout=30); print(r.status); sys.stdout.write(r.read().decode())\n\
         except urllib.error.HTTPError as e:\n    print(e.code); sys.stdout.write(e.read().decode())\n"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns("srv"), "python3", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// This server's namespaces in `/run/netns`.
fn namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn output_of(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn clusters(server: &TestServer) -> Vec<Value> {
    let list: Value =
        serde_json::from_str(&ok(server.cli(&["cluster", "list", "-o", "json"]))).unwrap();
    list.as_array().unwrap().clone()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn write_workspace(dir: &Path, mode: &str, rules: &str) -> String {
    let path = dir.join(format!("{mode}.yml"));
    std::fs::write(
        &path,
        format!("managed_network:\n  isolation_mode: {mode}\n  outbound_rules:\n{rules}"),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn isolated_clusters_reach_only_what_the_rules_allow_and_leave_nothing() {
    if let Some(reason) = why_not() {
        println!("skipped: {reason}");
        return;
    }
    spool_test::ensure_runtime_version(spool_test::CONNECT_RUNTIME);
    let net = match Net::create() {
        Ok(net) => net,
        Err(reason) => {
            println!("skipped: network namespaces cannot be created here: {reason}");
            return;
        }
    };
    let (allowed_port, other_port) = (18_080, 18_081);
    let mut services = vec![
        service(&net, "a", allowed_port),
        service(&net, "a", other_port),
    ];
    let config = "[serverless]\nteardown_after = \"2s\"\n";
    let mut server = TestServer::start_in_netns(
        env!("CARGO_BIN_EXE_spool"),
        &net.ns("srv"),
        &net.addr("srv"),
        &[],
        Some(config),
    );
    let instance = std::fs::read_to_string(server.data_dir().join("instance-id")).unwrap();
    let instance = instance.trim();
    let prefix = format!("spool-{instance}-c");
    let service_host = net.addr("a");
    let api = (net.addr("srv"), port_of(&server.url()));
    let targets = vec![
        (service_host.clone(), allowed_port),
        (service_host.clone(), other_port),
        api.clone(),
    ];
    // From the server's host, both services answer: a refusal below is the filter's.
    let from_host = Command::new("ip")
        .args(["netns", "exec", &net.ns("srv"), "python3", "-c"])
        .arg(probe_code(&targets[..2]))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&from_host.stdout).trim(),
        "open open"
    );

    let dir = tempfile::tempdir().unwrap();
    let approved = write_workspace(
        dir.path(),
        "allow_only_approved_outbound",
        &format!(
            "    - name: service-a\n      type: ip\n      destination:\n        address_prefix: {service_host}\n        protocol: TCP\n        port_ranges: \"{allowed_port}\"\n"
        ),
    );
    ok(server.cli(&["workspace", "update", "--file", &approved]));

    // A job's driver runs in its cluster's namespace: only the rule's service is reachable.
    let job = dir.path().join("job");
    std::fs::create_dir_all(job.join("src")).unwrap();
    std::fs::write(
        job.join("src/probe.py"),
        format!(
            "{PROBE}from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\nprint('probes:', ' '.join(probe(h, p) for h, p in {}))\nspark.stop()\n",
            python_list(&targets)
        ),
    )
    .unwrap();
    std::fs::write(
        job.join("job.yml"),
        format!("name: probe-{}\ntype: spark\ncode: ./src\nentry:\n  file: probe.py\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\nresources:\n  instance_type: standard_e4s_v3\n  runtime_version: \"3.4\"\n", std::process::id()),
    )
    .unwrap();
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        job.join("job.yml").to_str().unwrap(),
        "--stream",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("probes: open EHOSTUNREACH EHOSTUNREACH"),
        "{}",
        stderr(&out)
    );
    // A command job runs in a namespace of its own, under the same rules.
    std::fs::write(
        job.join("src/probe_cmd.py"),
        format!(
            "{PROBE}print('probes:', ' '.join(probe(h, p) for h, p in {}))\n",
            python_list(&targets)
        ),
    )
    .unwrap();
    std::fs::write(
        job.join("command.yml"),
        "type: command\ncode: ./src\ncommand: python probe_cmd.py\n",
    )
    .unwrap();
    let out = ok(server.cli(&[
        "job",
        "create",
        "--file",
        job.join("command.yml").to_str().unwrap(),
        "-o",
        "json",
    ]));
    let command: Value = serde_json::from_str(&out).unwrap();
    let name = command["name"].as_str().unwrap().to_string();
    let streamed = server.cli(&["job", "stream", "--name", &name]);
    assert!(streamed.status.success(), "{}", stderr(&streamed));
    assert!(
        stdout(&streamed).contains("probes: open EHOSTUNREACH EHOSTUNREACH"),
        "{}",
        stdout(&streamed)
    );
    // So does a pipeline's command step.
    std::fs::write(
        job.join("pipeline.yml"),
        "type: pipeline\njobs:\n  probe:\n    type: command\n    code: ./src\n    command: python probe_cmd.py\n",
    )
    .unwrap();
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        job.join("pipeline.yml").to_str().unwrap(),
        "--stream",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let streamed = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        streamed.contains("probes: open EHOSTUNREACH EHOSTUNREACH"),
        "{streamed}"
    );
    // Its cluster idles, then the teardown removes the namespace; the command's went when it
    // ended.
    wait_for_or(
        "the job's cluster namespace to be removed",
        Duration::from_secs(60),
        || namespaces(&prefix).is_empty().then_some(()),
        || server.log_tails(),
    );

    // Sessions too; the other service and the Spool API are refused.
    ok(server.cli(&["session", "create", "--name", "one"]));
    assert_eq!(
        run(&server, "one", &probe_code(&targets)),
        "open EHOSTUNREACH EHOSTUNREACH"
    );
    // Spark itself works inside the namespace: executors run and answer the driver.
    assert_eq!(
        run(&server, "one", "print(spark.range(100).count())"),
        "100"
    );
    let live = clusters(&server);
    assert_eq!(live.len(), 1, "{live:#?}");
    let one_id = live[0]["id"].clone();
    let one_master = live[0]["master_url"].as_str().unwrap().to_string();
    assert!(
        one_master.starts_with("spark://10.213."),
        "the master binds inside its namespace: {one_master}"
    );
    assert_eq!(namespaces(&prefix).len(), 1);
    // `cluster show` lists the namespace, the veth pair and the rules applied.
    let shown: Value = serde_json::from_str(&ok(server.cli(&[
        "cluster",
        "show",
        &one_id.to_string(),
        "-o",
        "json",
    ])))
    .unwrap();
    let network = &shown["network"];
    assert_eq!(network["state"], "up", "{shown:#}");
    assert_eq!(network["netns"], format!("{prefix}{one_id}"));
    assert!(
        network["rules"].as_str().unwrap().contains(&format!(
            "ip daddr {service_host} tcp dport {{ {allowed_port} }} accept"
        )),
        "{shown:#}"
    );
    assert!(
        output_of("ip", &["-n", &net.ns("srv"), "-o", "link"])
            .contains(network["host_veth"].as_str().unwrap()),
        "the host's end of the veth pair is in the server's namespace"
    );

    // Its driver's Spark UI is reached through the server, for those who may see the session.
    let session: Value = serde_json::from_str(&ok(
        server.cli(&["session", "show", "--name", "one", "-o", "json"])
    ))
    .unwrap();
    let ui = format!("/api/v1/sessions/{}/sparkui/", session["id"]);
    let link = ui.trim_end_matches('/');
    assert_eq!(session["spark_ui_url"], link, "{session:#}");
    let admin = std::fs::read_to_string(server.data_dir().join("admin.token")).unwrap();
    let (status, body) = http_get(
        &net,
        &format!("{}{ui}api/v1/applications", server.url()),
        admin.trim(),
    );
    assert_eq!(status, 200, "{body}");
    let apps: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(apps.as_array().map(Vec::len), Some(1), "{apps:#}");
    // The UI's own links lead back through the server (the path it forwards as
    // `X-Forwarded-Context`).
    let (status, body) = http_get(&net, &format!("{}{ui}jobs/", server.url()), admin.trim());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{ui}static/")), "{body}");
    let bob = ok(server.cli(&["user", "create", "bob"]))
        .trim()
        .to_string();
    let (status, _) = http_get(
        &net,
        &format!("{}{ui}api/v1/applications", server.url()),
        &bob,
    );
    assert_eq!(status, 404, "another user's session UI is not found");
    let (status, _) = http_get(
        &net,
        &format!("{}{ui}api/v1/applications", server.url()),
        "wrong",
    );
    assert_eq!(status, 401);

    // A second cluster cannot reach the first one's master.
    ok(server.cli(&["session", "create", "--name", "two"]));
    let master = one_master.trim_start_matches("spark://");
    let (host, port) = master.rsplit_once(':').unwrap();
    assert_eq!(
        run(
            &server,
            "two",
            &probe_code(&[(host.to_string(), port.parse().unwrap())])
        ),
        "EHOSTUNREACH"
    );
    assert_eq!(namespaces(&prefix).len(), 2);
    let two_id = clusters(&server)
        .into_iter()
        .map(|c| c["id"].clone())
        .find(|id| *id != one_id)
        .expect("cluster two");

    // A change applies to clusters started afterwards; the others are listed as on old rules.
    let internet = write_workspace(
        dir.path(),
        "allow_internet_outbound",
        "    - name: unused\n      type: fqdn\n      destination: localhost\n",
    );
    ok(server.cli(&["workspace", "update", "--file", &internet]));
    let shown: Value =
        serde_json::from_str(&ok(server.cli(&["workspace", "show", "-o", "json"]))).unwrap();
    assert_eq!(
        shown["clusters_on_older_settings"]
            .as_array()
            .map(|c| c.len()),
        Some(2),
        "{shown:#}"
    );
    // Deleting a session lets its cluster idle; the teardown removes its namespace.
    ok(server.cli(&["session", "delete", "--name", "one"]));
    wait_for_or(
        "the first cluster's namespace to be removed",
        Duration::from_secs(60),
        || (namespaces(&prefix).len() == 1).then_some(()),
        || server.log_tails(),
    );
    ok(server.cli(&["session", "create", "--name", "three"]));
    assert_eq!(
        run(&server, "three", &probe_code(&targets)),
        "open open EHOSTUNREACH"
    );

    // A Spark Connect session's driver serves Connect inside its cluster's namespace; a client
    // on the server's host reaches it through the server's endpoint, at the address the
    // server listens on, with its token.
    let connect: Value = serde_json::from_str(&ok(server.cli(&[
        "session",
        "create",
        "--name",
        "connect",
        "--connect",
        "-o",
        "json",
    ])))
    .unwrap();
    let url = connect["connect_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("sc://{}:", net.addr("srv"))),
        "{connect:#}"
    );
    // Not `localhost`, so the client names its token `x-spool-token` (PySpark sends `token`
    // only over TLS there).
    let connect_client = |mode: &str, token: &str| {
        Command::new("ip")
            .args(["netns", "exec", &net.ns("srv")])
            .arg(spool_test::connect_client_python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/connect_client.py"))
            .args([url, mode])
            .env("SPOOL_TOKEN", token)
            .output()
            .unwrap()
    };
    let client = connect_client("run", admin.trim());
    assert_eq!(
        stdout(&client).lines().last(),
        Some("connect ok"),
        "{}",
        stderr(&client)
    );
    let refused = connect_client("refused", "spool_wrong");
    assert!(
        stdout(&refused).contains("UNAUTHENTICATED"),
        "{}\n{}",
        stdout(&refused),
        stderr(&refused)
    );
    assert_eq!(namespaces(&prefix).len(), 3);
    ok(server.cli(&["session", "delete", "--name", "connect"]));
    wait_for_or(
        "the Connect session's namespace to be removed",
        Duration::from_secs(60),
        || (namespaces(&prefix).len() == 2).then_some(()),
        || server.log_tails(),
    );

    // A crash: the server is killed, then cluster two's processes die too. The restart
    // adopts cluster three (its session still answers) and reaps cluster two's namespace.
    let two_ns = format!("{prefix}{two_id}");
    assert!(
        namespaces(&prefix).contains(&two_ns),
        "{:?}",
        namespaces(&prefix)
    );
    server.kill9();
    for pid in output_of("ip", &["netns", "pids", &two_ns]).split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
    server.restart();
    assert!(
        !namespaces(&prefix).contains(&two_ns),
        "cluster two's namespace was not reaped: {:?}",
        namespaces(&prefix)
    );
    assert_eq!(namespaces(&prefix).len(), 1);
    assert_eq!(run(&server, "three", "print(1 + 1)"), "2");

    // A graceful stop tears everything down: no namespace, veth or rule is left.
    server.stop();
    assert_eq!(namespaces(&prefix), Vec::<String>::new());
    // The kernel destroys a deleted namespace's devices in the background: the host's ends
    // of the veth pairs go within moments.
    let veth_prefix = format!("s{}h", &instance[..5]);
    wait_for_or(
        "the veth pairs to be gone",
        Duration::from_secs(10),
        || {
            let links = output_of("ip", &["-n", &net.ns("srv"), "-o", "link"]);
            (!links.contains(&veth_prefix)).then_some(())
        },
        || {
            format!(
                "{}\n{}",
                output_of("ip", &["-n", &net.ns("srv"), "-o", "link"]),
                output_of(
                    "sh",
                    &[
                        "-c",
                        "for p in /proc/[0-9]*; do echo \"$(readlink $p/ns/net) $(basename $p) $(tr '\\0' ' ' < $p/cmdline | cut -c1-160)\"; done | sort"
                    ]
                )
            )
        },
    );
    let tables = output_of(
        "ip",
        &["netns", "exec", &net.ns("srv"), "nft", "list", "tables"],
    );
    assert!(!tables.contains(instance), "{tables}");
    for service in &mut services {
        let _ = service.kill();
        let _ = service.wait();
    }
    server.finish();
}

/// Why isolation cannot be tested here, if it cannot.
fn why_not() -> Option<String> {
    if !rustix_is_root() {
        return Some("network isolation needs root".into());
    }
    if !Path::new("/usr/sbin/nft").exists() {
        return Some("nftables is not installed (`cargo xtask setup` installs it)".into());
    }
    None
}

fn rustix_is_root() -> bool {
    output_of("id", &["-u"]).trim() == "0"
}
