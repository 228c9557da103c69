//! `spool job create`: validate a job YAML here, upload its code and local inputs, submit.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use spool_api_types::JobView;
use spool_client::{Client, ClientError};
use spool_spec::yaml::Pos;
use spool_spec::{
    Catalog, DataType, Diagnostic, Entry, InstanceType, JobInput, SpecErrors, ValidJob,
};

use super::stream::{self, DriverStdout};
use crate::{Globals, archive};

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The job YAML.
    #[arg(long, short)]
    file: PathBuf,
    /// Override a field, e.g. `--set resources.runtime_version=3.5` or
    /// `--set conf.spark.executor.instances=4`. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
    /// Job name (instead of `name` in the file or a generated one).
    #[arg(long, short)]
    name: Option<String>,
    /// Follow the job's status and driver logs (on stderr) until it ends, then print it; exit
    /// 0 only if it Completed.
    #[arg(long)]
    stream: bool,
}

pub(super) async fn run(args: CreateArgs, globals: &Globals) -> anyhow::Result<i32> {
    let client = globals.client()?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("read job file `{}`", args.file.display()))?;
    let job = if spool_spec::job_type(&text).as_deref() == Some("pipeline") {
        super::pipeline::create(&client, &args.file, &text, &args.sets, args.name).await?
    } else {
        create(&client, &args.file, &args.sets, args.name).await?
    };
    if !args.stream {
        super::show::print_job(globals.format(), &job)?;
        return Ok(0);
    }
    let job = stream::follow(&client, &job.name, DriverStdout::Stderr).await?;
    super::show::print_job(globals.format(), &job)?;
    Ok(stream::exit_code(&job))
}

pub(crate) fn catalog_from(view: &spool_api_types::CatalogView) -> Catalog {
    Catalog {
        runtimes: view.runtimes.iter().map(|r| r.version.clone()).collect(),
        default_runtime: view.default_runtime.clone(),
        instance_types: view
            .instance_types
            .iter()
            .map(|t| InstanceType {
                name: t.name.clone(),
                cores: t.cores,
                memory_mb: spool_core::MemoryMb(t.memory_mb),
            })
            .collect(),
    }
}

/// Validates, uploads code and local inputs, and submits. A rejected job is a `SpecErrors`
/// error, every problem with its position.
async fn create(
    client: &Client,
    file: &Path,
    sets: &[String],
    name: Option<String>,
) -> anyhow::Result<JobView> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("read job file `{}`", file.display()))?;
    let file_label = file.display().to_string();
    let parsed_sets = parse_sets(sets, name)?;
    if spool_spec::job_type(&text).as_deref() == Some("command") {
        return super::command_job::create(client, file, &text, &parsed_sets).await;
    }
    let catalog = catalog_from(&client.catalog().await?);
    let ValidJob {
        mut spec,
        positions,
        ..
    } = spool_spec::parse_job(&text, &file_label, &parsed_sets, &catalog)?;
    let base = base_dir(file);
    let pos = |field: &str| positions.get(field).copied();

    // Local checks: the code folder, entry and listed files exist.
    let mut diagnostics = Vec::new();
    let code_dir = base.join(&spec.code);
    if !code_dir.is_dir() {
        diagnostics.push(local_diag(
            "code",
            pos("code"),
            "Code path doesn't exist.",
            &spec.code,
            "a folder relative to the job file",
        ));
    } else {
        if let Entry::File(entry) = &spec.entry
            && !code_dir.join(entry).is_file()
        {
            diagnostics.push(local_diag(
                "entry.file",
                pos("entry.file"),
                "Entry doesn't exist.",
                entry,
                &format!("a file inside `{}`", code_dir.display()),
            ));
        }
        for (field, list) in [
            ("py_files", &spec.py_files),
            ("jars", &spec.jars),
            ("files", &spec.files),
            ("archives", &spec.archives),
        ] {
            for (i, item) in list.iter().enumerate() {
                if !code_dir.join(item).exists() {
                    let path = format!("{field}[{i}]");
                    diagnostics.push(local_diag(
                        &path,
                        pos(&path),
                        "file doesn't exist in the code folder",
                        item,
                        &format!("a path inside `{}`", code_dir.display()),
                    ));
                }
            }
        }
    }
    // A conda file named by path is read here (relative to the job file, as Azure ML does) and
    // sent with the job; the server checks it against the runtime.
    if let Some(serde_json::Value::Object(env)) = spec.environment.as_mut()
        && let Some(serde_json::Value::String(path)) = env.get("conda_file").cloned()
    {
        let local = base.join(&path);
        match std::fs::read_to_string(&local) {
            Ok(text) => {
                env.insert("conda_file".into(), serde_json::Value::String(text));
                env.insert(
                    "conda_file_path".into(),
                    serde_json::Value::String(local.display().to_string()),
                );
            }
            Err(e) => diagnostics.push(local_diag(
                "environment.conda_file",
                pos("environment"),
                &format!("cannot read the conda file: {e}"),
                &path,
                "a conda YAML file, relative to the job file",
            )),
        }
    }
    let local_inputs = check_local_inputs(&spec.inputs, &base, &positions, &mut diagnostics);
    if !diagnostics.is_empty() {
        return Err(SpecErrors {
            file: file_label,
            diagnostics,
        }
        .into());
    }
    upload_inputs(client, &mut spec.inputs, local_inputs).await?;
    spec.code = upload_code(client, &code_dir).await?;
    submit(client, serde_json::to_value(&spec)?, &positions, file_label).await
}

