//! Pipeline jobs through the real server, CLI and Spark: the public samples' shapes, reuse,
//! forced reruns, failing branches, cancel, and invalid pipelines refused before anything is
//! created.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use serde_json::Value;
use spool_test::{TestServer, deadline, job_json, stderr, stdout, wait_for_status};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipelines")
}

/// A copy of a fixture folder to work in (the test may add built files to it). `words` is the
/// README's example.
fn copy_fixture(name: &str, into: &Path) -> PathBuf {
    let to = into.join(name);
    let from = if name == "words" {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/words-pipeline")
    } else {
        fixtures().join(name)
    };
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success());
    to
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn submit(server: &TestServer, file: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "job",
        "create",
        "--file",
        file.to_str().unwrap(),
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(server.cli(&args))).unwrap()
}

fn node<'a>(pipeline: &'a Value, name: &str) -> &'a Value {
    pipeline["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == name)
        .unwrap_or_else(|| panic!("no node {name}: {pipeline:#}"))
}

fn driver_stdout(server: &TestServer, job: &str) -> String {
    std::fs::read_to_string(
        server
            .data_dir()
            .join("jobs")
            .join(job)
            .join("logs/azureml/driver/stdout"),
    )
    .unwrap_or_default()
}

fn wait_pipeline(server: &TestServer, name: &str) -> Value {
    wait_for_status(
        server,
        name,
        &["Completed", "Failed", "Canceled"],
        deadline::COLD_START * 3,
    )
}

/// The greeting sample ships a zipped Python package and a jar: built here from sources.
fn build_greeting(dir: &Path) {
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import shutil, sys; shutil.make_archive(sys.argv[1], 'zip', sys.argv[2])")
        .arg(dir.join("src/utils"))
        .arg(dir.join("utils"))
        .status()
        .unwrap();
    assert!(status.success(), "zip utils");
    let marker = spool_test::cache_dir().join(format!(
        "runtimes/{}/spool-runtime.json",
        spool_test::TEST_RUNTIME
    ));
    let runtime: Value = serde_json::from_str(&std::fs::read_to_string(marker).unwrap()).unwrap();
    let spark_home = runtime["spark_home"].as_str().unwrap();
    let build = dir.join("jvm/build");
    std::fs::create_dir_all(&build).unwrap();
    let status = std::process::Command::new("javac")
        .arg("-cp")
        .arg(format!("{spark_home}/jars/*"))
        .arg("-d")
        .arg(&build)
        .arg(dir.join("jvm/RowCount.java"))
        .status()
        .unwrap();
    assert!(status.success(), "javac failed");
    let status = std::process::Command::new("jar")
        .arg("cf")
        .arg(dir.join("src/scalaproj.jar"))
        .arg("-C")
        .arg(&build)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "jar failed");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(
        spool_test::shared_data("iris.csv"),
        dir.join("data/iris.csv"),
    )
    .unwrap();
}

