//! The Azure ML SDK's validation rules for Spark jobs, in its order (compute/resources, input and
//! output modes, Spark conf, entry, args), with its message text, plus Spool's own checks.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use spool_core::MemoryMb;

use crate::diag::Diagnostic;
use crate::job::{ConfValue, Entry, JobSpec, Positions};
use crate::limits;

/// What the server offers, for the rules that depend on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Supported runtime versions, `major.minor`.
    pub runtimes: Vec<String>,
    /// The runtime used when a job names none.
    pub default_runtime: String,
    pub instance_types: Vec<InstanceType>,
}

/// A named machine size; bounds one driver or executor process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceType {
    pub name: String,
    pub cores: u32,
    pub memory_mb: MemoryMb,
}

/// Dynamic allocation bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicAllocation {
    pub min_executors: u32,
    pub max_executors: u32,
}

/// The size a job asks for, from its `conf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparkSizing {
    pub driver_cores: u32,
    pub driver_memory: MemoryMb,
    pub executor_cores: u32,
    pub executor_memory: MemoryMb,
    /// Executors to start with (with dynamic allocation: the initial count).
    pub executor_instances: u32,
    pub dynamic_allocation: Option<DynamicAllocation>,
}

impl SparkSizing {
    /// The most executors the job can hold at once; the cluster is sized for this many.
    pub fn max_executors(&self) -> u32 {
        self.dynamic_allocation
            .map(|da| da.max_executors.max(self.executor_instances))
            .unwrap_or(self.executor_instances)
    }
}

pub const DRIVER_CORES: &str = "spark.driver.cores";
pub const DRIVER_MEMORY: &str = "spark.driver.memory";
pub const EXECUTOR_CORES: &str = "spark.executor.cores";
pub const EXECUTOR_MEMORY: &str = "spark.executor.memory";
pub const EXECUTOR_INSTANCES: &str = "spark.executor.instances";
pub const DA_ENABLED: &str = "spark.dynamicAllocation.enabled";
pub const DA_MIN: &str = "spark.dynamicAllocation.minExecutors";
pub const DA_MAX: &str = "spark.dynamicAllocation.maxExecutors";

static INPUT_REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{\{inputs\.([\w\.-]+)\}\}").expect("valid regex"));
static OUTPUT_REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{\{outputs\.([\w\.-]+)\}\}").expect("valid regex"));
static OPTIONAL_INPUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[([\w\.\s-]*\$\{\{inputs\.([\w\.-]+)\}\}[^\[\]]*)\]").expect("valid regex")
});

struct Conf<'a> {
    conf: &'a BTreeMap<String, ConfValue>,
    positions: &'a Positions,
}

