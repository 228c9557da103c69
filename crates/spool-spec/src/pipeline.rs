//! Pipeline jobs (`type: pipeline`, Azure ML's pipelineJob schema): their normalized form and
//! their loading from positioned YAML. How nodes bind to each other is `graph.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::component::{self, CommandBodyIn, ComponentBody, ComponentSpec, SparkBodyIn, boolean};
use crate::diag::Diagnostic;
use crate::job::{
    ConfValue, DataType, Fields, IdentityKind, IdentitySelector, JobInput, Modes, OutputsIn,
    Positions, Resources, load_conf, load_data_type, load_identity, load_resources, string,
    string_map,
};
use crate::yaml::{Node, Value};

/// A pipeline job, normalized. This is also the wire form the CLI sends to the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The pipeline's own identity. As in Azure ML it is not pushed into Spark nodes: each
    /// node has its own, or its compute's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityKind>,
    #[serde(default)]
    pub settings: PipelineSettings,
    #[serde(default)]
    pub inputs: BTreeMap<String, PipelineInput>,
    #[serde(default)]
    pub outputs: BTreeMap<String, PipelineOutput>,
    pub jobs: BTreeMap<String, NodeSpec>,
}

/// `settings:` of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// A datastore name (without `azureml:`); outputs without a path go there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_datastore: Option<String>,
    /// `serverless` or a pool name (without `azureml:`). Spark nodes ignore it, as in Azure ML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_compute: Option<String>,
    #[serde(default = "yes")]
    pub continue_on_step_failure: bool,
    #[serde(default)]
    pub force_rerun: bool,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            default_datastore: None,
            default_compute: None,
            continue_on_step_failure: true,
            force_rerun: false,
        }
    }
}

fn yes() -> bool {
    true
}

/// A pipeline input: data at a path or a literal, with the mode it is read in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineInput {
    #[serde(flatten)]
    pub input: JobInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A pipeline output; without a path it goes to the default location of the node that writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineOutput {
    #[serde(rename = "type")]
    pub data_type: DataType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// What kind of step a node is (`type:` on the node).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    #[default]
    Spark,
    Command,
}

impl StepType {
    pub fn as_str(self) -> &'static str {
        match self {
            StepType::Spark => "spark",
            StepType::Command => "command",
        }
    }
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    #[serde(rename = "type", default)]
    pub step_type: StepType,
    pub component: ComponentRef,
    #[serde(default)]
    pub inputs: BTreeMap<String, NodeInput>,
    #[serde(default)]
    pub outputs: BTreeMap<String, NodeOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityKind>,
    #[serde(default, skip_serializing_if = "IdentitySelector::is_empty")]
    pub identity_selector: IdentitySelector,
    /// Spark properties set on the node, merged over the component's (see `graph.rs`).
    #[serde(default)]
    pub conf: BTreeMap<String, ConfValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Which component a node runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ComponentRef {
    /// A local component file, relative to the pipeline file (the CLI loads it and sends it as
    /// `anonymous`).
    File { path: String },
    /// A registered component: `azureml:name:version`, `azureml:name@label`, or `azureml:name`.
    Registered {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A component given whole: loaded from a file, not registered under its name.
    Anonymous { spec: Box<ComponentSpec> },
    /// A node that is its own component (`code` and `entry` on the node); its ports follow from
    /// what the node binds.
    Inline { body: Box<ComponentBody> },
}

impl ComponentRef {
    /// How the reference is written in YAML.
    pub fn display(&self) -> String {
        match self {
            ComponentRef::File { path } => path.clone(),
            ComponentRef::Registered {
                name,
                version: Some(v),
                ..
            } => format!("azureml:{name}:{v}"),
            ComponentRef::Registered {
                name,
                label: Some(l),
                ..
            } => format!("azureml:{name}@{l}"),
            ComponentRef::Registered { name, .. } => format!("azureml:{name}"),
            ComponentRef::Anonymous { .. } => "(anonymous component)".into(),
            ComponentRef::Inline { .. } => "(inline)".into(),
        }
    }
}

/// What a node gives one of its component's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInput {
    pub value: NodeValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The data type written on the node, if any.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub data_type: Option<DataType>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum NodeValue {
    /// `${{parent...}}`, kept as written; `graph.rs` parses it.
    Binding(String),
    /// A datastore URI or a local path (uploaded by the CLI).
    Path(String),
    /// A parameter value.
    Literal(String),
}

/// Where a node's output goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeOutput {
    /// `${{parent.outputs.<name>}}`, if the output is the pipeline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub data_type: Option<DataType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A pipeline as loaded, with where each field was written and what deserves a warning.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPipeline {
    pub spec: PipelineSpec,
    pub positions: Positions,
    pub warnings: Vec<Diagnostic>,
}

