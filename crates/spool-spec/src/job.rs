//! The Azure-ML-style Spark job spec: its normalized form, and its loading from a positioned YAML
//! tree (unknown fields and wrong types are rejected here; the SDK's rules are in `rules.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::yaml::{Node, Pos, Value};

/// A Spark job, normalized. This is also the wire form the CLI sends to the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
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
    /// The code folder: a local path as written in the file, or `snapshot:<sha256>` once uploaded.
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
    #[serde(default)]
    pub inputs: BTreeMap<String, JobInput>,
    #[serde(default)]
    pub outputs: BTreeMap<String, JobOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityKind>,
    /// Which managed identity `identity: {type: managed, client_id: ...}` names, if it names one.
    #[serde(default, skip_serializing_if = "IdentitySelector::is_empty")]
    pub identity_selector: IdentitySelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<serde_json::Value>,
}

/// The entry point of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// A Python file, relative to `code`.
    File(String),
    /// A JVM main class, found in `jars` (a Spool extension; Azure ML rejects it).
    ClassName(String),
}

impl Default for Entry {
    fn default() -> Self {
        Entry::File(String::new())
    }
}

/// A value in `conf`: the SDK accepts integers, booleans and strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl ConfValue {
    /// Renders the value as Spark expects it in `--conf k=v`.
    pub fn to_spark(&self) -> String {
        match self {
            ConfValue::Bool(b) => b.to_string(),
            ConfValue::Int(i) => i.to_string(),
            ConfValue::Str(s) => s.clone(),
        }
    }
}

/// How a job names one managed identity among several: by client id, object (principal) id, or
/// resource id (whose last segment is the identity's name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitySelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msi_resource_id: Option<String>,
}

impl IdentitySelector {
    pub fn is_empty(&self) -> bool {
        self.client_id.is_none() && self.object_id.is_none() && self.msi_resource_id.is_none()
    }
}

/// Who the job acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    UserIdentity,
    Managed,
    AmlToken,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::UserIdentity => "user_identity",
            IdentityKind::Managed => "managed",
            IdentityKind::AmlToken => "aml_token",
        }
    }
}

/// Serverless resources: the instance type bounds one driver or executor; the runtime picks Spark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Normalized to `major.minor` (`3.4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
}

/// Kinds of data an input or output can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    UriFile,
    UriFolder,
}

/// Kinds of literal inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiteralType {
    Number,
    Integer,
    String,
    Boolean,
}

/// A job input: data at a path, or a literal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobInput {
    Data {
        #[serde(rename = "type")]
        data_type: DataType,
        path: String,
    },
    Literal {
        #[serde(rename = "type")]
        literal_type: LiteralType,
        value: String,
    },
}

/// A job output; without a path it goes to the default datastore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutput {
    #[serde(rename = "type")]
    pub data_type: DataType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Positions of fields by path, for rules that run after loading.
pub type Positions = HashMap<String, Pos>;

/// Which delivery modes inputs and outputs may name: Spark reads its data itself (`direct`
/// only); a command gets a path on the Spool host whatever the mode, so the mount and copy modes
/// Azure ML defaults to for commands are accepted too. A pipeline's own inputs may name any
/// mode: the mode that takes effect is checked per step, once bindings are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modes {
    Spark,
    Command,
    Pipeline,
}

