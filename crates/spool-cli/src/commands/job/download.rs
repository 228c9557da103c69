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
    ///
    /// Symbolic links in a download are created only when they stay inside this folder; others
    /// are left out with a warning, and nothing is written through a link already here.
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
    let mut job = client.job(&name).await.map_err(super::unknown_job)?;
    // A reused pipeline node ran nothing: its logs and outputs are the job's it reused.
    let name = match job.properties.get("azureml.reusedrunid").cloned() {
        Some(reused) => {
            eprintln!("job {name} reuses previous job {reused}, download from the reused job.");
            job = client.job(&reused).await.map_err(super::unknown_job)?;
            reused
        }
        None => name,
    };
    if output_name.is_none() {
        let archive = client.download_logs(&name).await?;
        let dest = download_path.join("artifacts");
        let unpacked = archive::untar(&archive, &dest)
            .with_context(|| format!("unpack the logs into `{}`", dest.display()))?;
        warn_left_out(&unpacked);
        eprintln!(
            "downloaded {} log file(s) to {}",
            unpacked.files,
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
        let unpacked = archive::untar(&archive, &dest)
            .with_context(|| format!("unpack output `{output}` into `{}`", dest.display()))?;
        warn_left_out(&unpacked);
        eprintln!(
            "downloaded output `{output}` ({} file(s)) to {}",
            unpacked.files,
            dest.join(&output).display()
        );
    }
    Ok(0)
}

/// One line per link the download held but did not create.
fn warn_left_out(unpacked: &archive::Unpacked) {
    for link in &unpacked.left_out {
        eprintln!("warning: left out link `{link}`: it leads out of the download folder");
    }
}
