//! Multi-host serverless compute: a server host and two worker hosts as network namespaces joined
//! by veth links to a bridge (addresses only inside those namespaces), `spool agent` on each
//! worker host, a job whose executors run on both, and a worker host that dies mid-job.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::Path;
use std::process::Child;

use serde_json::Value;
use spool_test::netns::Net;
use spool_test::{TestServer, deadline, stderr, stdout, tail, wait_for_or};

/// Starts an agent; host `a` gets an empty runtime cache of its own, so its runtime must come
/// from the server.
fn start_agent(net: &Net, server: &TestServer, host: &str, token: &str, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join(format!("agent-{host}.log"))).unwrap();
    let cache = if host == "a" {
        dir.join("cache-a")
    } else {
        spool_test::cache_dir()
    };
    net.spawn_agent(
        Path::new(env!("CARGO_BIN_EXE_spool")),
        host,
        &server.url(),
        token,
        &dir.join(host),
        &cache,
        log,
    )
    .unwrap()
}

/// The master's `/json/` status of the server's live cluster, read from the server's host.
fn master_status(net: &Net, server: &TestServer) -> Option<Value> {
    let clusters: Value =
        serde_json::from_slice(&server.cli(&["cluster", "list", "-o", "json"]).stdout).ok()?;
    let ui = clusters
        .as_array()?
        .iter()
        .find_map(|c| c["master_ui_url"].as_str().map(str::to_string))?;
    let text = net.python(
        "srv",
        &format!(
            "import urllib.request;print(urllib.request.build_opener(urllib.request.ProxyHandler({{}})).open('{ui}/json/').read().decode())"
        ),
    );
    serde_json::from_str(&text).ok()
}

/// What a timed-out wait shows: the agents' logs and the server's log tails.
fn diagnostics(server: &TestServer, dir: &Path) -> String {
    let agent = |host: &str| {
        tail(
            &std::fs::read_to_string(dir.join(format!("agent-{host}.log"))).unwrap_or_default(),
            40,
        )
    };
    format!(
        "agent a (tail):\n{}\nagent b (tail):\n{}\n{}",
        agent("a"),
        agent("b"),
        server.log_tails()
    )
}

/// Waits for what a job with an executor on each of `hosts` needs, one step at a time, each
/// with the deadline of what it waits for: a worker on every host registered with the master
/// (its JVM started, after the agent has the runtime), then executors running on all of them.
fn wait_for_executors_on(net: &Net, server: &TestServer, hosts: &[String], dir: &Path) {
    wait_for_or(
        &format!("workers on {hosts:?} registered with the master"),
        deadline::COLD_START,
        || {
            let status = master_status(net, server)?;
            hosts
                .iter()
                .all(|h| alive_hosts(&status).contains(h))
                .then_some(())
        },
        || diagnostics(server, dir),
    );
    wait_for_or(
        &format!("executors running on {hosts:?}"),
        deadline::EXECUTOR,
        || (busy_hosts(&master_status(net, server)?) == hosts).then_some(()),
        || diagnostics(server, dir),
    );
}

