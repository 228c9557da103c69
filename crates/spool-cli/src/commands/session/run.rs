//! `spool session run`, and running one statement (also for `shell`).

use std::io::Read;
use std::time::Duration;

use anyhow::Context;
use spool_api_types::{StatementState, StatementView};
use spool_client::Client;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Session name or id.
    #[arg(long, short)]
    name: String,
    /// Statement kind: `pyspark` or `sql` (default: the session's kind).
    #[arg(long)]
    kind: Option<String>,
    /// The code; read from stdin when omitted.
    code: Option<String>,
}

pub(super) async fn run(args: RunArgs, globals: &Globals) -> anyhow::Result<i32> {
    let client = globals.client()?;
    let code = match args.code {
        Some(code) => code,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("read the code from stdin")?;
            text
        }
    };
    let statement = run_statement(&client, &args.name, &code, args.kind.as_deref()).await?;
    Ok(print_output(&statement))
}

/// Runs one statement and waits for its result.
pub(super) async fn run_statement(
    client: &Client,
    session: &str,
    code: &str,
    kind: Option<&str>,
) -> anyhow::Result<StatementView> {
    let mut statement = client
        .run_statement(session, code, kind)
        .await
        .map_err(super::unknown_session)?;
    let mut delay = Duration::from_millis(2);
    while !matches!(
        statement.state,
        StatementState::Available | StatementState::Cancelled
    ) {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
        statement = client.statement(session, statement.id).await?;
    }
    Ok(statement)
}

/// Prints a statement's output; returns the exit code (1 for an error result).
pub(super) fn print_output(statement: &StatementView) -> i32 {
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