/// The fields of a mapping, taken one by one; whatever is left over is an unknown field.
pub(crate) struct Fields<'a> {
    path: String,
    pub(crate) entries: &'a [(String, Pos, Node)],
    taken: HashSet<&'a str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(
        path: &str,
        node: &'a Node,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Fields<'a>> {
        match &node.value {
            Value::Map(entries) => Some(Fields {
                path: path.to_string(),
                entries,
                taken: HashSet::new(),
            }),
            Value::Null => Some(Fields {
                path: path.to_string(),
                entries: &[],
                taken: HashSet::new(),
            }),
            other => {
                diags.push(
                    Diagnostic::new(
                        display_path(path),
                        format!("expected a mapping, found {}", other.kind()),
                    )
                    .at(Some(node.pos))
                    .value(other.display()),
                );
                None
            }
        }
    }

    pub(crate) fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn take(&mut self, key: &'a str, positions: &mut Positions) -> Option<&'a Node> {
        let entry = self.entries.iter().find(|(k, _, _)| k == key)?;
        self.taken.insert(key);
        positions.insert(self.child_path(key), entry.2.pos);
        if matches!(entry.2.value, Value::Null) {
            return None;
        }
        Some(&entry.2)
    }

    pub(crate) fn finish(self, accepted: &[&str], diags: &mut Vec<Diagnostic>) {
        self.finish_in("a Spark job", accepted, diags);
    }

    /// As `finish`, naming the document `document` (`a command job`) when the mapping is the
    /// whole document.
    pub(crate) fn finish_in(self, document: &str, accepted: &[&str], diags: &mut Vec<Diagnostic>) {
        for (key, pos, _) in self.entries {
            if !self.taken.contains(key.as_str()) && !accepted.contains(&key.as_str()) {
                diags.push(
                    Diagnostic::new(self.child_path(key), "unknown field")
                        .at(Some(*pos))
                        .accepted(format!(
                            "{} in {}",
                            accepted
                                .iter()
                                .map(|a| format!("`{a}`"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            if self.path.is_empty() {
                                document
                            } else {
                                "this mapping"
                            }
                        )),
                );
            }
        }
    }
}

pub(crate) fn display_path(path: &str) -> String {
    if path.is_empty() {
        "(document)".into()
    } else {
        path.into()
    }
}

pub(crate) fn string(path: &str, node: &Node, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match &node.value {
        Value::Str { text, .. } => Some(text.clone()),
        // Names, tags and similar written as numbers are still meant as text.
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(node.value.display()),
        other => {
            diags.push(
                Diagnostic::new(path, format!("expected a string, found {}", other.kind()))
                    .at(Some(node.pos))
                    .value(other.display()),
            );
            None
        }
    }
}

pub(crate) fn string_map(
    path: &str,
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match &node.value {
        Value::Map(entries) => {
            for (key, _, value) in entries {
                let child = format!("{path}.{key}");
                positions.insert(child.clone(), value.pos);
                if let Some(s) = string(&child, value, diags) {
                    out.insert(key.clone(), s);
                }
            }
        }
        other => diags.push(
            Diagnostic::new(
                path,
                format!(
                    "expected a mapping of names to strings, found {}",
                    other.kind()
                ),
            )
            .at(Some(node.pos)),
        ),
    }
    out
}

pub(crate) fn string_list(
    path: &str,
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> Vec<String> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let child = format!("{path}[{i}]");
                positions.insert(child.clone(), item.pos);
                string(&child, item, diags)
            })
            .collect(),
        // A single string is accepted as a one-item list, as the SDK does.
        Value::Str { text, .. } => vec![text.clone()],
        other => {
            diags.push(
                Diagnostic::new(
                    path,
                    format!("expected a list of paths, found {}", other.kind()),
                )
                .at(Some(node.pos)),
            );
            Vec::new()
        }
    }
}

const JOB_FIELDS: &[&str] = &[
    "$schema",
    "type",
    "name",
    "display_name",
    "experiment_name",
    "description",
    "tags",
    "properties",
    "code",
    "entry",
    "py_files",
    "jars",
    "files",
    "archives",
    "conf",
    "args",
    "inputs",
    "outputs",
    "identity",
    "resources",
    "compute",
    "environment",
];

