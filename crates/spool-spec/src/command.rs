//! Azure-ML-style command jobs (`type: command`): a shell command with `${{inputs.x}}` and
//! `${{outputs.y}}` bindings, run as a process on the Spool host in an environment built from a
//! conda file. Its normalized form (also the wire form), its loading from a positioned YAML tree,
//! its rules, and the binding of its command line.
//!
//! Spool runs no containers and has no compute clusters for commands: a Docker `image`, a
//! registered environment, `distribution`, more than one instance and a compute other than
//! `serverless` are refused, each naming its field.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::job::{self, Fields, Modes};
use crate::yaml::{self, Node, Pos, Value};
use crate::{
    IdentityKind, IdentitySelector, JobInput, JobOutput, Positions, SpecErrors, apply_set, diag,
};
use crate::{limits, rules};

/// The value of `type` in a command job; its only value is `command`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandType {
    #[default]
    Command,
}

/// A command job, normalized. This is also the wire form the CLI sends to the server (with
/// `"type": "command"`, which tells it from a Spark job's spec).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    #[serde(rename = "type", default)]
    pub job_type: CommandType,
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
    /// The code folder: a local path as written in the file, or `snapshot:<sha256>` once
    /// uploaded. Without one the command starts in an empty working directory, as in Azure ML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Shell text (`/bin/sh -c`) with `${{inputs.x}}`, `${{outputs.y}}` and optional
    /// `$[[...]]` sections.
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<CommandEnvironment>,
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    #[serde(default)]
    pub inputs: BTreeMap<String, JobInput>,
    #[serde(default)]
    pub outputs: BTreeMap<String, JobOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityKind>,
    #[serde(default, skip_serializing_if = "IdentitySelector::is_empty")]
    pub identity_selector: IdentitySelector,
    /// `None` or `serverless`: a command runs on the Spool host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<String>,
    /// `limits.timeout`: the command is stopped and the job fails after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// A command's environment: a conda file of PyPI packages, layered on the runtime's Python.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandEnvironment {
    /// The conda file: its path as written in the job file until the CLI reads it, then its
    /// text (an inline mapping is its text from the start).
    pub conda_file: String,
    /// Where the text came from; set once `conda_file` holds the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conda_file_path: Option<String>,
}

/// A command job that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCommand {
    pub spec: CommandSpec,
    /// Where each field was written, for checks the caller makes afterwards (paths on disk).
    pub positions: Positions,
}

const COMMAND_FIELDS: &[&str] = &[
    "$schema",
    "type",
    "name",
    "display_name",
    "experiment_name",
    "description",
    "tags",
    "properties",
    "code",
    "command",
    "environment",
    "environment_variables",
    "inputs",
    "outputs",
    "identity",
    "compute",
    "limits",
    "resources",
    "distribution",
];

/// What a command's `environment` must look like.
const ENVIRONMENT_ACCEPTED: &str =
    "environment:\n    conda_file: conda.yml   # PyPI packages, layered on the runtime's Python";

/// Reads the `type` of a job file without checking anything else, so a caller can pick the
/// loader (`parse_job` for `spark`, `parse_command_job` for `command`). `None` when the text is
/// not a YAML mapping with a string `type`.
pub fn job_type(text: &str) -> Option<String> {
    let root = yaml::parse(text).ok()?;
    let Value::Map(entries) = &root.value else {
        return None;
    };
    entries
        .iter()
        .find(|(key, _, _)| key == "type")
        .and_then(|(_, _, node)| match &node.value {
            Value::Str { text, .. } => Some(text.clone()),
            _ => None,
        })
}

