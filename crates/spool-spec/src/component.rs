//! Components: reusable steps with declared input and output ports (`type: spark`, Azure ML's
//! sparkComponent schema), their normalized form and their loading from positioned YAML.
//!
//! Registration and pipelines both start here. What can only be checked once a component is
//! used (conf completeness, entry on disk, args against ports) is checked where it is used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::job::{
    ConfValue, DataType, Entry, Fields, LiteralType, OutputsIn, Positions, load_conf,
    load_data_type, load_entry, load_output_entries, string, string_list, string_map, to_json,
};
use crate::yaml::{Node, Pos, Value};

/// A component, normalized. This is also its wire form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// Absent for an anonymous component (a pipeline's file reference or inline node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Always a string (`version: 1` is `"1"`); absent means "the next version" on registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Whether an unchanged step may reuse an earlier run's outputs (Azure's default: yes).
    #[serde(default = "yes")]
    pub is_deterministic: bool,
    #[serde(default)]
    pub inputs: BTreeMap<String, InputPort>,
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputPort>,
    /// What it runs, tagged by `type`.
    pub body: ComponentBody,
}

fn yes() -> bool {
    true
}

/// What a component runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ComponentBody {
    Spark(SparkBody),
    Command(CommandBody),
}

impl ComponentBody {
    pub fn kind(&self) -> &'static str {
        match self {
            ComponentBody::Spark(_) => "spark",
            ComponentBody::Command(_) => "command",
        }
    }

    /// The code folder: a local path as written, or `snapshot:<sha256>` once uploaded (empty
    /// for a command without code).
    pub fn code(&self) -> &str {
        match self {
            ComponentBody::Spark(spark) => &spark.code,
            ComponentBody::Command(command) => command.code.as_deref().unwrap_or_default(),
        }
    }
}

/// A command component's program: shell text run on the Spool host in its environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Shell text with `${{inputs.x}}`, `${{outputs.y}}` and optional `$[[...]]` sections.
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<crate::command::CommandEnvironment>,
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
}

/// A Spark component's program: the fields a Spark job has, minus where and as whom it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparkBody {
    pub code: String,
    pub entry: Entry,
    #[serde(default)]
    pub py_files: Vec<String>,
    #[serde(default)]
    pub jars: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub archives: Vec<String>,
    #[serde(default)]
    pub conf: BTreeMap<String, ConfValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<serde_json::Value>,
}

