//! A pipeline's graph: bindings resolved, every node turned into the Spark job it runs as a
//! child, in an order where each node comes after the nodes it reads from.
//!
//! Azure ML checks none of the bindings at submit (an unknown input, node or output, a cycle,
//! an unbound required input all pass its client and fail later, or never run); Spool rejects
//! each here, naming the node, the port and the expression, before anything is created.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::command::CommandSpec;
use crate::component::{ComponentBody, ComponentSpec, InputPort, OutputPort, check_parameter};
use crate::diag::Diagnostic;
use crate::job::{DataType, JobInput, JobOutput, JobSpec, LiteralType, Positions};
use crate::pipeline::{ComponentRef, NodeInput, NodeSpec, NodeValue, PipelineSpec};
use crate::rules::{
    DA_ENABLED, DA_MAX, DA_MIN, DRIVER_CORES, DRIVER_MEMORY, EXECUTOR_CORES, EXECUTOR_INSTANCES,
    EXECUTOR_MEMORY,
};

/// The name Azure ML registers anonymous components under.
pub const ANONYMOUS_COMPONENT: &str = "azureml_anonymous";

/// A component a registered reference resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedComponent {
    /// `name:version`.
    pub id: String,
    pub spec: ComponentSpec,
}

/// A pipeline ready to record: its nodes in dependency order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub nodes: Vec<PlannedNode>,
}

/// One node, as the Spark job it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedNode {
    pub name: String,
    /// `name:version` of a registered component, `azureml_anonymous:<hash>` otherwise.
    pub component_id: String,
    pub is_deterministic: bool,
    /// The child job. Inputs bound to another node's output have an empty path until that
    /// node's output location is known (see `upstream`).
    pub job: ChildJob,
    /// Inputs that read another node's output: input name to (node, output).
    pub upstream: BTreeMap<String, (String, String)>,
    /// The nodes this one waits for.
    pub depends_on: BTreeSet<String>,
    /// Outputs that are the pipeline's: node output to pipeline output.
    pub parent_outputs: BTreeMap<String, String>,
    /// What decides whether an earlier run can be reused, apart from the content of its data
    /// inputs and the keys of the nodes it reads from (see `reuse_key`).
    pub reuse_basis: serde_json::Value,
}

/// What a node runs as: a Spark job or a command job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "spec", rename_all = "snake_case")]
pub enum ChildJob {
    Spark(JobSpec),
    Command(CommandSpec),
}

impl ChildJob {
    pub fn inputs(&self) -> &BTreeMap<String, JobInput> {
        match self {
            ChildJob::Spark(j) => &j.inputs,
            ChildJob::Command(c) => &c.inputs,
        }
    }

    pub fn inputs_mut(&mut self) -> &mut BTreeMap<String, JobInput> {
        match self {
            ChildJob::Spark(j) => &mut j.inputs,
            ChildJob::Command(c) => &mut c.inputs,
        }
    }

    pub fn outputs(&self) -> &BTreeMap<String, JobOutput> {
        match self {
            ChildJob::Spark(j) => &j.outputs,
            ChildJob::Command(c) => &c.outputs,
        }
    }

    pub fn outputs_mut(&mut self) -> &mut BTreeMap<String, JobOutput> {
        match self {
            ChildJob::Spark(j) => &mut j.outputs,
            ChildJob::Command(c) => &mut c.outputs,
        }
    }

    /// Names the child job and its experiment.
    pub fn name(&mut self, name: &str, experiment: &str) {
        match self {
            ChildJob::Spark(j) => {
                j.name = Some(name.to_string());
                j.experiment_name = Some(experiment.to_string());
            }
            ChildJob::Command(c) => {
                c.name = Some(name.to_string());
                c.experiment_name = Some(experiment.to_string());
            }
        }
    }
}

static PARENT_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\$\{\{\s*parent\.(inputs|outputs)\.([A-Za-z_][\w.]*)\s*\}\}$").expect("regex")
});
static JOB_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\$\{\{\s*parent\.jobs\.([A-Za-z_]\w*)\.(inputs|outputs)\.([A-Za-z_][\w.]*)\s*\}\}$",
    )
    .expect("regex")
});