/// Worker hosts registered with the master and alive.
fn alive_hosts(status: &Value) -> Vec<String> {
    status["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["state"] == "ALIVE")
        .filter_map(|w| w["host"].as_str().map(str::to_string))
        .collect()
}

/// Worker hosts with an executor running now.
fn busy_hosts(status: &Value) -> Vec<String> {
    let mut hosts: Vec<String> = status["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["state"] == "ALIVE" && w["coresused"].as_i64().unwrap_or(0) > 0)
        .filter_map(|w| w["host"].as_str().map(str::to_string))
        .collect();
    hosts.sort();
    hosts
}

/// A job with an executor on each worker host. Spark waits until both executors have
/// registered before it schedules a task (`minRegisteredResourcesRatio`), so the tasks spread
/// over both hosts however long an agent takes to get its runtime.
const JOB: &str = "name: NAME\ntype: spark\ncode: ./src\nentry:\n  file: spread.py\nargs: --seconds SECONDS\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 2\n  spark.scheduler.minRegisteredResourcesRatio: \"1.0\"\n  spark.scheduler.maxRegisteredResourcesWaitingTime: 600s\nresources:\n  instance_type: standard_e4s_v3\n  runtime_version: \"3.4\"\n";

const SCRIPT: &str = r#"import argparse, os, time
from pyspark.sql import SparkSession
parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=float)
seconds = parser.parse_args().seconds
spark = SparkSession.builder.getOrCreate()
def task(i):
    time.sleep(seconds)
    return os.environ.get("SPARK_LOCAL_IP", "?")
hosts = sorted(set(spark.sparkContext.parallelize(range(8), 8).map(task).collect()))
print("executor hosts:", " ".join(hosts))
spark.stop()
"#;

fn write_job(dir: &Path, name: &str, seconds: f64) -> String {
    let job = dir.join(name);
    std::fs::create_dir_all(job.join("src")).unwrap();
    std::fs::write(job.join("src/spread.py"), SCRIPT).unwrap();
    let text = JOB
        .replace("SECONDS", &seconds.to_string())
        .replace("NAME", &format!("{name}-{}", std::process::id()));
    std::fs::write(job.join("job.yml"), text).unwrap();
    job.join("job.yml").display().to_string()
}

/// Builds `conda`'s environment on the host, into the cache every test server shares: uv cannot
/// reach a package index from inside the test's network namespaces, so a session there finds it
/// built instead of building it. A session on a host server builds it; the session is deleted as
/// soon as the environment is listed (its driver need not start).
fn build_environment_on_the_host(conda: &Path, package: &str) {
    let host = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let out = host.cli(&[
        "session",
        "create",
        "--name",
        "build-env",
        "--conda-file",
        conda.to_str().unwrap(),
        "--no-wait",
    ]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), host.log());
    spool_test::wait_for(
        "the environment to be built on the host",
        spool_test::deadline::ENV_BUILD,
        || {
            let out = host.cli(&["env", "list", "-o", "json"]);
            let envs: Value = serde_json::from_slice(&out.stdout).ok()?;
            envs.as_array()?
                .iter()
                .any(|e| e["requirements"].to_string().contains(package))
                .then_some(())
        },
    );
    let out = host.cli(&["session", "delete", "--name", "build-env"]);
    assert!(out.status.success(), "{}", stderr(&out));
    host.finish();
}

