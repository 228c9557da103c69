//! What registering a component checks beyond loading it: everything that can be known before
//! a pipeline uses it.
//!
//! Azure ML registers components that no pipeline can run (an undeclared input in `args`, an
//! incomplete `conf`) and fails only at submit. Spool refuses them at registration, with the
//! positions of the component file where there are any. What only a pipeline node decides
//! (compute, resources, identity, the values of the ports) is not checked here. The entry and
//! the listed files are checked against the code folder by the callers (on disk), as this
//! crate touches no file system.

use crate::component::{
    ComponentBody, ComponentSpec, InputPort, check_component_name, check_io_names,
};
use crate::diag::Diagnostic;
use crate::job::{JobInput, JobOutput, JobSpec, Positions};
use crate::limits;
use crate::rules::{self, Catalog};
use std::collections::BTreeMap;

/// Checks a component for registration; empty when it may be registered. A component
/// received as JSON (no positions) gets the rules its YAML loader applies too (name, port
/// names), so the API accepts nothing the CLI would refuse.
pub fn check_component(
    spec: &ComponentSpec,
    positions: &Positions,
    catalog: &Catalog,
) -> Vec<Diagnostic> {
    let pos = |path: &str| positions.get(path).copied();
    let mut diags = Vec::new();
    match &spec.name {
        Some(name) => {
            check_component_name(name, pos("name"), &mut diags);
            if let Err(e) = limits::check_name("name", name) {
                diags.push(Diagnostic::new("name", e.to_string()).at(pos("name")));
            }
        }
        None => diags.push(
            Diagnostic::new("name", "Missing data for required field.")
                .at(pos("name"))
                .accepted("a name such as `titanic_spark_component`"),
        ),
    }
    if let Some(version) = &spec.version
        && let Err(message) = check_version(version)
    {
        diags.push(
            Diagnostic::new("version", message)
                .at(pos("version"))
                .value(version)
                .accepted(
                    "letters, digits, `.`, `_` and `-`, at most 255, e.g. `1` or `2.0.1`; leave it out for the next version",
                ),
        );
    }
    check_io_names(&spec.inputs, &spec.outputs, positions, &mut diags);

    // The rules of a Spark job, over the job the component is as far as it is known; for a
    // command component, the rules of a command job.
    let body = match &spec.body {
        ComponentBody::Spark(body) => body,
        ComponentBody::Command(body) => {
            let (inputs, outputs) = ports_as_job(spec);
            let command = crate::command::CommandSpec {
                job_type: Default::default(),
                name: None,
                display_name: spec.display_name.clone(),
                experiment_name: None,
                description: spec.description.clone(),
                tags: spec.tags.clone(),
                properties: Default::default(),
                code: body.code.clone(),
                command: body.command.clone(),
                environment: body.environment.clone(),
                environment_variables: body.environment_variables.clone(),
                inputs,
                outputs,
                identity: None,
                identity_selector: Default::default(),
                compute: None,
                timeout_seconds: None,
            };
            if let Err(found) = crate::command::check_command(&command) {
                diags.extend(found.into_iter().map(|mut d| {
                    d.pos = d.pos.or(pos(&d.field)).or(pos("command"));
                    d
                }));
            }
            return diags;
        }
    };
    let job = as_job(spec);
    let mut job_diags = Vec::new();
    rules::check(&job, positions, catalog, &mut job_diags);
    // Without any `conf`, each node that uses the component must give it; with one, it must
    // be complete on its own (a node may still override keys).
    let conf_given = !body.conf.is_empty();
    diags.extend(
        job_diags
            .into_iter()
            .filter(|d| conf_given || d.field != "conf"),
    );
    diags
}

/// The version rule: what fits into `azureml:<name>:<version>` and a URL unchanged.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("a version must not be empty".into());
    }
    if version.len() > limits::MAX_NAME_BYTES {
        return Err(format!(
            "a version may be at most {} bytes long",
            limits::MAX_NAME_BYTES
        ));
    }
    if !version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("a version may contain only letters, digits, `.`, `_` and `-`".into());
    }
    Ok(())
}

/// The Spark job a component runs as, with its ports as the job's inputs and outputs (data
/// without a path, parameters with their default or an empty value).
fn as_job(spec: &ComponentSpec) -> JobSpec {
    let ComponentBody::Spark(body) = &spec.body else {
        return JobSpec::default();
    };
    let (inputs, outputs) = ports_as_job(spec);
    JobSpec {
        inputs,
        outputs,
        display_name: spec.display_name.clone(),
        description: spec.description.clone(),
        tags: spec.tags.clone(),
        code: body.code.clone(),
        entry: body.entry.clone(),
        py_files: body.py_files.clone(),
        jars: body.jars.clone(),
        files: body.files.clone(),
        archives: body.archives.clone(),
        conf: body.conf.clone(),
        args: body.args.clone(),
        environment: body.environment.clone(),
        ..JobSpec::default()
    }
}