/// An input port: data, or a parameter with its bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputPort {
    Data {
        #[serde(rename = "type")]
        data_type: DataType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        #[serde(default)]
        optional: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    Parameter {
        #[serde(rename = "type")]
        literal_type: LiteralType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<String>,
        #[serde(default)]
        optional: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        #[serde(default, rename = "enum", skip_serializing_if = "Vec::is_empty")]
        allowed: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

impl InputPort {
    pub fn optional(&self) -> bool {
        match self {
            InputPort::Data { optional, .. } | InputPort::Parameter { optional, .. } => *optional,
        }
    }
}

/// An output port (data only; where it goes is the pipeline's business).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputPort {
    #[serde(rename = "type")]
    pub data_type: DataType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A component as loaded, with where each field was written and what deserves a warning.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedComponent {
    pub spec: ComponentSpec,
    pub positions: Positions,
    pub warnings: Vec<Diagnostic>,
}

const SPARK_COMPONENT_FIELDS: &[&str] = &[
    "$schema",
    "type",
    "name",
    "version",
    "display_name",
    "description",
    "tags",
    "is_deterministic",
    "code",
    "entry",
    "py_files",
    "jars",
    "files",
    "archives",
    "conf",
    "args",
    "environment",
    "inputs",
    "outputs",
    "additional_includes",
];

const COMMAND_COMPONENT_FIELDS: &[&str] = &[
    "$schema",
    "type",
    "name",
    "version",
    "display_name",
    "description",
    "tags",
    "is_deterministic",
    "code",
    "command",
    "environment",
    "environment_variables",
    "inputs",
    "outputs",
    "resources",
    "distribution",
    "additional_includes",
];

/// Where a command's fields are written: a `type: command` component file (whose mapping
/// starts at `root`), or a pipeline step without a `component` (at `node`), whose `resources`
/// are the node's own and which has no `distribution` or `additional_includes`.
#[derive(Clone, Copy)]
pub(crate) enum CommandBodyIn {
    Component { root: Pos },
    Step { node: Pos },
}

/// Loads a command: `code`, `command`, `environment`, `environment_variables`, and in a
/// component what Spool ignores or refuses. `None` when there is no `command`.
pub(crate) fn load_command_body<'a>(
    place: CommandBodyIn,
    fields: &mut Fields<'a>,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<CommandBody> {
    let mut body = CommandBody::default();
    if let Some(node) = fields.take("code", positions) {
        body.code = string("code", node, diags);
    }
    match (fields.take("command", positions), place) {
        (Some(node), _) => body.command = string("command", node, diags).unwrap_or_default(),
        (None, CommandBodyIn::Component { root }) => {
            diags.push(
                Diagnostic::new("command", "Missing data for required field.")
                    .at(Some(root))
                    .accepted("`command: python run.py --data ${{inputs.data}}`"),
            );
            return None;
        }
        (None, CommandBodyIn::Step { node }) => {
            diags.push(
                Diagnostic::new(
                    "component",
                    "missing: a command step needs a `component` (a file, or `azureml:<name>:<version>`), or a `command` of its own",
                )
                .at(Some(node)),
            );
            return None;
        }
    }
    if let Some(node) = fields.take("environment", positions) {
        body.environment = crate::command::load_environment(node, positions, diags);
    }
    if let Some(node) = fields.take("environment_variables", positions) {
        body.environment_variables = string_map("environment_variables", node, positions, diags);
        for name in body.environment_variables.keys() {
            crate::command::check_variable_name(name, Some(node.pos), diags);
        }
    }
    if let CommandBodyIn::Step { .. } = place {
        return Some(body);
    }
    if let Some(node) = fields.take("distribution", positions) {
        diags.push(
            Diagnostic::new(
                "distribution",
                "distributed commands are not supported: a command step runs as one process on the Spool host",
            )
            .at(Some(node.pos)),
        );
    }
    if let Some(node) = fields.take("resources", positions) {
        warnings.push(
            Diagnostic::new(
                "resources",
                "ignored: a command step runs as one process on the Spool host",
            )
            .at(Some(node.pos)),
        );
    }
    if let Some(node) = fields.take("additional_includes", positions) {
        warnings.push(
            Diagnostic::new(
                "additional_includes",
                "Spool does not copy additional includes yet; put the files inside `code`",
            )
            .at(Some(node.pos)),
        );
    }
    Some(body)
}

/// Where a Spark program's fields are written. The two places differ on purpose: a component
/// is loaded whole so that every problem is reported, while a step without an entry is not a
/// step at all; and a step reads `conf` with its other node fields (`conf` on a node that
/// names a component is the node's own).
#[derive(Clone, Copy)]
pub(crate) enum SparkBodyIn {
    /// A `type: spark` component file, whose mapping starts at `root`.
    Component { root: Pos },
    /// A pipeline step without a `component`, whose mapping starts at `node`.
    Step { node: Pos },
}

/// Loads a Spark program: `code`, `entry`, `py_files`, `jars`, `files`, `archives`, `conf` (in a
/// component; see `SparkBodyIn`), `args` and `environment`. `None` only for a step that has no
/// usable entry.
pub(crate) fn load_spark_body<'a>(
    place: SparkBodyIn,
    fields: &mut Fields<'a>,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> Option<SparkBody> {
    let mut body = SparkBody {
        code: ".".into(),
        ..SparkBody::default()
    };
    if let Some(node) = fields.take("code", positions) {
        body.code = string("code", node, diags).unwrap_or_default();
    }
    match (fields.take("entry", positions), place) {
        (Some(node), _) => {
            if let Some(entry) = load_entry(node, positions, diags) {
                body.entry = entry;
            }
        }
        (None, SparkBodyIn::Component { root }) => diags.push(
            Diagnostic::new("entry", "Missing data for required field.")
                .at(Some(root))
                .accepted("`entry: {file: <path relative to code>}`"),
        ),
        (None, SparkBodyIn::Step { node }) => {
            diags.push(
                Diagnostic::new(
                    "component",
                    "missing: a step needs a `component` (a file, or `azureml:<name>:<version>`), or `code` and `entry` of its own",
                )
                .at(Some(node)),
            );
            return None;
        }
    }
    for (key, slot) in [
        ("py_files", &mut body.py_files),
        ("jars", &mut body.jars),
        ("files", &mut body.files),
        ("archives", &mut body.archives),
    ] {
        if let Some(node) = fields.take(key, positions) {
            *slot = string_list(key, node, positions, diags);
            check_duplicates(key, slot, positions, diags);
        }
    }
    if let SparkBodyIn::Component { .. } = place
        && let Some(node) = fields.take("conf", positions)
    {
        body.conf = load_conf(node, positions, diags);
    }
    if let Some(node) = fields.take("args", positions) {
        body.args = string("args", node, diags);
    }
    if let Some(node) = fields.take("environment", positions) {
        body.environment = Some(to_json(node));
    }
    // A step without a usable entry is left out (an `entry` that did not load is reported).
    if let SparkBodyIn::Step { .. } = place
        && matches!(body.entry, Entry::File(ref file) if file.is_empty())
    {
        return None;
    }
    Some(body)
}