/// The folder a job file's relative paths start from.
pub(crate) fn base_dir(file: &Path) -> PathBuf {
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    }
}

/// Checks that a job's local inputs exist (they are uploaded to the default datastore by
/// `upload_inputs`); returns them with their paths here.
pub(super) fn check_local_inputs(
    inputs: &std::collections::BTreeMap<String, JobInput>,
    base: &Path,
    positions: &spool_spec::Positions,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(String, PathBuf)> {
    let mut local_inputs = Vec::new();
    for (input_name, input) in inputs {
        let JobInput::Data { data_type, path } = input else {
            continue;
        };
        let field = format!("inputs.{input_name}.path");
        if let Some(local) = check_local_input(
            &field,
            path,
            *data_type,
            base,
            "the job file",
            positions,
            diagnostics,
        ) {
            local_inputs.push((input_name.clone(), local));
        }
    }
    local_inputs
}

/// Checks one data input written as `field`: a datastore URI is left as it is, another URL is
/// not supported, and a local path (relative to `base`, the folder of the file named by
/// `relative_to`) must be a file or a folder as its type says. Returns the local path to
/// upload, if it is one.
pub(super) fn check_local_input(
    field: &str,
    path: &str,
    data_type: DataType,
    base: &Path,
    relative_to: &str,
    positions: &spool_spec::Positions,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<PathBuf> {
    let pos = |field: &str| positions.get(field).copied();
    if path.starts_with("azureml://") {
        return None;
    }
    if path.starts_with("azureml:") {
        diagnostics.push(local_diag(
            field,
            pos(field),
            "registered data assets (`azureml:<name>:<version>`) are not supported by Spool yet",
            path,
            "`azureml://datastores/<name>/paths/<path>` or a local path",
        ));
        return None;
    }
    if path.contains("://") {
        diagnostics.push(local_diag(
            field,
            pos(field),
            "this storage is not supported yet",
            path,
            "`azureml://datastores/<name>/paths/<path>` or a local path",
        ));
        return None;
    }
    let local = base.join(path);
    let ok = match data_type {
        DataType::UriFile => local.is_file(),
        DataType::UriFolder => local.is_dir(),
    };
    if !ok {
        let what = if data_type == DataType::UriFile {
            "a file"
        } else {
            "a folder"
        };
        diagnostics.push(local_diag(
            field,
            pos(field),
            &format!("local input is not {what}"),
            path,
            &format!("an existing local path, relative to {relative_to}"),
        ));
        return None;
    }
    Some(local)
}

/// Uploads local inputs to the default datastore and points the inputs at them.
pub(super) async fn upload_inputs(
    client: &Client,
    inputs: &mut std::collections::BTreeMap<String, JobInput>,
    local_inputs: Vec<(String, PathBuf)>,
) -> anyhow::Result<()> {
    for (input_name, local) in local_inputs {
        let uri = upload_input(client, &format!("input `{input_name}`"), &local).await?;
        if let Some(JobInput::Data { path, .. }) = inputs.get_mut(&input_name) {
            *path = uri;
        }
    }
    Ok(())
}

/// Uploads one local input (`what` names it in errors) to the default datastore; returns the
/// URI that takes the place of its path.
pub(crate) async fn upload_input(
    client: &Client,
    what: &str,
    local: &Path,
) -> anyhow::Result<String> {
    let (archive_bytes, dest) =
        upload_archive(local).with_context(|| format!("archive {what} (`{}`)", local.display()))?;
    client
        .upload_to_datastore("workspaceblobstore", archive_bytes)
        .await
        .with_context(|| format!("upload {what}"))?;
    Ok(format!(
        "azureml://datastores/workspaceblobstore/paths/{dest}"
    ))
}

/// Uploads a code folder as a snapshot; returns what `code` becomes (`snapshot:<sha256>`).
pub(super) async fn upload_code(client: &Client, code_dir: &Path) -> anyhow::Result<String> {
    let (code_archive, files) = archive::tar_dir(code_dir, "")
        .with_context(|| format!("archive the code folder `{}`", code_dir.display()))?;
    let snapshot = client
        .create_snapshot(code_archive)
        .await
        .context("upload the code snapshot")?;
    tracing::debug!(files, code = %snapshot.code, "uploaded code snapshot");
    Ok(snapshot.code)
}

/// Posts a job spec; the server's objection is reported at the field's position.
pub(super) async fn submit(
    client: &Client,
    spec: serde_json::Value,
    positions: &spool_spec::Positions,
    file_label: String,
) -> anyhow::Result<JobView> {
    match client.create_job(spec).await {
        Ok(job) => Ok(job),
        // The server's objection is reported like a local one: at the field's position.
        Err(e @ ClientError::Api { .. }) => {
            let field = e.target().unwrap_or("job").to_string();
            let diagnostic = Diagnostic {
                pos: positions.get(&field).copied(),
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

/// `--set path=value` pairs, and `--name` as a set of `name`.
pub(crate) fn parse_sets(
    sets: &[String],
    name: Option<String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut parsed = Vec::new();
    for set in sets {
        let (path, value) = set
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`--set {set}`: write `--set path=value`"))?;
        parsed.push((path.trim().to_string(), value.trim().to_string()));
    }
    if let Some(name) = name {
        parsed.push(("name".to_string(), name));
    }
    Ok(parsed)
}

/// Checks that a code folder, its entry file and the files it lists exist, naming fields
/// with `prefix` (e.g. `jobs.prep.`) and positions from `pos`.
pub(crate) fn check_code(
    code_dir: &Path,
    code: &str,
    entry: &Entry,
    lists: [(&str, &[String]); 4],
    prefix: &str,
    pos: &dyn Fn(&str) -> Option<Pos>,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    if !code_dir.is_dir() {
        let field = format!("{prefix}code");
        diagnostics.push(local_diag(
            &field,
            pos(&field),
            &format!("Code path {} doesn't exist.", code_dir.display()),
            code,
            "a folder relative to the file that names it",
        ));
        return diagnostics;
    }
    if let Entry::File(file) = entry
        && !code_dir.join(file).is_file()
    {
        let field = format!("{prefix}entry.file");
        diagnostics.push(local_diag(
            &field,
            pos(&field),
            &format!("Entry {} doesn't exist.", code_dir.join(file).display()),
            file,
            &format!("a file inside `{}`", code_dir.display()),
        ));
    }
    for (field, list) in lists {
        for (i, item) in list.iter().enumerate() {
            if !code_dir.join(item).exists() {
                let path = format!("{prefix}{field}[{i}]");
                diagnostics.push(local_diag(
                    &path,
                    pos(&path),
                    "file doesn't exist in the code folder",
                    item,
                    &format!("a path inside `{}`", code_dir.display()),
                ));
            }
        }
    }
    diagnostics
}

pub(crate) fn local_diag(
    field: &str,
    pos: Option<Pos>,
    message: &str,
    value: &str,
    accepted: &str,
) -> Diagnostic {
    Diagnostic {
        field: field.to_string(),
        pos,
        message: message.to_string(),
        value: Some(value.to_string()),
        accepted: Some(accepted.to_string()),
    }
}

/// Builds the archive of a local input and its content-addressed place in the default
/// datastore (`LocalUpload/<hash>/<name>`), as Azure ML does.
fn upload_archive(local: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    if local.is_dir() {
        let (probe, _) = archive::tar_dir(local, "")?;
        let hash = short_hash(&probe);
        let dest = format!("LocalUpload/{hash}/{name}");
        let (archive, _) = archive::tar_dir(local, &dest)?;
        Ok((archive, format!("{dest}/")))
    } else {
        let hash = short_hash(&std::fs::read(local)?);
        let dest = format!("LocalUpload/{hash}/{name}");
        Ok((archive::tar_file(local, &dest)?, dest))
    }
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
