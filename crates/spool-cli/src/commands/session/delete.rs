//! `spool session delete`.

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Session name or id.
    #[arg(long, short)]
    name: String,
}

pub(super) async fn run(args: DeleteArgs, globals: &Globals) -> anyhow::Result<i32> {
    let session = globals
        .client()?
        .delete_session(&args.name)
        .await
        .map_err(super::unknown_session)?;
    eprintln!("session {} ended ({})", session.id, session.state);
    Ok(0)
}
