//! Attached Spark pools: a standalone master and worker started by the test (as a user's own
//! cluster), attached by name, used by a job and a session, detached; Spool never stops it.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::Path;

use serde_json::Value;
use spool_test::{StandalonePool, TestServer, stderr, stdout};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_job_and_a_session_run_on_an_attached_pool_which_spool_never_stops() {
    let pool = StandalonePool::start(2, "2g");
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let dir = tempfile::tempdir().unwrap();

    // A Synapse attach file is told what to write instead.
    let synapse = dir.path().join("synapse.yml");
    write(
        &synapse,
        "name: syn\ntype: synapsespark\nresource_id: /subscriptions/s/resourceGroups/g/providers/Microsoft.Synapse/workspaces/w/bigDataPools/p\n",
    );
    let out = server.cli(&["compute", "attach", "--file", synapse.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("type: sparkpool"), "{}", stderr(&out));
    assert!(stderr(&out).contains("synapse.yml:2:7"), "{}", stderr(&out));

    // A master that does not answer is not attached.
    let dead = dir.path().join("dead.yml");
    write(
        &dead,
        &format!(
            "name: dead\ntype: sparkpool\nmaster_url: spark://127.0.0.1:9\nmaster_ui_url: http://127.0.0.1:{}\n",
            spool_test::free_port()
        ),
    );
    let out = server.cli(&["compute", "attach", "--file", dead.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no Spark master answered"),
        "{}",
        stderr(&out)
    );

    let file = dir.path().join("pool.yml");
    write(
        &file,
        &format!(
            "name: team-pool\ntype: sparkpool\nmaster_url: {}\nmaster_ui_url: {}\ndescription: the data team's pool\ntags:\n  team: data\n",
            pool.master_url, pool.ui_url
        ),
    );
    let out = server.cli(&[
        "compute",
        "attach",
        "--file",
        file.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    let attached: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(attached["spark_version"], "3.4.4");
    assert_eq!(attached["runtime"], "3.4");
    assert_eq!(attached["identity"]["type"], "system_assigned");
    assert_eq!(attached["health"]["status"], "ALIVE");
    assert_eq!(attached["health"]["alive_workers"], 1);
    // Recorded at attach time: one worker of 2 cores and 2 GiB.
    assert_eq!(
        attached["attached_capacity"],
        serde_json::json!({"workers": 1, "cores": 2, "memory_mb": 2048})
    );

    // A job naming the pool runs its executors there.
    let job = dir.path().join("job/job.yml");
    write(
        &dir.path().join("job/src/count.py"),
        "from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\nprint('master', spark.sparkContext.master)\nprint('count', spark.sparkContext.parallelize(range(1000), 4).map(lambda x: x * 2).count())\nspark.stop()\n",
    );
    write(
        &job,
        "type: spark\ncode: ./src\nentry:\n  file: count.py\ncompute: azureml:team-pool\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\n",
    );
    let out = server.cli(&["job", "create", "--file", job.to_str().unwrap(), "--stream"]);
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        server.log()
    );
    // The driver's output goes to stderr; stdout carries the job.
    assert!(stderr(&out).contains("count 1000"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("master {}", pool.master_url)),
        "{}",
        stderr(&out)
    );
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["status"], "Completed", "{job:#}");
    let jobs: Value =
        serde_json::from_slice(&server.cli(&["job", "list", "-o", "json"]).stdout).unwrap();
    let recorded = &jobs.as_array().unwrap()[0];
    assert_eq!(recorded["compute"], "team-pool", "{recorded}");
    // An attached pool acts as its own identity by default (serverless would be the user's).
    assert_eq!(recorded["identity"], "managed", "{recorded}");
    let status = pool.status().unwrap();
    assert_eq!(
        status["completedapps"].as_array().unwrap().len(),
        1,
        "{status}"
    );

    // A session on the pool: the pool's runtime; another runtime is refused.
    let out = server.cli(&[
        "session",
        "create",
        "--compute",
        "team-pool",
        "--runtime",
        "3.5",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pool `team-pool` runs Spark 3.4.4"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&[
        "session",
        "create",
        "--name",
        "on-pool",
        "--compute",
        "team-pool",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    let session: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(session["state"], "idle");
    assert_eq!(session["compute"], "team-pool");
    assert_eq!(session["identity"], "user_identity");
    assert_eq!(session["runtime"], "3.4");
    let out = server.cli(&[
        "session",
        "run",
        "--name",
        "on-pool",
        "print(sc.master, spark.range(100).count())",
    ]);
    assert!(
        stdout(&out).contains(&format!("{} 100", pool.master_url)),
        "{}",
        stdout(&out)
    );

    // `show` reports live health: the session's application runs on the pool.
    let out = server.cli(&["compute", "show", "--name", "team-pool", "-o", "json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["health"]["active_apps"], 1, "{shown}");
    assert_eq!(shown["tags"]["team"], "data");

    // Detaching with a live session is refused unless forced; forcing ends the session.
    let out = server.cli(&["compute", "detach", "--name", "team-pool"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let out = server.cli(&["compute", "detach", "--name", "team-pool", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["session", "show", "--name", "on-pool", "-o", "json"]);
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ended["state"], "killed", "{ended}");
    let computes: Value =
        serde_json::from_slice(&server.cli(&["compute", "list", "-o", "json"]).stdout).unwrap();
    assert_eq!(computes, serde_json::json!([]));

    // Spool stopped everything it started, and nothing of the pool.
    server.finish();
    assert!(pool.is_running());
    assert_eq!(pool.status().unwrap()["status"], "ALIVE");
}

#[test]
fn an_attached_pool_survives_restarts_and_takes_jobs_after_them() {
    let pool = StandalonePool::start(2, "2g");
    // A short teardown window: a pool taken for an idle serverless cluster would be gone soon.
    let mut server = TestServer::start(
        env!("CARGO_BIN_EXE_spool"),
        &["--teardown-after", "1s", "--prewarm", "0"],
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.yml");
    write(
        &file,
        &format!(
            "name: kept-pool\ntype: sparkpool\nmaster_url: {}\nmaster_ui_url: {}\n",
            pool.master_url, pool.ui_url
        ),
    );
    let out = server.cli(&["compute", "attach", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());

    // A crash, then a clean restart: the pool is attached after both.
    server.kill9();
    server.restart();
    server.stop();
    server.restart();
    // Past several teardown windows, the pool is listed and its cluster is still `attached`.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let computes: Value =
        serde_json::from_slice(&server.cli(&["compute", "list", "-o", "json"]).stdout).unwrap();
    assert_eq!(computes[0]["name"], "kept-pool", "{computes}");
    let out = server.cli(&["cluster", "list", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let clusters: Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<&str> = clusters
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["state"].as_str())
        .collect();
    assert_eq!(states, ["attached"], "{clusters}\n{}", server.log());

    // And a job naming it runs there.
    let job = dir.path().join("job/job.yml");
    write(
        &dir.path().join("job/src/count.py"),
        "from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\nprint('count', spark.sparkContext.parallelize(range(100), 2).count())\nspark.stop()\n",
    );
    write(
        &job,
        "type: spark\ncode: ./src\nentry:\n  file: count.py\ncompute: azureml:kept-pool\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\n",
    );
    let out = server.cli(&["job", "create", "--file", job.to_str().unwrap(), "--stream"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    assert!(stderr(&out).contains("count 100"), "{}", stderr(&out));
    server.finish();
    assert!(pool.is_running());
}