const PIPELINE_FIELDS: &[&str] = &[
    "$schema",
    "type",
    "name",
    "display_name",
    "experiment_name",
    "description",
    "tags",
    "properties",
    "compute",
    "settings",
    "inputs",
    "outputs",
    "jobs",
    "identity",
];

const SETTINGS_FIELDS: &[&str] = &[
    "default_datastore",
    "default_compute",
    "continue_on_step_failure",
    "force_rerun",
];

/// Fields of a node that only an inline node (no `component`) may set: with a component they
/// are the component's, and Azure ML ignores them on the node.
const COMPONENT_ONLY_FIELDS: &[&str] = &[
    "command",
    "environment_variables",
    "code",
    "entry",
    "py_files",
    "jars",
    "files",
    "archives",
    "args",
    "environment",
];

const NODE_FIELDS: &[&str] = &[
    "type",
    "component",
    "inputs",
    "outputs",
    "compute",
    "resources",
    "identity",
    "conf",
    "display_name",
    "description",
    "tags",
    "properties",
    "comment",
    "code",
    "entry",
    "py_files",
    "jars",
    "files",
    "archives",
    "args",
    "environment",
    "command",
    "environment_variables",
];

/// Whether a document is a pipeline (`type: pipeline`), without loading it.
pub(crate) fn is_pipeline(root: &Node) -> bool {
    match &root.value {
        Value::Map(entries) => entries.iter().any(|(k, _, v)| {
            k == "type" && matches!(&v.value, Value::Str { text, .. } if text == "pipeline")
        }),
        _ => false,
    }
}

pub(crate) fn load(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<LoadedPipeline> {
    let mut positions = Positions::new();
    let mut warnings = Vec::new();
    let mut spec = PipelineSpec::default();
    let mut fields = Fields::new("", root, diags)?;
    let _ = fields.take("$schema", &mut positions);
    let _ = fields.take("type", &mut positions);
    for (key, slot) in [
        ("name", &mut spec.name),
        ("display_name", &mut spec.display_name),
        ("experiment_name", &mut spec.experiment_name),
        ("description", &mut spec.description),
    ] {
        if let Some(node) = fields.take(key, &mut positions) {
            *slot = string(key, node, diags);
        }
    }
    if let Some(node) = fields.take("tags", &mut positions) {
        spec.tags = string_map("tags", node, &mut positions, diags);
    }
    if let Some(node) = fields.take("properties", &mut positions) {
        spec.properties = string_map("properties", node, &mut positions, diags);
    }
    if let Some(node) = fields.take("identity", &mut positions) {
        spec.identity = load_identity(node, &mut positions, diags).0;
    }
    if let Some(node) = fields.take("compute", &mut positions)
        && let Some(compute) = string("compute", node, diags)
    {
        // The pipeline-level compute is the default compute of command steps.
        let compute = compute.strip_prefix("azureml:").unwrap_or(&compute);
        spec.settings.default_compute = Some(compute.to_string());
    }
    if let Some(node) = fields.take("settings", &mut positions) {
        load_settings(
            node,
            &mut spec.settings,
            &mut positions,
            diags,
            &mut warnings,
        );
    }
    if let Some(node) = fields.take("inputs", &mut positions) {
        spec.inputs = load_pipeline_inputs(node, &mut positions, diags);
    }
    if let Some(node) = fields.take("outputs", &mut positions) {
        spec.outputs = load_pipeline_outputs(node, &mut positions, diags);
    }
    if let Some(node) = fields.take("jobs", &mut positions) {
        match &node.value {
            Value::Map(entries) => {
                for (name, key_pos, value) in entries {
                    let path = format!("jobs.{name}");
                    positions.insert(path.clone(), *key_pos);
                    check_node_name(name, &path, key_pos, diags);
                    if let Some(node) =
                        load_node(&path, value, &mut positions, diags, &mut warnings)
                    {
                        spec.jobs.insert(name.clone(), node);
                    }
                }
            }
            other => diags.push(
                Diagnostic::new(
                    "jobs",
                    format!("expected a mapping of steps, found {}", other.kind()),
                )
                .at(Some(node.pos)),
            ),
        }
    }
    fields.finish(PIPELINE_FIELDS, diags);
    Some(LoadedPipeline {
        spec,
        positions,
        warnings,
    })
}

fn check_node_name(name: &str, path: &str, pos: &crate::yaml::Pos, diags: &mut Vec<Diagnostic>) {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        // The SDK's message keeps its literal `{name}` (an f-string it forgot); Spool names it.
        diags.push(
            Diagnostic::new(
                path,
                format!(
                    "Pipeline node name should be a valid python identifier(lower letters, numbers, underscore and start with a letter or underscore). Currently got {name}."
                ),
            )
            .at(Some(*pos))
            .value(name)
            .accepted("a name matching `^[a-z_][a-z0-9_]*$`"),
        );
    }
}