/// Loads a job from a YAML tree, collecting every shape problem (unknown fields, wrong types).
/// Returns `None` when the document is not a job at all (empty, or not a mapping), so that the
/// rules do not pile further errors on that one.
pub(crate) fn load(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<(JobSpec, Positions)> {
    let mut positions = Positions::new();
    let mut spec = JobSpec {
        code: ".".to_string(),
        ..JobSpec::default()
    };
    let mut fields = Fields::new("", root, diags)?;
    if fields.entries.is_empty() {
        diags.push(
            Diagnostic::new(
                "type",
                "missing field; a Spark job needs `type: spark` and an `entry`",
            )
            .at(Some(root.pos)),
        );
        return None;
    }

    let _ = fields.take("$schema", &mut positions);
    match fields.take("type", &mut positions) {
        Some(node) => match string("type", node, diags).as_deref() {
            Some("spark") | None => {}
            Some(other) => diags.push(
                Diagnostic::new("type", "unsupported job type")
                    .at(Some(node.pos))
                    .value(other)
                    .accepted("`spark`"),
            ),
        },
        None => diags.push(
            Diagnostic::new("type", "missing required field")
                .at(Some(root.pos))
                .accepted("`spark`"),
        ),
    }
    for (key, slot) in [
        ("name", &mut spec.name),
        ("display_name", &mut spec.display_name),
        ("experiment_name", &mut spec.experiment_name),
        ("description", &mut spec.description),
        ("compute", &mut spec.compute),
        ("args", &mut spec.args),
    ] {
        if let Some(node) = fields.take(key, &mut positions) {
            *slot = string(key, node, diags);
        }
    }
    if let Some(compute) = &spec.compute {
        spec.compute = Some(
            compute
                .strip_prefix("azureml:")
                .unwrap_or(compute)
                .to_string(),
        );
    }
    if let Some(node) = fields.take("tags", &mut positions) {
        spec.tags = string_map("tags", node, &mut positions, diags);
    }
    if let Some(node) = fields.take("properties", &mut positions) {
        spec.properties = string_map("properties", node, &mut positions, diags);
    }
    if let Some(node) = fields.take("code", &mut positions) {
        spec.code = string("code", node, diags).unwrap_or_default();
    }
    match fields.take("entry", &mut positions) {
        Some(node) => {
            if let Some(entry) = load_entry(node, &mut positions, diags) {
                spec.entry = entry;
            }
        }
        None => diags.push(
            Diagnostic::new("entry", "missing required field")
                .at(Some(root.pos))
                .accepted("`entry: {file: <path relative to code>}`"),
        ),
    }
    for (key, slot) in [
        ("py_files", &mut spec.py_files),
        ("jars", &mut spec.jars),
        ("files", &mut spec.files),
        ("archives", &mut spec.archives),
    ] {
        if let Some(node) = fields.take(key, &mut positions) {
            *slot = string_list(key, node, &mut positions, diags);
        }
    }
    if let Some(node) = fields.take("conf", &mut positions) {
        spec.conf = load_conf(node, &mut positions, diags);
    }
    if let Some(node) = fields.take("inputs", &mut positions) {
        spec.inputs = load_inputs(node, Modes::Spark, &mut positions, diags);
    }
    if let Some(node) = fields.take("outputs", &mut positions) {
        spec.outputs = load_outputs(node, Modes::Spark, &mut positions, diags);
    }
    if let Some(node) = fields.take("identity", &mut positions) {
        let (kind, selector) = load_identity(node, &mut positions, diags);
        spec.identity = kind;
        spec.identity_selector = selector;
    }
    if let Some(node) = fields.take("resources", &mut positions) {
        spec.resources = load_resources(node, &mut positions, diags);
    }
    if let Some(node) = fields.take("environment", &mut positions) {
        spec.environment = Some(to_json(node));
    }
    fields.finish(JOB_FIELDS, diags);
    Some((spec, positions))
}

pub(crate) fn load_entry(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> Option<Entry> {
    let mut fields = Fields::new("entry", node, diags)?;
    let file_node = fields.take("file", positions);
    let class_node = fields.take("class_name", positions);
    let file = file_node.and_then(|n| {
        let file = string("entry.file", n, diags)?;
        if file.trim().is_empty() {
            diags.push(
                Diagnostic::new("entry.file", "must not be empty")
                    .at(Some(n.pos))
                    .accepted("a path relative to `code`, e.g. `main.py`"),
            );
            return None;
        }
        Some(file)
    });
    let class_name = class_node.and_then(|n| string("entry.class_name", n, diags));
    fields.finish(&["file", "class_name"], diags);
    match (file, class_name) {
        (Some(file), None) => Some(Entry::File(file)),
        (None, Some(class_name)) => Some(Entry::ClassName(class_name)),
        (Some(_), Some(_)) => {
            diags.push(
                Diagnostic::new("entry", "give exactly one of `file` or `class_name`")
                    .at(Some(node.pos)),
            );
            None
        }
        // A `file` or `class_name` that did not load is reported already.
        (None, None) if file_node.is_some() || class_node.is_some() => None,
        (None, None) => {
            diags.push(
                Diagnostic::new("entry", "missing `file`")
                    .at(Some(node.pos))
                    .accepted("`file: <path relative to code>`"),
            );
            None
        }
    }
}

pub(crate) fn load_conf(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, ConfValue> {
    let mut conf = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new(
                "conf",
                format!(
                    "expected a mapping of Spark properties, found {}",
                    node.value.kind()
                ),
            )
            .at(Some(node.pos)),
        );
        return conf;
    };
    for (key, _, value) in entries {
        let path = format!("conf.{key}");
        positions.insert(path.clone(), value.pos);
        let converted = match &value.value {
            Value::Bool(b) => Some(ConfValue::Bool(*b)),
            Value::Int(i) => Some(ConfValue::Int(*i)),
            Value::Str { text, .. } => Some(ConfValue::Str(text.clone())),
            other => {
                diags.push(
                    Diagnostic::new(
                        &path,
                        format!(
                            "Spark properties must be integers, booleans or strings, found {}",
                            other.kind()
                        ),
                    )
                    .at(Some(value.pos))
                    .value(other.display())
                    .accepted(
                        "an integer, `true`/`false`, or a string (quote decimals: `\"0.5\"`)",
                    ),
                );
                None
            }
        };
        if let Some(converted) = converted {
            conf.insert(key.clone(), converted);
        }
    }
    conf
}

pub(crate) fn load_data_type(
    path: &str,
    node: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<Result<DataType, LiteralType>> {
    let text = string(path, node, diags)?;
    let kind = match text.as_str() {
        "uri_file" => Ok(DataType::UriFile),
        "uri_folder" => Ok(DataType::UriFolder),
        "number" => Err(LiteralType::Number),
        "integer" => Err(LiteralType::Integer),
        "string" => Err(LiteralType::String),
        "boolean" => Err(LiteralType::Boolean),
        other => {
            let message = if other == "mltable" {
                "`mltable` data is not supported by Spool yet"
            } else {
                "unknown input type"
            };
            diags.push(
                Diagnostic::new(path, message)
                    .at(Some(node.pos))
                    .value(other)
                    .accepted("`uri_file`, `uri_folder`, `number`, `integer`, `string`, `boolean`"),
            );
            return None;
        }
    };
    Some(kind)
}

fn check_mode(
    modes: Modes,
    kind: &str,
    name: &str,
    path: &str,
    node: Option<&Node>,
    diags: &mut Vec<Diagnostic>,
) {
    // A missing mode is taken as `direct` (the SDK rejects it as mode `None`; nothing else is
    // possible for Spark, so Spool does not make users write it).
    let Some(node) = node else { return };
    let Some(mode) = string(path, node, diags) else {
        return;
    };
    if modes == Modes::Pipeline {
        return;
    }
    if let Modes::Command = modes {
        let accepted: &[&str] = if kind == "Input" {
            &["ro_mount", "download", "direct"]
        } else {
            &["rw_mount", "upload", "direct"]
        };
        if !accepted.contains(&mode.as_str()) {
            diags.push(
                Diagnostic::new(
                    path,
                    format!("{kind} '{name}' is using '{mode}' mode, which a command step does not support"),
                )
                .at(Some(node.pos))
                .value(mode)
                .accepted(format!(
                    "{} (each gives the path of the data on the Spool host)",
                    accepted.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                )),
            );
        }
        return;
    }
    if mode != "direct" {
        diags.push(
            Diagnostic::new(
                path,
                format!("{kind} '{name}' is using '{mode}' mode, only 'direct' is supported for Spark job"),
            )
            .at(Some(node.pos))
            .value(mode)
            .accepted("`direct`"),
        );
    }
}

/// The SDK's rule for input and output names. A spec sent as JSON has no positions (`None`).
pub(crate) fn check_key_name(
    kind: &str,
    name: &str,
    pos: Option<Pos>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        diags.push(
            Diagnostic::new(
                format!("{kind}.{name}"),
                format!("Key name  {name} must be composed letters, numbers, and underscore"),
            )
            .at(pos)
            .accepted("a name matching `^[a-zA-Z_]+[a-zA-Z0-9_]*$`"),
        );
    }
}

pub(crate) fn load_inputs(
    node: &Node,
    modes: Modes,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, JobInput> {
    let mut inputs = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new("inputs", "expected a mapping of input names").at(Some(node.pos)),
        );
        return inputs;
    };
    for (name, key_pos, value) in entries {
        let path = format!("inputs.{name}");
        positions.insert(path.clone(), value.pos);
        check_key_name("inputs", name, Some(*key_pos), diags);
        let input = match &value.value {
            Value::Map(_) => {
                let Some(mut fields) = Fields::new(&path, value, diags) else {
                    continue;
                };
                let kind = fields
                    .take("type", positions)
                    .and_then(|n| load_data_type(&format!("{path}.type"), n, diags));
                let path_node = fields.take("path", positions);
                let literal_node = fields
                    .take("value", positions)
                    .or(fields.take("default", positions));
                check_mode(
                    modes,
                    "Input",
                    name,
                    &format!("{path}.mode"),
                    fields.take("mode", positions),
                    diags,
                );
                let _ = fields.take("description", positions);
                let _ = fields.take("optional", positions);
                fields.finish(
                    &[
                        "type",
                        "path",
                        "mode",
                        "value",
                        "default",
                        "description",
                        "optional",
                    ],
                    diags,
                );
                match kind {
                    Some(Ok(data_type)) => {
                        match path_node.and_then(|n| string(&format!("{path}.path"), n, diags)) {
                            Some(p) => Some(JobInput::Data { data_type, path: p }),
                            None => {
                                diags.push(
                                Diagnostic::new(format!("{path}.path"), "a data input needs a path")
                                    .at(Some(value.pos))
                                    .accepted("`azureml://datastores/<name>/paths/<path>` or a local path"),
                            );
                                None
                            }
                        }
                    }
                    Some(Err(literal_type)) => literal_node.map(|n| JobInput::Literal {
                        literal_type,
                        value: n.value.display(),
                    }),
                    None if kind.is_none() && path_node.is_none() => {
                        diags.push(
                            Diagnostic::new(format!("{path}.type"), "missing input type")
                                .at(Some(value.pos))
                                .accepted("`uri_file`, `uri_folder`, `number`, `integer`, `string`, `boolean`"),
                        );
                        None
                    }
                    None => None,
                }
            }
            Value::Bool(b) => Some(JobInput::Literal {
                literal_type: LiteralType::Boolean,
                value: b.to_string(),
            }),
            Value::Int(i) => Some(JobInput::Literal {
                literal_type: LiteralType::Integer,
                value: i.to_string(),
            }),
            Value::Float(f) => Some(JobInput::Literal {
                literal_type: LiteralType::Number,
                value: f.to_string(),
            }),
            Value::Str { text, .. } => Some(JobInput::Literal {
                literal_type: LiteralType::String,
                value: text.clone(),
            }),
            other => {
                diags.push(
                    Diagnostic::new(
                        &path,
                        format!(
                            "expected an input mapping or a literal, found {}",
                            other.kind()
                        ),
                    )
                    .at(Some(value.pos)),
                );
                None
            }
        };
        if let Some(input) = input {
            inputs.insert(name.clone(), input);
        }
    }
    inputs
}