/// Fields a job has that a component does not: accepted with a warning, as the SDK keeps them
/// without effect (the pipeline node decides where and as whom a step runs).
const NODE_ONLY_FIELDS: &[&str] = &["compute", "resources", "identity"];

/// Loads a component from a YAML tree. `anonymous` components (a pipeline's file reference or
/// inline node) may omit `name`; registered ones need it.
pub(crate) fn load(
    root: &Node,
    anonymous: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<LoadedComponent> {
    let mut positions = Positions::new();
    let mut warnings = Vec::new();
    let mut fields = Fields::new("", root, diags)?;
    if fields.entries.is_empty() {
        diags.push(
            Diagnostic::new(
                "type",
                "missing field; a component needs `type: spark`, a `name` and an `entry`",
            )
            .at(Some(root.pos)),
        );
        return None;
    }
    let _ = fields.take("$schema", &mut positions);
    let mut is_command = false;
    match fields.take("type", &mut positions) {
        Some(node) => match string("type", node, diags).as_deref() {
            Some("spark") | None => {}
            Some("command") => is_command = true,
            Some(other) => diags.push(
                Diagnostic::new(
                    "type",
                    format!("Value '{other}' passed is not in set ['spark', 'command']"),
                )
                .at(Some(node.pos))
                .value(other)
                .accepted("`spark` or `command`"),
            ),
        },
        None => diags.push(
            Diagnostic::new("type", "missing required field")
                .at(Some(root.pos))
                .accepted("`spark` or `command`"),
        ),
    }
    let name = match fields.take("name", &mut positions) {
        Some(node) => string("name", node, diags).inspect(|name| {
            if !anonymous {
                check_component_name(name, Some(node.pos), diags);
            }
        }),
        None => {
            if !anonymous {
                diags.push(
                    Diagnostic::new("name", "Missing data for required field.")
                        .at(Some(root.pos))
                        .accepted("a name such as `titanic_spark_component`"),
                );
            }
            None
        }
    };
    let version = fields
        .take("version", &mut positions)
        .and_then(|node| string("version", node, diags));
    let display_name = fields
        .take("display_name", &mut positions)
        .and_then(|node| string("display_name", node, diags));
    let description = fields
        .take("description", &mut positions)
        .and_then(|node| string("description", node, diags));
    let tags = fields
        .take("tags", &mut positions)
        .map(|node| string_map("tags", node, &mut positions, diags))
        .unwrap_or_default();
    let is_deterministic = match fields.take("is_deterministic", &mut positions) {
        Some(node) => boolean("is_deterministic", node, diags).unwrap_or(true),
        None => true,
    };
    if is_command {
        let body = load_command_body(
            CommandBodyIn::Component { root: root.pos },
            &mut fields,
            &mut positions,
            diags,
            &mut warnings,
        );
        let inputs = fields
            .take("inputs", &mut positions)
            .map(|node| load_input_ports(node, &mut positions, diags))
            .unwrap_or_default();
        let outputs = fields
            .take("outputs", &mut positions)
            .map(|node| load_output_ports(node, &mut positions, diags))
            .unwrap_or_default();
        check_io_names(&inputs, &outputs, &positions, diags);
        fields.finish(COMMAND_COMPONENT_FIELDS, diags);
        return Some(LoadedComponent {
            spec: ComponentSpec {
                name,
                version,
                display_name,
                description,
                tags,
                is_deterministic,
                inputs,
                outputs,
                body: ComponentBody::Command(body?),
            },
            positions,
            warnings,
        });
    }
    let body = load_spark_body(
        SparkBodyIn::Component { root: root.pos },
        &mut fields,
        &mut positions,
        diags,
    )?;
    if let Some(node) = fields.take("additional_includes", &mut positions) {
        let _ = string_list("additional_includes", node, &mut positions, diags);
        warnings.push(
            Diagnostic::new(
                "additional_includes",
                "Spool does not copy additional includes yet; put the files inside `code`",
            )
            .at(Some(node.pos)),
        );
    }
    let inputs = fields
        .take("inputs", &mut positions)
        .map(|node| load_input_ports(node, &mut positions, diags))
        .unwrap_or_default();
    let outputs = fields
        .take("outputs", &mut positions)
        .map(|node| load_output_ports(node, &mut positions, diags))
        .unwrap_or_default();
    check_io_names(&inputs, &outputs, &positions, diags);
    for key in NODE_ONLY_FIELDS {
        if let Some(node) = fields.take(key, &mut positions) {
            warnings.push(
                Diagnostic::new(
                    *key,
                    format!(
                        "a component does not set `{key}`; the pipeline node that uses it does, so this has no effect"
                    ),
                )
                .at(Some(node.pos)),
            );
        }
    }
    fields.finish(SPARK_COMPONENT_FIELDS, diags);
    Some(LoadedComponent {
        spec: ComponentSpec {
            name,
            version,
            display_name,
            description,
            tags,
            is_deterministic,
            inputs,
            outputs,
            body: ComponentBody::Spark(body),
        },
        positions,
        warnings,
    })
}

/// The SDK's rule for component names.
pub(crate) fn check_component_name(name: &str, pos: Option<Pos>, diags: &mut Vec<Diagnostic>) {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        diags.push(
            Diagnostic::new(
                "name",
                format!(
                    "Component name should only contain lower letter, number, underscore and start with a lower letter. Currently got {name}."
                ),
            )
            .at(pos)
            .value(name)
            .accepted("a name matching `^[a-z][a-z0-9_]*$`"),
        );
    }
}

