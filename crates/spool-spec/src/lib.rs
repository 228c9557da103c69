//! Job specs: loading Azure-ML-style job YAML with positions (Spark jobs, and command jobs in
//! `command.rs`), the SDK's validation rules, and binding `${{inputs.x}}`/`${{outputs.y}}` into
//! argv or a command line.
//!
//! This crate is pure: it must not touch the file system, the network or processes. Checks that
//! need the disk (that `code` exists) are done by its callers.

mod command;
pub mod component;
pub mod compute;
pub mod conda;
mod diag;
pub mod graph;
mod job;
pub mod limits;
pub mod network;
pub mod pipeline;
pub mod registration;
mod rules;
pub mod yaml;

use saphyr_parser::ScalarStyle;

pub use command::{
    CommandEnvironment, CommandSpec, CommandType, ValidCommand, bind_command, check_command,
    job_type, parse_command_job,
};
pub use diag::{Diagnostic, SpecErrors};
pub use job::{
    ConfValue, DataType, Entry, IdentityKind, IdentitySelector, JobInput, JobOutput, JobSpec,
    LiteralType, Positions, Resources,
};
pub use rules::{
    Catalog, DA_ENABLED, DA_MAX, DA_MIN, DRIVER_CORES, DRIVER_MEMORY, DynamicAllocation,
    EXECUTOR_CORES, EXECUTOR_INSTANCES, EXECUTOR_MEMORY, InstanceType, SparkSizing, bind_args,
};

use yaml::{Node, Pos, Value};

fn parse_with_sets(
    text: &str,
    file: &str,
    sets: &[(String, String)],
) -> Result<(Node, Vec<Diagnostic>), SpecErrors> {
    let mut root = yaml::parse(text).map_err(|e| SpecErrors {
        file: file.to_string(),
        diagnostics: vec![diag::syntax_error(e)],
    })?;
    let mut diags = Vec::new();
    for (path, value) in sets {
        if let Err(message) = apply_set(&mut root, path, value) {
            diags.push(Diagnostic::new(path.clone(), message).at(Some(Pos::Override)));
        }
    }
    Ok((root, diags))
}

/// Loads a pipeline job YAML file (`type: pipeline`). Component files it names are left for
/// the caller to load (`ComponentRef::File`); bindings are checked by `graph::plan`.
pub fn parse_pipeline(
    text: &str,
    file: &str,
    sets: &[(String, String)],
) -> Result<pipeline::LoadedPipeline, SpecErrors> {
    let (root, mut diags) = parse_with_sets(text, file, sets)?;
    if !pipeline::is_pipeline(&root) {
        diags.push(
            Diagnostic::new("type", "not a pipeline job")
                .at(Some(root.pos))
                .accepted("`type: pipeline`"),
        );
    }
    let loaded = pipeline::load(&root, &mut diags);
    match loaded {
        Some(loaded) if diags.is_empty() => Ok(loaded),
        _ => Err(SpecErrors {
            file: file.to_string(),
            diagnostics: diags,
        }),
    }
}

/// Loads a component YAML file. An `anonymous` one (named by a pipeline) needs no name.
pub fn parse_component(
    text: &str,
    file: &str,
    sets: &[(String, String)],
    anonymous: bool,
) -> Result<component::LoadedComponent, SpecErrors> {
    let (root, mut diags) = parse_with_sets(text, file, sets)?;
    let loaded = component::load(&root, anonymous, &mut diags);
    match loaded {
        Some(loaded) if diags.is_empty() => Ok(loaded),
        _ => Err(SpecErrors {
            file: file.to_string(),
            diagnostics: diags,
        }),
    }
}

/// A job that passed every check, with the sizing its conf asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidJob {
    pub spec: JobSpec,
    pub sizing: SparkSizing,
    /// Where each field was written, for checks the caller makes afterwards (e.g. paths on disk).
    pub positions: Positions,
}

/// Loads and checks a job YAML file. `sets` are `--set path=value` overrides applied first.
pub fn parse_job(
    text: &str,
    file: &str,
    sets: &[(String, String)],
    catalog: &Catalog,
) -> Result<ValidJob, SpecErrors> {
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
    let Some((spec, positions)) = job::load(&root, &mut diags) else {
        return Err(errors(diags));
    };
    let sizing = rules::check(&spec, &positions, catalog, &mut diags);
    match sizing {
        Some(sizing) if diags.is_empty() => Ok(ValidJob {
            spec,
            sizing,
            positions,
        }),
        _ => Err(errors(diags)),
    }
}

/// Checks a job received as JSON (no positions) against the same rules, including those the
/// YAML loader applies while loading (input and output names), so the API accepts nothing the
/// CLI would refuse.
pub fn check_job(spec: &JobSpec, catalog: &Catalog) -> Result<SparkSizing, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    for name in spec.inputs.keys() {
        job::check_key_name("inputs", name, None, &mut diags);
    }
    for name in spec.outputs.keys() {
        job::check_key_name("outputs", name, None, &mut diags);
    }
    let sizing = rules::check(spec, &Positions::new(), catalog, &mut diags);
    match sizing {
        Some(sizing) if diags.is_empty() => Ok(sizing),
        _ => Err(diags),
    }
}

/// The Azure ML serverless instance types (Esv3 series).
pub fn azure_instance_types() -> Vec<InstanceType> {
    [(4, 32), (8, 64), (16, 128), (32, 256), (64, 432)]
        .into_iter()
        .map(|(cores, gib)| InstanceType {
            name: format!("standard_e{cores}s_v3"),
            cores,
            memory_mb: spool_core::MemoryMb(gib * 1024),
        })
        .collect()
}

/// Applies `--set a.b.c=value`. Under `conf`, `tags` and `properties` the rest of the path is
/// one key, since Spark property names contain dots (`conf.spark.executor.instances=4`).
fn apply_set(root: &mut Node, path: &str, value: &str) -> Result<(), String> {
    let mut segments: Vec<String> = Vec::new();
    for part in path.split('.') {
        if matches!(
            segments.first().map(String::as_str),
            Some("conf" | "tags" | "properties")
        ) && segments.len() == 2
        {
            let last = segments.pop().expect("two segments");
            segments.push(format!("{last}.{part}"));
        } else {
            segments.push(part.to_string());
        }
    }
    if segments.iter().any(String::is_empty) {
        return Err("`--set` needs a path such as `resources.runtime_version=3.5`".into());
    }
    let new_value = yaml::resolve_scalar(value, ScalarStyle::Plain, false);
    let mut node = root;
    for (i, segment) in segments.iter().enumerate() {
        if matches!(node.value, Value::Null) {
            node.value = Value::Map(Vec::new());
        }
        let Value::Map(entries) = &mut node.value else {
            return Err(format!("`{}` is not a mapping", segments[..i].join(".")));
        };
        let index = match entries.iter().position(|(k, _, _)| k == segment) {
            Some(index) => index,
            None => {
                entries.push((
                    segment.clone(),
                    Pos::Override,
                    Node {
                        pos: Pos::Override,
                        value: Value::Null,
                    },
                ));
                entries.len() - 1
            }
        };
        node = &mut entries[index].2;
    }
    *node = Node {
        pos: Pos::Override,
        value: new_value,
    };
    Ok(())
}

#[cfg(test)]
mod tests;