/// Loads and checks a command job YAML file. `sets` are `--set path=value` overrides applied
/// first.
pub fn parse_command_job(
    text: &str,
    file: &str,
    sets: &[(String, String)],
) -> Result<ValidCommand, SpecErrors> {
    let errors = |diagnostics| SpecErrors {
        file: file.to_string(),
        diagnostics,
    };
    let mut root = yaml::parse(text).map_err(|e| errors(vec![diag::syntax_error(e)]))?;
    let mut diags = Vec::new();
    for (path, value) in sets {
        if let Err(message) = apply_set(&mut root, path, value) {
            diags.push(Diagnostic::new(path.clone(), message).at(Some(Pos::Override)));
        }
    }
    let Some((spec, positions)) = load(&root, &mut diags) else {
        return Err(errors(diags));
    };
    // A missing command was reported while loading.
    if positions.contains_key("command") {
        check_into(&spec, &positions, &mut diags);
    }
    if diags.is_empty() {
        Ok(ValidCommand { spec, positions })
    } else {
        Err(errors(diags))
    }
}

/// Checks a command job received as JSON (no positions) against the rules the YAML loader
/// applies, so the API accepts nothing the CLI would refuse.
pub fn check_command(spec: &CommandSpec) -> Result<(), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    for name in spec.inputs.keys() {
        job::check_key_name("inputs", name, None, &mut diags);
    }
    for name in spec.outputs.keys() {
        job::check_key_name("outputs", name, None, &mut diags);
    }
    if let Some(compute) = &spec.compute {
        check_compute(compute, None, &mut diags);
    }
    if spec.timeout_seconds == Some(0) {
        diags.push(
            Diagnostic::new("limits.timeout", "must be at least 1 second")
                .accepted("a whole number of seconds"),
        );
    }
    for name in spec.environment_variables.keys() {
        check_variable_name(name, None, &mut diags);
    }
    check_into(spec, &Positions::new(), &mut diags);
    if diags.is_empty() { Ok(()) } else { Err(diags) }
}

/// The rules over a loaded spec: its name, Spool's limits, the command's bindings.
fn check_into(spec: &CommandSpec, positions: &Positions, diags: &mut Vec<Diagnostic>) {
    let pos = |path: &str| positions.get(path).copied();
    if let Some(name) = &spec.name {
        rules::check_job_name(name, pos("name"), diags);
    }
    let mut push = |path: &str, result: Result<(), limits::LimitError>| {
        if let Err(e) = result {
            diags.push(Diagnostic::new(path, e.to_string()).at(pos(path)));
        }
    };
    for (field, value) in [
        ("display_name", &spec.display_name),
        ("experiment_name", &spec.experiment_name),
    ] {
        if let Some(value) = value {
            push(field, limits::check_name(field, value));
        }
    }
    for (field, value) in [
        ("description", spec.description.as_deref()),
        ("code", spec.code.as_deref()),
        ("command", Some(spec.command.as_str())),
    ] {
        if let Some(value) = value {
            push(
                field,
                limits::check_len(field, value, limits::MAX_TEXT_BYTES),
            );
        }
    }
    push("tags", limits::check_tags("tags", &spec.tags));
    push(
        "properties",
        limits::check_tags("properties", &spec.properties),
    );
    push(
        "environment_variables",
        limits::check_tags("environment_variables", &spec.environment_variables),
    );
    let at = pos("command");
    if spec.command.trim().is_empty() {
        diags.push(
            Diagnostic::new("command", "the command is empty")
                .at(at)
                .accepted("shell text, e.g. `python train.py --data ${{inputs.data}}`"),
        );
        return;
    }
    // Every declared input and output gets a placeholder value: only the references are checked.
    let inputs: BTreeMap<String, Option<String>> = spec
        .inputs
        .keys()
        .map(|name| (name.clone(), Some(String::new())))
        .collect();
    let outputs: BTreeMap<String, String> = spec
        .outputs
        .keys()
        .map(|name| (name.clone(), String::new()))
        .collect();
    if let Err(message) = bind_command(&spec.command, &inputs, &outputs) {
        diags.push(Diagnostic::new("command", message).at(at));
    }
}

