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
    };
    let mut session = client.create_session(&request).await?;
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
        eprintln!(
            "hint: connect with SparkSession.builder.remote(\"{url};token=<your token>\").getOrCreate()"
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