pub(crate) fn boolean(path: &str, node: &Node, diags: &mut Vec<Diagnostic>) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        Value::Str { text, .. } if text.eq_ignore_ascii_case("true") => Some(true),
        Value::Str { text, .. } if text.eq_ignore_ascii_case("false") => Some(false),
        other => {
            diags.push(
                Diagnostic::new(path, "Not a valid boolean.")
                    .at(Some(node.pos))
                    .value(other.display())
                    .accepted("`true` or `false`"),
            );
            None
        }
    }
}

fn number(path: &str, node: &Node, diags: &mut Vec<Diagnostic>) -> Option<f64> {
    match &node.value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str { text, .. } if text.parse::<f64>().is_ok() => text.parse().ok(),
        other => {
            diags.push(
                Diagnostic::new(path, "Not a valid number.")
                    .at(Some(node.pos))
                    .value(other.display()),
            );
            None
        }
    }
}

pub(crate) fn check_duplicates(
    field: &str,
    items: &[String],
    positions: &Positions,
    diags: &mut Vec<Diagnostic>,
) {
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            let path = format!("{field}[{i}]");
            diags.push(
                Diagnostic::new(
                    &path,
                    format!("{field} must not contain duplicate entries."),
                )
                .at(positions.get(&path).copied())
                .value(item),
            );
        }
    }
}

