use expect_test::{Expect, expect};

use super::*;

/// A command job in the shape of the Azure ML samples.
const BASE: &str = r#"$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
code: ./src
command: >-
  python count.py --data ${{inputs.data}} $[[--rate ${{inputs.rate}}]]
  --out ${{outputs.counts}}
environment:
  conda_file: conda.yml
inputs:
  data:
    type: uri_file
    path: ./data/words.txt
  rate: 0.5
outputs:
  counts:
    type: uri_folder
compute: azureml:serverless
limits:
  timeout: 600
environment_variables:
  GREETING: hello
"#;

fn render(yaml: &str) -> String {
    match parse_command_job(yaml, "cmd.yml", &[]) {
        Ok(valid) => {
            let spec = valid.spec;
            format!(
                "ok command={:?} code={:?} env={:?} inputs={:?} outputs={:?} compute={:?} timeout={:?} vars={:?}",
                spec.command,
                spec.code,
                spec.environment,
                spec.inputs,
                spec.outputs,
                spec.compute,
                spec.timeout_seconds,
                spec.environment_variables,
            )
        }
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn check(yaml: &str, expect: Expect) {
    expect.assert_eq(&render(yaml));
}

#[track_caller]
fn check_edit(from: &str, to: &str, expect: Expect) {
    assert!(BASE.contains(from), "{from:?} not in the base spec");
    expect.assert_eq(&render(&BASE.replacen(from, to, 1)));
}

#[test]
fn the_base_command_job_is_accepted() {
    check(
        BASE,
        expect![[
            r#"ok command="python count.py --data ${{inputs.data}} $[[--rate ${{inputs.rate}}]] --out ${{outputs.counts}}" code=Some("./src") env=Some(CommandEnvironment { conda_file: "conda.yml", conda_file_path: None }) inputs={"data": Data { data_type: UriFile, path: "./data/words.txt" }, "rate": Literal { literal_type: Number, value: "0.5" }} outputs={"counts": JobOutput { data_type: UriFolder, path: None }} compute=Some("serverless") timeout=Some(600) vars={"GREETING": "hello"}"#
        ]],
    );
}

#[test]
fn a_minimal_command_job_needs_only_its_command() {
    check(
        "type: command\ncommand: echo hi\n",
        expect![[
            r#"ok command="echo hi" code=None env=None inputs={} outputs={} compute=None timeout=None vars={}"#
        ]],
    );
}

#[test]
fn an_inline_conda_file_is_carried_as_its_text() {
    check_edit(
        "  conda_file: conda.yml\n",
        "  conda_file:\n    dependencies:\n      - python=3.11\n",
        expect![[
            r#"ok command="python count.py --data ${{inputs.data}} $[[--rate ${{inputs.rate}}]] --out ${{outputs.counts}}" code=Some("./src") env=Some(CommandEnvironment { conda_file: "{\"dependencies\":[\"python=3.11\"]}", conda_file_path: Some("environment.conda_file") }) inputs={"data": Data { data_type: UriFile, path: "./data/words.txt" }, "rate": Literal { literal_type: Number, value: "0.5" }} outputs={"counts": JobOutput { data_type: UriFolder, path: None }} compute=Some("serverless") timeout=Some(600) vars={"GREETING": "hello"}"#
        ]],
    );
}

#[test]
fn mount_and_copy_modes_give_a_path() {
    check_edit(
        "    path: ./data/words.txt\n",
        "    path: ./data/words.txt\n    mode: ro_mount\n",
        expect![[
            r#"ok command="python count.py --data ${{inputs.data}} $[[--rate ${{inputs.rate}}]] --out ${{outputs.counts}}" code=Some("./src") env=Some(CommandEnvironment { conda_file: "conda.yml", conda_file_path: None }) inputs={"data": Data { data_type: UriFile, path: "./data/words.txt" }, "rate": Literal { literal_type: Number, value: "0.5" }} outputs={"counts": JobOutput { data_type: UriFolder, path: None }} compute=Some("serverless") timeout=Some(600) vars={"GREETING": "hello"}"#
        ]],
    );
}

#[test]
fn an_unknown_compute_is_not_found() {
    check_edit(
        "compute: azureml:serverless",
        "compute: azureml:cpu-cluster",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:17:10: `compute`: Not found compute with name cpu-cluster
            hint: command steps run as processes on the Spool host: write `compute: serverless` or leave `compute` out
        "#]],
    );
}

#[test]
fn a_docker_image_is_refused_by_its_field() {
    check_edit(
        "  conda_file: conda.yml\n",
        "  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04\n  conda_file: conda.yml\n",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:8:10: `environment.image`: Docker images are not supported: a command runs as a process on the Spool host, in the runtime's Python with the packages of `conda_file`
            hint: remove `image` and list the packages the command needs in `conda_file` (got `mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04`)
        "#]],
    );
}

#[test]
fn a_registered_environment_is_refused_with_what_to_write() {
    check_edit(
        "environment:\n  conda_file: conda.yml\n",
        "environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest\n",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:7:14: `environment`: registered environments are not supported (got `azureml://registries/azureml/environments/sklearn-1.5/labels/latest`); Spool builds a command's environment from a conda file
            hint: give the packages the command needs in a conda file: `environment: {conda_file: conda.yml}`
              accepted: environment:
                conda_file: conda.yml   # PyPI packages, layered on the runtime's Python
        "#]],
    );
}

#[test]
fn an_environment_without_a_conda_file_is_refused() {
    check_edit(
        "  conda_file: conda.yml\n",
        "  name: mine\n",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:8:3: `environment.conda_file`: missing required field
              accepted: environment:
                conda_file: conda.yml   # PyPI packages, layered on the runtime's Python
        "#]],
    );
}

#[test]
fn distribution_and_many_instances_are_refused() {
    check_edit(
        "limits:\n",
        "distribution:\n  type: pytorch\nresources:\n  instance_count: 2\nlimits:\n",
        expect![[r#"
            job spec `cmd.yml` has 2 problems:
            cmd.yml:21:19: `resources.instance_count`: a command step runs as one process on the Spool host
            hint: remove `instance_count` (or write 1) (got `2`)
            cmd.yml:19:3: `distribution`: distributed commands (MPI, PyTorch, TensorFlow) are not supported: a command step runs as one process on the Spool host
            hint: remove `distribution`, or run the distributed part as a Spark job
        "#]],
    );
}

#[test]
fn unknown_fields_are_named() {
    check_edit(
        "limits:\n",
        "entry:\n  file: main.py\nlimits:\n",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:18:1: `entry`: unknown field
              accepted: `$schema`, `type`, `name`, `display_name`, `experiment_name`, `description`, `tags`, `properties`, `code`, `command`, `environment`, `environment_variables`, `inputs`, `outputs`, `identity`, `compute`, `limits`, `resources`, `distribution` in a command job
        "#]],
    );
}

#[test]
fn an_undeclared_input_is_reported_at_the_command() {
    check_edit(
        "--data ${{inputs.data}}",
        "--data ${{inputs.dta}}",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:5:3: `command`: the command references input `dta`, which the job does not declare (declared: `data`, `rate`)
        "#]],
    );
}

#[test]
fn an_undeclared_output_is_reported() {
    check_edit(
        "${{outputs.counts}}",
        "${{outputs.count}}",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:5:3: `command`: the command references output `count`, which the job does not declare (declared: `counts`)
        "#]],
    );
}

#[test]
fn a_missing_command_and_a_bad_timeout_are_reported() {
    check(
        "type: command\nlimits:\n  timeout: 0\n",
        expect![[r#"
            job spec `cmd.yml` has 2 problems:
            cmd.yml:1:1: `command`: missing required field
              accepted: shell text, e.g. `python train.py --data ${{inputs.data}}`
            cmd.yml:3:12: `limits.timeout`: must be a whole number of seconds, at least 1 (got `0`)
              accepted: e.g. `timeout: 3600`
        "#]],
    );
}

#[test]
fn an_unsupported_mode_and_a_bad_variable_name_are_reported() {
    check_edit(
        "  GREETING: hello\n",
        "  GREETING: hello\n  2BAD: x\n",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:22:9: `environment_variables.2BAD`: not a valid environment variable name
              accepted: a name matching `^[A-Za-z_][A-Za-z0-9_]*$`
        "#]],
    );
    check_edit(
        "    path: ./data/words.txt\n",
        "    path: ./data/words.txt\n    mode: eval_mount\n",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:13:11: `inputs.data.mode`: Input 'data' is using 'eval_mount' mode, which a command step does not support (got `eval_mount`)
              accepted: `ro_mount`, `download`, `direct` (each gives the path of the data on the Spool host)
        "#]],
    );
}

#[test]
fn a_spark_job_is_not_a_command_job() {
    check(
        "type: spark\ncommand: echo\n",
        expect![[r#"
            job spec `cmd.yml` has 1 problem:
            cmd.yml:1:7: `type`: not a command job (got `spark`)
              accepted: `command`
        "#]],
    );
}

#[test]
fn job_type_peeks_at_the_type() {
    assert_eq!(job_type(BASE).as_deref(), Some("command"));
    assert_eq!(
        job_type("type: spark\nentry: {}\n").as_deref(),
        Some("spark")
    );
    assert_eq!(job_type("entry: {}\n"), None);
    assert_eq!(job_type("- not a mapping\n"), None);
    assert_eq!(job_type("type: [\n"), None);
}

#[test]
fn a_json_spec_is_held_to_the_same_rules() {
    let spec = CommandSpec {
        command: "cat ${{inputs.nope}}".into(),
        compute: Some("cpu-cluster".into()),
        timeout_seconds: Some(0),
        ..CommandSpec::default()
    };
    let rendered: Vec<String> = check_command(&spec)
        .unwrap_err()
        .iter()
        .map(|d| d.render("job"))
        .collect();
    expect![[r#"
        job: `compute`: Not found compute with name cpu-cluster
        hint: command steps run as processes on the Spool host: write `compute: serverless` or leave `compute` out
        job: `limits.timeout`: must be at least 1 second
          accepted: a whole number of seconds
        job: `command`: the command references input `nope`, which the job does not declare (none are declared)"#]]
    .assert_eq(&rendered.join("\n"));
    // The wire form says what it is, and reads back.
    let json = serde_json::to_value(CommandSpec {
        command: "true".into(),
        ..CommandSpec::default()
    })
    .unwrap();
    assert_eq!(json["type"], "command");
    let back: CommandSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back.command, "true");
}

fn bind(command: &str, inputs: &[(&str, Option<&str>)], outputs: &[(&str, &str)]) -> String {
    let inputs = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
    let outputs = outputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match bind_command(command, &inputs, &outputs) {
        Ok(bound) => format!("ok {bound}"),
        Err(e) => format!("error {e}"),
    }
}

#[test]
fn binding_fills_inputs_and_outputs_and_drops_unset_sections() {
    let inputs = [
        ("data", Some("/ds/words.txt")),
        ("rate", Some("0.5")),
        ("extra", None),
    ];
    let outputs = [("out", "/ds/azureml/j/out/")];
    let cases = [
        "python a.py --data ${{inputs.data}} --out ${{outputs.out}}",
        "run $[[--rate ${{inputs.rate}}]] $[[--extra ${{inputs.extra}}]] done",
        "run $[[--both ${{inputs.rate}} ${{inputs.extra}}]]",
        "ls ${{ inputs.data }}",
        "echo ${{inputs.extra}}",
        "echo ${{inputs.missing}}",
        "echo $[[--min ${{inputs.undeclared}}]] end",
        "echo $[[${{inputs.missing}}]] $[[${{outputs.nope}}]]",
        "echo ${{outputs.nope}}",
        "echo ${{parent.inputs.x}}",
        "echo $[[open",
        "echo '$HOME' \"${{inputs.data}}\"",
    ];
    let rendered: Vec<String> = cases
        .iter()
        .map(|c| format!("{c}\n  => {}", bind(c, &inputs, &outputs)))
        .collect();
    expect![[r#"
        python a.py --data ${{inputs.data}} --out ${{outputs.out}}
          => ok python a.py --data /ds/words.txt --out /ds/azureml/j/out/
        run $[[--rate ${{inputs.rate}}]] $[[--extra ${{inputs.extra}}]] done
          => ok run --rate 0.5  done
        run $[[--both ${{inputs.rate}} ${{inputs.extra}}]]
          => ok run 
        ls ${{ inputs.data }}
          => ok ls /ds/words.txt
        echo ${{inputs.extra}}
          => error the command uses input `extra`, which has no value
        hint: give it a value, or put the part of the command that uses it in `$[[...]]`
        echo ${{inputs.missing}}
          => error the command references input `missing`, which the job does not declare (declared: `data`, `extra`, `rate`)
        echo $[[--min ${{inputs.undeclared}}]] end
          => ok echo  end
        echo $[[${{inputs.missing}}]] $[[${{outputs.nope}}]]
          => error the command references output `nope`, which the job does not declare (declared: `out`)
        echo ${{outputs.nope}}
          => error the command references output `nope`, which the job does not declare (declared: `out`)
        echo ${{parent.inputs.x}}
          => error `${{parent.inputs.x}}` is not a binding a command job can use
        hint: write `${{inputs.<name>}}` or `${{outputs.<name>}}`
        echo $[[open
          => error the command has a `$[[` without its closing `]]`
        echo '$HOME' "${{inputs.data}}"
          => ok echo '$HOME' "/ds/words.txt""#]]
    .assert_eq(&rendered.join("\n"));
}