impl Conf<'_> {
    fn diag(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        let path = format!("conf.{key}");
        let pos = self.positions.get(&path).copied();
        Diagnostic::new(path, message).at(pos)
    }

    fn int(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<u32> {
        let value = self.conf.get(key)?;
        let parsed = match value {
            ConfValue::Int(i) => u32::try_from(*i).ok(),
            ConfValue::Str(s) => s.trim().parse::<u32>().ok(),
            ConfValue::Bool(_) => None,
        };
        if parsed.is_none() {
            diags.push(
                self.diag(key, "must be a non-negative integer")
                    .value(value.to_spark())
                    .accepted("a whole number, e.g. `2`"),
            );
        }
        parsed
    }

    fn memory(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<MemoryMb> {
        let value = self.conf.get(key)?;
        let parsed = match value {
            ConfValue::Str(s) => MemoryMb::parse(s).ok(),
            _ => None,
        };
        if parsed.is_none() {
            diags.push(
                self.diag(key, "String does not match expected pattern.")
                    .value(value.to_spark())
                    .accepted("a size matching `^\\d+[kKmMgGtTpP]$`, e.g. `2g` or `512m`"),
            );
        }
        parsed
    }

    fn enabled(&self, key: &str) -> bool {
        match self.conf.get(key) {
            Some(ConfValue::Bool(b)) => *b,
            Some(ConfValue::Str(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

/// Checks a loaded job against the SDK's rules and the server's catalog. Returns the sizing when
/// the conf is complete.
pub fn check(
    spec: &JobSpec,
    positions: &Positions,
    catalog: &Catalog,
    diags: &mut Vec<Diagnostic>,
) -> Option<SparkSizing> {
    let pos = |path: &str| positions.get(path).copied();

    // Compute vs resources. Spool runs a job that names neither on serverless compute.
    if spec.compute.is_some() && spec.resources.is_some() {
        diags.push(
            Diagnostic::new(
                "compute",
                "Only one of either compute or resources may be specified for Spark job",
            )
            .at(pos("compute"))
            .accepted(
                "`compute: <pool>` for an attached pool, or `resources` for serverless compute",
            ),
        );
    }
    let mut instance_type = None;
    if let Some(resources) = &spec.resources {
        match &resources.instance_type {
            None => diags.push(
                Diagnostic::new(
                    "resources.instance_type",
                    "Instance type must be specified for SparkResourceConfiguration",
                )
                .at(pos("resources"))
                .accepted(instance_type_list(catalog)),
            ),
            Some(name) => match catalog
                .instance_types
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
            {
                Some(found) => instance_type = Some(found),
                None => diags.push(
                    Diagnostic::new(
                        "resources.instance_type",
                        format!(
                            "Instance type must be specified for the list of {}",
                            instance_type_list(catalog)
                        ),
                    )
                    .at(pos("resources.instance_type"))
                    .value(name),
                ),
            },
        }
        if let Some(version) = &resources.runtime_version
            && !catalog.runtimes.contains(version)
        {
            diags.push(
                Diagnostic::new(
                    "resources.runtime_version",
                    format!(
                        "runtime version should be either {}",
                        either_list(&catalog.runtimes)
                    ),
                )
                .at(pos("resources.runtime_version"))
                .value(version)
                .accepted(catalog.runtimes.join(", ")),
            );
        }
    }

    // Spark conf.
    let conf = Conf {
        conf: &spec.conf,
        positions,
    };
    let driver_cores = conf.int(DRIVER_CORES, diags);
    let driver_memory = conf.memory(DRIVER_MEMORY, diags);
    let executor_cores = conf.int(EXECUTOR_CORES, diags);
    let executor_memory = conf.memory(EXECUTOR_MEMORY, diags);
    let executor_instances = conf.int(EXECUTOR_INSTANCES, diags);
    let da_min = conf.int(DA_MIN, diags);
    let da_max = conf.int(DA_MAX, diags);
    let conf_pos = pos("conf");
    let mut sizing = None;
    let missing_any = [DRIVER_CORES, DRIVER_MEMORY, EXECUTOR_CORES, EXECUTOR_MEMORY]
        .iter()
        .any(|k| !spec.conf.contains_key(*k));
    if conf.enabled(DA_ENABLED) {
        if missing_any {
            diags.push(
                Diagnostic::new("conf", "spark.driver.cores, spark.driver.memory, spark.executor.cores and spark.executor.memory are mandatory fields.")
                    .at(conf_pos)
                    .accepted(format!("add the missing {}", missing_keys(spec, &[DRIVER_CORES, DRIVER_MEMORY, EXECUTOR_CORES, EXECUTOR_MEMORY]))),
            );
        }
        match (da_min, da_max) {
            (Some(min), Some(max)) => {
                if !(min > 0 && min <= max) {
                    diags.push(
                        conf.diag(DA_MIN, "Dynamic min executors should be bigger than 0 and min executors should be equal or less than max executors.")
                            .value(format!("minExecutors={min}, maxExecutors={max}")),
                    );
                } else if executor_instances.is_some_and(|n| n < min || n > max) {
                    diags.push(
                        conf.diag(EXECUTOR_INSTANCES, "Executor instances must be a valid non-negative integer and must be between spark.dynamicAllocation.minExecutors and spark.dynamicAllocation.maxExecutors")
                            .value(executor_instances.map(|n| n.to_string()).unwrap_or_default())
                            .accepted(format!("{min} to {max}")),
                    );
                } else if let (Some(dc), Some(dm), Some(ec), Some(em)) = (driver_cores, driver_memory, executor_cores, executor_memory) {
                    sizing = Some(SparkSizing {
                        driver_cores: dc,
                        driver_memory: dm,
                        executor_cores: ec,
                        executor_memory: em,
                        executor_instances: executor_instances.unwrap_or(min),
                        dynamic_allocation: Some(DynamicAllocation { min_executors: min, max_executors: max }),
                    });
                }
            }
            _ => diags.push(
                Diagnostic::new("conf", "spark.dynamicAllocation.minExecutors and spark.dynamicAllocation.maxExecutors are required when dynamic allocation is enabled.")
                    .at(conf_pos)
                    .accepted(format!("add {}", missing_keys(spec, &[DA_MIN, DA_MAX]))),
            ),
        }
    } else {
        if missing_any || !spec.conf.contains_key(EXECUTOR_INSTANCES) {
            diags.push(
                Diagnostic::new("conf", "spark.driver.cores, spark.driver.memory, spark.executor.cores, spark.executor.memory and spark.executor.instances are mandatory fields.")
                    .at(conf_pos.or(Some(crate::yaml::Pos::At { line: 1, column: 1 })))
                    .accepted(format!("add the missing {}", missing_keys(spec, &[DRIVER_CORES, DRIVER_MEMORY, EXECUTOR_CORES, EXECUTOR_MEMORY, EXECUTOR_INSTANCES]))),
            );
        }
        if spec.conf.contains_key(DA_MIN) || spec.conf.contains_key(DA_MAX) {
            let key = if spec.conf.contains_key(DA_MIN) {
                DA_MIN
            } else {
                DA_MAX
            };
            diags.push(
                conf.diag(
                    key,
                    "Should not specify min or max executors when dynamic allocation is disabled.",
                )
                .accepted(format!("remove it, or set `{DA_ENABLED}: true`")),
            );
        }
        if let (Some(dc), Some(dm), Some(ec), Some(em), Some(n)) = (
            driver_cores,
            driver_memory,
            executor_cores,
            executor_memory,
            executor_instances,
        ) {
            sizing = Some(SparkSizing {
                driver_cores: dc,
                driver_memory: dm,
                executor_cores: ec,
                executor_memory: em,
                executor_instances: n,
                dynamic_allocation: None,
            });
        }
    }
    // Sizes within Spool's limits, so nothing downstream multiplies absurd numbers.
    let mut out_of_range = |key: &str, result: Result<(), limits::LimitError>| {
        if let Err(e) = result {
            diags.push(conf.diag(key, e.to_string()));
            false
        } else {
            true
        }
    };
    let mut in_range = true;
    for (key, cores) in [
        (DRIVER_CORES, driver_cores),
        (EXECUTOR_CORES, executor_cores),
    ] {
        if let Some(cores) = cores {
            in_range &= out_of_range(
                key,
                limits::check_cores(&format!("conf.{key}"), u64::from(cores)),
            );
        }
    }
    for (key, memory) in [
        (DRIVER_MEMORY, driver_memory),
        (EXECUTOR_MEMORY, executor_memory),
    ] {
        if let Some(memory) = memory {
            in_range &= out_of_range(key, limits::check_memory(&format!("conf.{key}"), memory));
        }
    }
    for (key, executors) in [
        (EXECUTOR_INSTANCES, executor_instances),
        (DA_MIN, da_min),
        (DA_MAX, da_max),
    ] {
        if let Some(executors) = executors {
            in_range &= out_of_range(
                key,
                limits::check_executors(&format!("conf.{key}"), u64::from(executors)),
            );
        }
    }
    if !in_range {
        sizing = None;
    }

    // Each process must fit in the instance type.
    if let (Some(sizing), Some(instance)) = (&sizing, instance_type) {
        for (role, cores, memory, cores_key, memory_key) in [
            (
                "driver",
                sizing.driver_cores,
                sizing.driver_memory,
                DRIVER_CORES,
                DRIVER_MEMORY,
            ),
            (
                "executor",
                sizing.executor_cores,
                sizing.executor_memory,
                EXECUTOR_CORES,
                EXECUTOR_MEMORY,
            ),
        ] {
            if cores > instance.cores {
                diags.push(
                    conf.diag(
                        cores_key,
                        format!(
                            "one {role} needs {cores} cores but instance type `{}` has {}",
                            instance.name, instance.cores
                        ),
                    )
                    .value(cores.to_string())
                    .accepted(format!(
                        "at most {} cores, or a larger instance type",
                        instance.cores
                    )),
                );
            }
            if memory > instance.memory_mb {
                diags.push(
                    conf.diag(
                        memory_key,
                        format!(
                            "one {role} needs {memory} but instance type `{}` has {}",
                            instance.name, instance.memory_mb
                        ),
                    )
                    .value(memory.to_spark())
                    .accepted(format!(
                        "at most {}, or a larger instance type",
                        instance.memory_mb.to_spark()
                    )),
                );
            }
        }
    }

    // Entry.
    if let Entry::ClassName(class_name) = &spec.entry
        && spec.jars.is_empty()
    {
        diags.push(
                Diagnostic::new("entry.class_name", "Classpath is not supported, please use 'file' to define the entry file.")
                    .at(pos("entry.class_name"))
                    .value(class_name)
                    .accepted("`entry.file`, or (a Spool extension) `entry.class_name` together with `jars` that contain the class"),
            );
    }

    // Lists must not repeat themselves.
    for (field, list) in [
        ("py_files", &spec.py_files),
        ("jars", &spec.jars),
        ("files", &spec.files),
        ("archives", &spec.archives),
    ] {
        let mut seen = HashSet::new();
        for (i, item) in list.iter().enumerate() {
            if !seen.insert(item) {
                let path = format!("{field}[{i}]");
                diags.push(
                    Diagnostic::new(
                        &path,
                        format!("{field} must not contain duplicate entries."),
                    )
                    .at(pos(&path))
                    .value(item),
                );
            }
        }
    }

    // Args may only reference declared inputs and outputs.
    if let Some(args) = &spec.args {
        let optional: HashSet<&str> = OPTIONAL_INPUT
            .captures_iter(args)
            .filter_map(|c| c.get(2).map(|m| m.as_str()))
            .collect();
        for capture in INPUT_REF.captures_iter(args) {
            let name = &capture[1];
            if !spec.inputs.contains_key(name) && !optional.contains(name) {
                diags.push(
                    Diagnostic::new(
                        "args",
                        format!("Inputs to job does not contain '{name}' referenced in args"),
                    )
                    .at(pos("args"))
                    .value(&capture[0])
                    .accepted(declared(spec.inputs.keys())),
                );
            }
        }
        for capture in OUTPUT_REF.captures_iter(args) {
            let name = &capture[1];
            if !spec.outputs.contains_key(name) {
                diags.push(
                    Diagnostic::new(
                        "args",
                        format!("Outputs to job does not contain '{name}' referenced in args"),
                    )
                    .at(pos("args"))
                    .value(&capture[0])
                    .accepted(declared(spec.outputs.keys())),
                );
            }
        }
    }

    if let Some(environment) = &spec.environment {
        check_environment(environment, pos("environment"), diags);
    }
    check_lengths(spec, positions, diags);
    if let Some(name) = &spec.name {
        check_job_name(name, pos("name"), diags);
    }
    sizing
}

/// The rule for job names, which name folders and default output paths.
pub(crate) fn check_job_name(
    name: &str,
    at: Option<crate::yaml::Pos>,
    diags: &mut Vec<Diagnostic>,
) {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        diags.push(
            Diagnostic::new(
                "name",
                "job names may contain only letters, digits, `_` and `-` (at most 255)",
            )
            .at(at)
            .value(name),
        );
    }
}

/// Lengths of names, texts, tags and conf within Spool's limits (`limits.rs`).
fn check_lengths(spec: &JobSpec, positions: &Positions, diags: &mut Vec<Diagnostic>) {
    let pos = |path: &str| positions.get(path).copied();
    let mut push = |path: &str, result: Result<(), limits::LimitError>| {
        if let Err(e) = result {
            diags.push(Diagnostic::new(path, e.to_string()).at(pos(path)));
        }
    };
    // The name's own rule (below) also says what it may contain; this one says how long it is.
    for (field, value) in [
        ("display_name", &spec.display_name),
        ("experiment_name", &spec.experiment_name),
    ] {
        if let Some(value) = value {
            push(field, limits::check_name(field, value));
        }
    }
    for (field, value) in [("description", &spec.description), ("args", &spec.args)] {
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
    let conf: Vec<(&str, String)> = spec
        .conf
        .iter()
        .map(|(key, value)| (key.as_str(), value.to_spark()))
        .collect();
    push(
        "conf",
        limits::check_conf("conf", conf.iter().map(|(k, v)| (*k, v.as_str()))),
    );
}

fn declared<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none are declared".into()
    } else {
        format!("declared: {}", names.join(", "))
    }
}

fn missing_keys(spec: &JobSpec, keys: &[&str]) -> String {
    keys.iter()
        .filter(|k| !spec.conf.contains_key(**k))
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn instance_type_list(catalog: &Catalog) -> String {
    catalog
        .instance_types
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn either_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Turns a job's `args` into argv, replacing `${{inputs.x}}`/`${{outputs.y}}` with resolved
/// values. An optional `[...]` section is kept (without brackets) when its input is given, and
/// dropped otherwise.
pub fn bind_args(
    args: &str,
    inputs: &BTreeMap<String, String>,
    outputs: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let without_optional = OPTIONAL_INPUT.replace_all(args, |c: &regex::Captures<'_>| {
        if inputs.contains_key(&c[2]) {
            c[1].to_string()
        } else {
            String::new()
        }
    });
    let tokens = split_args(&without_optional)?;
    let mut argv = Vec::with_capacity(tokens.len());
    for token in tokens {
        let mut missing = None;
        let bound = INPUT_REF.replace_all(&token, |c: &regex::Captures<'_>| {
            inputs.get(&c[1]).cloned().unwrap_or_else(|| {
                missing = Some(format!("input `{}`", &c[1]));
                String::new()
            })
        });
        let bound = OUTPUT_REF.replace_all(&bound, |c: &regex::Captures<'_>| {
            outputs.get(&c[1]).cloned().unwrap_or_else(|| {
                missing = Some(format!("output `{}`", &c[1]));
                String::new()
            })
        });
        if let Some(missing) = missing {
            return Err(format!(
                "args reference {missing}, which the job does not declare"
            ));
        }
        argv.push(bound.into_owned());
    }
    Ok(argv)
}

/// Splits a command line on whitespace, honouring single and double quotes.
fn split_args(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_token = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_token = true;
            }
        }
    }
    if quote.is_some() {
        return Err("args has an unterminated quote".into());
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

/// A job's `environment`: an inline environment with a `conda_file` (a path, its content, or an
/// inline mapping). Registered environments and images are not something Spool can use.
fn check_environment(
    environment: &serde_json::Value,
    at: Option<crate::yaml::Pos>,
    diags: &mut Vec<Diagnostic>,
) {
    const ACCEPTED: &str =
        "environment:\n    conda_file: conda.yml   # PyPI packages, layered on the runtime";
    match environment {
        serde_json::Value::String(text) => diags.push(
            Diagnostic::new(
                "environment",
                "registered environments are not supported; Spool builds environments from a conda file",
            )
            .at(at)
            .value(text.clone())
            .accepted(ACCEPTED),
        ),
        serde_json::Value::Object(fields) => {
            for key in fields.keys() {
                if !matches!(
                    key.as_str(),
                    "conda_file" | "conda_file_path" | "image" | "name" | "version" | "description" | "tags"
                ) {
                    diags.push(
                        Diagnostic::new(format!("environment.{key}"), "unknown field in an inline environment")
                            .at(at)
                            .accepted("`conda_file` (and `image`, `name`, `version`, `description`, `tags`, which Spool ignores)"),
                    );
                }
            }
            if !fields.contains_key("conda_file") {
                diags.push(
                    Diagnostic::new(
                        "environment.conda_file",
                        "Spark jobs install only the packages of a conda file; this environment has none",
                    )
                    .at(at)
                    .accepted(ACCEPTED),
                );
            }
        }
        other => diags.push(
            Diagnostic::new("environment", "must be an inline environment with `conda_file`")
                .at(at)
                .value(other.to_string())
                .accepted(ACCEPTED),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn binds_inputs_outputs_and_optional_sections() {
        let argv = bind_args(
            "--data ${{inputs.data}} [--rate ${{inputs.rate}}] [--extra ${{inputs.extra}}] --out ${{outputs.out}}",
            &map(&[("data", "/d/t.csv"), ("rate", "0.5")]),
            &map(&[("out", "/o dir/")]),
        )
        .unwrap();
        assert_eq!(
            argv,
            ["--data", "/d/t.csv", "--rate", "0.5", "--out", "/o dir/"]
        );
    }

    #[test]
    fn splits_quoted_args() {
        assert_eq!(split_args("a 'b c' \"d\"").unwrap(), ["a", "b c", "d"]);
        assert!(split_args("a 'b").is_err());
    }
}
