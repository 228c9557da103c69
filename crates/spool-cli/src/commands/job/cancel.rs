//! `spool job cancel`.

use std::time::Duration;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The job's name.
    #[arg(long, short)]
    name: String,
}

pub(super) async fn run(args: CancelArgs, globals: &Globals) -> anyhow::Result<i32> {
    let client = globals.client()?;
    let mut job = client
        .cancel_job(&args.name)
        .await
        .map_err(super::unknown_job)?;
    // Wait (briefly) for the driver to be gone, so the command means what it says.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !job.status.is_terminal() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        job = client.job(&args.name).await?;
    }
    super::show::print_job(globals.format(), &job)?;
    Ok(0)
}