/// The SDK's rules for port names: identifiers joined by dots, and no two equal ignoring case.
pub(crate) fn check_io_names(
    inputs: &BTreeMap<String, InputPort>,
    outputs: &BTreeMap<String, OutputPort>,
    positions: &Positions,
    diags: &mut Vec<Diagnostic>,
) {
    for (kind, names) in [
        ("inputs", inputs.keys().collect::<Vec<_>>()),
        ("outputs", outputs.keys().collect::<Vec<_>>()),
    ] {
        for (i, name) in names.iter().enumerate() {
            let path = format!("{kind}.{name}");
            let pos = positions.get(&path).copied();
            if !valid_port_name(name) {
                diags.push(
                    Diagnostic::new(
                        &path,
                        format!(
                            "'{name}' is not a valid parameter name, must be composed letters, numbers, and underscores."
                        ),
                    )
                    .at(pos)
                    .accepted("a name matching `^[a-zA-Z_][a-zA-Z0-9_]*$`"),
                );
            }
            if let Some(other) = names[..i].iter().find(|o| o.eq_ignore_ascii_case(name)) {
                diags.push(
                    Diagnostic::new(
                        &path,
                        format!(
                            "Invalid component {} names '{other}' and '{name}', which are equal ignore case.",
                            &kind[..kind.len() - 1]
                        ),
                    )
                    .at(pos),
                );
            }
        }
    }
}

