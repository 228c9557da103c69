//! `spool job create` of a pipeline (`type: pipeline`): load it and the component files its
//! steps name, check everything local (files, bindings), upload each component's code and
//! the local inputs, submit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use spool_api_types::JobView;
use spool_client::{Client, ClientError};
use spool_spec::component::ComponentBody;
use spool_spec::pipeline::{ComponentRef, NodeValue};
use spool_spec::{DataType, Diagnostic, JobInput, SpecErrors};

use super::create::{
    base_dir, catalog_from, check_code, check_local_input, local_diag, parse_sets, upload_input,
};

/// Submits a pipeline. A rejected pipeline is a `SpecErrors` error in the file it is about
/// (the pipeline, or a component file it names).
pub(super) async fn create(
    client: &Client,
    file: &Path,
    text: &str,
    sets: &[String],
    name: Option<String>,
) -> anyhow::Result<JobView> {
    let file_label = file.display().to_string();
    let sets = parse_sets(sets, name)?;
    let loaded = spool_spec::parse_pipeline(text, &file_label, &sets)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {}", warning.render(&file_label));
    }
    let mut spec = loaded.spec;
    let positions = loaded.positions;
    let pos = |field: &str| positions.get(field).copied();
    let base = base_dir(file);

    // Each step's component: files loaded (relative to the pipeline), code uploaded once per
    // folder.
    let mut snapshots: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (node_name, node) in spec.jobs.iter_mut() {
        let prefix = format!("jobs.{node_name}.");
        match &mut node.component {
            ComponentRef::File { path } => {
                let component_file = join_clean(&base, path);
                let component_label = component_file.display().to_string();
                let component_text = match std::fs::read_to_string(&component_file) {
                    Ok(text) => text,
                    Err(e) => {
                        let field = format!("{prefix}component");
                        return Err(SpecErrors {
                            file: file_label,
                            diagnostics: vec![local_diag(
                                &field,
                                pos(&field),
                                &format!("cannot read the component file: {e}"),
                                path,
                                "a component YAML file, relative to the pipeline file",
                            )],
                        }
                        .into());
                    }
                };
                let component =
                    spool_spec::parse_component(&component_text, &component_label, &[], true)?;
                for warning in &component.warnings {
                    eprintln!("warning: {}", warning.render(&component_label));
                }
                let mut component_spec = component.spec;
                let component_base = base_dir(&component_file);
                let component_pos = |field: &str| component.positions.get(field).copied();
                prepare_body(
                    client,
                    &mut component_spec.body,
                    &component_base,
                    &component_label,
                    "",
                    &component_pos,
                    &mut snapshots,
                )
                .await?;
                node.component = ComponentRef::Anonymous {
                    spec: Box::new(component_spec),
                };
            }
            ComponentRef::Inline { body } => {
                prepare_body(
                    client,
                    body,
                    &base,
                    &file_label,
                    &prefix,
                    &pos,
                    &mut snapshots,
                )
                .await?;
            }
            ComponentRef::Registered { .. } | ComponentRef::Anonymous { .. } => {}
        }
    }

    // The bindings, checked here too so that problems point into the file (the server checks
    // again, with registered components).
    let all_local = spec
        .jobs
        .values()
        .all(|n| !matches!(n.component, ComponentRef::Registered { .. }));
    if all_local {
        let catalog = catalog_from(&client.catalog().await?);
        let checked =
            spool_spec::graph::plan(&spec, &BTreeMap::new(), &positions).and_then(|plan| {
                spool_spec::graph::check_nodes(&plan, &catalog, &positions).map(|_| ())
            });
        if let Err(diagnostics) = checked {
            return Err(SpecErrors {
                file: file_label,
                diagnostics,
            }
            .into());
        }
    }

    // Local data inputs, of the pipeline and of steps, go to the default datastore; other
    // storage is refused as for jobs, and datastore URIs are sent as written.
    let mut problems = Vec::new();
    let mut uploads: Vec<(InputAt, String, PathBuf)> = Vec::new();
    for (input_name, input) in &spec.inputs {
        if let JobInput::Data { data_type, path } = &input.input {
            let field = format!("inputs.{input_name}.path");
            if let Some(local) = check_local_input(
                &field,
                path,
                *data_type,
                &base,
                "the pipeline file",
                &positions,
                &mut problems,
            ) {
                uploads.push((InputAt::Pipeline(input_name.clone()), field, local));
            }
        }
    }
    for (node_name, node) in &spec.jobs {
        for (input_name, input) in &node.inputs {
            if let NodeValue::Path(path) = &input.value {
                let field = format!("jobs.{node_name}.inputs.{input_name}");
                let data_type = input.data_type.unwrap_or(DataType::UriFolder);
                if let Some(local) = check_local_input(
                    &field,
                    path,
                    data_type,
                    &base,
                    "the pipeline file",
                    &positions,
                    &mut problems,
                ) {
                    let at = InputAt::Step(node_name.clone(), input_name.clone());
                    uploads.push((at, field, local));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(SpecErrors {
            file: file_label,
            diagnostics: problems,
        }
        .into());
    }
    for (at, field, local) in uploads {
        let uri = upload_input(client, &format!("`{field}`"), &local).await?;
        match at {
            InputAt::Pipeline(input_name) => {
                if let Some(input) = spec.inputs.get_mut(&input_name)
                    && let JobInput::Data { path, .. } = &mut input.input
                {
                    *path = uri;
                }
            }
            InputAt::Step(node_name, input_name) => {
                if let Some(input) = spec
                    .jobs
                    .get_mut(&node_name)
                    .and_then(|n| n.inputs.get_mut(&input_name))
                {
                    input.value = NodeValue::Path(uri);
                }
            }
        }
    }

    let mut body = serde_json::to_value(&spec)?;
    if let Some(map) = body.as_object_mut() {
        map.insert("type".into(), "pipeline".into());
    }
    match client.create_job(body).await {
        Ok(job) => Ok(job),
        Err(e @ ClientError::Api { .. }) => {
            let field = e.target().unwrap_or("jobs").to_string();
            let diagnostic = Diagnostic {
                pos: positions
                    .get(&field)
                    .or_else(|| {
                        // `jobs.<node>.<field>` of a component's field: point at the node.
                        let node = field.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
                        positions.get(&node)
                    })
                    .copied(),
                field,
                message: e.to_string(),
                value: None,
                accepted: None,
            };
            Err(SpecErrors {
                file: file_label,
                diagnostics: vec![diagnostic],
            }
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `base` joined with `relative`, without the `.` components (`./x.yml`), so that paths in
/// messages read as written.
fn join_clean(base: &Path, relative: &str) -> PathBuf {
    let mut joined = base.to_path_buf();
    for part in Path::new(relative).components() {
        if part != std::path::Component::CurDir {
            joined.push(part);
        }
    }
    joined
}

/// Where a local input is written: a pipeline input, or a step's (step, input).
enum InputAt {
    Pipeline(String),
    Step(String, String),
}

/// Uploads a code folder as a snapshot once per folder (steps often share one) and returns
/// its `snapshot:<sha>`.
async fn upload_code(
    client: &Client,
    dir: &Path,
    done: &mut BTreeMap<PathBuf, String>,
) -> anyhow::Result<String> {
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if let Some(code) = done.get(&key) {
        return Ok(code.clone());
    }
    let code = super::create::upload_code(client, dir)
        .await
        .with_context(|| format!("upload the code folder `{}`", dir.display()))?;
    done.insert(key, code.clone());
    Ok(code)
}

/// Checks a component's code on disk (relative to `base`, the folder of the file that wrote
/// it), reads its conda file and uploads its code, in place.
pub(crate) async fn prepare_body(
    client: &Client,
    body: &mut ComponentBody,
    base: &Path,
    label: &str,
    prefix: &str,
    pos: &dyn Fn(&str) -> Option<spool_spec::yaml::Pos>,
    snapshots: &mut BTreeMap<PathBuf, String>,
) -> anyhow::Result<()> {
    match body {
        ComponentBody::Spark(body) => {
            let code_dir = join_clean(base, &body.code);
            let problems = check_code(
                &code_dir,
                &body.code,
                &body.entry,
                [
                    ("py_files", &body.py_files),
                    ("jars", &body.jars),
                    ("files", &body.files),
                    ("archives", &body.archives),
                ],
                prefix,
                pos,
            );
            if !problems.is_empty() {
                return Err(SpecErrors {
                    file: label.to_string(),
                    diagnostics: problems,
                }
                .into());
            }
            if let Some(environment) = body.environment.as_mut() {
                inline_conda(environment, base, label, &format!("{prefix}environment"))?;
            }
            body.code = upload_code(client, &code_dir, snapshots).await?;
        }
        ComponentBody::Command(body) => {
            if let Some(code) = &body.code {
                let code_dir = join_clean(base, code);
                if !code_dir.is_dir() {
                    let field = format!("{prefix}code");
                    return Err(SpecErrors {
                        file: label.to_string(),
                        diagnostics: vec![local_diag(
                            &field,
                            pos(&field),
                            &format!("Code path {} doesn't exist.", code_dir.display()),
                            code,
                            "a folder relative to the file that names it",
                        )],
                    }
                    .into());
                }
                body.code = Some(upload_code(client, &code_dir, snapshots).await?);
            }
            if let Some(environment) = body.environment.as_mut()
                && environment.conda_file_path.is_none()
            {
                let local = base.join(&environment.conda_file);
                let field = format!("{prefix}environment.conda_file");
                let text = std::fs::read_to_string(&local).map_err(|e| SpecErrors {
                    file: label.to_string(),
                    diagnostics: vec![local_diag(
                        &field,
                        pos(&field),
                        &format!("cannot read the conda file: {e}"),
                        &environment.conda_file,
                        "a conda YAML file, relative to the file that names it",
                    )],
                })?;
                environment.conda_file = text;
                environment.conda_file_path = Some(local.display().to_string());
            }
        }
    }
    Ok(())
}

/// Reads an environment's `conda_file` named by path (relative to the file that names it) and
/// sends its text, as `spool job create` does for Spark jobs.
fn inline_conda(
    environment: &mut serde_json::Value,
    base: &Path,
    label: &str,
    field: &str,
) -> anyhow::Result<()> {
    if let serde_json::Value::Object(env) = environment
        && let Some(serde_json::Value::String(path)) = env.get("conda_file").cloned()
    {
        let local = base.join(&path);
        let text = std::fs::read_to_string(&local).map_err(|e| SpecErrors {
            file: label.to_string(),
            diagnostics: vec![local_diag(
                &format!("{field}.conda_file"),
                None,
                &format!("cannot read the conda file: {e}"),
                &path,
                "a conda YAML file, relative to the file that names it",
            )],
        })?;
        env.insert("conda_file".into(), serde_json::Value::String(text));
        env.insert(
            "conda_file_path".into(),
            serde_json::Value::String(local.display().to_string()),
        );
    }
    Ok(())
}
