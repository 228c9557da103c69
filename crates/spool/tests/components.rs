//! Registered components end to end: the shakespeare sample's two components registered with
//! the real CLI, then a pipeline naming them (`azureml:<name>:<version>` and `@latest`) run on
//! real Spark to Completed.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use spool_test::{TestServer, deadline, job_json, job_name, stderr, stdout, wait_for_status};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/components")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// The JSON a command printed, or a panic with its output.
fn printed(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "command failed:\n{}\n{}",
        stdout(out),
        stderr(out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Smaller than the sample's own conf, so the 2-core test machine runs it beside others.
const SMALL: &[&str] = &[
    "--set",
    "conf.spark.driver.memory=1g",
    "--set",
    "conf.spark.executor.cores=1",
    "--set",
    "conf.spark.executor.memory=1g",
];

#[test]
fn a_pipeline_runs_registered_components_by_version_and_by_latest() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);

    // What cannot run is refused at registration, at its line and column.
    let out = server.cli(&["component", "create", "--file", &fixture("bad_args.yml")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bad_args.yml:9:7: `args`: Inputs to job does not contain 'not_declared' referenced in args"),
        "{}",
        stderr(&out)
    );

    // The sample's components, as written (`version: 1`), smaller.
    let sample_file = fixture("sample_word/component.yml");
    let count_file = fixture("word_count/component.yml");
    let sample = [
        &["component", "create", "--file", &sample_file][..],
        SMALL,
        &["--set", "conf.spark.dynamicAllocation.maxExecutors=1"],
    ]
    .concat();
    let created = printed(&server.cli(&sample));
    assert_eq!(created["id"], "azureml:sample_spark_component:1");
    assert_eq!(created["inputs"]["sample_rate"]["default"], "0.01");
    let count = [
        &["component", "create", "--file", &count_file][..],
        SMALL,
        &["--set", "conf.spark.executor.instances=1"],
    ]
    .concat();
    assert_eq!(printed(&server.cli(&count))["version"], "1");
    // The same version again is a conflict that says what to pass.
    let again = server.cli(&count);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--version 2"), "{}", stderr(&again));
    // A second version, which `@latest` picks: its description tells the run which one ran.
    let second = [
        &count[..],
        &[
            "--version",
            "2",
            "--set",
            "description=word count, second version",
        ],
    ]
    .concat();
    assert_eq!(printed(&server.cli(&second))["version"], "2");
    let latest = printed(&server.cli(&[
        "component",
        "show",
        "--name",
        "wordcount_spark_component",
        "--label",
        "latest",
        "-o",
        "json",
    ]));
    assert_eq!(latest["version"], "2");
    let listed = printed(&server.cli(&["component", "list", "-o", "json"]));
    let names: Vec<String> = listed["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        ["sample_spark_component:1", "wordcount_spark_component:2"]
    );

    // An unknown component is the step's error, in the SDK's words.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::copy(
        fixtures().join("data/shakespeare.txt"),
        dir.path().join("data/shakespeare.txt"),
    )
    .unwrap();
    let unknown = dir.path().join("pipeline.yml");
    std::fs::write(
        &unknown,
        std::fs::read_to_string(fixtures().join("pipeline.yml"))
            .unwrap()
            .replace(
                "azureml:sample_spark_component:1",
                "azureml:sample_spark_component:7",
            ),
    )
    .unwrap();
    let out = server.cli(&["job", "create", "--file", unknown.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Asset sample_spark_component with version 7 does not exist"),
        "{}",
        stderr(&out)
    );

    // The pipeline, with every word sampled.
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        &fixture("pipeline.yml"),
        "--set",
        "inputs.sample_rate=1.0",
    ]);
    let pipeline = job_name(&out);
    let done = wait_for_status(
        &server,
        &pipeline,
        &["Completed", "Failed", "Canceled"],
        deadline::COLD_START * 2,
    );
    assert_eq!(
        done["status"],
        "Completed",
        "{done:#}\n{}",
        server.log_tails()
    );
    let node = |name: &str| -> String {
        done["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == name)
            .unwrap_or_else(|| panic!("no node {name}: {done:#}"))["job_name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let count_job = node("count_word");
    assert_eq!(
        job_json(&server, &count_job)["description"],
        "word count, second version"
    );
    let stdout_file = server
        .data_dir()
        .join("jobs")
        .join(&count_job)
        .join("logs/azureml/driver/stdout");
    let counted = std::fs::read_to_string(&stdout_file).unwrap();
    for line in ["to: 3", "be: 2", "question: 1", "suffer: 1"] {
        assert!(
            counted.lines().any(|l| l.trim() == line),
            "`{line}` not in the count node's driver stdout:\n{counted}"
        );
    }
    server.finish();
}
