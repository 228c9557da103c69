//! `spool datastore list|create|upload`.

use std::path::PathBuf;

use crate::output;
use crate::{Globals, archive};

#[derive(Debug, clap::Subcommand)]
pub enum DatastoreCommand {
    /// List datastores.
    List,
    /// Create a datastore (Owners only).
    Create {
        /// Letters, digits and `_`.
        #[arg(long, short)]
        name: String,
        /// An existing directory on the server's host to serve as the datastore (e.g. a shared
        /// filesystem mount), absolute and outside the data dir; default: a new folder under the
        /// data dir. You get Storage Blob Data Owner on it.
        #[arg(long)]
        path: Option<String>,
    },
    /// Copy a local file or folder into a datastore.
    ///
    /// A file lands at exactly DEST (or inside it when DEST ends with `/`); a folder's contents
    /// land under DEST. E.g. `--src titanic.csv --dest data/titanic.csv` makes
    /// `azureml://datastores/<name>/paths/data/titanic.csv`.
    ///
    /// Symbolic links in a folder: a link to a file inside the folder is uploaded as that file;
    /// links leading out of the folder, to folders, or to nothing are skipped, each with a
    /// warning line. The upload is all or nothing.
    Upload {
        /// The datastore.
        #[arg(long, short, default_value = "workspaceblobstore")]
        name: String,
        /// Local file or folder.
        #[arg(long)]
        src: PathBuf,
        /// Path inside the datastore.
        #[arg(long)]
        dest: String,
    },
}

pub async fn run(command: DatastoreCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        DatastoreCommand::List => {
            let list = globals.client()?.datastores().await?;
            output::print(globals.format(), &list.datastores, || {
                let mut table = output::table(&["NAME", "URI", "CREATED"]);
                for d in &list.datastores {
                    table.add_row(vec![d.name.clone(), d.uri.clone(), d.created_at.clone()]);
                }
                table
            })?;
            Ok(0)
        }
        DatastoreCommand::Create { name, path } => {
            let created = globals
                .client()?
                .create_datastore(&name, path.as_deref())
                .await?;
            output::print(globals.format(), &created, || {
                output::fields(&[("name", created.name.clone()), ("uri", created.uri.clone())])
            })?;
            Ok(0)
        }
        DatastoreCommand::Upload { name, src, dest } => {
            let client = globals.client()?;
            let dest = dest.trim_start_matches('/').to_string();
            let archive = if src.is_dir() {
                let archived = archive::tar_dir_inside(&src, &dest)?;
                for link in &archived.left_out {
                    eprintln!("warning: skipped symbolic link {link}");
                }
                archived.archive
            } else if src.is_file() {
                let file_name = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = if dest.is_empty() || dest.ends_with('/') {
                    format!("{dest}{file_name}")
                } else {
                    dest.clone()
                };
                archive::tar_file(&src, &target)?
            } else {
                anyhow::bail!("`{}` is neither a file nor a folder", src.display());
            };
            let uploaded = client.upload_to_datastore(&name, archive).await?;
            eprintln!(
                "uploaded {} file(s), {} bytes to azureml://datastores/{name}/paths/{dest}",
                uploaded.files, uploaded.bytes
            );
            Ok(0)
        }
    }
}
