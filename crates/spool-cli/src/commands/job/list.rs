//! `spool job list`.

use crate::Globals;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// At most this many jobs.
    #[arg(long, default_value_t = 50)]
    max_results: i64,
    /// List the nodes (child jobs) of this pipeline job instead, in the order they run.
    #[arg(long, value_name = "NAME")]
    parent_job_name: Option<String>,
}

pub(super) async fn run(args: ListArgs, globals: &Globals) -> anyhow::Result<i32> {
    let client = globals.client()?;
    let list = match &args.parent_job_name {
        Some(parent) => client
            .child_jobs(parent)
            .await
            .map_err(super::unknown_job)?,
        None => client.jobs(args.max_results).await?,
    };
    output::print(globals.format(), &list.jobs, || {
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