fn load(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<(CommandSpec, Positions)> {
    let mut positions = Positions::new();
    let mut spec = CommandSpec::default();
    let mut fields = Fields::new("", root, diags)?;
    if fields.entries.is_empty() {
        diags.push(
            Diagnostic::new(
                "type",
                "missing field; a command job needs `type: command` and a `command`",
            )
            .at(Some(root.pos)),
        );
        return None;
    }
    let _ = fields.take("$schema", &mut positions);
    match fields.take("type", &mut positions) {
        Some(node) => match job::string("type", node, diags).as_deref() {
            Some("command") | None => {}
            Some(other) => diags.push(
                Diagnostic::new("type", "not a command job")
                    .at(Some(node.pos))
                    .value(other)
                    .accepted("`command`"),
            ),
        },
        None => diags.push(
            Diagnostic::new("type", "missing required field")
                .at(Some(root.pos))
                .accepted("`command`"),
        ),
    }
    for (key, slot) in [
        ("name", &mut spec.name),
        ("display_name", &mut spec.display_name),
        ("experiment_name", &mut spec.experiment_name),
        ("description", &mut spec.description),
        ("code", &mut spec.code),
    ] {
        if let Some(node) = fields.take(key, &mut positions) {
            *slot = job::string(key, node, diags);
        }
    }
    if let Some(node) = fields.take("compute", &mut positions)
        && let Some(compute) = job::string("compute", node, diags)
    {
        let compute = compute
            .strip_prefix("azureml:")
            .unwrap_or(&compute)
            .to_string();
        if check_compute(&compute, Some(node.pos), diags) {
            spec.compute = Some(compute);
        }
    }
    match fields.take("command", &mut positions) {
        Some(node) => spec.command = job::string("command", node, diags).unwrap_or_default(),
        None => diags.push(
            Diagnostic::new("command", "missing required field")
                .at(Some(root.pos))
                .accepted("shell text, e.g. `python train.py --data ${{inputs.data}}`"),
        ),
    }
    if let Some(node) = fields.take("tags", &mut positions) {
        spec.tags = job::string_map("tags", node, &mut positions, diags);
    }
    if let Some(node) = fields.take("properties", &mut positions) {
        spec.properties = job::string_map("properties", node, &mut positions, diags);
    }
    if let Some(node) = fields.take("environment_variables", &mut positions) {
        spec.environment_variables =
            job::string_map("environment_variables", node, &mut positions, diags);
        for name in spec.environment_variables.keys() {
            let pos = positions
                .get(&format!("environment_variables.{name}"))
                .copied();
            check_variable_name(name, pos, diags);
        }
    }
    if let Some(node) = fields.take("environment", &mut positions) {
        spec.environment = load_environment(node, &mut positions, diags);
    }
    if let Some(node) = fields.take("inputs", &mut positions) {
        spec.inputs = job::load_inputs(node, Modes::Command, &mut positions, diags);
    }
    if let Some(node) = fields.take("outputs", &mut positions) {
        spec.outputs = job::load_outputs(node, Modes::Command, &mut positions, diags);
    }
    if let Some(node) = fields.take("identity", &mut positions) {
        let (kind, selector) = job::load_identity(node, &mut positions, diags);
        spec.identity = kind;
        spec.identity_selector = selector;
    }
    if let Some(node) = fields.take("limits", &mut positions) {
        spec.timeout_seconds = load_limits(node, &mut positions, diags);
    }
    if let Some(node) = fields.take("resources", &mut positions) {
        load_resources(node, &mut positions, diags);
    }
    if let Some(node) = fields.take("distribution", &mut positions) {
        diags.push(
            Diagnostic::new(
                "distribution",
                "distributed commands (MPI, PyTorch, TensorFlow) are not supported: a command step runs as one process on the Spool host\nhint: remove `distribution`, or run the distributed part as a Spark job",
            )
            .at(Some(node.pos)),
        );
    }
    fields.finish_in("a command job", COMMAND_FIELDS, diags);
    Some((spec, positions))
}

/// Accepts `serverless` (the only compute a command has); says what else to write. Returns
/// whether it was accepted.
fn check_compute(compute: &str, pos: Option<Pos>, diags: &mut Vec<Diagnostic>) -> bool {
    if compute == "serverless" {
        return true;
    }
    diags.push(
        Diagnostic::new(
            "compute",
            format!(
                "Not found compute with name {compute}\nhint: command steps run as processes on the Spool host: write `compute: serverless` or leave `compute` out"
            ),
        )
        .at(pos),
    );
    false
}

pub(crate) fn check_variable_name(name: &str, pos: Option<Pos>, diags: &mut Vec<Diagnostic>) {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        diags.push(
            Diagnostic::new(
                format!("environment_variables.{name}"),
                "not a valid environment variable name",
            )
            .at(pos)
            .accepted("a name matching `^[A-Za-z_][A-Za-z0-9_]*$`"),
        );
    }
}

