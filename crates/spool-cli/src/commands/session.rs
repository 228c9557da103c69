//! `spool session create|list|show|delete|run|shell`: interactive Spark sessions.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::time::Duration;

use spool_api_types::{CreateSession, SessionView, StatementView};
use spool_client::Client;

use crate::ServerArgs;
use crate::output::{self, Format};

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum SessionCommand {
    /// Start a session; waits until it is idle (or failed) unless --no-wait, then prints it.
    Create {
        /// `pyspark` (default) or `sql`.
        #[arg(long, default_value = "pyspark")]
        kind: String,
        #[arg(long, short)]
        name: Option<String>,
        /// Spark runtime (`3.4`, `3.5`, `4.3`).
        #[arg(long)]
        runtime: Option<String>,
        #[arg(long)]
        driver_cores: Option<u32>,
        #[arg(long)]
        driver_memory: Option<String>,
        #[arg(long)]
        executor_cores: Option<u32>,
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
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List sessions.
    List {
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a session with its start phases.
    Show {
        /// Session name or id.
        #[arg(long, short)]
        name: String,
        #[arg(short, long, value_enum)]
        output: Option<Format>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// End a session.
    Delete {
        #[arg(long, short)]
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run code in a session and print its output; exits 1 on an error result.
    Run {
        #[arg(long, short)]
        name: String,
        /// Statement kind: `pyspark` or `sql` (default: the session's kind).
        #[arg(long)]
        kind: Option<String>,
        /// The code; read from stdin when omitted.
        code: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// An interactive shell against a session (like `pyspark`); end a block with an empty line.
    Shell {
        #[arg(long, short)]
        name: String,
        #[arg(long)]
        kind: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn run(command: SessionCommand) -> anyhow::Result<i32> {
    match command {
        SessionCommand::Create {
            kind,
            name,
            runtime,
            driver_cores,
            driver_memory,
            executor_cores,
            executor_memory,
            executors,
            min_executors,
            max_executors,
            instance_type,
            timeout,
            conf,
            conda_file,
            compute,
            no_wait,
            output,
            server,
        } => {
            let client = server.client()?;
            let conda = match &conda_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("--conda-file `{}`: {e}", path.display()))?,
                ),
                None => None,
            };
            let mut conf_map = std::collections::BTreeMap::new();
            for item in conf {
                let (key, value) = item
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("`--conf {item}`: write `--conf key=value`"))?;
                conf_map.insert(key.to_string(), value.to_string());
            }
            let request = CreateSession {
                kind: Some(kind),
                name,
                runtime_version: runtime,
                driver_cores,
                driver_memory,
                executor_cores,
                executor_memory,
                executors,
                min_executors,
                max_executors,
                instance_type,
                timeout_minutes: timeout,
                conf: conf_map,
                conda_file: conda,
                conda_file_name: conda_file.map(|p| p.display().to_string()),
                compute,
            };
            let mut session = client.create_session(&request).await?;
            if !no_wait {
                let mut last = String::new();
                while !matches!(
                    session.state.as_str(),
                    "idle" | "dead" | "error" | "killed" | "success"
                ) {
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
            output::print(output::resolve(output), &session, || {
                session_table(&session)
            })?;
            Ok(if matches!(session.state.as_str(), "dead" | "error") {
                1
            } else {
                0
            })
        }
        SessionCommand::List { output, server } => {
            let list = server.client()?.sessions().await?;
            output::print(output::resolve(output), &list.sessions, || {
                let mut table =
                    output::table(&["ID", "NAME", "KIND", "STATE", "RUNTIME", "OWNER", "CREATED"]);
                for s in &list.sessions {
                    table.add_row(vec![
                        s.id.to_string(),
                        s.name.clone().unwrap_or_default(),
                        s.kind.clone(),
                        s.state.to_string(),
                        s.runtime.clone(),
                        s.owner.clone(),
                        s.created_at.clone(),
                    ]);
                }
                table
            })?;
            Ok(0)
        }
        SessionCommand::Show {
            name,
            output,
            server,
        } => {
            let session = server.client()?.session(&name).await?;
            output::print(output::resolve(output), &session, || {
                session_table(&session)
            })?;
            Ok(0)
        }
        SessionCommand::Delete { name, server } => {
            let session = server.client()?.delete_session(&name).await?;
            eprintln!("session {} ended ({})", session.id, session.state);
            Ok(0)
        }
        SessionCommand::Run {
            name,
            kind,
            code,
            server,
        } => {
            let client = server.client()?;
            let code = match code {
                Some(code) => code,
                None => {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text)?;
                    text
                }
            };
            let statement = run_statement(&client, &name, &code, kind.as_deref()).await?;
            Ok(print_output(&statement))
        }
        SessionCommand::Shell { name, kind, server } => {
            shell(&server.client()?, &name, kind.as_deref()).await
        }
    }
}

async fn run_statement(
    client: &Client,
    session: &str,
    code: &str,
    kind: Option<&str>,
) -> anyhow::Result<StatementView> {
    let mut statement = client.run_statement(session, code, kind).await?;
    let mut delay = Duration::from_millis(2);
    while !matches!(statement.state.as_str(), "available" | "cancelled") {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
        statement = client.statement(session, statement.id).await?;
    }
    Ok(statement)
}

/// Prints a statement's output; returns the exit code (1 for an error result).
fn print_output(statement: &StatementView) -> i32 {
    let Some(output) = &statement.output else {
        eprintln!("statement {} was {}", statement.id, statement.state);
        return 1;
    };
    if output["status"] == "error" {
        let traceback: String = output["traceback"]
            .as_array()
            .map(|lines| lines.iter().filter_map(|l| l.as_str()).collect())
            .unwrap_or_default();
        if !traceback.is_empty() {
            eprint!("{traceback}");
        }
        eprintln!(
            "{}: {}",
            output["ename"].as_str().unwrap_or("Error"),
            output["evalue"].as_str().unwrap_or_default()
        );
        return 1;
    }
    if let Some(text) = output["data"]["text/plain"].as_str() {
        if !text.is_empty() {
            println!("{text}");
        }
    } else if let Some(json) = output["data"].get("application/json") {
        println!("{json}");
    }
    0
}

async fn shell(client: &Client, name: &str, kind: Option<&str>) -> anyhow::Result<i32> {
    let session = client.session(name).await?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "Spool session {} ({}, Spark runtime {}). `spark` and `sc` are defined. End a block with an empty line; Ctrl-D to leave.",
            session.id, session.kind, session.runtime
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!(">>> ");
            std::io::stderr().flush()?;
        }
        let Some(first) = lines.next() else { break };
        let first = first?;
        if first.trim().is_empty() {
            continue;
        }
        let mut code = first.clone();
        // A block (a line ending in `:` or `\`) goes on until an empty line.
        if first.trim_end().ends_with(':') || first.trim_end().ends_with('\\') {
            loop {
                if interactive {
                    eprint!("... ");
                    std::io::stderr().flush()?;
                }
                match lines.next() {
                    Some(line) => {
                        let line = line?;
                        if line.trim().is_empty() {
                            break;
                        }
                        code.push('\n');
                        code.push_str(&line);
                    }
                    None => break,
                }
            }
        }
        let statement = run_statement(client, name, &code, kind).await?;
        print_output(&statement);
    }
    Ok(0)
}

fn session_table(session: &SessionView) -> comfy_table::Table {
    let phases: String = session
        .phases
        .iter()
        .map(|p| format!("{} {}", p.at, p.status))
        .collect::<Vec<_>>()
        .join("\n");
    output::fields(&[
        ("id", session.id.to_string()),
        ("name", session.name.clone().unwrap_or_default()),
        ("kind", session.kind.clone()),
        ("state", session.state.to_string()),
        ("reason", session.state_reason.clone().unwrap_or_default()),
        ("owner", session.owner.clone()),
        ("runtime", session.runtime.clone()),
        ("timeout", format!("{} min", session.timeout_minutes)),
        (
            "cluster",
            session
                .cluster_id
                .map(|c| c.to_string())
                .unwrap_or_default(),
        ),
        (
            "Spark app",
            session.spark_app_id.clone().unwrap_or_default(),
        ),
        ("Spark UI", session.spark_ui_url.clone().unwrap_or_default()),
        ("phases", phases),
    ])
}
