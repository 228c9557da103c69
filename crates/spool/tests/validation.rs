//! Invalid job files are rejected before anything is created, each with its position, field,
//! value and what is accepted. Runs the real server and CLI; no Spark is started.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use spool_test::{TestServer, shared_data, stderr, stdout};

/// (fixture, expected text after the file name). Positions are `line:column`.
const CASES: &[(&str, &str)] = &[
    ("01_unknown_field.yml", ":21:1: `retries`: unknown field"),
    (
        "02_bad_memory.yml",
        ":9:26: `conf.spark.executor.memory`: String does not match expected pattern. (got `1gb`)",
    ),
    (
        "03_missing_conf.yml",
        ":6:3: `conf`: spark.driver.cores, spark.driver.memory, spark.executor.cores, spark.executor.memory and spark.executor.instances are mandatory fields.",
    ),
    (
        "04_dynamic_min_above_max.yml",
        ":11:41: `conf.spark.dynamicAllocation.minExecutors`: Dynamic min executors should be bigger than 0 and min executors should be equal or less than max executors.",
    ),
    (
        "05_mount_mode.yml",
        ":15:11: `inputs.data.mode`: Input 'data' is using 'ro_mount' mode, only 'direct' is supported for Spark job",
    ),
    (
        "06_undeclared_input.yml",
        ":20:7: `args`: Inputs to job does not contain 'dataset' referenced in args",
    ),
    (
        "07_unknown_instance_type.yml",
        ":22:18: `resources.instance_type`: Instance type must be specified for the list of standard_e4s_v3,standard_e8s_v3,standard_e16s_v3,standard_e32s_v3,standard_e64s_v3 (got `standard_nc6`)",
    ),
    (
        "08_unknown_runtime.yml",
        ":23:20: `resources.runtime_version`: runtime version should be either 3.4, 3.5 or 4.3 (got `3.2`)",
    ),
    (
        "09_compute_and_resources.yml",
        ":21:10: `compute`: Only one of either compute or resources may be specified for Spark job",
    ),
    (
        "10_class_name_without_jars.yml",
        ":4:15: `entry.class_name`: Classpath is not supported, please use 'file' to define the entry file.",
    ),
    (
        "11_missing_entry_file.yml",
        ":4:9: `entry.file`: Entry doesn't exist. (got `missing.py`)",
    ),
    (
        "12_missing_code_folder.yml",
        ":2:7: `code`: Code path doesn't exist. (got `../no_such_folder`)",
    ),
    (
        "13_duplicate_py_files.yml",
        ":7:5: `py_files[1]`: py_files must not contain duplicate entries. (got `count.py`)",
    ),
    ("14_yaml_syntax.yml", ":4:5: `(document)`: invalid YAML:"),
    (
        "15_input_not_uploaded.yml",
        ":14:11: `inputs.data.path`: input `data`: no file at `azureml://datastores/workspaceblobstore/paths/data/not_uploaded.csv`",
    ),
    (
        "16_path_escapes_datastore.yml",
        ":14:11: `inputs.data.path`: path `../../../etc/passwd` leaves its datastore root",
    ),
    (
        "17_bad_identity.yml",
        ":22:9: `identity.type`: unknown identity type (got `root`)",
    ),
    (
        "18_executor_too_big_for_instance.yml",
        ":9:26: `conf.spark.executor.memory`: one executor needs 48 GiB but instance type `standard_e4s_v3` has 32 GiB (got `48g`)",
    ),
];

#[test]
fn invalid_job_files_are_rejected_with_position_and_create_nothing() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
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

    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let (_, expected) = CASES
            .iter()
            .find(|(name, _)| *name == file)
            .unwrap_or_else(|| panic!("fixture {file} has no expectation in CASES"));
        let out = server.cli(&["job", "create", "--file", path.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "{file} was accepted: {}",
            stdout(&out)
        );
        assert!(
            stdout(&out).is_empty(),
            "{file}: nothing may go to stdout on rejection"
        );
        assert!(
            err.contains(&format!("{file}{expected}")),
            "{file}: expected `{file}{expected}` in:\n{err}"
        );
        seen += 1;
    }
    assert_eq!(seen, CASES.len(), "every case has a fixture");

    // Nothing was created by any of them.
    let out = server.cli(&["job", "list", "-o", "json"]);
    assert!(out.status.success());
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        jobs.as_array().unwrap().len(),
        0,
        "rejected jobs must not exist: {jobs}"
    );
    server.finish();
}