pub(crate) fn load_outputs(
    node: &Node,
    modes: Modes,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, JobOutput> {
    load_output_entries(node, OutputsIn::Job(modes), positions, diags, |entry| {
        JobOutput {
            data_type: entry.data_type,
            path: entry.path,
        }
    })
}

/// Which document an `outputs:` mapping is in. The three read the same fields of an entry and
/// differ on purpose where noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputsIn {
    /// A component declares ports: an entry has no `path` (the pipeline node gives it) but a
    /// `description`, and one without a `type` is a folder, as in Azure ML. Names are checked
    /// with the inputs' (`component::check_io_names`).
    Component,
    /// A pipeline's own outputs: an empty or typeless one is a folder at the default location,
    /// as in Azure ML; any mode is taken here (the mode in effect is checked per step).
    Pipeline,
    /// A job's outputs: a `type` is required and the mode is checked against `Modes` (but for
    /// the output named `default`).
    Job(Modes),
}

/// One entry of an `outputs:` mapping, as far as its document reads it (see `OutputsIn`).
pub(crate) struct OutputEntry {
    pub(crate) data_type: DataType,
    pub(crate) path: Option<String>,
    pub(crate) mode: Option<String>,
    pub(crate) description: Option<String>,
}

/// Loads an `outputs:` mapping of a component, a pipeline or a job, each entry made what its
/// document keeps of it by `make`.
pub(crate) fn load_output_entries<T>(
    node: &Node,
    place: OutputsIn,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
    make: impl Fn(OutputEntry) -> T,
) -> BTreeMap<String, T> {
    let mut outputs = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new("outputs", "expected a mapping of output names").at(Some(node.pos)),
        );
        return outputs;
    };
    for (name, key_pos, value) in entries {
        let path = format!("outputs.{name}");
        if place == OutputsIn::Component {
            // A port is placed at its name, where `check_io_names` reports it.
            positions.insert(path.clone(), *key_pos);
        } else {
            positions.insert(path.clone(), value.pos);
            check_key_name("outputs", name, Some(*key_pos), diags);
        }
        // An empty entry has no fields: a folder for a component or a pipeline, an output
        // without a type for a job.
        let Some(mut fields) = Fields::new(&path, value, diags) else {
            continue;
        };
        let type_node = fields.take("type", positions);
        let kind = type_node.and_then(|n| load_data_type(&format!("{path}.type"), n, diags));
        let mut entry_path = None;
        let mut mode = None;
        let mut description = None;
        match place {
            OutputsIn::Component => {
                mode = fields
                    .take("mode", positions)
                    .and_then(|n| string(&format!("{path}.mode"), n, diags));
                description = fields
                    .take("description", positions)
                    .and_then(|n| string(&format!("{path}.description"), n, diags));
                if let Some(n) = fields.take("path", positions) {
                    diags.push(
                        Diagnostic::new(format!("{path}.path"), "Unknown field.")
                            .at(Some(n.pos))
                            .accepted(
                                "a component's outputs declare a port; the pipeline node gives its path",
                            ),
                    );
                }
                fields.finish(&["type", "mode", "description", "path"], diags);
            }
            OutputsIn::Pipeline | OutputsIn::Job(_) => {
                entry_path = fields
                    .take("path", positions)
                    .and_then(|n| string(&format!("{path}.path"), n, diags));
                let mode_node = fields.take("mode", positions);
                let mode_path = format!("{path}.mode");
                if let OutputsIn::Job(modes) = place {
                    // The SDK exempts the output named `default` from the mode rule.
                    if name != "default" {
                        check_mode(modes, "Output", name, &mode_path, mode_node, diags);
                    }
                } else {
                    mode = mode_node.and_then(|n| string(&mode_path, n, diags));
                }
                let _ = fields.take("description", positions);
                fields.finish(&["type", "path", "mode", "description"], diags);
            }
        }
        let data_type = match kind {
            Some(Ok(data_type)) => data_type,
            Some(Err(_)) => {
                diags.push(
                    Diagnostic::new(format!("{path}.type"), "outputs must be data")
                        .at(Some(value.pos))
                        .accepted("`uri_file` or `uri_folder`"),
                );
                continue;
            }
            // No type written, or one that did not load (reported).
            None => match place {
                // As Azure: a port declared without a type is a folder.
                OutputsIn::Component if type_node.is_none() => DataType::UriFolder,
                OutputsIn::Component => continue,
                // As Azure: an empty or typeless pipeline output is a folder at the default
                // location.
                OutputsIn::Pipeline => DataType::UriFolder,
                OutputsIn::Job(_) => {
                    // Not written, or `type: ~`; a type that did not load is reported.
                    if type_node.is_none() {
                        diags.push(
                            Diagnostic::new(format!("{path}.type"), "missing output type")
                                .at(Some(value.pos))
                                .accepted("`uri_file` or `uri_folder`"),
                        );
                    }
                    continue;
                }
            },
        };
        let entry = OutputEntry {
            data_type,
            path: entry_path,
            mode,
            description,
        };
        outputs.insert(name.clone(), make(entry));
    }
    outputs
}