fn load_settings(
    node: &Node,
    settings: &mut PipelineSettings,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) {
    let Value::Map(entries) = &node.value else {
        diags.push(Diagnostic::new("settings", "expected a mapping").at(Some(node.pos)));
        return;
    };
    for (key, key_pos, value) in entries {
        let path = format!("settings.{key}");
        positions.insert(path.clone(), value.pos);
        match key.as_str() {
            "default_datastore" => {
                let Some(text) = string(&path, value, diags) else {
                    continue;
                };
                match text.strip_prefix("azureml:") {
                    Some(name) if !name.is_empty() => {
                        settings.default_datastore = Some(name.to_string())
                    }
                    _ => diags.push(
                        Diagnostic::new(
                            &path,
                            "In order to specify an existing datastores, please provide either of the following prefixed with 'azureml:'",
                        )
                        .at(Some(value.pos))
                        .value(&text)
                        .accepted(format!("`azureml:{text}`")),
                    ),
                }
            }
            "default_compute" => {
                let Some(text) = string(&path, value, diags) else {
                    continue;
                };
                if text == "serverless" {
                    settings.default_compute = Some(text);
                } else if let Some(name) = text.strip_prefix("azureml:") {
                    settings.default_compute = Some(name.to_string());
                } else {
                    diags.push(
                        Diagnostic::new(
                            &path,
                            format!(
                                "Value '{text}' passed is not in set ['serverless']; In order to specify an existing computes, please provide either of the following prefixed with 'azureml:'"
                            ),
                        )
                        .at(Some(value.pos))
                        .value(&text)
                        .accepted(format!("`serverless` or `azureml:{text}`")),
                    );
                }
            }
            "continue_on_step_failure" => {
                if let Some(b) = boolean(&path, value, diags) {
                    settings.continue_on_step_failure = b;
                }
            }
            "force_rerun" => {
                if let Some(b) = boolean(&path, value, diags) {
                    settings.force_rerun = b;
                }
            }
            other => {
                let close = SETTINGS_FIELDS
                    .iter()
                    .find(|known| similar(known, other))
                    .map(|known| format!("; did you mean `{known}`?"))
                    .unwrap_or_default();
                warnings.push(
                    Diagnostic::new(&path, format!("unknown setting, ignored{close}"))
                        .at(Some(*key_pos))
                        .accepted(
                            SETTINGS_FIELDS
                                .iter()
                                .map(|f| format!("`{f}`"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        ),
                );
            }
        }
    }
}

/// Whether two names differ by at most two edits (a typo), for "did you mean".
fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()] <= 2
}