#[test]
fn capacity_that_can_never_fit_is_rejected_at_submit_with_the_numbers() {
    let server = TestServer::start(
        env!("CARGO_BIN_EXE_spool"),
        &[],
        Some("[capacity]\ncores = 2\nmemory = \"8g\"\n"),
    );
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
    let job =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid_count.yml");
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        job.to_str().unwrap(),
        "--set",
        "conf.spark.executor.instances=6",
        "--set",
        "conf.spark.executor.memory=2g",
    ]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("the job needs 7 cores and 14 GiB")
            && err.contains(
                "can never give more than 10 cores (2 cores x 5 oversubscription) and 8 GiB"
            ),
        "{err}"
    );
    let jobs: serde_json::Value =
        serde_json::from_slice(&server.cli(&["job", "list", "-o", "json"]).stdout).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 0);
    server.finish();
}

#[test]
fn instance_types_from_the_config_file_bound_each_process() {
    let config = "[[instance_types]]\nname = \"Local_Small\"\ncores = 1\nmemory = \"1g\"\n";
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], Some(config));
    let job =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid_count.yml");
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        job.to_str().unwrap(),
        "--set",
        "resources.instance_type=local_small",
        "--set",
        "conf.spark.executor.memory=2g",
    ]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("`conf.spark.executor.memory`: one executor needs 2 GiB but instance type `local_small` has 1 GiB"),
        "{err}"
    );
    let out = server.cli(&["job", "list", "-o", "json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    server.finish();
}

#[test]
fn a_missing_java_is_named_with_what_to_install() {
    let dir = std::env::temp_dir().join(format!("spool-nojava-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spool"))
        .args(["runtime", "install", "3.4", "--cache-dir"])
        .arg(&dir)
        .env("JAVA_HOME", "/nonexistent-jdk")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("Java 17 or newer is needed to run Spark 3.4.4, but `/nonexistent-jdk/bin/java` was not found")
            && err.contains("hint: install a JDK 17"),
        "{err}"
    );
    assert!(
        !dir.join("runtimes").exists(),
        "nothing is installed without Java"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// "Billion laughs": seven levels of nine aliases, 4.8 million strings from 272 bytes.
fn alias_bomb() -> String {
    let mut text = format!("a: &a [{}]\n", ["\"lol\""; 9].join(","));
    for (previous, name) in "abcdef".chars().zip("bcdefg".chars()) {
        let aliases = vec![format!("*{previous}"); 9].join(",");
        text.push_str(&format!("{name}: &{name} [{aliases}]\n"));
    }
    text
}

#[test]
fn yaml_alias_bombs_from_users_are_rejected_and_the_server_keeps_answering() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let conda = format!("{}dependencies: *g\n", alias_bomb());
    assert!(conda.len() < 330, "{}", conda.len());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (bombs, version) = runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        // Several at once, and another request among them: parsing is off the async workers.
        let mut bombs = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let request = client
                .post(format!("{}/sessions", server.url()))
                .basic_auth("admin", Some(&server.token))
                .json(&serde_json::json!({
                    "kind": "pyspark",
                    "conf": {"spark.synapse.library.python.env": conda},
                }));
            bombs.spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<serde_json::Value>().await.unwrap())
            });
        }
        let version = client
            .get(format!("{}/version", server.url()))
            .basic_auth("admin", Some(&server.token))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        (bombs.join_all().await, version)
    });
    assert_eq!(version, 200);
    assert_eq!(bombs.len(), 4);
    for (status, body) in &bombs {
        assert_eq!(*status, 400, "{body}");
        let msg = body["msg"]
            .as_str()
            .unwrap_or_else(|| panic!("no msg: {body}"));
        assert!(
            msg.contains("spark.synapse.library.python.env:5:7:")
                && msg.contains("more than the 100000 accepted")
                && msg.contains("write the values out without aliases"),
            "{msg}"
        );
    }

    // An attach file, through the CLI.
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool.yml");
    std::fs::write(&pool, format!("{}name: *g\n", alias_bomb())).unwrap();
    let out = server.cli(&["compute", "attach", "--file", pool.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("pool.yml:5:7: `(document)`: a list anchored here has 66430 nodes")
            && err.contains("write the values out without aliases"),
        "{err}"
    );

    // Nothing was created.
    let sessions: serde_json::Value =
        serde_json::from_slice(&server.cli(&["session", "list", "-o", "json"]).stdout).unwrap();
    assert_eq!(sessions, serde_json::json!([]));
    server.finish();
}
