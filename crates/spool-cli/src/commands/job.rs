//! `spool job create|show|list|stream|cancel|download`, mirroring `az ml job`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use spool_api_types::{JobStatus, JobView};
use spool_client::{Client, ClientError};
use spool_spec::yaml::Pos;
use spool_spec::{
    Catalog, DataType, Diagnostic, Entry, InstanceType, JobInput, SpecErrors, ValidJob,
};

use crate::output::{self, Format};
use crate::{ServerArgs, archive};

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Submit a Spark job from a job YAML file. Prints the job's name.
    ///
    /// Everything that can be checked before running is checked first (schema, the SDK's rules,
    /// that `code`, the entry file and inputs exist); nothing is created when a check fails.
    Create {
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
        /// Follow the job's logs until it ends; exit 0 only if it Completed.
        #[arg(long)]
        stream: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a job.
    Show {
        #[arg(long, short)]
        name: String,
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List jobs, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        max_results: i64,
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Follow a job's driver logs and status until it ends; exit 0 only if it Completed.
    Stream {
        #[arg(long, short)]
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Cancel a job: its driver and executors stop within seconds.
    Cancel {
        #[arg(long, short)]
        name: String,
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Download a job's logs (default), one output, or everything, in Azure ML's layout
    /// (`artifacts/logs/...`, `named-outputs/<output>/...`).
    Download {
        #[arg(long, short)]
        name: String,
        #[arg(long, default_value = ".")]
        download_path: PathBuf,
        /// One output by name.
        #[arg(long, conflicts_with = "all")]
        output_name: Option<String>,
        /// Logs and every output.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn run(command: JobCommand) -> anyhow::Result<i32> {
    match command {
        JobCommand::Create {
            file,
            sets,
            name,
            stream,
            server,
        } => {
            let client = server.client()?;
            let job = match create(&client, &file, &sets, name).await? {
                Some(job) => job,
                None => return Ok(1),
            };
            println!("{}", job.name);
            if stream {
                return follow(&client, &job.name).await;
            }
            Ok(0)
        }
        JobCommand::Show {
            name,
            output,
            server,
        } => {
            let job = server.client()?.job(&name).await?;
            output::print(output::resolve(output), &job, || job_table(&job))?;
            Ok(0)
        }
        JobCommand::List {
            max_results,
            output,
            server,
        } => {
            let list = server.client()?.jobs(max_results).await?;
            output::print(output::resolve(output), &list.jobs, || {
                let mut table = output::table(&[
                    "NAME",
                    "STATUS",
                    "DISPLAY NAME",
                    "EXPERIMENT",
                    "RUNTIME",
                    "OWNER",
                    "CREATED",
                ]);
                for job in &list.jobs {
                    table.add_row(vec![
                        job.name.clone(),
                        job.status.to_string(),
                        job.display_name.clone(),
                        job.experiment_name.clone(),
                        job.runtime.clone(),
                        job.owner.clone(),
                        job.created_at.clone(),
                    ]);
                }
                table
            })?;
            Ok(0)
        }
        JobCommand::Stream { name, server } => follow(&server.client()?, &name).await,
        JobCommand::Cancel {
            name,
            output,
            server,
        } => {
            let client = server.client()?;
            let mut job = client.cancel_job(&name).await?;
            // Wait (briefly) for the driver to be gone, so the command means what it says.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !job.status.is_terminal() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(250)).await;
                job = client.job(&name).await?;
            }
            output::print(output::resolve(output), &job, || job_table(&job))?;
            Ok(0)
        }
        JobCommand::Download {
            name,
            download_path,
            output_name,
            all,
            server,
        } => {
            let client = server.client()?;
            let job = client.job(&name).await?;
            let want_logs = output_name.is_none();
            if want_logs {
                let archive = client.download_logs(&name).await?;
                let dest = download_path.join("artifacts");
                let files = archive::untar(&archive, &dest)?;
                eprintln!(
                    "downloaded {files} log file(s) to {}",
                    dest.join("logs").display()
                );
            }
            let outputs: Vec<String> = match (&output_name, all) {
                (Some(one), _) => vec![one.clone()],
                (None, true) => job.outputs.keys().cloned().collect(),
                (None, false) => Vec::new(),
            };
            for output in outputs {
                let archive = client.download_output(&name, &output).await?;
                let dest = download_path.join("named-outputs");
                let files = archive::untar(&archive, &dest)?;
                eprintln!(
                    "downloaded output `{output}` ({files} file(s)) to {}",
                    dest.join(&output).display()
                );
            }
            Ok(0)
        }
    }
}

fn catalog_from(view: &spool_api_types::CatalogView) -> Catalog {
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

fn print_errors(errors: &SpecErrors) {
    eprint!("error: {errors}");
}

/// Validates, uploads code and local inputs, and submits. Returns `None` (after printing why)
/// when the job was rejected.
async fn create(
    client: &Client,
    file: &Path,
    sets: &[String],
    name: Option<String>,
) -> anyhow::Result<Option<JobView>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("read job file `{}`: {e}", file.display()))?;
    let file_label = file.display().to_string();
    let mut parsed_sets = Vec::new();
    for set in sets {
        let (path, value) = set
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`--set {set}`: write `--set path=value`"))?;
        parsed_sets.push((path.trim().to_string(), value.trim().to_string()));
    }
    if let Some(name) = name {
        parsed_sets.push(("name".to_string(), name));
    }
    let catalog = catalog_from(&client.catalog().await?);
    let valid = match spool_spec::parse_job(&text, &file_label, &parsed_sets, &catalog) {
        Ok(valid) => valid,
        Err(errors) => {
            print_errors(&errors);
            return Ok(None);
        }
    };
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let ValidJob {
        mut spec,
        positions,
        ..
    } = valid;
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
    // Local inputs exist (they are uploaded to the default datastore below).
    let mut local_inputs = Vec::new();
    for (input_name, input) in &spec.inputs {
        let JobInput::Data { data_type, path } = input else {
            continue;
        };
        if path.starts_with("azureml://") {
            continue;
        }
        let field = format!("inputs.{input_name}.path");
        if path.contains("://") {
            diagnostics.push(local_diag(
                &field,
                pos(&field),
                "this storage is not supported yet",
                path,
                "`azureml://datastores/<name>/paths/<path>` or a local path",
            ));
            continue;
        }
        let local = base.join(path);
        let ok = match data_type {
            DataType::UriFile => local.is_file(),
            DataType::UriFolder => local.is_dir(),
        };
        if !ok {
            let what = if *data_type == DataType::UriFile {
                "a file"
            } else {
                "a folder"
            };
            diagnostics.push(local_diag(
                &field,
                pos(&field),
                &format!("local input is not {what}"),
                path,
                "an existing local path, relative to the job file",
            ));
            continue;
        }
        local_inputs.push((input_name.clone(), local));
    }
    if !diagnostics.is_empty() {
        print_errors(&SpecErrors {
            file: file_label,
            diagnostics,
        });
        return Ok(None);
    }

    for (input_name, local) in local_inputs {
        let (archive_bytes, dest) = upload_archive(&local)?;
        client
            .upload_to_datastore("workspaceblobstore", archive_bytes)
            .await?;
        if let Some(JobInput::Data { path, .. }) = spec.inputs.get_mut(&input_name) {
            *path = format!("azureml://datastores/workspaceblobstore/paths/{dest}");
        }
    }
    let (code_archive, files) = archive::tar_dir(&code_dir, "")?;
    let snapshot = client.create_snapshot(code_archive).await?;
    tracing::debug!(files, code = %snapshot.code, "uploaded code snapshot");
    spec.code = snapshot.code;

    match client.create_job(serde_json::to_value(&spec)?).await {
        Ok(job) => Ok(Some(job)),
        Err(e @ ClientError::Api { .. }) => {
            let field = e.target().unwrap_or("job").to_string();
            let diagnostic = Diagnostic {
                pos: positions.get(&field).copied(),
                field,
                message: e.to_string(),
                value: None,
                accepted: None,
            };
            print_errors(&SpecErrors {
                file: file_label,
                diagnostics: vec![diagnostic],
            });
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn local_diag(
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

/// Follows a job until it ends: driver stdout to stdout, driver stderr and status changes to
/// stderr. Returns 0 only when the job Completed.
async fn follow(client: &Client, name: &str) -> anyhow::Result<i32> {
    let mut offsets = [0u64, 0u64];
    let mut last_status = None;
    loop {
        let job = client.job(name).await?;
        if last_status != Some(job.status) && !job.status.is_terminal() {
            let reason = job
                .status_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            eprintln!("[spool] {name}: {}{reason}", job.status);
            last_status = Some(job.status);
        }
        for (i, stream) in ["stdout", "stderr"].iter().enumerate() {
            let (bytes, size) = client
                .job_log(name, &format!("azureml/driver/{stream}"), offsets[i])
                .await?;
            if !bytes.is_empty() {
                if i == 0 {
                    std::io::stdout().write_all(&bytes)?;
                    std::io::stdout().flush()?;
                } else {
                    std::io::stderr().write_all(&bytes)?;
                }
            }
            offsets[i] = size.max(offsets[i]);
        }
        if job.status.is_terminal() {
            match job.status {
                JobStatus::Completed => {
                    eprintln!("[spool] {name}: Completed in {}", total_time(&job));
                    return Ok(0);
                }
                status => {
                    let error = job
                        .error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    eprintln!("[spool] {name}: {status}{error}");
                    return Ok(1);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn parse_time(text: &str) -> Option<chrono_like::Instant> {
    chrono_like::parse(text)
}

fn total_time(job: &JobView) -> String {
    match (
        job.phases.first().and_then(|p| parse_time(&p.at)),
        job.ended_at.as_deref().and_then(parse_time),
    ) {
        (Some(start), Some(end)) => format!("{:.1} s", end.0 - start.0),
        _ => "?".into(),
    }
}

/// Tiny RFC 3339 reader for the store's fixed timestamp format (`2026-11-24T10:00:00.123Z`),
/// enough to show phase durations without another dependency.
mod chrono_like {
    pub struct Instant(pub f64);

    pub fn parse(text: &str) -> Option<Instant> {
        let (date, time) = text.trim_end_matches('Z').split_once('T')?;
        let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.split(':');
        let (h, min) = (
            t.next()?.parse::<i64>().ok()?,
            t.next()?.parse::<i64>().ok()?,
        );
        let s: f64 = t.next()?.parse().ok()?;
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(Instant((days * 86_400 + h * 3600 + min * 60) as f64 + s))
    }
}

fn job_table(job: &JobView) -> comfy_table::Table {
    let mut phases = String::new();
    let times: Vec<Option<chrono_like::Instant>> =
        job.phases.iter().map(|p| parse_time(&p.at)).collect();
    for (i, phase) in job.phases.iter().enumerate() {
        let took = match (
            times.get(i).and_then(|t| t.as_ref()),
            times.get(i + 1).and_then(|t| t.as_ref()),
        ) {
            (Some(a), Some(b)) => format!(" ({:.1} s)", b.0 - a.0),
            _ => String::new(),
        };
        phases.push_str(&format!("{} {}{took}\n", phase.at, phase.status));
    }
    let r = &job.resources;
    let size = match r.dynamic_allocation {
        Some((min, max)) => format!(
            "driver {}c/{}, executors {}c/{} x {min}..{max} (dynamic)",
            r.driver_cores, r.driver_memory, r.executor_cores, r.executor_memory
        ),
        None => format!(
            "driver {}c/{}, executors {}c/{} x {}",
            r.driver_cores,
            r.driver_memory,
            r.executor_cores,
            r.executor_memory,
            r.executor_instances
        ),
    };
    let cluster = job
        .cluster
        .as_ref()
        .map(|c| format!("{} ({})", c.id, c.state))
        .unwrap_or_default();
    let outputs = job
        .outputs
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    output::fields(&[
        ("name", job.name.clone()),
        ("display name", job.display_name.clone()),
        ("experiment", job.experiment_name.clone()),
        ("status", job.status.to_string()),
        ("reason", job.status_reason.clone().unwrap_or_default()),
        ("error", job.error.clone().unwrap_or_default()),
        ("owner", job.owner.clone()),
        ("compute", job.compute.clone()),
        ("runtime", job.runtime.clone()),
        ("identity", job.identity.clone()),
        ("size", size),
        ("cluster", cluster),
        (
            "master UI",
            job.cluster
                .as_ref()
                .and_then(|c| c.master_ui_url.clone())
                .unwrap_or_default(),
        ),
        ("Spark UI", job.spark_ui_url.clone().unwrap_or_default()),
        ("Spark app", job.spark_app_id.clone().unwrap_or_default()),
        ("outputs", outputs),
        ("phases", phases.trim_end().to_string()),
    ])
}