pub(crate) fn load_environment(
    node: &Node,
    positions: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> Option<CommandEnvironment> {
    if let Value::Str { text, .. } = &node.value {
        diags.push(
            Diagnostic::new(
                "environment",
                format!(
                    "registered environments are not supported (got `{text}`); Spool builds a command's environment from a conda file\nhint: give the packages the command needs in a conda file: `environment: {{conda_file: conda.yml}}`"
                ),
            )
            .at(Some(node.pos))
            .accepted(ENVIRONMENT_ACCEPTED),
        );
        return None;
    }
    let mut fields = Fields::new("environment", node, diags)?;
    if let Some(image) = fields.take("image", positions) {
        diags.push(
            Diagnostic::new(
                "environment.image",
                "Docker images are not supported: a command runs as a process on the Spool host, in the runtime's Python with the packages of `conda_file`\nhint: remove `image` and list the packages the command needs in `conda_file`",
            )
            .at(Some(image.pos))
            .value(image.value.display()),
        );
    }
    for ignored in ["name", "version", "description", "tags"] {
        let _ = fields.take(ignored, positions);
    }
    let conda = fields.take("conda_file", positions);
    fields.finish(
        &[
            "conda_file",
            "image",
            "name",
            "version",
            "description",
            "tags",
        ],
        diags,
    );
    let Some(conda) = conda else {
        diags.push(
            Diagnostic::new("environment.conda_file", "missing required field")
                .at(Some(node.pos))
                .accepted(ENVIRONMENT_ACCEPTED),
        );
        return None;
    };
    match &conda.value {
        // JSON is YAML: an inline conda file is sent as its JSON text.
        Value::Map(_) => Some(CommandEnvironment {
            conda_file: job::to_json(conda).to_string(),
            conda_file_path: Some("environment.conda_file".into()),
        }),
        _ => job::string("environment.conda_file", conda, diags).map(|path| CommandEnvironment {
            conda_file: path,
            conda_file_path: None,
        }),
    }
}

fn load_limits(node: &Node, positions: &mut Positions, diags: &mut Vec<Diagnostic>) -> Option<u64> {
    let mut fields = Fields::new("limits", node, diags)?;
    let timeout = fields.take("timeout", positions);
    fields.finish(&["timeout"], diags);
    let timeout = timeout?;
    match &timeout.value {
        Value::Int(seconds) if *seconds >= 1 => Some(*seconds as u64),
        other => {
            diags.push(
                Diagnostic::new(
                    "limits.timeout",
                    "must be a whole number of seconds, at least 1",
                )
                .at(Some(timeout.pos))
                .value(other.display())
                .accepted("e.g. `timeout: 3600`"),
            );
            None
        }
    }
}

fn load_resources(node: &Node, positions: &mut Positions, diags: &mut Vec<Diagnostic>) {
    let Some(mut fields) = Fields::new("resources", node, diags) else {
        return;
    };
    if let Some(count) = fields.take("instance_count", positions) {
        match &count.value {
            Value::Int(1) => {}
            Value::Int(n) if *n > 1 => diags.push(
                Diagnostic::new(
                    "resources.instance_count",
                    "a command step runs as one process on the Spool host\nhint: remove `instance_count` (or write 1)",
                )
                .at(Some(count.pos))
                .value(n.to_string()),
            ),
            other => diags.push(
                Diagnostic::new("resources.instance_count", "must be 1")
                    .at(Some(count.pos))
                    .value(other.display())
                    .accepted("`1`"),
            ),
        }
    }
    // The size of a VM means nothing on the Spool host; it is accepted so Azure files load.
    let _ = fields.take("instance_type", positions);
    fields.finish(&["instance_count", "instance_type"], diags);
}

static OPTIONAL_SECTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\[\[(.*?)\]\]").expect("valid regex"));
static EXPRESSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{\{\s*(.*?)\s*\}\}").expect("valid regex"));

/// Binds a command: `${{inputs.x}}` and `${{outputs.y}}` become their values (as text, like
/// Azure ML: the command is shell text, so quoting is the command's), and a `$[[...]]` section
/// is kept (without its brackets) when every input it names has a value, and dropped otherwise.
///
/// `inputs` holds every declared input, `None` for an optional one that was not given.
/// Outside a dropped section, references to undeclared inputs or outputs and to an input without
/// a value are errors; anywhere, so is any other `${{...}}` expression.
pub fn bind_command(
    command: &str,
    inputs: &BTreeMap<String, Option<String>>,
    outputs: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut error = None;
    let kept = OPTIONAL_SECTION.replace_all(command, |c: &regex::Captures<'_>| {
        let section = &c[1];
        let all_given =
            EXPRESSION
                .captures_iter(section)
                .all(|e| match e[1].strip_prefix("inputs.") {
                    Some(name) => matches!(inputs.get(name), Some(Some(_))),
                    None => true,
                });
        if all_given {
            section.to_string()
        } else {
            // An optional input without a value is left out of a job's spec, so a dropped
            // section may name inputs the job does not declare (the SDK exempts them too); what
            // else it names must still be a binding.
            for e in EXPRESSION.captures_iter(section) {
                if e[1].starts_with("inputs.") {
                    continue;
                }
                if let Err(message) = reference(&e[1], inputs, outputs) {
                    error.get_or_insert(message);
                }
            }
            String::new()
        }
    });
    if let Some(message) = error {
        return Err(message);
    }
    if kept.contains("$[[") {
        return Err("the command has a `$[[` without its closing `]]`".into());
    }
    let mut error = None;
    let bound = EXPRESSION.replace_all(&kept, |c: &regex::Captures<'_>| {
        match reference(&c[1], inputs, outputs) {
            Ok(value) => value,
            Err(message) => {
                error.get_or_insert(message);
                String::new()
            }
        }
    });
    match error {
        Some(message) => Err(message),
        None => Ok(bound.into_owned()),
    }
}