fn valid_port_name(name: &str) -> bool {
    name.split('.').all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn load_input_ports(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, InputPort> {
    let mut ports = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new("inputs", "expected a mapping of input names").at(Some(node.pos)),
        );
        return ports;
    };
    for (name, key_pos, value) in entries {
        let path = format!("inputs.{name}");
        positions.insert(path.clone(), *key_pos);
        let Some(mut fields) = Fields::new(&path, value, diags) else {
            continue;
        };
        let kind = match fields.take("type", positions) {
            Some(n) => load_data_type(&format!("{path}.type"), n, diags),
            None => {
                diags.push(
                    Diagnostic::new(format!("{path}.type"), "Missing data for required field.")
                        .at(Some(value.pos))
                        .accepted(
                            "`uri_file`, `uri_folder`, `number`, `integer`, `string`, `boolean`",
                        ),
                );
                None
            }
        };
        let optional = fields
            .take("optional", positions)
            .and_then(|n| boolean(&format!("{path}.optional"), n, diags))
            .unwrap_or(false);
        let description = fields
            .take("description", positions)
            .and_then(|n| string(&format!("{path}.description"), n, diags));
        if let Some(n) = fields.take("path", positions) {
            diags.push(
                Diagnostic::new(format!("{path}.path"), "Unknown field.")
                    .at(Some(n.pos))
                    .accepted(
                        "a component's inputs declare a port; the pipeline node gives its path",
                    ),
            );
        }
        let port = match kind {
            Some(Ok(data_type)) => {
                let mode = fields
                    .take("mode", positions)
                    .and_then(|n| string(&format!("{path}.mode"), n, diags));
                fields.finish(&["type", "mode", "optional", "description", "path"], diags);
                InputPort::Data {
                    data_type,
                    mode,
                    optional,
                    description,
                }
            }
            Some(Err(literal_type)) => {
                let default = fields.take("default", positions).map(|n| n.value.display());
                let min = fields
                    .take("min", positions)
                    .and_then(|n| number(&format!("{path}.min"), n, diags));
                let max = fields
                    .take("max", positions)
                    .and_then(|n| number(&format!("{path}.max"), n, diags));
                let allowed = fields
                    .take("enum", positions)
                    .map(|n| string_list(&format!("{path}.enum"), n, positions, diags))
                    .unwrap_or_default();
                fields.finish(
                    &[
                        "type",
                        "default",
                        "optional",
                        "min",
                        "max",
                        "enum",
                        "description",
                        "path",
                    ],
                    diags,
                );
                let port = InputPort::Parameter {
                    literal_type,
                    default,
                    optional,
                    min,
                    max,
                    allowed,
                    description,
                };
                if let InputPort::Parameter {
                    default: Some(default),
                    ..
                } = &port
                    && let Err(message) = check_parameter(name, &port, default)
                {
                    diags.push(
                        Diagnostic::new(format!("{path}.default"), message)
                            .at(positions.get(&format!("{path}.default")).copied())
                            .value(default),
                    );
                }
                port
            }
            None => continue,
        };
        ports.insert(name.clone(), port);
    }
    ports
}

fn load_output_ports(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, OutputPort> {
    load_output_entries(node, OutputsIn::Component, positions, diags, |entry| {
        OutputPort {
            data_type: entry.data_type,
            mode: entry.mode,
            description: entry.description,
        }
    })
}

/// Checks a parameter's value against its port: type, bounds and allowed values.
pub fn check_parameter(name: &str, port: &InputPort, value: &str) -> Result<(), String> {
    let InputPort::Parameter {
        literal_type,
        min,
        max,
        allowed,
        ..
    } = port
    else {
        return Ok(());
    };
    let numeric = match literal_type {
        LiteralType::Number => Some(
            value
                .parse::<f64>()
                .map_err(|_| format!("parameter '{name}' must be a number, got '{value}'"))?,
        ),
        LiteralType::Integer => Some(
            value
                .parse::<i64>()
                .map_err(|_| format!("parameter '{name}' must be an integer, got '{value}'"))?
                as f64,
        ),
        LiteralType::Boolean => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                return Err(format!(
                    "parameter '{name}' must be `true` or `false`, got '{value}'"
                ));
            }
            None
        }
        LiteralType::String => None,
    };
    if let Some(n) = numeric {
        if let Some(min) = min
            && n < *min
        {
            return Err(format!(
                "parameter '{name}' is {value}, below its minimum {min}"
            ));
        }
        if let Some(max) = max
            && n > *max
        {
            return Err(format!(
                "parameter '{name}' is {value}, above its maximum {max}"
            ));
        }
    }
    if !allowed.is_empty() && !allowed.iter().any(|a| a == value) {
        return Err(format!(
            "parameter '{name}' is '{value}', not one of {}",
            allowed
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Re-roots diagnostics and positions of a sub-document (a pipeline node) under `prefix`.
pub(crate) fn prefix_diags(prefix: &str, diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags
        .into_iter()
        .map(|mut d| {
            d.field = if d.field == "(document)" {
                prefix.to_string()
            } else {
                format!("{prefix}.{}", d.field)
            };
            d
        })
        .collect()
}

pub(crate) fn prefix_positions(prefix: &str, positions: Positions) -> Positions {
    positions
        .into_iter()
        .map(|(k, v)| (format!("{prefix}.{k}"), v))
        .collect()
}
