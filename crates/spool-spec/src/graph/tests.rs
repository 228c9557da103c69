//! Pipelines from YAML to plan: the public samples, and each invalid form with its message.

use std::collections::BTreeMap;

use expect_test::{Expect, expect};

use super::*;
use crate::pipeline::ComponentRef;
use crate::rules::Catalog;

fn catalog() -> Catalog {
    Catalog {
        runtimes: vec!["3.4".into(), "3.5".into()],
        default_runtime: "3.4".into(),
        instance_types: crate::azure_instance_types(),
    }
}

const SAMPLE_WORD: &str = r#"$schema: https://azuremlschemas.azureedge.net/latest/sparkComponent.schema.json
name: sample_spark_component
type: spark
version: 1
display_name: Spark sample word
inputs:
  file_input:
    type: uri_file
    mode: direct
  sample_rate:
    type: number
    default: 0.01
outputs:
  file_output:
    type: uri_file
    mode: direct
code: .
entry:
  file: sampleword.py
args: >-
  --input1 ${{inputs.file_input}}
  --output2 ${{outputs.file_output}}
  --my_sample_rate ${{inputs.sample_rate}}
conf:
  spark.driver.cores: 1
  spark.driver.memory: "2g"
  spark.executor.cores: 2
  spark.executor.memory: "2g"
  spark.dynamicAllocation.enabled: True
  spark.dynamicAllocation.minExecutors: 1
  spark.dynamicAllocation.maxExecutors: 4
"#;

const WORD_COUNT: &str = r#"name: wordcount_spark_component
type: spark
version: 1
inputs:
  file_input:
    type: uri_file
    mode: direct
code: .
entry:
  file: wordcount.py
args: >-
  --input1 ${{inputs.file_input}}
conf:
  spark.driver.cores: 1
  spark.driver.memory: "2g"
  spark.executor.cores: 2
  spark.executor.memory: "2g"
  spark.executor.instances: 4
"#;

const SHAKESPEARE: &str = r#"$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
description: 'submit a pipeline with spark job'
inputs:
  file_input:
    type: uri_file
    path: ./data/shakespeare.txt
    mode: direct
  sample_rate: 0.01
outputs:
  file_output:
    type: uri_file
    mode: direct
jobs:
  sample_word:
    type: spark
    component: ./sample_word/component.yml
    inputs:
      file_input: ${{parent.inputs.file_input}}
      sample_rate: ${{parent.inputs.sample_rate}}
    outputs:
      file_output: ${{parent.outputs.file_output}}
    resources:
      instance_type: Standard_E8S_V3
      runtime_version: 3.4.0
  count_word:
    type: spark
    component: ./word_count/component.yml
    inputs:
      file_input:
        path: ${{parent.jobs.sample_word.outputs.file_output}}
        mode: direct
    resources:
      instance_type: Standard_E8S_V3
      runtime_version: 3.4.0
"#;

const ADD_COLUMN: &str = r#"$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
description: 'submit a pipeline with spark job'
inputs:
  iris_data:
    type: uri_file
    path: ./data/iris.csv
    mode: direct
outputs:
  output:
    type: uri_folder
    mode: direct
jobs:
  add_greeting_columns:
    type: spark
    inputs:
      file_input: ${{parent.inputs.iris_data}}
    code: ./src
    entry:
      file: add_greeting_column.py
    py_files:
      - utils.zip
    files:
      - my_files.txt
    args: >-
      --file_input ${{inputs.file_input}}
    resources:
      instance_type: Standard_E8S_V3
      runtime_version: 3.4.0
    conf:
      spark.driver.cores: 2
      spark.driver.memory: "1g"
      spark.executor.cores: 1
      spark.executor.memory: "1g"
      spark.executor.instances: 1
  count_by_rows:
    type: spark
    inputs:
      file_input: ${{parent.inputs.iris_data}}
    outputs:
      output: ${{parent.outputs.output}}
    code: ./src
    entry:
      file: count_by_row.py
    jars:
      - scalaproj.jar
    files:
      - my_files.txt
    args: >-
      --file_input ${{inputs.file_input}}
      --output ${{outputs.output}}
    resources:
      instance_type: Standard_E8S_V3
      runtime_version: 3.4.0
    conf:
      spark.driver.cores: 2
      spark.driver.memory: "1g"
      spark.executor.cores: 1
      spark.executor.memory: "1g"
      spark.executor.instances: 1