/// A pipeline's inputs: loaded as a job's are, each with the mode it names (checked per step).
fn load_pipeline_inputs(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, PipelineInput> {
    let inputs = crate::job::load_inputs(node, Modes::Pipeline, positions, diags);
    let Value::Map(entries) = &node.value else {
        return BTreeMap::new();
    };
    inputs
        .into_iter()
        .map(|(name, input)| {
            let mode = entries
                .iter()
                .find(|(key, _, _)| *key == name)
                .and_then(|(_, _, value)| match &value.value {
                    Value::Map(fields) => fields.iter().find(|(k, _, _)| k == "mode"),
                    _ => None,
                })
                .map(|(_, _, mode)| mode.value.display());
            (name, PipelineInput { input, mode })
        })
        .collect()
}

fn load_pipeline_outputs(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, PipelineOutput> {
    crate::job::load_output_entries(node, OutputsIn::Pipeline, positions, diags, |entry| {
        PipelineOutput {
            data_type: entry.data_type,
            path: entry.path,
            mode: entry.mode,
        }
    })
}

/// Loads one node. Paths in diagnostics and positions are under `prefix` (`jobs.<name>`).
fn load_node(
    prefix: &str,
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<NodeSpec> {
    // Loaded with paths relative to the node, then re-rooted, so the job loader's helpers
    // (which name fields from the document's root) can be used as they are.
    let mut local_diags = Vec::new();
    let mut local_warnings = Vec::new();
    let mut local = Positions::new();
    let spec = load_node_fields(node, &mut local, &mut local_diags, &mut local_warnings);
    diags.extend(component::prefix_diags(prefix, local_diags));
    warnings.extend(component::prefix_diags(prefix, local_warnings));
    positions.extend(component::prefix_positions(prefix, local));
    spec
}

fn load_node_fields(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<NodeSpec> {
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new(
                "(document)",
                format!("expected a step mapping, found {}", node.value.kind()),
            )
            .at(Some(node.pos)),
        );
        return None;
    };
    let mut fields = Fields::new("", node, diags)?;
    let mut step_type = StepType::Spark;
    match fields.take("type", positions) {
        Some(n) => match string("type", n, diags).as_deref() {
            Some("spark") | None => {}
            Some("command") => step_type = StepType::Command,
            Some(other) => {
                diags.push(
                    Diagnostic::new("type", "unsupported step type")
                        .at(Some(n.pos))
                        .value(other)
                        .accepted("`spark` or `command`"),
                );
                return None;
            }
        },
        None => diags.push(
            Diagnostic::new("type", "missing required field")
                .at(Some(node.pos))
                .accepted("`spark` or `command`"),
        ),
    }
    let component_node = fields.take("component", positions);
    let component = match component_node {
        Some(n) => {
            let reference = parse_component_ref("component", n, diags)?;
            for key in COMPONENT_ONLY_FIELDS {
                if let Some(ignored) = fields.take(key, positions) {
                    warnings.push(
                        Diagnostic::new(
                            *key,
                            format!(
                                "ignored: `{key}` comes from the component, a node cannot override it"
                            ),
                        )
                        .at(Some(ignored.pos)),
                    );
                }
            }
            reference
        }
        None if step_type == StepType::Command => {
            let body = component::load_command_body(
                CommandBodyIn::Step { node: node.pos },
                &mut fields,
                positions,
                diags,
                warnings,
            )?;
            ComponentRef::Inline {
                body: Box::new(ComponentBody::Command(body)),
            }
        }
        None => {
            let body = component::load_spark_body(
                SparkBodyIn::Step { node: node.pos },
                &mut fields,
                positions,
                diags,
            )?;
            ComponentRef::Inline {
                body: Box::new(ComponentBody::Spark(body)),
            }
        }
    };
    let mut spec = NodeSpec {
        step_type,
        component,
        inputs: BTreeMap::new(),
        outputs: BTreeMap::new(),
        compute: None,
        resources: None,
        identity: None,
        identity_selector: IdentitySelector::default(),
        conf: BTreeMap::new(),
        display_name: None,
        description: None,
        tags: BTreeMap::new(),
        properties: BTreeMap::new(),
    };
    if let Some(n) = fields.take("inputs", positions) {
        spec.inputs = load_node_inputs(n, positions, diags);
    }
    if let Some(n) = fields.take("outputs", positions) {
        spec.outputs = load_node_outputs(n, positions, diags);
    }
    if let Some(n) = fields.take("compute", positions)
        && let Some(compute) = string("compute", n, diags)
    {
        spec.compute = Some(
            compute
                .strip_prefix("azureml:")
                .unwrap_or(&compute)
                .to_string(),
        );
    }
    if let Some(n) = fields.take("resources", positions) {
        spec.resources = load_resources(n, positions, diags);
    }
    if let Some(n) = fields.take("identity", positions) {
        let (kind, selector) = load_identity(n, positions, diags);
        spec.identity = kind;
        spec.identity_selector = selector;
    }
    if let Some(n) = fields.take("conf", positions) {
        let conf = load_conf(n, positions, diags);
        // An inline node's conf is its component's.
        match &mut spec.component {
            ComponentRef::Inline { body } => {
                if let ComponentBody::Spark(spark) = body.as_mut() {
                    spark.conf = conf;
                }
            }
            _ => spec.conf = conf,
        }
    }
    for (key, slot) in [
        ("display_name", &mut spec.display_name),
        ("description", &mut spec.description),
    ] {
        if let Some(n) = fields.take(key, positions) {
            *slot = string(key, n, diags);
        }
    }
    if let Some(n) = fields.take("tags", positions) {
        spec.tags = string_map("tags", n, positions, diags);
    }
    if let Some(n) = fields.take("properties", positions) {
        spec.properties = string_map("properties", n, positions, diags);
    }
    let _ = fields.take("comment", positions);
    // Unknown fields of a node are warnings in the SDK (its schema includes them).
    let taken: Vec<&str> = NODE_FIELDS.to_vec();
    for (key, pos, _) in entries {
        if !taken.contains(&key.as_str()) {
            warnings.push(
                Diagnostic::new(key.as_str(), "Unknown field.")
                    .at(Some(*pos))
                    .accepted(
                        NODE_FIELDS
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
            );
        }
    }
    Some(spec)
}

/// `./x.yml`, `file:./x.yml`, `azureml:name:version`, `azureml:name@label`, `azureml:name`.
fn parse_component_ref(
    path: &str,
    node: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<ComponentRef> {
    let text = match &node.value {
        Value::Map(_) => {
            diags.push(
                Diagnostic::new(
                    path,
                    "an inline component mapping is not supported; put it in a file and write `component: ./component.yml`, or give `code` and `entry` on the node",
                )
                .at(Some(node.pos)),
            );
            return None;
        }
        _ => string(path, node, diags)?,
    };
    if let Some(rest) = text.strip_prefix("azureml:") {
        if rest.starts_with("//registries/") {
            diags.push(
                Diagnostic::new(path, "components from registries are not supported; register the component with `spool component create`")
                    .at(Some(node.pos))
                    .value(&text),
            );
            return None;
        }
        let (name, version, label) = if let Some((name, label)) = rest.split_once('@') {
            (name, None, Some(label.to_string()))
        } else if let Some((name, version)) = rest.split_once(':') {
            (name, Some(version.to_string()), None)
        } else {
            (rest, None, None)
        };
        let mut name_diags = Vec::new();
        component::check_component_name(name, Some(node.pos), &mut name_diags);
        if !name_diags.is_empty() || version.as_deref() == Some("") || label.as_deref() == Some("")
        {
            diags.push(
                Diagnostic::new(path, "not a component reference")
                    .at(Some(node.pos))
                    .value(&text)
                    .accepted("`azureml:<name>:<version>`, `azureml:<name>@latest`, `azureml:<name>`, or a local file such as `./component.yml`"),
            );
            return None;
        }
        return Some(ComponentRef::Registered {
            name: name.to_string(),
            version,
            label,
        });
    }
    let file = text.strip_prefix("file:").unwrap_or(&text);
    if !(file.ends_with(".yml") || file.ends_with(".yaml")) {
        diags.push(
            Diagnostic::new(
                path,
                "In order to specify an existing components, please provide either of the following prefixed with 'azureml:'",
            )
            .at(Some(node.pos))
            .value(&text)
            .accepted(format!(
                "`azureml:{text}` for a registered component, or a local component file such as `./component.yml`"
            )),
        );
        return None;
    }
    Some(ComponentRef::File {
        path: file.to_string(),
    })
}

fn load_node_inputs(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, NodeInput> {
    let mut out = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new("inputs", "expected a mapping of input names").at(Some(node.pos)),
        );
        return out;
    };
    for (name, _, value) in entries {
        let path = format!("inputs.{name}");
        positions.insert(path.clone(), value.pos);
        let input = match &value.value {
            Value::Map(_) => {
                let Some(mut fields) = Fields::new(&path, value, diags) else {
                    continue;
                };
                let data_type = match fields
                    .take("type", positions)
                    .and_then(|n| load_data_type(&format!("{path}.type"), n, diags))
                {
                    Some(Ok(t)) => Some(t),
                    _ => None,
                };
                let target = fields
                    .take("path", positions)
                    .or(fields.take("value", positions))
                    .map(|n| n.value.display());
                let mode = fields
                    .take("mode", positions)
                    .and_then(|n| string(&format!("{path}.mode"), n, diags));
                let _ = fields.take("description", positions);
                let _ = fields.take("optional", positions);
                fields.finish(
                    &["type", "path", "value", "mode", "description", "optional"],
                    diags,
                );
                let Some(target) = target else {
                    diags.push(
                        Diagnostic::new(format!("{path}.path"), "an input needs a `path`")
                            .at(Some(value.pos))
                            .accepted("`${{parent.inputs.<name>}}`, `${{parent.jobs.<step>.outputs.<name>}}` or a datastore URI"),
                    );
                    continue;
                };
                NodeInput {
                    value: classify(&target, data_type.is_some()),
                    mode,
                    data_type,
                }
            }
            Value::Null => {
                diags.push(
                    Diagnostic::new(&path, "an input needs a value")
                        .at(Some(value.pos))
                        .accepted("`${{parent.inputs.<name>}}`, `${{parent.jobs.<step>.outputs.<name>}}`, a literal, or `{type, path, mode}`"),
                );
                continue;
            }
            Value::Seq(_) => {
                diags.push(
                    Diagnostic::new(
                        &path,
                        "expected a binding, a literal or a mapping, found a list",
                    )
                    .at(Some(value.pos)),
                );
                continue;
            }
            other => NodeInput {
                value: classify(&other.display(), false),
                mode: None,
                data_type: None,
            },
        };
        out.insert(name.clone(), input);
    }
    out
}

fn classify(text: &str, is_data: bool) -> NodeValue {
    if text.contains("${{") {
        NodeValue::Binding(text.to_string())
    } else if is_data || text.starts_with("azureml://") {
        NodeValue::Path(text.to_string())
    } else {
        NodeValue::Literal(text.to_string())
    }
}

fn load_node_outputs(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, NodeOutput> {
    let mut out = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new("outputs", "expected a mapping of output names").at(Some(node.pos)),
        );
        return out;
    };
    for (name, _, value) in entries {
        let path = format!("outputs.{name}");
        positions.insert(path.clone(), value.pos);
        let output = match &value.value {
            Value::Null => NodeOutput {
                binding: None,
                data_type: None,
                path: None,
                mode: None,
            },
            Value::Str { text, .. } => NodeOutput {
                binding: Some(text.clone()),
                data_type: None,
                path: None,
                mode: None,
            },
            Value::Map(_) => {
                let Some(mut fields) = Fields::new(&path, value, diags) else {
                    continue;
                };
                let data_type = match fields
                    .take("type", positions)
                    .and_then(|n| load_data_type(&format!("{path}.type"), n, diags))
                {
                    Some(Ok(t)) => Some(t),
                    _ => None,
                };
                let target = fields
                    .take("path", positions)
                    .and_then(|n| string(&format!("{path}.path"), n, diags));
                let mode = fields
                    .take("mode", positions)
                    .and_then(|n| string(&format!("{path}.mode"), n, diags));
                let _ = fields.take("description", positions);
                fields.finish(&["type", "path", "mode", "description"], diags);
                let (binding, path) = match target {
                    Some(t) if t.contains("${{") => (Some(t), None),
                    other => (None, other),
                };
                NodeOutput {
                    binding,
                    data_type,
                    path,
                    mode,
                }
            }
            other => {
                diags.push(
                    Diagnostic::new(&path, format!("expected a binding or a mapping, found {}", other.kind()))
                        .at(Some(value.pos))
                        .accepted("`${{parent.outputs.<name>}}`, `{type, path, mode}`, or nothing for the default location"),
                );
                continue;
            }
        };
        out.insert(name.clone(), output);
    }
    out
}
