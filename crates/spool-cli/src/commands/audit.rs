//! `spool audit list`: the server's record of state-changing calls and denials.

use spool_api_types as api;

use crate::Globals;
use crate::output;

/// The most entries the server returns in one page; the CLI asks for more page by page.
const PAGE: i64 = 1000;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// List audit entries, newest first (every entry for the admin, your own calls for a user).
    ///
    /// The server records every state-changing call and every denied one (401, 403), with who
    /// made it, the identity its work acts as, the action, its target and its result. Entries
    /// are kept for `audit_retention` under `[server]` in the server's config.toml (90 days by
    /// default).
    #[command(
        after_help = "Examples:\n  spool audit list --since 1h\n  spool audit list --principal alice --since 2025-01-31T00:00:00Z -o json"
    )]
    List {
        /// Only entries since this time: a duration back from now (`30m`, `1h`, `7d`) or an RFC
        /// 3339 time (`2025-01-31T12:00:00Z`).
        #[arg(long)]
        since: Option<String>,
        /// Only calls made by this user (`anonymous` for calls without valid credentials).
        #[arg(long)]
        principal: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
}

pub async fn run(command: AuditCommand, globals: &Globals) -> anyhow::Result<i32> {
    let AuditCommand::List {
        since,
        principal,
        limit,
    } = command;
    let client = globals.client()?;
    let mut entries: Vec<api::AuditEntryView> = Vec::new();
    let mut before = None;
    // The server resolves a duration in `since` on each page, so a later page may start a few
    // milliseconds after the first: only entries from the span's first milliseconds can be left
    // out, never one inside the span the first page saw.
    while (entries.len() as i64) < limit {
        let page = client
            .audit(&api::AuditQuery {
                since: since.clone(),
                principal: principal.clone(),
                limit: Some((limit - entries.len() as i64).min(PAGE)),
                before,
            })
            .await?;
        entries.extend(page.entries);
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    output::print(globals.format(), &entries, || {
        let mut table = output::table(&[
            "TIME",
            "PRINCIPAL",
            "IDENTITY",
            "ACTION",
            "TARGET",
            "STATUS",
            "RESULT",
        ]);
        for entry in &entries {
            table.add_row(vec![
                entry.at.clone(),
                entry.principal.clone(),
                entry.identity.clone().unwrap_or_default(),
                entry.action.clone(),
                entry.target.clone().unwrap_or_default(),
                entry.status.to_string(),
                entry.result.to_string(),
            ]);
        }
        table
    })?;
    Ok(0)
}