"#;

fn components() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("./sample_word/component.yml", SAMPLE_WORD),
        ("./word_count/component.yml", WORD_COUNT),
    ])
}

/// Loads, resolves component files from `components()`, plans and checks; renders the plan
/// (nodes in order with their inputs, outputs and dependencies) or every diagnostic.
fn render(yaml: &str, sets: &[(&str, &str)]) -> String {
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut loaded = match crate::parse_pipeline(yaml, "pipeline.yml", &sets) {
        Ok(loaded) => loaded,
        Err(e) => return e.to_string(),
    };
    for node in loaded.spec.jobs.values_mut() {
        if let ComponentRef::File { path } = &node.component {
            let text = components()[path.as_str()];
            match crate::parse_component(text, path, &[], true) {
                Ok(c) => {
                    node.component = ComponentRef::Anonymous {
                        spec: Box::new(c.spec),
                    }
                }
                Err(e) => return e.to_string(),
            }
        }
    }
    let mut out = String::new();
    for w in &loaded.warnings {
        out.push_str(&format!("warning: {}\n", w.render("pipeline.yml")));
    }
    let plan = match plan(&loaded.spec, &BTreeMap::new(), &loaded.positions) {
        Ok(plan) => plan,
        Err(diags) => {
            for d in diags {
                out.push_str(&d.render("pipeline.yml"));
                out.push('\n');
            }
            return out;
        }
    };
    if let Err(diags) = check_nodes(&plan, &catalog(), &loaded.positions) {
        for d in diags {
            out.push_str(&d.render("pipeline.yml"));
            out.push('\n');
        }
        return out;
    }
    for node in &plan.nodes {
        out.push_str(&format!(
            "{} ({}) after {:?}\n",
            node.name,
            &node.component_id[..node.component_id.find(':').unwrap_or(0)],
            node.depends_on
        ));
        for (k, v) in node.job.inputs() {
            let shown = match v {
                JobInput::Data { path, .. } if path.is_empty() => {
                    let (n, o) = &node.upstream[k];
                    format!("<{n}.{o}>")
                }
                JobInput::Data { path, .. } => path.clone(),
                JobInput::Literal { value, .. } => format!("={value}"),
            };
            out.push_str(&format!("  in  {k}: {shown}\n"));
        }
        for (k, v) in node.job.outputs() {
            let parent = node
                .parent_outputs
                .get(k)
                .map(|p| format!(" (pipeline output {p})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  out {k}: {}{parent}\n",
                v.path.as_deref().unwrap_or("<default>")
            ));
        }
        let ChildJob::Spark(spark) = &node.job else {
            if let ChildJob::Command(c) = &node.job {
                out.push_str(&format!("  command {}\n", c.command));
            }
            continue;
        };
        let conf: Vec<String> = spark
            .conf
            .iter()
            .map(|(k, v)| format!("{}={}", k.trim_start_matches("spark."), v.to_spark()))
            .collect();
        out.push_str(&format!("  conf {}\n", conf.join(" ")));
    }
    out
}

#[track_caller]
fn check(yaml: &str, expect: Expect) {
    expect.assert_eq(&render(yaml, &[]));
}

#[track_caller]
fn check_edit(base: &str, from: &str, to: &str, expect: Expect) {
    assert!(base.contains(from), "{from:?} not in the base pipeline");
    expect.assert_eq(&render(&base.replacen(from, to, 1), &[]));
}

