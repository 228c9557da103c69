//! `spool session create`.

use std::time::Duration;

use anyhow::Context;
use spool_api_types::{CreateSession, SessionState};

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// `pyspark` (default) or `sql`.
    #[arg(long, default_value = "pyspark")]
    kind: String,
    /// Also serve Spark Connect: the session's `connect_url` (with `;token=<your token>`
    /// appended) works with `SparkSession.builder.remote(...)` from the thin `pyspark-client`.
    /// Runtime default: the newest with Spark Connect.
    #[arg(long, conflicts_with = "kind")]
    connect: bool,
    /// Session name (unique among live sessions).
    #[arg(long, short)]
    name: Option<String>,
    /// Spark runtime (`3.4`, `3.5`, `4.3`).
    #[arg(long)]
    runtime: Option<String>,
    /// Driver cores.
    #[arg(long)]
    driver_cores: Option<u32>,
    /// Driver memory, e.g. `2g`.
    #[arg(long)]
    driver_memory: Option<String>,
    /// Cores per executor.
    #[arg(long)]
    executor_cores: Option<u32>,
    /// Memory per executor, e.g. `4g`.
    #[arg(long)]
    executor_memory: Option<String>,
    /// Number of executors.
    #[arg(long)]
    executors: Option<u32>,
    /// Dynamic allocation: at least this many executors.
    #[arg(long)]
    min_executors: Option<u32>,
    /// Dynamic allocation: at most this many executors.
    #[arg(long)]
    max_executors: Option<u32>,
    /// Instance type bounding the driver and each executor (e.g. `standard_e4s_v3`).
    #[arg(long)]
    instance_type: Option<String>,
    /// Minutes without activity after which the session ends (default 30).
    #[arg(long)]
    timeout: Option<f64>,
    /// Spark property, `key=value`. Repeatable.
    #[arg(long = "conf", value_name = "KEY=VALUE")]
    conf: Vec<String>,
    /// A conda environment YAML of extra PyPI packages for the driver and executors (built
    /// once, then taken from the cache; `--conf spark.hadoop.aml.enable_cache=false` rebuilds).
    #[arg(long, value_name = "FILE")]
    conda_file: Option<std::path::PathBuf>,
    /// Run on an attached Spark pool (see `spool compute list`) instead of serverless
    /// compute; the pool's Spark version selects the runtime.
    #[arg(long)]
    compute: Option<String>,
    /// A jar for the driver's and executors' class path. Repeatable, or comma-separated.
    /// Each of `--jars`, `--py-files`, `--files` and `--archives` takes local files (uploaded to
    /// the default datastore first) or datastore URIs (`azureml://datastores/<name>/paths/<path>`).
    #[arg(long, value_name = "FILE|URI", value_delimiter = ',')]
    jars: Vec<String>,
    /// A Python file (`.py`, `.zip`, `.egg`) importable on the driver and executors.
    #[arg(long, value_name = "FILE|URI", value_delimiter = ',')]
    py_files: Vec<String>,
    /// A file for the driver's working directory and each executor's (`SparkFiles.get`).
    #[arg(long, value_name = "FILE|URI", value_delimiter = ',')]
    files: Vec<String>,
    /// An archive unpacked on the driver and executors, into `ARCHIVE#folder` when given.
    #[arg(long, value_name = "FILE|URI", value_delimiter = ',')]
    archives: Vec<String>,
    /// Return at once instead of waiting for the session to be idle.
    #[arg(long)]
    no_wait: bool,
}

