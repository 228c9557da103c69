//! `spool user create|update|list|show|delete|token rotate`.

use spool_api_types as api;
use spool_core::WorkspaceRole;

use crate::Globals;
use crate::output;

/// What `--role` takes; the table is in the server's `actions.rs`.
const ROLES_HELP: &str = "The workspace role, as Azure ML names them:
  Owner                   everything, users and role assignments included; sees all work
  Contributor             own work, and attaching and detaching computes
  AzureML Data Scientist  own work: jobs, sessions, statements, uploads
  Reader                  list and view; change nothing
Any case, and short forms such as `data-scientist`, are accepted.";

fn parse_role(text: &str) -> Result<WorkspaceRole, String> {
    WorkspaceRole::from_input(text).map_err(|e| e.to_string())
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (Owners only) and print their token. The token is shown only once.
    Create {
        /// Lowercase letters, digits, `_`, `-`, `.`.
        name: String,
        /// Owner, Contributor, "AzureML Data Scientist" or Reader.
        #[arg(long, value_parser = parse_role, default_value = "AzureML Data Scientist", long_help = ROLES_HELP)]
        role: WorkspaceRole,
    },
    /// Change a user's workspace role (Owners only). It applies from their next request; the
    /// last Owner cannot be given another role.
    Update {
        /// The user to change.
        name: String,
        /// Owner, Contributor, "AzureML Data Scientist" or Reader.
        #[arg(long, value_parser = parse_role, long_help = ROLES_HELP)]
        role: WorkspaceRole,
    },
    /// List users with their workspace roles.
    List,
    /// Show a user and their workspace role [default: yourself].
    Show {
        /// The user to show [default: the caller].
        name: Option<String>,
    },
    /// Delete a user (Owners only): their token stops working at once. Refused for the last
    /// Owner and while the user has jobs or sessions that have not ended; their ended jobs and
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
    /// once. Users rotate their own, Owners anyone's.
    Rotate {
        /// Whose token [default: the caller's own].
        name: Option<String>,
    },
}

pub async fn run(command: UserCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        UserCommand::Create { name, role } => {
            let created = globals
                .client()?
                .create_user(&name, Some(role.as_str()))
                .await?;
            eprintln!(
                "created user `{}` ({role}); keep this token, it is not shown again:",
                created.name
            );
            println!("{}", created.token);
            if role != WorkspaceRole::Reader {
                eprintln!(
                    "hint: they read and write no datastore, and create no session, until given a data role, e.g.\n  spool role assignment create --assignee {} --role \"Storage Blob Data Contributor\" --scope azureml://datastores/workspaceblobstore",
                    created.name
                );
            }
            Ok(0)
        }
        UserCommand::Update { name, role } => {
            let updated = globals.client()?.update_user(&name, role.as_str()).await?;
            eprintln!("user `{}` is now {}", updated.name, updated.role);
            print(globals, std::slice::from_ref(&updated))?;
            Ok(0)
        }
        UserCommand::List => {
            let list = globals.client()?.users().await?;
            print(globals, &list.users)?;
            Ok(0)
        }
        UserCommand::Show { name } => {
            let client = globals.client()?;
            let name = match name {
                Some(name) => name,
                None => client.whoami().await?.name,
            };
            let shown = client.user(&name).await?;
            print(globals, std::slice::from_ref(&shown))?;
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

fn print(globals: &Globals, rows: &[api::UserView]) -> anyhow::Result<()> {
    output::print(globals.format(), &rows, || {
        let mut table = output::table(&["NAME", "ROLE", "CREATED"]);
        for user in rows {
            table.add_row(vec![
                user.name.clone(),
                user.role.to_string(),
                user.created_at.clone(),
            ]);
        }
        table
    })
}