/// A `${{parent...}}` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    ParentInput(String),
    ParentOutput(String),
    NodeInput(String, String),
    NodeOutput(String, String),
}

fn parse_binding(text: &str) -> Option<Binding> {
    if let Some(c) = PARENT_REF.captures(text) {
        return Some(match &c[1] {
            "inputs" => Binding::ParentInput(c[2].to_string()),
            _ => Binding::ParentOutput(c[2].to_string()),
        });
    }
    let c = JOB_REF.captures(text)?;
    Some(match &c[2] {
        "inputs" => Binding::NodeInput(c[1].to_string(), c[3].to_string()),
        _ => Binding::NodeOutput(c[1].to_string(), c[3].to_string()),
    })
}

const BINDING_FORMS: &str = "`${{parent.inputs.<name>}}`, `${{parent.jobs.<step>.outputs.<name>}}`";

/// The id of an anonymous component: a hash of everything but its name and version, so that
/// the same code and interface give the same id (as Azure ML's anonymous hash).
pub fn anonymous_id(spec: &ComponentSpec) -> String {
    let mut spec = spec.clone();
    spec.name = None;
    spec.version = None;
    let json = serde_json::to_vec(&spec).expect("component serializes");
    format!(
        "{ANONYMOUS_COMPONENT}:{}",
        hex(&Sha256::digest(json))[..16].to_owned()
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reuse key of a node: its basis, the content fingerprints of its data inputs (by input
/// name) and the keys of the nodes it reads from (by input name).
pub fn reuse_key(
    basis: &serde_json::Value,
    fingerprints: &BTreeMap<String, String>,
    upstream_keys: &BTreeMap<String, String>,
) -> String {
    let all = serde_json::json!({
        "basis": basis,
        "data": fingerprints,
        "upstream": upstream_keys,
    });
    hex(&Sha256::digest(serde_json::to_vec(&all).expect("json")))
}

/// Resolves every binding of `pipeline` and orders its nodes. `registered` holds the component
/// each node with a registered reference resolved to (by node name).
pub fn plan(
    pipeline: &PipelineSpec,
    registered: &BTreeMap<String, ResolvedComponent>,
    positions: &Positions,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let pos = |path: &str| positions.get(path).copied();
    if pipeline.jobs.is_empty() {
        diags.push(
            Diagnostic::new("jobs", "a pipeline needs at least one job")
                .at(pos("jobs"))
                .accepted("`jobs:` with one or more steps, e.g. `jobs: {prep: {type: spark, component: ./prep.yml, ...}}`"),
        );
        return Err(diags);
    }

    // Every node's component, with its ports.
    let mut components: BTreeMap<&str, (String, ComponentSpec)> = BTreeMap::new();
    for (name, node) in &pipeline.jobs {
        let at = format!("jobs.{name}.component");
        match &node.component {
            ComponentRef::Anonymous { spec } => {
                components.insert(name, (anonymous_id(spec), (**spec).clone()));
            }
            ComponentRef::Registered { .. } => match registered.get(name) {
                Some(resolved) => {
                    components.insert(name, (resolved.id.clone(), resolved.spec.clone()));
                }
                None => diags.push(
                    Diagnostic::new(&at, "the component was not resolved")
                        .at(pos(&at))
                        .value(node.component.display()),
                ),
            },
            ComponentRef::File { path } => diags.push(
                Diagnostic::new(&at, "a component file must be loaded and sent with the pipeline (`spool job create` does)")
                    .at(pos(&at))
                    .value(path),
            ),
            ComponentRef::Inline { .. } => {}
        }
    }
    // Inline nodes get ports from what they bind: a second pass, once other nodes' ports are
    // known.
    for (name, node) in &pipeline.jobs {
        if let ComponentRef::Inline { body } = &node.component {
            let spec = inline_component(pipeline, name, node, body, &components);
            components.insert(name, (anonymous_id(&spec), spec));
        }
    }

    // Bindings and edges.
    let mut depends: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (name, node) in &pipeline.jobs {
        let deps = depends.entry(name).or_default();
        for (input, given) in &node.inputs {
            if let NodeValue::Binding(text) = &given.value {
                let at = format!("jobs.{name}.inputs.{input}");
                match parse_binding(text) {
                    Some(Binding::NodeOutput(other, _) | Binding::NodeInput(other, _))
                        if pipeline.jobs.contains_key(&other) =>
                    {
                        if other == *name {
                            diags.push(
                                Diagnostic::new(
                                    &at,
                                    format!("step `{name}` cannot read its own ports"),
                                )
                                .at(pos(&at))
                                .value(text),
                            );
                        } else if matches!(parse_binding(text), Some(Binding::NodeOutput(..))) {
                            deps.insert(other);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let order = match topological(&depends) {
        Ok(order) => order,
        Err(cycle) => {
            let first = cycle.first().cloned().unwrap_or_default();
            diags.push(
                Diagnostic::new(
                    format!("jobs.{first}"),
                    format!(
                        "steps form a cycle: {} (each reads an output of the next); a pipeline must be acyclic",
                        cycle
                            .iter()
                            .chain(cycle.first())
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(" -> ")
                    ),
                )
                .at(pos(&format!("jobs.{first}"))),
            );
            return Err(diags);
        }
    };

    let mut bound_parent_outputs: BTreeMap<String, String> = BTreeMap::new();
    let mut nodes = Vec::new();
    for name in order {
        let node = &pipeline.jobs[&name];
        let Some((component_id, component)) = components.get(name.as_str()) else {
            continue;
        };
        let prefix = format!("jobs.{name}");
        if node.step_type.as_str() != component.body.kind() {
            let at = format!("{prefix}.component.type");
            diags.push(
                Diagnostic::new(
                    &at,
                    format!(
                        "Value '{}' passed is not in set ['{}']",
                        component.body.kind(),
                        node.step_type.as_str()
                    ),
                )
                .at(pos(&format!("{prefix}.component")).or(pos(&prefix)))
                .accepted(format!(
                    "a {} component for a `type: {}` step, or `type: {}` on the step",
                    node.step_type.as_str(),
                    node.step_type.as_str(),
                    component.body.kind()
                )),
            );
            continue;
        }
        let is_spark = matches!(component.body, ComponentBody::Spark(_));
        let mut job = match &component.body {
            ComponentBody::Command(_) => JobSpec::default(),
            ComponentBody::Spark(body) => JobSpec {
                code: body.code.clone(),
                entry: body.entry.clone(),
                py_files: body.py_files.clone(),
                jars: body.jars.clone(),
                files: body.files.clone(),
                archives: body.archives.clone(),
                args: body.args.clone(),
                environment: body.environment.clone(),
                conf: merge_conf(&body.conf, &node.conf),
                ..JobSpec::default()
            },
        };
        job.display_name = Some(node.display_name.clone().unwrap_or_else(|| name.clone()));
        job.experiment_name = pipeline.experiment_name.clone();
        job.description = node.description.clone().or(component.description.clone());
        job.tags = node.tags.clone();
        job.properties = node.properties.clone();
        job.identity = node.identity;
        job.identity_selector = node.identity_selector.clone();
        job.resources = node.resources.clone();
        job.compute = node.compute.clone();
        if !is_spark {
            // A command step runs on the Spool host; `settings.default_compute` applies to it.
            job.compute = node
                .compute
                .clone()
                .or(pipeline.settings.default_compute.clone());
        }
        match (&node.compute, &node.resources) {
            _ if !is_spark => {}
            (None, None) => {
                diags.push(
                    Diagnostic::new(
                        format!("{prefix}.resources"),
                        "One of either compute or resources must be specified for Spark job",
                    )
                    .at(pos(&prefix))
                    .accepted("`resources: {instance_type: standard_e4s_v3, runtime_version: \"3.4\"}` for serverless Spark, or `compute: <attached pool>`; `settings.default_compute` does not apply to Spark steps"),
                );
            }
            (Some(_), Some(_)) => diags.push(
                Diagnostic::new(
                    format!("{prefix}.compute"),
                    "Only one of either compute or resources may be specified for Spark job",
                )
                .at(pos(&format!("{prefix}.compute"))),
            ),
            _ => {}
        }

        // Inputs.
        let mut upstream = BTreeMap::new();
        let mut depends_on = BTreeSet::new();
        for input in node.inputs.keys() {
            if !component.inputs.contains_key(input) {
                let at = format!("{prefix}.inputs.{input}");
                diags.push(
                    Diagnostic::new(
                        &at,
                        format!(
                            "component `{}` has no input '{input}'",
                            component_label(node, component)
                        ),
                    )
                    .at(pos(&at))
                    .accepted(declared(component.inputs.keys())),
                );
            }
        }
        for (input, port) in &component.inputs {
            let at = format!("{prefix}.inputs.{input}");
            let Some(given) = node.inputs.get(input) else {
                match port {
                    InputPort::Parameter {
                        default: Some(default),
                        literal_type,
                        ..
                    } => {
                        job.inputs.insert(
                            input.clone(),
                            JobInput::Literal {
                                literal_type: *literal_type,
                                value: default.clone(),
                            },
                        );
                    }
                    _ if port.optional() => {}
                    _ => diags.push(
                        Diagnostic::new(
                            &at,
                            format!(
                                "Required input '{input}' for component '{name}' not provided."
                            ),
                        )
                        .at(pos(&prefix))
                        .accepted(format!(
                            "`{input}: ${{{{parent.inputs.<name>}}}}`, a step's output, or a value"
                        )),
                    ),
                }
                continue;
            };
            match resolve_input(pipeline, &components, name.as_str(), input, given, 0) {
                Ok(Resolved::Data {
                    path,
                    mode,
                    data_type,
                }) => {
                    let InputPort::Data {
                        data_type: port_type,
                        mode: port_mode,
                        ..
                    } = port
                    else {
                        diags.push(
                            Diagnostic::new(&at, format!("input '{input}' is a parameter; it was given data"))
                                .at(pos(&at))
                                .value(path),
                        );
                        continue;
                    };
                    if is_spark {
                        check_direct("Input", input, &at, mode.or(port_mode.clone()), &pos, &mut diags);
                    }
                    job.inputs.insert(
                        input.clone(),
                        JobInput::Data {
                            data_type: data_type.unwrap_or(*port_type),
                            path,
                        },
                    );
                }
                Ok(Resolved::Upstream {
                    node: other,
                    output,
                    mode,
                }) => {
                    let InputPort::Data {
                        data_type,
                        mode: port_mode,
                        ..
                    } = port
                    else {
                        diags.push(
                            Diagnostic::new(&at, format!("input '{input}' is a parameter; it was bound to the output `{output}` of step `{other}`"))
                                .at(pos(&at)),
                        );
                        continue;
                    };
                    if is_spark {
                        check_direct("Input", input, &at, mode.or(port_mode.clone()), &pos, &mut diags);
                    }
                    job.inputs.insert(
                        input.clone(),
                        JobInput::Data {
                            data_type: *data_type,
                            path: String::new(),
                        },
                    );
                    depends_on.insert(other.clone());
                    upstream.insert(input.clone(), (other, output));
                }
                Ok(Resolved::Literal(value)) => match port {
                    InputPort::Parameter { literal_type, .. } => {
                        if let Err(message) = check_parameter(input, port, &value) {
                            diags.push(Diagnostic::new(&at, message).at(pos(&at)).value(&value));
                        }
                        job.inputs.insert(
                            input.clone(),
                            JobInput::Literal {
                                literal_type: *literal_type,
                                value,
                            },
                        );
                    }
                    InputPort::Data { .. } => diags.push(
                        Diagnostic::new(
                            &at,
                            format!("input '{input}' is data; it was given the value '{value}'"),
                        )
                        .at(pos(&at))
                        .accepted("a datastore URI, `${{parent.inputs.<name>}}` or `${{parent.jobs.<step>.outputs.<name>}}`"),
                    ),
                },
                Err(message) => diags.push(
                    Diagnostic::new(&at, message)
                        .at(pos(&at))
                        .value(binding_text(given))
                        .accepted(BINDING_FORMS),
                ),
            }
        }

        // Outputs: every port of the component, at the path the node or pipeline gives, else the
        // default location.
        for output in node.outputs.keys() {
            if !component.outputs.contains_key(output) {
                let at = format!("{prefix}.outputs.{output}");
                diags.push(
                    Diagnostic::new(
                        &at,
                        format!(
                            "component `{}` has no output '{output}'",
                            component_label(node, component)
                        ),
                    )
                    .at(pos(&at))
                    .accepted(declared(component.outputs.keys())),
                );
            }
        }
        let mut parent_outputs = BTreeMap::new();
        for (output, port) in &component.outputs {
            let at = format!("{prefix}.outputs.{output}");
            let given = node.outputs.get(output);
            let mut path = given.and_then(|g| g.path.clone());
            let mut mode = given.and_then(|g| g.mode.clone());
            let mut data_type = given.and_then(|g| g.data_type).unwrap_or(port.data_type);
            if let Some(text) = given.and_then(|g| g.binding.as_ref()) {
                match parse_binding(text) {
                    Some(Binding::ParentOutput(parent)) => match pipeline.outputs.get(&parent) {
                        Some(parent_output) => {
                            if let Some(first) = bound_parent_outputs.get(&parent) {
                                diags.push(
                                    Diagnostic::new(&at, format!("pipeline output '{parent}' is already written by step `{first}`; each pipeline output has one writer"))
                                        .at(pos(&at))
                                        .value(text),
                                );
                            }
                            bound_parent_outputs.insert(parent.clone(), name.clone());
                            path = parent_output.path.clone();
                            mode = mode.or(parent_output.mode.clone());
                            data_type = parent_output.data_type;
                            parent_outputs.insert(output.clone(), parent);
                        }
                        None => diags.push(
                            Diagnostic::new(&at, format!("the pipeline has no output '{parent}'"))
                                .at(pos(&at))
                                .value(text)
                                .accepted(declared(pipeline.outputs.keys())),
                        ),
                    },
                    _ => diags.push(
                        Diagnostic::new(&at, "a step's output binds only to a pipeline output")
                            .at(pos(&at))
                            .value(text)
                            .accepted("`${{parent.outputs.<name>}}`, `{type, path, mode}`, or nothing for the default location"),
                    ),
                }
            }
            if output != "default" && is_spark {
                check_direct(
                    "Output",
                    output,
                    &at,
                    mode.or(port_mode(port)),
                    &pos,
                    &mut diags,
                );
            }
            job.outputs
                .insert(output.clone(), JobOutput { data_type, path });
        }

        let reuse_basis = serde_json::json!({
            "component": component_id,
            "code": component.body.code(),
            "inputs": job.inputs.iter().filter(|(k, _)| !upstream.contains_key(*k)).collect::<BTreeMap<_, _>>(),
            "upstream_outputs": upstream.values().map(|(_, o)| o).collect::<Vec<_>>(),
            "outputs": job.outputs,
            "conf": job.conf,
            "resources": job.resources,
            "compute": job.compute,
            "identity": [serde_json::to_value(job.identity).unwrap_or_default(), serde_json::to_value(&job.identity_selector).unwrap_or_default()],
        });
        let job = match &component.body {
            ComponentBody::Spark(_) => ChildJob::Spark(job),
            ComponentBody::Command(body) => ChildJob::Command(CommandSpec {
                job_type: Default::default(),
                name: None,
                display_name: job.display_name,
                experiment_name: job.experiment_name,
                description: job.description,
                tags: job.tags,
                properties: job.properties,
                code: body.code.clone(),
                command: body.command.clone(),
                environment: body.environment.clone(),
                environment_variables: body.environment_variables.clone(),
                inputs: job.inputs,
                outputs: job.outputs,
                identity: job.identity,
                identity_selector: job.identity_selector,
                compute: job.compute,
                timeout_seconds: None,
            }),
        };
        nodes.push(PlannedNode {
            name: name.clone(),
            component_id: component_id.clone(),
            is_deterministic: component.is_deterministic,
            job,
            upstream,
            depends_on,
            parent_outputs,
            reuse_basis,
        });
    }
    if diags.is_empty() {
        Ok(Plan { nodes })
    } else {
        Err(diags)
    }
}

fn port_mode(port: &OutputPort) -> Option<String> {
    port.mode.clone()
}

fn binding_text(given: &NodeInput) -> String {
    match &given.value {
        NodeValue::Binding(t) | NodeValue::Path(t) | NodeValue::Literal(t) => t.clone(),
    }
}

fn component_label(node: &NodeSpec, component: &ComponentSpec) -> String {
    match &node.component {
        ComponentRef::Registered { .. } => node.component.display(),
        _ => component
            .name
            .clone()
            .unwrap_or_else(|| node.component.display()),
    }
}

fn declared<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none are declared".into()
    } else {
        names.join(", ")
    }
}

/// Spark reads and writes datastore paths itself: any other mode is refused, on the mode that
/// takes effect (node, else pipeline, else component; none means direct).
fn check_direct(
    kind: &str,
    name: &str,
    at: &str,
    mode: Option<String>,
    pos: &dyn Fn(&str) -> Option<crate::yaml::Pos>,
    diags: &mut Vec<Diagnostic>,
) {
    if let Some(mode) = mode
        && mode != "direct"
    {
        diags.push(
            Diagnostic::new(
                at,
                format!("{kind} '{name}' is using '{mode}' mode, only 'direct' is supported for Spark job"),
            )
            .at(pos(&format!("{at}.mode")).or(pos(at)))
            .value(mode)
            .accepted("`mode: direct`"),
        );
    }
}

enum Resolved {
    Data {
        path: String,
        mode: Option<String>,
        data_type: Option<DataType>,
    },
    Upstream {
        node: String,
        output: String,
        mode: Option<String>,
    },
    Literal(String),
}

/// What a node's input reads: follows `${{parent.jobs.<n>.inputs.<i>}}` to what that node's
/// input reads (bounded, so a loop of such references ends).
fn resolve_input(
    pipeline: &PipelineSpec,
    components: &BTreeMap<&str, (String, ComponentSpec)>,
    node: &str,
    input: &str,
    given: &NodeInput,
    depth: usize,
) -> Result<Resolved, String> {
    let text = match &given.value {
        NodeValue::Path(path) => {
            return Ok(Resolved::Data {
                path: path.clone(),
                mode: given.mode.clone(),
                data_type: given.data_type,
            });
        }
        NodeValue::Literal(value) => return Ok(Resolved::Literal(value.clone())),
        NodeValue::Binding(text) => text,
    };
    let Some(binding) = parse_binding(text) else {
        return Err(format!(
            "step `{node}` input '{input}': `{text}` is not a binding this pipeline understands"
        ));
    };
    match binding {
        Binding::ParentInput(name) => match pipeline.inputs.get(&name) {
            Some(parent) => Ok(match &parent.input {
                JobInput::Data { data_type, path } => Resolved::Data {
                    path: path.clone(),
                    mode: given.mode.clone().or(parent.mode.clone()),
                    data_type: given.data_type.or(Some(*data_type)),
                },
                JobInput::Literal { value, .. } => Resolved::Literal(value.clone()),
            }),
            None => Err(format!(
                "the pipeline has no input '{name}' (declared: {})",
                declared(pipeline.inputs.keys())
            )),
        },
        Binding::ParentOutput(name) => Err(format!(
            "an input cannot read the pipeline output '{name}'; bind it to the output of the step that writes it (`${{{{parent.jobs.<step>.outputs.<name>}}}}`)"
        )),
        Binding::NodeOutput(other, output) => {
            let Some((_, component)) = components.get(other.as_str()) else {
                return Err(format!(
                    "the pipeline has no step `{other}` (steps: {})",
                    declared(pipeline.jobs.keys())
                ));
            };
            if !component.outputs.contains_key(&output) {
                return Err(format!(
                    "step `{other}` has no output '{output}' (its outputs: {})",
                    declared(component.outputs.keys())
                ));
            }
            Ok(Resolved::Upstream {
                node: other,
                output,
                mode: given.mode.clone(),
            })
        }
        Binding::NodeInput(other, other_input) => {
            let Some(other_node) = pipeline.jobs.get(&other) else {
                return Err(format!(
                    "the pipeline has no step `{other}` (steps: {})",
                    declared(pipeline.jobs.keys())
                ));
            };
            let Some(next) = other_node.inputs.get(&other_input) else {
                return Err(format!("step `{other}` gives no input '{other_input}'"));
            };
            if depth > pipeline.jobs.len() {
                return Err(format!(
                    "inputs of steps refer to each other in a loop through `{other}`"
                ));
            }
            resolve_input(pipeline, components, &other, &other_input, next, depth + 1)
        }
    }
}

/// An inline node's component: its ports are those it binds, typed by what they bind to.
fn inline_component(
    pipeline: &PipelineSpec,
    name: &str,
    node: &NodeSpec,
    body: &ComponentBody,
    components: &BTreeMap<&str, (String, ComponentSpec)>,
) -> ComponentSpec {
    let mut inputs = BTreeMap::new();
    for (input, given) in &node.inputs {
        let port = match resolve_input(pipeline, components, name, input, given, 0) {
            Ok(Resolved::Literal(value)) => InputPort::Parameter {
                literal_type: literal_type_of(&value),
                default: None,
                optional: false,
                min: None,
                max: None,
                allowed: Vec::new(),
                description: None,
            },
            Ok(Resolved::Data { data_type, .. }) => InputPort::Data {
                data_type: data_type.unwrap_or(DataType::UriFolder),
                mode: None,
                optional: false,
                description: None,
            },
            Ok(Resolved::Upstream { node, output, .. }) => InputPort::Data {
                data_type: components
                    .get(node.as_str())
                    .and_then(|(_, c)| c.outputs.get(&output))
                    .map_or(DataType::UriFolder, |o| o.data_type),
                mode: None,
                optional: false,
                description: None,
            },
            // The binding's error is reported when the node's inputs are resolved.
            Err(_) => InputPort::Data {
                data_type: DataType::UriFolder,
                mode: None,
                optional: false,
                description: None,
            },
        };
        inputs.insert(input.clone(), port);
    }
    let mut outputs = BTreeMap::new();
    for (output, given) in &node.outputs {
        let parent_type = given
            .binding
            .as_deref()
            .and_then(parse_binding)
            .and_then(|b| match b {
                Binding::ParentOutput(p) => pipeline.outputs.get(&p).map(|o| o.data_type),
                _ => None,
            });
        outputs.insert(
            output.clone(),
            OutputPort {
                data_type: given
                    .data_type
                    .or(parent_type)
                    .unwrap_or(DataType::UriFolder),
                mode: None,
                description: None,
            },
        );
    }
    ComponentSpec {
        name: None,
        version: None,
        display_name: None,
        description: None,
        tags: BTreeMap::new(),
        is_deterministic: true,
        inputs,
        outputs,
        body: body.clone(),
    }
}

fn literal_type_of(value: &str) -> LiteralType {
    if value.parse::<i64>().is_ok() {
        LiteralType::Integer
    } else if value.parse::<f64>().is_ok() {
        LiteralType::Number
    } else if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
        LiteralType::Boolean
    } else {
        LiteralType::String
    }
}

/// The SDK's merge of a node's conf over its component's: the sizing keys one by one (a node
/// value that is false or zero falls back to the component's, as `node or component` does in
/// the SDK, so a node cannot turn off dynamic allocation its component turns on); every other
/// key as a whole: a node that sets any replaces all of the component's.
fn merge_conf(
    component: &BTreeMap<String, crate::job::ConfValue>,
    node: &BTreeMap<String, crate::job::ConfValue>,
) -> BTreeMap<String, crate::job::ConfValue> {
    use crate::job::ConfValue;
    const PROMOTED: &[&str] = &[
        DRIVER_CORES,
        DRIVER_MEMORY,
        EXECUTOR_CORES,
        EXECUTOR_MEMORY,
        EXECUTOR_INSTANCES,
        DA_ENABLED,
        DA_MIN,
        DA_MAX,
    ];
    let truthy = |v: &ConfValue| match v {
        ConfValue::Bool(b) => *b,
        ConfValue::Int(i) => *i != 0,
        ConfValue::Str(s) => !s.is_empty(),
    };
    let mut merged = BTreeMap::new();
    for key in PROMOTED {
        let value = node.get(*key).filter(|v| truthy(v)).or(component.get(*key));
        if let Some(value) = value {
            merged.insert(key.to_string(), value.clone());
        }
    }
    let node_rest: Vec<_> = node
        .iter()
        .filter(|(k, _)| !PROMOTED.contains(&k.as_str()))
        .collect();
    let rest: Vec<_> = if node_rest.is_empty() {
        component
            .iter()
            .filter(|(k, _)| !PROMOTED.contains(&k.as_str()))
            .collect()
    } else {
        node_rest
    };
    for (k, v) in rest {
        merged.insert(k.clone(), v.clone());
    }
    merged
}

/// Kahn's algorithm, ties broken by name; on a cycle, returns the nodes of one cycle.
fn topological(depends: &BTreeMap<&str, BTreeSet<String>>) -> Result<Vec<String>, Vec<String>> {
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> = depends
        .iter()
        .map(|(n, deps)| {
            (
                *n,
                deps.iter()
                    .map(String::as_str)
                    .filter(|d| depends.contains_key(d))
                    .collect(),
            )
        })
        .collect();
    let mut order = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<&str> = remaining
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(n, _)| *n)
            .collect();
        if ready.is_empty() {
            // Walk dependencies from any remaining node until one repeats: that is a cycle.
            let mut path: Vec<&str> = Vec::new();
            let mut at = *remaining.keys().next().expect("non-empty");
            while !path.contains(&at) {
                path.push(at);
                at = remaining[at]
                    .iter()
                    .next()
                    .copied()
                    .expect("has a dependency");
            }
            let start = path.iter().position(|n| *n == at).expect("in path");
            return Err(path[start..].iter().map(|s| s.to_string()).collect());
        }
        for n in &ready {
            remaining.remove(n);
        }
        for deps in remaining.values_mut() {
            for n in &ready {
                deps.remove(n);
            }
        }
        order.extend(ready.into_iter().map(str::to_string));
    }
    Ok(order)
}

/// Checks every node's job against the rules standalone jobs follow (for Spark: conf
/// completeness, dynamic allocation, sizes, args against ports; for commands: the command's
/// bindings and compute), reported under `jobs.<node>`; gives each Spark node's sizing.
pub fn check_nodes(
    plan: &Plan,
    catalog: &crate::rules::Catalog,
    positions: &Positions,
) -> Result<Vec<crate::rules::SparkSizing>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut sizings = Vec::new();
    for node in &plan.nodes {
        let prefix = format!("jobs.{}", node.name);
        let mut node_diags = Vec::new();
        let sizing = match &node.job {
            ChildJob::Spark(job) => {
                crate::rules::check(job, &Positions::new(), catalog, &mut node_diags)
            }
            ChildJob::Command(command) => {
                if let Err(d) = crate::command::check_command(command) {
                    node_diags.extend(d);
                }
                None
            }
        };
        for mut d in crate::component::prefix_diags(&prefix, node_diags) {
            // The component's fields were written in its own file: point at the node.
            d.pos = positions.get(&d.field).or(positions.get(&prefix)).copied();
            diags.push(d);
        }
        if let Some(sizing) = sizing {
            sizings.push(sizing);
        }
    }
    if diags.is_empty() {
        Ok(sizings)
    } else {
        Err(diags)
    }
}

#[cfg(test)]
mod tests;
