//! `spool session show`, and the session's table that `create` prints too.

use spool_api_types::SessionView;

use crate::Globals;
use crate::output::{self, Format};

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Session name or id.
    #[arg(long, short)]
    name: String,
}

pub(super) async fn run(args: ShowArgs, globals: &Globals) -> anyhow::Result<i32> {
    let session = globals
        .client()?
        .session(&args.name)
        .await
        .map_err(super::unknown_session)?;
    print_session(globals.format(), &session)?;
    Ok(0)
}

/// Prints a session as JSON, YAML or a table of its fields.
pub(super) fn print_session(format: Format, session: &SessionView) -> anyhow::Result<()> {
    output::print(format, session, || session_table(session))
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
        ("Connect", session.connect_url.clone().unwrap_or_default()),
        ("jars", session.jars.join("\n")),
        ("py_files", session.py_files.join("\n")),
        ("files", session.files.join("\n")),
        ("archives", session.archives.join("\n")),
        ("phases", phases),
    ])
}