pub(super) async fn run(args: CreateArgs, globals: &Globals) -> anyhow::Result<i32> {
    let client = globals.client()?;
    let conda = match &args.conda_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("read conda file `{}`", path.display()))?,
        ),
        None => None,
    };
    let mut conf = std::collections::BTreeMap::new();
    for item in &args.conf {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`--conf {item}`: write `--conf key=value`"))?;
        conf.insert(key.to_string(), value.to_string());
    }
    let mut lists = [args.jars, args.py_files, args.files, args.archives];
    for ((_, option), list) in FILE_LISTS.iter().zip(&mut lists) {
        for reference in list.iter_mut() {
            *reference = upload_if_local(&client, option, reference).await?;
        }
    }
    let [jars, py_files, files, archives] = lists;
    let request = CreateSession {
        kind: Some(if args.connect {
            "connect".to_string()
        } else {
            args.kind
        }),
        name: args.name,
        runtime_version: args.runtime,
        driver_cores: args.driver_cores,
        driver_memory: args.driver_memory,
        executor_cores: args.executor_cores,
        executor_memory: args.executor_memory,
        executors: args.executors,
        min_executors: args.min_executors,
        max_executors: args.max_executors,
        instance_type: args.instance_type,
        timeout_minutes: args.timeout,
        conf,
        conda_file: conda,
        conda_file_name: args.conda_file.map(|p| p.display().to_string()),
        compute: args.compute,
        jars,
        py_files,
        files,
        archives,
    };
    let mut session = client.create_session(&request).await.map_err(|e| {
        // The server names the API's field; say which option that was.
        let option = FILE_LISTS
            .iter()
            .find(|(field, _)| e.target() == Some(*field))
            .map(|(_, option)| *option);
        match option {
            Some(option) => anyhow::Error::new(e).context(format!("`{option}`")),
            None => e.into(),
        }
    })?;
    if !args.no_wait {
        let mut last = String::new();
        while !(session.state == SessionState::Idle || session.state.is_finished()) {
            // A change of state or of what it waits for (e.g. the environment build).
            let reason = session
                .state_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let line = format!("{}{reason}", session.state);
            if line != last {
                eprintln!("[spool] session {}: {line}", session.id);
                last = line;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            session = client.session(&session.id.to_string()).await?;
        }
    }
    super::show::print_session(globals.format(), &session)?;
    if let Some(url) = session
        .connect_url
        .as_deref()
        .filter(|_| matches!(globals.format(), crate::output::Format::Table))
    {
        // PySpark sends `token` only over TLS, except to `localhost`.
        let param = if url.starts_with("sc://localhost:") {
            "token"
        } else {
            "x-spool-token"
        };
        eprintln!(
            "hint: connect with SparkSession.builder.remote(\"{url};{param}=<your token>\").getOrCreate()"
        );
    }
    Ok(
        if matches!(session.state, SessionState::Dead | SessionState::Error) {
            1
        } else {
            0
        },
    )
}

/// The file lists of a session: the API's field and the option that fills it, in the order of
/// `CreateArgs`.
const FILE_LISTS: [(&str, &str); 4] = [
    ("jars", "--jars"),
    ("py_files", "--py-files"),
    ("files", "--files"),
    ("archives", "--archives"),
];

/// A reference as the server takes it: a local file is uploaded to the default datastore and
/// named by its URI there (its `#alias` kept); anything else (a datastore URI, a path in the
/// default datastore) is passed on for the server to check.
async fn upload_if_local(
    client: &spool_client::Client,
    option: &str,
    reference: &str,
) -> anyhow::Result<String> {
    if reference.contains("://") {
        return Ok(reference.to_string());
    }
    let (path, alias) = match reference.split_once('#') {
        Some((path, alias)) => (path, Some(alias)),
        None => (reference, None),
    };
    let local = std::path::Path::new(path);
    if !local.is_file() {
        if local.is_dir() {
            anyhow::bail!(
                "`{option} {reference}`: `{path}` is a folder; give a file (zip a folder and pass it to `--archives`)"
            );
        }
        return Ok(reference.to_string());
    }
    let uri =
        crate::commands::job::create::upload_input(client, &format!("`{option} {path}`"), local)
            .await?;
    Ok(match alias {
        Some(alias) => format!("{uri}#{alias}"),
        None => uri,
    })
}