/// Whether a mapping has `key` written, with any value (`null` too).
pub(crate) fn load_identity(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> (Option<IdentityKind>, IdentitySelector) {
    let mut selector = IdentitySelector::default();
    let Some(mut fields) = Fields::new("identity", node, diags) else {
        return (None, selector);
    };
    let kind_node = fields.take("type", positions);
    for (key, slot) in [
        ("client_id", &mut selector.client_id),
        ("object_id", &mut selector.object_id),
        ("msi_resource_id", &mut selector.msi_resource_id),
    ] {
        if let Some(value) = fields.take(key, positions) {
            *slot = string(&format!("identity.{key}"), value, diags);
        }
    }
    fields.finish(
        &["type", "client_id", "object_id", "msi_resource_id"],
        diags,
    );
    let Some(kind_node) = kind_node else {
        diags.push(
            Diagnostic::new("identity.type", "missing required field")
                .at(Some(node.pos))
                .accepted("`user_identity`, `managed`, `aml_token`"),
        );
        return (None, selector);
    };
    let Some(text) = string("identity.type", kind_node, diags) else {
        return (None, selector);
    };
    // The SDK turns camel case into snake case (`UserIdentity` -> `user_identity`).
    let normalized: String = text
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let lower = c.to_ascii_lowercase();
            if c.is_ascii_uppercase() && i > 0 {
                vec!['_', lower]
            } else {
                vec![lower]
            }
        })
        .collect();
    let kind = match normalized.as_str() {
        "user_identity" => Some(IdentityKind::UserIdentity),
        "managed" | "managed_identity" => Some(IdentityKind::Managed),
        "aml_token" | "a_m_l_token" => Some(IdentityKind::AmlToken),
        _ => {
            diags.push(
                Diagnostic::new("identity.type", "unknown identity type")
                    .at(Some(kind_node.pos))
                    .value(text)
                    .accepted("`user_identity`, `managed` (or `managed_identity`), `aml_token`"),
            );
            None
        }
    };
    (kind, selector)
}