#[test]
fn a_job_runs_executors_on_two_agent_hosts_and_fails_clearly_when_one_dies() {
    let net = match Net::create() {
        Ok(net) => net,
        Err(reason) => {
            println!("skipped: network namespaces cannot be created here: {reason}");
            return;
        }
    };
    let conda = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/envs/small.yml");
    build_environment_on_the_host(&conda, "tabulate");
    let config = format!(
        "[serverless]\nadvertise_address = \"{}\"\n\n[agents]\nheartbeat_timeout = \"3s\"\nworkers_on_server = false\n",
        net.addr("srv")
    );
    let server = TestServer::start_in_netns(
        env!("CARGO_BIN_EXE_spool"),
        &net.ns("srv"),
        &net.addr("srv"),
        &[],
        Some(&config),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut agents = Vec::new();
    for host in ["a", "b"] {
        let out = server.cli(&["agents", "add", host, "-o", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        agents.push(start_agent(
            &net,
            &server,
            host,
            created["token"].as_str().unwrap(),
            dir.path(),
        ));
    }
    wait_for_or(
        "both agents to connect",
        deadline::STATE_CHANGE,
        || {
            let list: Value =
                serde_json::from_slice(&server.cli(&["agents", "list", "-o", "json"]).stdout)
                    .ok()?;
            (list
                .as_array()?
                .iter()
                .filter(|a| a["state"] == "connected")
                .count()
                == 2)
                .then_some(())
        },
        || diagnostics(&server, dir.path()),
    );

    // A job with two executors: one on each worker host, as the master reports while it runs.
    let job = write_job(dir.path(), "spread", 3.0);
    let out = server.cli(&["job", "create", "--file", &job]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    let name = format!("spread-{}", std::process::id());
    let both = vec![net.addr("a"), net.addr("b")];
    // Host `a` has no runtime: the first worker ordered there makes it fetch one.
    let marker = dir.path().join("cache-a/runtimes/3.4/spool-runtime.json");
    wait_for_or(
        "the runtime to reach host a and be unpacked",
        deadline::RUNTIME_TRANSFER,
        || marker.exists().then_some(()),
        || diagnostics(&server, dir.path()),
    );
    wait_for_executors_on(&net, &server, &both, dir.path());
    let out = server.cli(&["job", "stream", "--name", &name]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(&format!("executor hosts: {} {}", both[0], both[1])),
        "{}",
        stdout(&out)
    );

    // Host `a` got its runtime from the server and runs its worker from that copy.
    let log = std::fs::read_to_string(dir.path().join("agent-a.log")).unwrap();
    assert!(log.contains("fetched runtime 3.4 from the server"), "{log}");
    let worker_uses_own_copy = net.pids("a").iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("cache-a/runtimes/3.4/venv"))
            .unwrap_or(false)
    });
    assert!(
        worker_uses_own_copy,
        "host a's worker does not run from its own runtime"
    );

    // A session's environment reaches executors on the agent hosts as an archive Spark
    // unpacks next to them (the agents have no copy of the environment's virtualenv).
    let out = server.cli(&[
        "session",
        "create",
        "--name",
        "env-on-agents",
        "--executors",
        "2",
        // As the job: the session is ready once both executors have registered.
        "--conf",
        "spark.scheduler.minRegisteredResourcesRatio=1.0",
        "--conf",
        "spark.scheduler.maxRegisteredResourcesWaitingTime=600s",
        "--conda-file",
        conda.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    let code = "import os\nprint(sorted(set(sc.parallelize(range(8), 8).map(lambda _: ('/spoolenv/' in __import__('tabulate').__file__, os.environ.get('SPARK_LOCAL_IP'))).collect())))";
    let out = server.cli(&["session", "run", "--name", "env-on-agents", code]);
    assert!(
        stdout(&out).contains(&format!("[(True, '{}'), (True, '{}')]", both[0], both[1])),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        server
            .cli(&["session", "delete", "--name", "env-on-agents"])
            .status
            .success()
    );

    // A long job; worker host `b` dies while its executor runs.
    let job = write_job(dir.path(), "long", 60.0);
    let out = server.cli(&["job", "create", "--file", &job]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    let name = format!("long-{}", std::process::id());
    wait_for_executors_on(&net, &server, &both, dir.path());
    net.kill_host("b");
    let failed = wait_for_or(
        "the job to fail",
        deadline::STATE_CHANGE,
        || {
            let job: Value = serde_json::from_slice(
                &server
                    .cli(&["job", "show", "--name", &name, "-o", "json"])
                    .stdout,
            )
            .ok()?;
            (job["status"] != "Running" && job["status"] != "Starting").then_some(job)
        },
        || diagnostics(&server, dir.path()),
    );
    assert_eq!(failed["status"], "Failed", "{failed}");
    let message = failed.to_string();
    assert!(
        message.contains("agent `b` was lost: no heartbeat"),
        "{message}\n{}",
        server.log()
    );
    let list: Value =
        serde_json::from_slice(&server.cli(&["agents", "list", "-o", "json"]).stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "b" && a["state"] == "lost"),
        "{list}"
    );

    // A network loss longer than the heartbeat timeout makes agent `a` lost; it reconnects
    // by itself when the link is back.
    let agent_state = |name: &str| -> Option<String> {
        let list: Value =
            serde_json::from_slice(&server.cli(&["agents", "list", "-o", "json"]).stdout).ok()?;
        list.as_array()?
            .iter()
            .find(|a| a["name"] == name)
            .and_then(|a| a["state"].as_str().map(str::to_string))
    };
    net.set_link("a", false).unwrap();
    wait_for_or(
        "agent a to be lost",
        deadline::STATE_CHANGE,
        || (agent_state("a")? == "lost").then_some(()),
        || diagnostics(&server, dir.path()),
    );
    net.set_link("a", true).unwrap();
    wait_for_or(
        "agent a to reconnect",
        deadline::STATE_CHANGE,
        || (agent_state("a")? == "connected").then_some(()),
        || diagnostics(&server, dir.path()),
    );

    // Agent `a` stops its workers when told to stop; nothing is left on its host.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agents[0].id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = agents[0].wait();
    let _ = agents[1].wait();
    wait_for_or(
        "nothing left on host a",
        deadline::STOP,
        || net.pids("a").is_empty().then_some(()),
        || diagnostics(&server, dir.path()),
    );
    server.finish();
}
