//! `spool user create`.

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (admin only) and print their token. The token is shown only once.
    Create {
        /// Lowercase letters, digits, `_`, `-`, `.`.
        name: String,
    },
}

pub async fn run(command: UserCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        UserCommand::Create { name } => {
            let created = globals.client()?.create_user(&name).await?;
            eprintln!(
                "created user `{}`; keep this token, it is not shown again:",
                created.name
            );
            println!("{}", created.token);
            eprintln!(
                "hint: they read and write no datastore until given a data role, e.g.\n  spool role assignment create --assignee {} --role \"Storage Blob Data Contributor\" --scope azureml://datastores/workspaceblobstore",
                created.name
            );
            Ok(0)
        }
    }
}