pub(crate) fn load_resources(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> Option<Resources> {
    let mut fields = Fields::new("resources", node, diags)?;
    let instance_type = fields
        .take("instance_type", positions)
        .and_then(|n| string("resources.instance_type", n, diags));
    let runtime_version = fields
        .take("runtime_version", positions)
        .and_then(|n| normalize_runtime_version("resources.runtime_version", n, diags));
    fields.finish(&["instance_type", "runtime_version"], diags);
    Some(Resources {
        instance_type,
        runtime_version,
    })
}

/// Normalizes `3.4`, `"3.4"` and `"3.4.0"` to `3.4`, with the SDK's messages for other forms.
fn normalize_runtime_version(
    path: &str,
    node: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    let text = match &node.value {
        Value::Float(f) => format!("{f}"),
        Value::Str { text, .. } => text.clone(),
        Value::Int(i) => i.to_string(),
        other => {
            diags.push(
                Diagnostic::new(path, "runtime version should be either float or str type")
                    .at(Some(node.pos))
                    .value(other.display()),
            );
            return None;
        }
    };
    let parts: Vec<&str> = text.split('.').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        diags.push(
            Diagnostic::new(path, "runtime_version should only contain numbers")
                .at(Some(node.pos))
                .value(text)
                .accepted("`major.minor` or `major.minor.patch`, e.g. `3.4` or `\"3.4.0\"`"),
        );
        return None;
    }
    if parts.len() < 2 || parts.len() > 3 {
        diags.push(
            Diagnostic::new(
                path,
                "runtime version must be written as major.minor[.patch]",
            )
            .at(Some(node.pos))
            .value(text)
            .accepted("e.g. `3.4` or `\"3.4.0\"`"),
        );
        return None;
    }
    let major: u32 = parts[0].parse().ok()?;
    let minor: u32 = parts[1].parse().ok()?;
    Some(format!("{major}.{minor}"))
}

pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Value::from(*f),
        Value::Str { text, .. } => serde_json::Value::String(text.clone()),
        Value::Seq(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, _, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}