#[test]
fn the_public_pipeline_samples_run_and_unchanged_resubmissions_reuse_every_node() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let scratch = tempfile::tempdir().unwrap();

    // The shakespeare sample: sample, then count the sample (all of it at rate 1.0).
    let words = copy_fixture("words", scratch.path());
    let file = words.join("pipeline.yml");
    let created = submit(&server, &file, &["--set", "inputs.sample_rate=1.0"]);
    assert_eq!(created["kind"], "pipeline", "{created:#}");
    let name = created["name"].as_str().unwrap().to_string();
    let done = wait_pipeline(&server, &name);
    assert_eq!(
        done["status"],
        "Completed",
        "{done:#}\n{}",
        server.log_tails()
    );
    let count = node(&done, "count_word");
    assert_eq!(count["depends_on"], serde_json::json!(["sample_word"]));
    let counted = driver_stdout(&server, count["job_name"].as_str().unwrap());
    for line in ["the: 4", "fox: 3", "dog: 2", "quick: 2"] {
        assert!(counted.contains(line), "{line} not in:\n{counted}");
    }
    // The sampling step wrote the pipeline's output, at the default location of its job.
    let sample_job = node(&done, "sample_word")["job_name"]
        .as_str()
        .unwrap()
        .to_string();
    let sample = job_json(&server, &sample_job);
    assert_eq!(sample["parent_job_name"], name.as_str());
    assert_eq!(sample["display_name"], "sample_word");
    assert_eq!(
        sample["outputs"]["file_output"],
        format!("azureml://datastores/workspaceblobstore/paths/azureml/{sample_job}/file_output/")
    );
    // Children are listed under their pipeline, in the order they run, and not on their own.
    let children: Value = serde_json::from_str(&ok(server.cli(&[
        "job",
        "list",
        "--parent-job-name",
        &name,
        "-o",
        "json",
    ])))
    .unwrap();
    let shown: Vec<&str> = children
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["sample_word", "count_word"]);
    let top: Value = serde_json::from_str(&ok(server.cli(&["job", "list", "-o", "json"]))).unwrap();
    assert_eq!(top.as_array().unwrap().len(), 1, "{top:#}");
    let tree = ok(server.cli(&["job", "show", "--name", &name, "-o", "table"]));
    assert!(tree.contains("└─ count_word  Completed"), "{tree}");

    // Unchanged, it is Completed at once: every node reuses the earlier run.
    let again = submit(&server, &file, &["--set", "inputs.sample_rate=1.0"]);
    assert_eq!(again["status"], "Completed", "{again:#}");
    for n in ["sample_word", "count_word"] {
        let reused = node(&again, n);
        assert_eq!(
            reused["reused_job_name"],
            node(&done, n)["job_name"],
            "{again:#}"
        );
        let child = job_json(&server, reused["job_name"].as_str().unwrap());
        assert_eq!(child["properties"]["azureml.isreused"], "true", "{child:#}");
    }
    // A reused node's download comes from the job it reused.
    let reused_count = node(&again, "count_word")["job_name"]
        .as_str()
        .unwrap()
        .to_string();
    let out = scratch.path().join("reused-logs");
    ok(server.cli(&[
        "job",
        "download",
        "--name",
        &reused_count,
        "--download-path",
        out.to_str().unwrap(),
    ]));
    let listing = spool_test::tree_listing(&out).join("\n");
    assert!(listing.contains("std"), "{listing}");

    // A changed parameter is a change: the sampling step and everything after it run again.
    // With `force_rerun` nothing is reused either; cancelling that pipeline cancels its nodes.
    let forced = submit(
        &server,
        &file,
        &[
            "--set",
            "inputs.sample_rate=1.0",
            "--set",
            "settings.force_rerun=True",
        ],
    );
    assert_ne!(forced["status"], "Completed", "{forced:#}");
    assert!(
        forced["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["reused_job_name"].is_null()),
        "{forced:#}"
    );
    let forced_name = forced["name"].as_str().unwrap().to_string();
    let first = node(&forced, "sample_word")["job_name"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_status(
        &server,
        &first,
        &["Running", "Starting", "Provisioning", "Preparing"],
        deadline::COLD_START,
    );
    ok(server.cli(&["job", "cancel", "--name", &forced_name]));
    let canceled = wait_pipeline(&server, &forced_name);
    assert_eq!(canceled["status"], "Canceled", "{canceled:#}");
    for n in ["sample_word", "count_word"] {
        assert_eq!(node(&canceled, n)["status"], "Canceled", "{canceled:#}");
    }
    assert!(
        node(&canceled, "count_word")["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("not run"),
        "{canceled:#}"
    );

    // The add-column sample: two steps side by side, with py_files, files and a jar.
    let greeting = copy_fixture("greeting", scratch.path());
    build_greeting(&greeting);
    let created = submit(&server, &greeting.join("pipeline.yml"), &[]);
    let done = wait_pipeline(&server, created["name"].as_str().unwrap());
    assert_eq!(
        done["status"],
        "Completed",
        "{done:#}\n{}",
        server.log_tails()
    );
    let greeted = driver_stdout(
        &server,
        node(&done, "add_greeting_columns")["job_name"]
            .as_str()
            .unwrap(),
    );
    assert!(greeted.contains("greeting: hello, "), "{greeted}");
    assert!(
        greeted.contains("shipped file: shipped with the job"),
        "{greeted}"
    );
    let counted = driver_stdout(
        &server,
        node(&done, "count_by_rows")["job_name"].as_str().unwrap(),
    );
    assert!(counted.contains("rows: 150"), "{counted}");

    // The titanic pipeline sample, with the default identity.
    ok(server.cli(&[
        "datastore",
        "upload",
        "--src",
        spool_test::shared_data("titanic.csv").to_str().unwrap(),
        "--dest",
        "data/titanic.csv",
    ]));
    let titanic = copy_fixture("titanic", scratch.path());
    std::fs::create_dir_all(titanic.join("src")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/titanic/src/titanic.py"),
        titanic.join("src/titanic.py"),
    )
    .unwrap();
    let created = submit(
        &server,
        &titanic.join("serverless-spark-pipeline-default-identity.yml"),
        &[],
    );
    let done = wait_pipeline(&server, created["name"].as_str().unwrap());
    assert_eq!(
        done["status"],
        "Completed",
        "{done:#}\n{}",
        server.log_tails()
    );
    assert!(
        server
            .data_dir()
            .join("datastores/workspaceblobstore/data/wrangled/_SUCCESS")
            .exists()
    );
    server.finish();
}

#[test]
fn a_failed_step_stops_its_dependants_and_with_continue_off_everything() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let scratch = tempfile::tempdir().unwrap();
    let branches = copy_fixture("branches", scratch.path());
    let file = branches.join("pipeline.yml");

    // By default the independent branch runs to its end; the failed step's dependant never runs.
    let created = submit(&server, &file, &[]);
    let done = wait_pipeline(&server, created["name"].as_str().unwrap());
    assert_eq!(done["status"], "Failed", "{done:#}");
    assert_eq!(done["status_reason"], "step `bad` failed", "{done:#}");
    assert_eq!(node(&done, "bad")["status"], "Failed");
    assert_eq!(node(&done, "other")["status"], "Completed", "{done:#}");
    let after = node(&done, "after_bad");
    assert_eq!(after["status"], "Canceled");
    assert_eq!(
        after["status_reason"],
        "not run: step `bad`, whose output it reads, ended Failed"
    );
    let after_job = job_json(&server, after["job_name"].as_str().unwrap());
    assert!(
        after_job["phases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] != "Running"),
        "{after_job:#}"
    );

    // With `continue_on_step_failure: false` the first failure cancels the running branch.
    let created = submit(
        &server,
        &file,
        &[
            "--set",
            "settings.continue_on_step_failure=false",
            "--set",
            "jobs.other.args=600",
        ],
    );
    let name = created["name"].as_str().unwrap().to_string();
    let done = wait_pipeline(&server, &name);
    assert_eq!(done["status"], "Failed", "{done:#}");
    assert_eq!(node(&done, "other")["status"], "Canceled", "{done:#}");
    assert!(
        node(&done, "other")["status_reason"]
            .as_str()
            .unwrap()
            .contains("continue_on_step_failure"),
        "{done:#}"
    );

    // A Spark step, then a command step on the Spool host that reads what it wrote.
    let mixed = copy_fixture("mixed", scratch.path());
    let created = submit(&server, &mixed.join("pipeline.yml"), &[]);
    let done = wait_pipeline(&server, created["name"].as_str().unwrap());
    assert_eq!(
        done["status"],
        "Completed",
        "{done:#}\n{}",
        server.log_tails()
    );
    let report = job_json(&server, node(&done, "report")["job_name"].as_str().unwrap());
    assert_eq!(report["kind"], "command", "{report:#}");
    let uri = report["outputs"]["report"].as_str().unwrap();
    let path = uri
        .strip_prefix("azureml://datastores/workspaceblobstore/paths/")
        .unwrap();
    let written = std::fs::read_to_string(
        server
            .data_dir()
            .join("datastores/workspaceblobstore")
            .join(path)
            .join("report.json"),
    )
    .unwrap();
    assert!(written.contains(r#""count":3"#), "{written}");
    server.finish();
}

#[test]
fn invalid_pipelines_are_refused_with_their_position_and_create_nothing() {
    let server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let scratch = tempfile::tempdir().unwrap();
    let words = copy_fixture("words", scratch.path());
    let base = std::fs::read_to_string(words.join("pipeline.yml")).unwrap();
    let cases = [
        (
            "${{parent.inputs.sample_rate}}",
            "${{parent.inputs.rate}}",
            "bad.yml:26:20: `jobs.sample_word.inputs.sample_rate`: the pipeline has no input 'rate'",
        ),
        (
            "${{parent.jobs.sample_word.outputs.file_output}}",
            "${{parent.jobs.sampler.outputs.file_output}}",
            "`jobs.count_word.inputs.file_input`: the pipeline has no step `sampler`",
        ),
        (
            "component: ./word_count/component.yml",
            "component: ./word_count/nope.yml",
            "`jobs.count_word.component`: cannot read the component file",
        ),
        (
            "  count_word:\n",
            "  Count-Word:\n",
            "Pipeline node name should be a valid python identifier",
        ),
        (
            "      file_input: ${{parent.inputs.file_input}}\n",
            "",
            "Required input 'file_input' for component 'sample_word' not provided.",
        ),
        (
            "    resources:\n      instance_type: Standard_E8S_V3\n      runtime_version: 3.4.0\n\n  count_word",
            "\n  count_word",
            "One of either compute or resources must be specified for Spark job",
        ),
        (
            "        mode: direct\n\n    resources",
            "        mode: mount\n\n    resources",
            "Input 'file_input' is using 'mount' mode, only 'direct' is supported for Spark job",
        ),
        (
            "jobs:\n",
            "settings:\n  default_datastore: nowhere\njobs:\n",
            "prefixed with 'azureml:'",
        ),
        (
            "path: ./data/text.txt",
            "path: https://example.com/text.txt",
            "bad.yml:11:11: `inputs.file_input.path`: this storage is not supported yet",
        ),
        (
            "path: ./data/text.txt",
            "path: azureml:shakespeare:1",
            "registered data assets (`azureml:<name>:<version>`) are not supported by Spool yet",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(base.contains(from), "{from:?}");
        let file = words.join("bad.yml");
        std::fs::write(&file, base.replacen(from, to, 1)).unwrap();
        let out = server.cli(&["job", "create", "--file", file.to_str().unwrap()]);
        assert!(!out.status.success(), "{}", stdout(&out));
        let err = stderr(&out).replace(&format!("{}/", words.display()), "");
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }
    // A missing entry file of a component is reported in the component's own file.
    std::fs::remove_file(words.join("word_count/wordcount.py")).unwrap();
    let out = server.cli(&[
        "job",
        "create",
        "--file",
        words.join("pipeline.yml").to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("word_count/component.yml:16:9: `entry.file`: Entry "),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("doesn't exist."), "{}", stderr(&out));
    let jobs: Value =
        serde_json::from_str(&ok(server.cli(&["job", "list", "-o", "json"]))).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 0, "{jobs:#}");
    server.finish();
}

#[test]
fn a_pipeline_survives_a_crash_of_the_server_and_completes() {
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &["--prewarm", "0"], None);
    let scratch = tempfile::tempdir().unwrap();
    let words = copy_fixture("words", scratch.path());
    let created = submit(
        &server,
        &words.join("pipeline.yml"),
        &["--set", "inputs.sample_rate=1.0"],
    );
    let name = created["name"].as_str().unwrap().to_string();
    // The second step says what it waits for.
    let waiting = wait_for_status(&server, &name, &["Running"], deadline::STATE_CHANGE);
    assert_eq!(
        node(&waiting, "count_word")["status_reason"],
        "waiting for step `sample_word` to complete",
        "{waiting:#}"
    );
    let first = node(&created, "sample_word")["job_name"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_status(&server, &first, &["Running"], deadline::COLD_START);
    server.kill9();
    server.restart();
    let done = wait_pipeline(&server, &name);
    assert_eq!(
        done["status"],
        "Completed",
        "{done:#}\n{}",
        server.log_tails()
    );
    let counted = driver_stdout(
        &server,
        node(&done, "count_word")["job_name"].as_str().unwrap(),
    );
    assert!(counted.contains("fox: 3"), "{counted}");
    server.finish();
}