/// A component's ports as a job's inputs and outputs (data without a path, parameters with
/// their default or an empty value).
fn ports_as_job(spec: &ComponentSpec) -> (BTreeMap<String, JobInput>, BTreeMap<String, JobOutput>) {
    let inputs = spec
        .inputs
        .iter()
        .map(|(name, port)| {
            let input = match port {
                InputPort::Data { data_type, .. } => JobInput::Data {
                    data_type: *data_type,
                    path: String::new(),
                },
                InputPort::Parameter {
                    literal_type,
                    default,
                    ..
                } => JobInput::Literal {
                    literal_type: *literal_type,
                    value: default.clone().unwrap_or_default(),
                },
            };
            (name.clone(), input)
        })
        .collect();
    let outputs = spec
        .outputs
        .iter()
        .map(|(name, port)| {
            (
                name.clone(),
                JobOutput {
                    data_type: port.data_type,
                    path: None,
                },
            )
        })
        .collect();
    (inputs, outputs)
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            runtimes: vec!["3.4".into()],
            default_runtime: "3.4".into(),
            instance_types: crate::azure_instance_types(),
        }
    }

    /// Loads `yaml` as a registered component and renders what registration says of it.
    #[track_caller]
    fn check(yaml: &str, expect: Expect) {
        let loaded = crate::parse_component(yaml, "c.yml", &[], false).expect("loads");
        let diags = check_component(&loaded.spec, &loaded.positions, &catalog());
        let out: Vec<String> = diags.iter().map(|d| d.render("c.yml")).collect();
        expect.assert_eq(&out.join("\n"));
    }

    /// The same for a spec received as JSON.
    #[track_caller]
    fn check_json(json: &str, expect: Expect) {
        let spec: ComponentSpec = serde_json::from_str(json).expect("a component spec");
        let diags = check_component(&spec, &Positions::new(), &catalog());
        let out: Vec<String> = diags.iter().map(|d| d.render("spec")).collect();
        expect.assert_eq(&out.join("\n"));
    }

    const HEAD: &str = "name: wc\ntype: spark\ncode: .\nentry:\n  file: wc.py\n";

    #[test]
    fn a_complete_component_passes() {
        check(
            &format!(
                "{HEAD}inputs:\n  data: {{type: uri_file}}\n  rate: {{type: number, default: 0.1}}\noutputs:\n  out: {{type: uri_folder}}\nargs: --data ${{{{inputs.data}}}} --rate ${{{{inputs.rate}}}} --out ${{{{outputs.out}}}}\nconf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.executor.instances: 1\n"
            ),
            expect![""],
        );
    }

    #[test]
    fn without_conf_the_node_gives_it() {
        check(HEAD, expect![""]);
    }

    #[test]
    fn args_may_name_only_declared_ports_but_optional_sections_are_exempt() {
        check(
            &format!(
                "{HEAD}inputs:\n  data: {{type: uri_file}}\nargs: --data ${{{{inputs.data}}}} --x ${{{{inputs.nope}}}} $[[--y ${{{{inputs.maybe}}}}]] --out ${{{{outputs.gone}}}}\n"
            ),
            expect![[r#"
                c.yml:8:7: `args`: Inputs to job does not contain 'nope' referenced in args (got `${{inputs.nope}}`)
                  accepted: declared: `data`
                c.yml:8:7: `args`: Outputs to job does not contain 'gone' referenced in args (got `${{outputs.gone}}`)
                  accepted: none are declared"#]],
        );
    }

    #[test]
    fn a_given_conf_must_be_complete_and_its_dynamic_allocation_consistent() {
        check(
            &format!("{HEAD}conf:\n  spark.executor.instances: 2\n"),
            expect![[r#"
                c.yml:7:3: `conf`: spark.driver.cores, spark.driver.memory, spark.executor.cores, spark.executor.memory and spark.executor.instances are mandatory fields.
                  accepted: add the missing `spark.driver.cores`, `spark.driver.memory`, `spark.executor.cores`, `spark.executor.memory`"#]],
        );
        check(
            &format!(
                "{HEAD}conf:\n  spark.driver.cores: 1\n  spark.driver.memory: 1g\n  spark.executor.cores: 1\n  spark.executor.memory: 1g\n  spark.dynamicAllocation.enabled: true\n  spark.dynamicAllocation.minExecutors: 3\n  spark.dynamicAllocation.maxExecutors: 2\n"
            ),
            expect![
                "c.yml:12:41: `conf.spark.dynamicAllocation.minExecutors`: Dynamic min executors should be bigger than 0 and min executors should be equal or less than max executors. (got `minExecutors=3, maxExecutors=2`)"
            ],
        );
    }

    #[test]
    fn a_version_must_fit_a_reference() {
        check(
            &format!("{HEAD}version: 1:2\n"),
            expect![[r#"
                c.yml:6:10: `version`: a version may contain only letters, digits, `.`, `_` and `-` (got `1:2`)
                  accepted: letters, digits, `.`, `_` and `-`, at most 255, e.g. `1` or `2.0.1`; leave it out for the next version"#]],
        );
    }

    #[test]
    fn json_gets_the_loaders_name_rules_too() {
        check_json(
            r#"{"name": "Bad-Name", "inputs": {"a-b": {"kind": "data", "type": "uri_file"}}, "body": {"type": "spark", "code": "snapshot:x", "entry": {"file": "x.py"}}}"#,
            expect![[r#"
                spec: `name`: Component name should only contain lower letter, number, underscore and start with a lower letter. Currently got Bad-Name. (got `Bad-Name`)
                  accepted: a name matching `^[a-z][a-z0-9_]*$`
                spec: `inputs.a-b`: 'a-b' is not a valid parameter name, must be composed letters, numbers, and underscores.
                  accepted: a name matching `^[a-zA-Z_][a-zA-Z0-9_]*$`"#]],
        );
        check_json(
            r#"{"body": {"type": "spark", "code": "snapshot:x", "entry": {"file": "x.py"}}}"#,
            expect![[r#"
                spec: `name`: Missing data for required field.
                  accepted: a name such as `titanic_spark_component`"#]],
        );
    }
}
