//! `spool job download`.

use std::path::PathBuf;

use anyhow::Context;

use crate::{Globals, archive};

#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// The job's name.
    #[arg(long, short)]
    name: String,
    /// The folder to download into.
    #[arg(long, default_value = ".")]
    download_path: PathBuf,
    /// One output by name.
    #[arg(long, conflicts_with = "all")]
    output_name: Option<String>,
    /// Logs and every output.
    #[arg(long)]
    all: bool,
}

pub(super) async fn run(args: DownloadArgs, globals: &Globals) -> anyhow::Result<i32> {
    let DownloadArgs {
        name,
        download_path,
        output_name,
        all,
    } = args;
    let client = globals.client()?;
    let job = client.job(&name).await.map_err(super::unknown_job)?;
    if output_name.is_none() {
        let archive = client.download_logs(&name).await?;
        let dest = download_path.join("artifacts");
        let files = archive::untar(&archive, &dest)
            .with_context(|| format!("unpack the logs into `{}`", dest.display()))?;
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
        let files = archive::untar(&archive, &dest)
            .with_context(|| format!("unpack output `{output}` into `{}`", dest.display()))?;
        eprintln!(
            "downloaded output `{output}` ({files} file(s)) to {}",
            dest.join(&output).display()
        );
    }
    Ok(0)
}