#[test]
fn shakespeare_sample_plans_two_nodes_in_order() {
    check(
        SHAKESPEARE,
        expect![[r#"
            sample_word (azureml_anonymous) after {}
              in  file_input: ./data/shakespeare.txt
              in  sample_rate: =0.01
              out file_output: <default> (pipeline output file_output)
              conf driver.cores=1 driver.memory=2g dynamicAllocation.enabled=true dynamicAllocation.maxExecutors=4 dynamicAllocation.minExecutors=1 executor.cores=2 executor.memory=2g
            count_word (azureml_anonymous) after {"sample_word"}
              in  file_input: <sample_word.file_output>
              conf driver.cores=1 driver.memory=2g executor.cores=2 executor.instances=4 executor.memory=2g
        "#]],
    );
}

#[test]
fn a_set_overrides_a_pipeline_input() {
    expect![[r#"
        sample_word (azureml_anonymous) after {}
          in  file_input: ./data/shakespeare.txt
          in  sample_rate: =1
          out file_output: <default> (pipeline output file_output)
          conf driver.cores=1 driver.memory=2g dynamicAllocation.enabled=true dynamicAllocation.maxExecutors=4 dynamicAllocation.minExecutors=1 executor.cores=2 executor.memory=2g
        count_word (azureml_anonymous) after {"sample_word"}
          in  file_input: <sample_word.file_output>
          conf driver.cores=1 driver.memory=2g executor.cores=2 executor.instances=4 executor.memory=2g
    "#]]
    .assert_eq(&render(
        SHAKESPEARE,
        &[("inputs.sample_rate", "1.0"), ("settings.force_rerun", "True")],
    ));
}

#[test]
fn inline_nodes_get_ports_from_their_bindings() {
    check(
        ADD_COLUMN,
        expect![[r#"
            add_greeting_columns (azureml_anonymous) after {}
              in  file_input: ./data/iris.csv
              conf driver.cores=2 driver.memory=1g executor.cores=1 executor.instances=1 executor.memory=1g
            count_by_rows (azureml_anonymous) after {}
              in  file_input: ./data/iris.csv
              out output: <default> (pipeline output output)
              conf driver.cores=2 driver.memory=1g executor.cores=1 executor.instances=1 executor.memory=1g
        "#]],
    );
}

#[test]
fn same_component_content_gives_the_same_anonymous_id() {
    let a = crate::parse_component(SAMPLE_WORD, "a.yml", &[], true)
        .unwrap()
        .spec;
    let mut renamed = a.clone();
    renamed.name = Some("other_name".into());
    renamed.version = Some("7".into());
    assert_eq!(anonymous_id(&a), anonymous_id(&renamed));
    let changed = crate::parse_component(
        &SAMPLE_WORD.replace("sampleword.py", "other.py"),
        "a.yml",
        &[],
        true,
    )
    .unwrap()
    .spec;
    assert_ne!(anonymous_id(&a), anonymous_id(&changed));
}

#[test]
fn node_conf_overrides_promoted_keys_one_by_one_and_replaces_the_rest() {
    let base = SHAKESPEARE.replace(
        "    outputs:\n      file_output: ${{parent.outputs.file_output}}\n",
        "    outputs:\n      file_output: ${{parent.outputs.file_output}}\n    conf:\n      spark.executor.cores: 1\n      spark.dynamicAllocation.enabled: false\n      spark.yarn.maxAppAttempts: 1\n",
    );
    let out = render(&base, &[]);
    let first = out.lines().nth(4).unwrap();
    expect![[r#"  conf driver.cores=1 driver.memory=2g dynamicAllocation.enabled=true dynamicAllocation.maxExecutors=4 dynamicAllocation.minExecutors=1 executor.cores=1 executor.memory=2g yarn.maxAppAttempts=1"#]]
        .assert_eq(first);
}

#[test]
fn empty_jobs() {
    check(
        "type: pipeline\njobs: {}\n",
        expect![[r#"
            pipeline.yml:2:7: `jobs`: a pipeline needs at least one job
              accepted: `jobs:` with one or more steps, e.g. `jobs: {prep: {type: spark, component: ./prep.yml, ...}}`
        "#]],
    );
}

#[test]
fn unknown_pipeline_input() {
    check_edit(
        SHAKESPEARE,
        "${{parent.inputs.sample_rate}}",
        "${{parent.inputs.sample_rat}}",
        expect![[r#"
            pipeline.yml:20:20: `jobs.sample_word.inputs.sample_rate`: the pipeline has no input 'sample_rat' (declared: `file_input`, `sample_rate`) (got `${{parent.inputs.sample_rat}}`)
              accepted: `${{parent.inputs.<name>}}`, `${{parent.jobs.<step>.outputs.<name>}}`
        "#]],
    );
}

#[test]
fn unknown_pipeline_output() {
    check_edit(
        SHAKESPEARE,
        "${{parent.outputs.file_output}}",
        "${{parent.outputs.nope}}",
        expect![[r#"
            pipeline.yml:22:20: `jobs.sample_word.outputs.file_output`: the pipeline has no output 'nope' (got `${{parent.outputs.nope}}`)
              accepted: `file_output`
        "#]],
    );
}

#[test]
fn unknown_node() {
    check_edit(
        SHAKESPEARE,
        "${{parent.jobs.sample_word.outputs.file_output}}",
        "${{parent.jobs.sample_wrd.outputs.file_output}}",
        expect![[r#"
            pipeline.yml:31:9: `jobs.count_word.inputs.file_input`: the pipeline has no step `sample_wrd` (steps: `count_word`, `sample_word`) (got `${{parent.jobs.sample_wrd.outputs.file_output}}`)
              accepted: `${{parent.inputs.<name>}}`, `${{parent.jobs.<step>.outputs.<name>}}`
        "#]],
    );
}

#[test]
fn unknown_node_output() {
    check_edit(
        SHAKESPEARE,
        "${{parent.jobs.sample_word.outputs.file_output}}",
        "${{parent.jobs.sample_word.outputs.words}}",
        expect![[r#"
            pipeline.yml:31:9: `jobs.count_word.inputs.file_input`: step `sample_word` has no output 'words' (its outputs: `file_output`) (got `${{parent.jobs.sample_word.outputs.words}}`)
              accepted: `${{parent.inputs.<name>}}`, `${{parent.jobs.<step>.outputs.<name>}}`
        "#]],
    );
}

#[test]
fn a_cycle() {
    check_edit(
        SHAKESPEARE,
        "file_input: ${{parent.inputs.file_input}}",
        "file_input: ${{parent.jobs.count_word.outputs.file_output}}",
        expect![[r#"
            pipeline.yml:26:3: `jobs.count_word`: steps form a cycle: `count_word` -> `sample_word` -> `count_word` (each reads an output of the next); a pipeline must be acyclic
        "#]],
    );
    let two_way = ADD_COLUMN
        .replacen(
            "file_input: ${{parent.inputs.iris_data}}",
            "file_input: ${{parent.jobs.count_by_rows.outputs.output}}",
            1,
        )
        .replacen(
            "    inputs:\n      file_input: ${{parent.inputs.iris_data}}\n    outputs:",
            "    inputs:\n      file_input: ${{parent.jobs.add_greeting_columns.outputs.out}}\n    outputs:",
            1,
        )
        .replacen(
            "    code: ./src\n    entry:\n      file: add_greeting_column.py",
            "    outputs:\n      out:\n        type: uri_folder\n    code: ./src\n    entry:\n      file: add_greeting_column.py",
            1,
        );
    check(
        &two_way,
        expect![[r#"
            pipeline.yml:14:3: `jobs.add_greeting_columns`: steps form a cycle: `add_greeting_columns` -> `count_by_rows` -> `add_greeting_columns` (each reads an output of the next); a pipeline must be acyclic
        "#]],
    );
}

#[test]
fn a_required_input_left_unbound() {
    check_edit(
        SHAKESPEARE,
        "      file_input: ${{parent.inputs.file_input}}\n",
        "",
        expect![[r#"
            pipeline.yml:15:3: `jobs.sample_word.inputs.file_input`: Required input 'file_input' for component 'sample_word' not provided.
              accepted: `file_input: ${{parent.inputs.<name>}}`, a step's output, or a value
        "#]],
    );
}

#[test]
fn an_input_the_component_does_not_declare() {
    check_edit(
        SHAKESPEARE,
        "      sample_rate: ${{parent.inputs.sample_rate}}\n",
        "      sample_rate: ${{parent.inputs.sample_rate}}\n      rate: 3\n",
        expect![[r#"
            pipeline.yml:21:13: `jobs.sample_word.inputs.rate`: component `sample_spark_component` has no input 'rate'
              accepted: `file_input`, `sample_rate`
        "#]],
    );
}

#[test]
fn a_non_direct_mode_on_a_spark_port() {
    check_edit(
        SHAKESPEARE,
        "        mode: direct\n    resources:",
        "        mode: ro_mount\n    resources:",
        expect![[r#"
            pipeline.yml:32:15: `jobs.count_word.inputs.file_input`: Input 'file_input' is using 'ro_mount' mode, only 'direct' is supported for Spark job (got `ro_mount`)
              accepted: `mode: direct`
        "#]],
    );
    // The pipeline's mode takes effect for inputs bound to it.
    check_edit(
        SHAKESPEARE,
        "    path: ./data/shakespeare.txt\n    mode: direct",
        "    path: ./data/shakespeare.txt\n    mode: mount",
        expect![[r#"
            pipeline.yml:19:19: `jobs.sample_word.inputs.file_input`: Input 'file_input' is using 'mount' mode, only 'direct' is supported for Spark job (got `mount`)
              accepted: `mode: direct`
        "#]],
    );
}

#[test]
fn neither_or_both_of_compute_and_resources() {
    check_edit(
        SHAKESPEARE,
        "    resources:\n      instance_type: Standard_E8S_V3\n      runtime_version: 3.4.0\n  count_word:",
        "  count_word:",
        expect![[r#"
            pipeline.yml:15:3: `jobs.sample_word.resources`: One of either compute or resources must be specified for Spark job
              accepted: `resources: {instance_type: standard_e4s_v3, runtime_version: "3.4"}` for serverless Spark, or `compute: <attached pool>`; `settings.default_compute` does not apply to Spark steps
        "#]],
    );
    check_edit(
        ADD_COLUMN,
        "    resources:\n      instance_type: Standard_E8S_V3\n      runtime_version: 3.4.0\n    conf:",
        "    compute: mypool\n    resources:\n      instance_type: Standard_E8S_V3\n      runtime_version: 3.4.0\n    conf:",
        expect![[r#"
            pipeline.yml:27:14: `jobs.add_greeting_columns.compute`: Only one of either compute or resources may be specified for Spark job
        "#]],
    );
}

#[test]
fn settings_rules_and_typos() {
    check_edit(
        SHAKESPEARE,
        "jobs:\n",
        "settings:\n  default_datastore: workspaceblobstore\n  continue_on_step_failure: maybe\n  contine_on_step_failure: false\njobs:\n",
        expect![[r#"
            job spec `pipeline.yml` has 2 problems:
            pipeline.yml:15:22: `settings.default_datastore`: In order to specify an existing datastores, please provide either of the following prefixed with 'azureml:' (got `workspaceblobstore`)
              accepted: `azureml:workspaceblobstore`
            pipeline.yml:16:29: `settings.continue_on_step_failure`: Not a valid boolean. (got `maybe`)
              accepted: `true` or `false`
        "#]],
    );
}

#[test]
fn a_bad_node_name_and_component_reference() {
    check_edit(
        SHAKESPEARE,
        "  count_word:\n    type: spark\n    component: ./word_count/component.yml",
        "  Count-Word:\n    type: spark\n    component: wordcount_spark_component:1",
        expect![[r#"
            job spec `pipeline.yml` has 2 problems:
            pipeline.yml:26:3: `jobs.Count-Word`: Pipeline node name should be a valid python identifier(lower letters, numbers, underscore and start with a letter or underscore). Currently got Count-Word. (got `Count-Word`)
              accepted: a name matching `^[a-z_][a-z0-9_]*$`
            pipeline.yml:28:16: `jobs.Count-Word.component`: In order to specify an existing components, please provide either of the following prefixed with 'azureml:' (got `wordcount_spark_component:1`)
              accepted: `azureml:wordcount_spark_component:1` for a registered component, or a local component file such as `./component.yml`
        "#]],
    );
}

#[test]
fn a_parameter_outside_its_bounds() {
    let bounded = SAMPLE_WORD.replace(
        "    default: 0.01\n",
        "    default: 0.01\n    min: 0\n    max: 1\n",
    );
    let loaded = crate::parse_component(&bounded, "c.yml", &[], true).unwrap();
    let port = &loaded.spec.inputs["sample_rate"];
    expect![[r#"Err("parameter 'sample_rate' is 3, above its maximum 1")"#]]
        .assert_eq(&format!("{:?}", check_parameter("sample_rate", port, "3")));
}

#[test]
fn component_rules() {
    let render = |text: &str| match crate::parse_component(text, "component.yml", &[], false) {
        Ok(c) => format!(
            "ok {:?}",
            c.warnings
                .iter()
                .map(|w| w.render("component.yml"))
                .collect::<Vec<_>>()
        ),
        Err(e) => e.to_string(),
    };
    expect![[r#"
        job spec `component.yml` has 1 problem:
        component.yml:2:7: `name`: Component name should only contain lower letter, number, underscore and start with a lower letter. Currently got Sample-Word. (got `Sample-Word`)
          accepted: a name matching `^[a-z][a-z0-9_]*$`
    "#]].assert_eq(&render(&SAMPLE_WORD.replace("name: sample_spark_component", "name: Sample-Word")));
    expect![[r#"
        job spec `component.yml` has 1 problem:
        component.yml:1:1: `name`: Missing data for required field.
          accepted: a name such as `titanic_spark_component`
    "#]]
    .assert_eq(&render(
        &SAMPLE_WORD.replace("name: sample_spark_component\n", ""),
    ));
    expect![[r#"
        job spec `component.yml` has 2 problems:
        component.yml:10:14: `inputs.Sample_rate.type`: Missing data for required field.
          accepted: `uri_file`, `uri_folder`, `number`, `integer`, `string`, `boolean`
        component.yml:13:3: `inputs.sample_rate`: Invalid component input names 'sample_RATE' and 'sample_rate', which are equal ignore case.
    "#]].assert_eq(&render(&SAMPLE_WORD.replace("  sample_rate:\n", "  Sample_rate:\n  sample_RATE:\n    type: string\n  sample_rate:\n")));
    expect![[r#"
        job spec `component.yml` has 1 problem:
        component.yml:9:11: `inputs.file_input.path`: Unknown field.
          accepted: a component's inputs declare a port; the pipeline node gives its path
    "#]]
    .assert_eq(&render(&SAMPLE_WORD.replace(
        "    type: uri_file\n    mode: direct\n  sample_rate",
        "    type: uri_file\n    path: x.txt\n  sample_rate",
    )));
    expect![[r#"ok ["component.yml:32:10: `compute`: a component does not set `compute`; the pipeline node that uses it does, so this has no effect"]"#]].assert_eq(&render(&format!("{SAMPLE_WORD}compute: mypool\n")));
}

#[test]
fn a_settings_typo_is_a_warning_with_a_suggestion() {
    let out = render(
        &SHAKESPEARE.replace("jobs:\n", "settings:\n  contine_on_step_failure: false\n  default_datastore: azureml:workspaceblobstore\njobs:\n"),
        &[],
    );
    expect![[r#"
        warning: pipeline.yml:15:3: `settings.contine_on_step_failure`: unknown setting, ignored; did you mean `continue_on_step_failure`?
          accepted: `default_datastore`, `default_compute`, `continue_on_step_failure`, `force_rerun`"#]]
    .assert_eq(out.lines().take(2).collect::<Vec<_>>().join("\n").as_str());
}

#[test]
fn the_wire_form_round_trips() {
    let mut loaded = crate::parse_pipeline(SHAKESPEARE, "pipeline.yml", &[]).unwrap();
    for node in loaded.spec.jobs.values_mut() {
        if let ComponentRef::File { path } = &node.component {
            let c = crate::parse_component(components()[path.as_str()], path, &[], true).unwrap();
            node.component = ComponentRef::Anonymous {
                spec: Box::new(c.spec),
            };
        }
    }
    let json = serde_json::to_value(&loaded.spec).unwrap();
    let back: crate::pipeline::PipelineSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, loaded.spec);
}

#[test]
fn a_command_step_reads_a_spark_steps_output() {
    let pipeline = SHAKESPEARE.replace(
        "  count_word:\n    type: spark\n    component: ./word_count/component.yml\n    inputs:\n      file_input:\n        path: ${{parent.jobs.sample_word.outputs.file_output}}\n        mode: direct\n    resources:\n      instance_type: Standard_E8S_V3\n      runtime_version: 3.4.0\n",
        "  list_words:\n    type: command\n    inputs:\n      sample: ${{parent.jobs.sample_word.outputs.file_output}}\n    command: ls ${{inputs.sample}}\n    environment:\n      conda_file: conda.yml\n    compute: azureml:cpu-cluster\n",
    );
    assert!(pipeline.contains("list_words"));
    check(
        &pipeline,
        expect![[r#"
            pipeline.yml:33:14: `jobs.list_words.compute`: Not found compute with name cpu-cluster
            hint: command steps run as processes on the Spool host: write `compute: serverless` or leave `compute` out
        "#]],
    );
    check(
        &pipeline.replace("    compute: azureml:cpu-cluster\n", ""),
        expect![[r#"
            sample_word (azureml_anonymous) after {}
              in  file_input: ./data/shakespeare.txt
              in  sample_rate: =0.01
              out file_output: <default> (pipeline output file_output)
              conf driver.cores=1 driver.memory=2g dynamicAllocation.enabled=true dynamicAllocation.maxExecutors=4 dynamicAllocation.minExecutors=1 executor.cores=2 executor.memory=2g
            list_words (azureml_anonymous) after {"sample_word"}
              in  sample: <sample_word.file_output>
              command ls ${{inputs.sample}}
        "#]],
    );
    check(
        &pipeline.replace(
            "    compute: azureml:cpu-cluster\n",
            "    environment_variables:\n      1BAD: x\n",
        ),
        expect![[r#"
            job spec `pipeline.yml` has 1 problem:
            pipeline.yml:34:7: `jobs.list_words.environment_variables.1BAD`: not a valid environment variable name
              accepted: a name matching `^[A-Za-z_][A-Za-z0-9_]*$`
        "#]],
    );
    check(
        &pipeline.replace("type: command", "type: spark"),
        expect![[r#"
            job spec `pipeline.yml` has 1 problem:
            pipeline.yml:27:5: `jobs.list_words.component`: missing: a step needs a `component` (a file, or `azureml:<name>:<version>`), or `code` and `entry` of its own
        "#]],
    );
}

#[test]
fn an_inline_step_with_an_empty_entry_is_refused() {
    check_edit(
        ADD_COLUMN,
        "      file: add_greeting_column.py",
        "      file: ''",
        expect![[r#"
            job spec `pipeline.yml` has 1 problem:
            pipeline.yml:20:13: `jobs.add_greeting_columns.entry.file`: must not be empty
              accepted: a path relative to `code`, e.g. `main.py`
        "#]],
    );
}
