//! `spool user create|delete|token rotate`.

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (admin only) and print their token. The token is shown only once.
    Create {
        /// Lowercase letters, digits, `_`, `-`, `.`.
        name: String,
    },
    /// Delete a user (admin only): their token stops working at once. Refused for the last
    /// admin and while the user has jobs or sessions that have not ended; their ended jobs and
    /// sessions stay, and the name is not reused.
    Delete {
        /// The user to delete.
        name: String,
    },
    /// Tokens of users.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Give a user a new token and print it (shown only once); the old one stops working at
    /// once. Users rotate their own, the admin anyone's.
    Rotate {
        /// Whose token [default: the caller's own].
        name: Option<String>,
    },
}

pub async fn run(command: UserCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        UserCommand::Create { name } => {
            let created = globals.client()?.create_user(&name, None).await?;
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
        UserCommand::Delete { name } => {
            globals.client()?.delete_user(&name).await?;
            eprintln!("deleted user `{name}`; their token no longer works");
            Ok(0)
        }
        UserCommand::Token(TokenCommand::Rotate { name }) => {
            let client = globals.client()?;
            let name = match name {
                Some(name) => name,
                None => client.whoami().await?.name,
            };
            let rotated = client.rotate_token(&name).await?;
            eprintln!(
                "new token for `{}` (the old one no longer works); keep it, it is not shown again:",
                rotated.name
            );
            println!("{}", rotated.token);
            Ok(0)
        }
    }
}
