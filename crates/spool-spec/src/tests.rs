use expect_test::{Expect, expect};

use super::*;

fn catalog() -> Catalog {
    Catalog {
        runtimes: vec!["3.4".into(), "3.5".into(), "4.3".into()],
        default_runtime: "3.4".into(),
        instance_types: azure_instance_types(),
    }
}

const TITANIC: &str = r#"$schema: https://azuremlschemas.azureedge.net/latest/sparkJob.schema.json
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
  --titanic_data ${{inputs.titanic_data}}
  --wrangled_data ${{outputs.wrangled_data}}
identity:
  type: user_identity
resources:
  instance_type: standard_e4s_v3
  runtime_version: "3.4"
"#;

fn render(yaml: &str, sets: &[(&str, &str)]) -> String {
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match parse_job(yaml, "job.yml", &sets, &catalog()) {
        Ok(job) => format!("ok {:?}", job.sizing),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn check(yaml: &str, expect: Expect) {
    expect.assert_eq(&render(yaml, &[]));
}

#[track_caller]
fn check_edit(from: &str, to: &str, expect: Expect) {
    assert!(TITANIC.contains(from), "{from:?} not in the base spec");
    expect.assert_eq(&render(&TITANIC.replacen(from, to, 1), &[]));
}

#[test]
fn titanic_sample_is_accepted() {
    check(
        TITANIC,
        expect![[
            r#"ok SparkSizing { driver_cores: 1, driver_memory: MemoryMb(2048), executor_cores: 2, executor_memory: MemoryMb(2048), executor_instances: 2, dynamic_allocation: None }"#
        ]],
    );
}

#[test]
fn runtime_version_forms() {
    for form in ["3.4", "\"3.4.0\"", "'3.4'"] {
        let yaml = TITANIC.replace(
            "runtime_version: \"3.4\"",
            &format!("runtime_version: {form}"),
        );
        let job = parse_job(&yaml, "job.yml", &[], &catalog()).unwrap();
        assert_eq!(
            job.spec.resources.unwrap().runtime_version.as_deref(),
            Some("3.4"),
            "{form}"
        );
    }
}

#[test]
fn unknown_runtime_lists_supported() {
    check_edit(
        "runtime_version: \"3.4\"",
        "runtime_version: \"3.3\"",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:29:20: `resources.runtime_version`: runtime version should be either 3.4, 3.5 or 4.3 (got `3.3`)
          accepted: 3.4, 3.5, 4.3
    "#]],
    );
}

#[test]
fn non_numeric_runtime() {
    check_edit(
        "runtime_version: \"3.4\"",
        "runtime_version: latest",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:29:20: `resources.runtime_version`: runtime_version should only contain numbers (got `latest`)
          accepted: `major.minor` or `major.minor.patch`, e.g. `3.4` or `"3.4.0"`
    "#]],
    );
}

#[test]
fn unknown_instance_type() {
    check_edit(
        "instance_type: standard_e4s_v3",
        "instance_type: standard_d4_v2",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:28:18: `resources.instance_type`: Instance type must be specified for the list of standard_e4s_v3,standard_e8s_v3,standard_e16s_v3,standard_e32s_v3,standard_e64s_v3 (got `standard_d4_v2`)
    "#]],
    );
}

#[test]
fn instance_type_is_case_insensitive() {
    let yaml = TITANIC.replace("standard_e4s_v3", "Standard_E4S_V3");
    assert!(parse_job(&yaml, "job.yml", &[], &catalog()).is_ok());
}

#[test]
fn compute_and_resources_together() {
    check_edit(
        "identity:",
        "compute: mypool\nidentity:",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:25:10: `compute`: Only one of either compute or resources may be specified for Spark job
          accepted: `compute: <pool>` for an attached pool, or `resources` for serverless compute
    "#]],
    );
}

#[test]
fn bad_memory_size() {
    check_edit(
        "spark.executor.memory: 2g",
        "spark.executor.memory: 2gb",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:10:26: `conf.spark.executor.memory`: String does not match expected pattern. (got `2gb`)
          accepted: a size matching `^\d+[kKmMgGtTpP]$`, e.g. `2g` or `512m`
    "#]],
    );
}

#[test]
fn missing_mandatory_conf() {
    check_edit(
        "  spark.executor.instances: 2\n",
        "",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:7:3: `conf`: spark.driver.cores, spark.driver.memory, spark.executor.cores, spark.executor.memory and spark.executor.instances are mandatory fields.
          accepted: add the missing `spark.executor.instances`
    "#]],
    );
}

#[test]
fn dynamic_allocation_min_above_max() {
    check_edit(
        "  spark.executor.instances: 2\n",
        "  spark.dynamicAllocation.enabled: True\n  spark.dynamicAllocation.minExecutors: 4\n  spark.dynamicAllocation.maxExecutors: 1\n",
        expect![[r#"
            job spec `job.yml` has 1 problem:
            job.yml:12:41: `conf.spark.dynamicAllocation.minExecutors`: Dynamic min executors should be bigger than 0 and min executors should be equal or less than max executors. (got `minExecutors=4, maxExecutors=1`)
        "#]],
    );
}

#[test]
fn dynamic_allocation_needs_bounds() {
    check_edit(
        "  spark.executor.instances: 2\n",
        "  spark.dynamicAllocation.enabled: true\n",
        expect![[r#"
            job spec `job.yml` has 1 problem:
            job.yml:7:3: `conf`: spark.dynamicAllocation.minExecutors and spark.dynamicAllocation.maxExecutors are required when dynamic allocation is enabled.
              accepted: add `spark.dynamicAllocation.minExecutors`, `spark.dynamicAllocation.maxExecutors`
        "#]],
    );
}

#[test]
fn dynamic_allocation_instances_out_of_range() {
    check_edit(
        "  spark.executor.instances: 2\n",
        "  spark.executor.instances: 9\n  spark.dynamicAllocation.enabled: true\n  spark.dynamicAllocation.minExecutors: 1\n  spark.dynamicAllocation.maxExecutors: 4\n",
        expect![[r#"
            job spec `job.yml` has 1 problem:
            job.yml:11:29: `conf.spark.executor.instances`: Executor instances must be a valid non-negative integer and must be between spark.dynamicAllocation.minExecutors and spark.dynamicAllocation.maxExecutors (got `9`)
              accepted: 1 to 4
        "#]],
    );
}

#[test]
fn min_max_without_dynamic_allocation() {
    check_edit(
        "  spark.executor.instances: 2\n",
        "  spark.executor.instances: 2\n  spark.dynamicAllocation.maxExecutors: 4\n",
        expect![[r#"
            job spec `job.yml` has 1 problem:
            job.yml:12:41: `conf.spark.dynamicAllocation.maxExecutors`: Should not specify min or max executors when dynamic allocation is disabled.
              accepted: remove it, or set `spark.dynamicAllocation.enabled: true`
        "#]],
    );
}

#[test]
fn non_direct_mode() {
    check_edit(
        "    mode: direct\noutputs",
        "    mode: mount\noutputs",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:16:11: `inputs.titanic_data.mode`: Input 'titanic_data' is using 'mount' mode, only 'direct' is supported for Spark job (got `mount`)
          accepted: `direct`
    "#]],
    );
}

#[test]
fn undeclared_input_in_args() {
    check_edit(
        "${{inputs.titanic_data}}",
        "${{inputs.titanic}}",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:23:3: `args`: Inputs to job does not contain 'titanic' referenced in args (got `${{inputs.titanic}}`)
          accepted: declared: `titanic_data`
    "#]],
    );
}

#[test]
fn optional_input_in_args_may_be_undeclared() {
    let yaml = TITANIC.replace(
        "--titanic_data ${{inputs.titanic_data}}",
        "--titanic_data ${{inputs.titanic_data}} [--rate ${{inputs.rate}}]",
    );
    assert!(parse_job(&yaml, "job.yml", &[], &catalog()).is_ok());
}

#[test]
fn empty_entry_file() {
    check_edit(
        "  file: titanic.py",
        "  file: ''",
        expect![[r#"
            job spec `job.yml` has 1 problem:
            job.yml:5:9: `entry.file`: must not be empty
              accepted: a path relative to `code`, e.g. `main.py`
        "#]],
    );
}

#[test]
fn class_name_without_jars() {
    check_edit(
        "  file: titanic.py",
        "  class_name: org.example.Main",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:5:15: `entry.class_name`: Classpath is not supported, please use 'file' to define the entry file. (got `org.example.Main`)
          accepted: `entry.file`, or (a Spool extension) `entry.class_name` together with `jars` that contain the class
    "#]],
    );
}

#[test]
fn unknown_field() {
    check_edit(
        "identity:",
        "retries: 3\nidentity:",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:25:1: `retries`: unknown field
          accepted: `$schema`, `type`, `name`, `display_name`, `experiment_name`, `description`, `tags`, `properties`, `code`, `entry`, `py_files`, `jars`, `files`, `archives`, `conf`, `args`, `inputs`, `outputs`, `identity`, `resources`, `compute`, `environment` in a Spark job
    "#]],
    );
}

#[test]
fn unknown_nested_field() {
    check_edit(
        "  file: titanic.py",
        "  file: titanic.py\n  script: x.py",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:6:3: `entry.script`: unknown field
          accepted: `file`, `class_name` in this mapping
    "#]],
    );
}

#[test]
fn duplicate_py_files() {
    check_edit(
        "conf:",
        "py_files:\n  - a.zip\n  - a.zip\nconf:",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:8:5: `py_files[1]`: py_files must not contain duplicate entries. (got `a.zip`)
    "#]],
    );
}

#[test]
fn wrong_job_type() {
    check_edit(
        "type: spark",
        "type: command",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:2:7: `type`: unsupported job type (got `command`)
          accepted: `spark`
    "#]],
    );
}

#[test]
fn bad_identity() {
    check_edit(
        "type: user_identity",
        "type: service_principal",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:26:9: `identity.type`: unknown identity type (got `service_principal`)
          accepted: `user_identity`, `managed` (or `managed_identity`), `aml_token`
    "#]],
    );
}

#[test]
fn executor_larger_than_instance_type() {
    check_edit(
        "spark.executor.memory: 2g",
        "spark.executor.memory: 64g",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:10:26: `conf.spark.executor.memory`: one executor needs 64 GiB but instance type `standard_e4s_v3` has 32 GiB (got `64g`)
          accepted: at most 32g, or a larger instance type
    "#]],
    );
}

#[test]
fn syntax_error_has_position() {
    check(
        "type: spark\nentry: {file: a.py\n",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:3:1: `(document)`: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'
    "#]],
    );
}

#[test]
fn an_alias_bomb_is_rejected_with_the_file_and_the_limit() {
    check(
        crate::yaml::ALIAS_BOMB,
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:5:7: `(document)`: a list anchored here has 66430 nodes, and with the copy kept for its aliases the document would build 149470, more than the 100000 accepted
          accepted: documents that build at most 100000 nodes, counting everything an alias repeats; write the values out without aliases
    "#]],
    );
}

#[test]
fn several_problems_are_reported_together() {
    let yaml = TITANIC
        .replace("type: user_identity", "type: nobody")
        .replace("spark.driver.memory: 2g", "spark.driver.memory: lots");
    let err = parse_job(&yaml, "job.yml", &[], &catalog()).unwrap_err();
    assert_eq!(err.diagnostics.len(), 2, "{err}");
}

#[test]
fn set_overrides_fields_and_conf_keys() {
    expect![[r#"ok SparkSizing { driver_cores: 1, driver_memory: MemoryMb(2048), executor_cores: 2, executor_memory: MemoryMb(2048), executor_instances: 3, dynamic_allocation: None }"#]]
        .assert_eq(&render(TITANIC, &[("conf.spark.executor.instances", "3"), ("resources.runtime_version", "3.5")]));
    expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml (--set): `resources.runtime_version`: runtime version should be either 3.4, 3.5 or 4.3 (got `9.9`)
          accepted: 3.4, 3.5, 4.3
    "#]]
    .assert_eq(&render(TITANIC, &[("resources.runtime_version", "9.9")]));
}

#[test]
fn empty_file() {
    check(
        "",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:1:1: `type`: missing field; a Spark job needs `type: spark` and an `entry`
    "#]],
    );
}

#[test]
fn a_managed_identity_is_selected_by_client_object_or_resource_id() {
    let yaml = TITANIC.replacen(
        "type: user_identity",
        "type: managed\n  client_id: 11111111-2222-3333-4444-555555555555\n  msi_resource_id: /subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/etl",
        1,
    );
    let job = parse_job(&yaml, "job.yml", &[], &catalog()).unwrap();
    assert_eq!(job.spec.identity, Some(IdentityKind::Managed));
    assert_eq!(
        job.spec.identity_selector,
        IdentitySelector {
            client_id: Some("11111111-2222-3333-4444-555555555555".into()),
            object_id: None,
            msi_resource_id: Some("/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/etl".into()),
        }
    );
}

#[test]
fn sizes_outside_spools_limits_are_refused() {
    check_edit(
        "spark.executor.cores: 2",
        "spark.executor.cores: 4294967295",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:9:25: `conf.spark.executor.cores`: `conf.spark.executor.cores` must be between 1 and 1024, got 4294967295
    "#]],
    );
    check_edit(
        "spark.executor.instances: 2",
        "spark.executor.instances: 10001",
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:11:29: `conf.spark.executor.instances`: `conf.spark.executor.instances` must be between 0 and 10000, got 10001
    "#]],
    );
}

#[test]
fn overlong_texts_are_refused_with_their_length() {
    let description = format!("description: {}\n", "d".repeat(70_000));
    check(
        &format!("{TITANIC}{description}"),
        expect![[r#"
        job spec `job.yml` has 1 problem:
        job.yml:30:14: `description`: `description` is 70000 bytes long; at most 65536 bytes are accepted
    "#]],
    );
}

/// A spec sent as JSON meets the rules the YAML loader applies too (regression: issue 11,
/// finding 9: an output named `../../x` was accepted through the API).
#[test]
fn json_specs_get_the_loaders_name_rules() {
    let mut spec = parse_job(TITANIC, "job.yml", &[], &catalog()).unwrap().spec;
    let output = spec.outputs.remove("wrangled_data").unwrap();
    spec.outputs.insert("../../x".into(), output);
    spec.args = None;
    let diags = check_job(&spec, &catalog()).unwrap_err();
    let rendered: Vec<String> = diags.iter().map(|d| d.render("job")).collect();
    expect![[r#"
        job: `outputs.../../x`: Key name  ../../x must be composed letters, numbers, and underscore
          accepted: a name matching `^[a-zA-Z_]+[a-zA-Z0-9_]*$`"#]]
    .assert_eq(&rendered.join("\n"));
}

#[test]
fn an_output_with_a_null_type() {
    check_edit(
        "    type: uri_folder\n    path: azureml://datastores/workspaceblobstore/paths/data/wrangled/",
        "    type: ~\n    path: azureml://datastores/workspaceblobstore/paths/data/wrangled/",
        expect![[r#"
            job spec `job.yml` has 2 problems:
            job.yml:19:5: `outputs.wrangled_data.type`: missing output type
              accepted: `uri_file` or `uri_folder`
            job.yml:23:3: `args`: Outputs to job does not contain 'wrangled_data' referenced in args (got `${{outputs.wrangled_data}}`)
              accepted: none are declared
        "#]],
    );
}