/// The value of one `${{...}}` expression outside a dropped section.
fn reference(
    expression: &str,
    inputs: &BTreeMap<String, Option<String>>,
    outputs: &BTreeMap<String, String>,
) -> Result<String, String> {
    let declared = |names: Vec<&String>| -> String {
        if names.is_empty() {
            "none are declared".into()
        } else {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("declared: {}", names.join(", "))
        }
    };
    if let Some(name) = expression.strip_prefix("inputs.") {
        return match inputs.get(name) {
            Some(Some(value)) => Ok(value.clone()),
            Some(None) => Err(format!(
                "the command uses input `{name}`, which has no value\nhint: give it a value, or put the part of the command that uses it in `$[[...]]`"
            )),
            None => Err(format!(
                "the command references input `{name}`, which the job does not declare ({})",
                declared(inputs.keys().collect())
            )),
        };
    }
    if let Some(name) = expression.strip_prefix("outputs.") {
        return match outputs.get(name) {
            Some(value) => Ok(value.clone()),
            None => Err(format!(
                "the command references output `{name}`, which the job does not declare ({})",
                declared(outputs.keys().collect())
            )),
        };
    }
    Err(format!(
        "`${{{{{expression}}}}}` is not a binding a command job can use\nhint: write `${{{{inputs.<name>}}}}` or `${{{{outputs.<name>}}}}`"
    ))
}

#[cfg(test)]
mod tests;
