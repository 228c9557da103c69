//! `spool role assignment create|list|delete`: data roles on datastores, as `az role
//! assignment` grants storage roles.

use spool_api_types as api;

use crate::Globals;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum RoleCommand {
    /// Data roles of users on datastores and path prefixes.
    #[command(subcommand)]
    Assignment(AssignmentCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum AssignmentCommand {
    /// Grant a data role: workspace Owners anywhere, Storage Blob Data Owners at their scope or
    /// inside it. It applies from the next request, job or session.
    #[command(
        after_help = "Example:\n  spool role assignment create --assignee alice \\\n    --role \"Storage Blob Data Contributor\" \\\n    --scope azureml://datastores/workspaceblobstore/paths/users/alice"
    )]
    Create {
        /// The user or managed identity who gets the role (`spool identity list`).
        #[arg(long)]
        assignee: String,
        /// `Storage Blob Data Reader` (read), `Storage Blob Data Contributor` (read and write)
        /// or `Storage Blob Data Owner`.
        #[arg(long)]
        role: String,
        /// `azureml://datastores/<name>` for a whole datastore, or
        /// `azureml://datastores/<name>/paths/<prefix>` for a path and everything under it.
        #[arg(long)]
        scope: String,
    },
    /// List role assignments (all of them for an Owner; for a user, their own and those at the
    /// scopes where they are Storage Blob Data Owner).
    List,
    /// Remove a role assignment by id: workspace Owners any, Storage Blob Data Owners those at
    /// their scope or inside it.
    Delete {
        /// The id `list` shows.
        #[arg(long)]
        id: i64,
    },
}

pub async fn run(command: RoleCommand, globals: &Globals) -> anyhow::Result<i32> {
    let RoleCommand::Assignment(command) = command;
    let client = globals.client()?;
    match command {
        AssignmentCommand::Create {
            assignee,
            role,
            scope,
        } => {
            let created = client
                .create_role_assignment(&api::RoleAssignmentCreate {
                    assignee,
                    role,
                    scope,
                })
                .await?;
            // One assignment made: printed as the object, as every `create` prints.
            output::print(globals.format(), &created, || {
                table(std::slice::from_ref(&created))
            })?;
        }
        AssignmentCommand::List => {
            let list = client.role_assignments().await?;
            print(globals, &list.role_assignments)?;
        }
        AssignmentCommand::Delete { id } => {
            client
                .delete_role_assignment(api::RoleAssignmentId(id))
                .await?;
            eprintln!("removed role assignment {id}");
        }
    }
    Ok(0)
}

fn print(globals: &Globals, rows: &[api::RoleAssignmentView]) -> anyhow::Result<()> {
    output::print(globals.format(), &rows, || table(rows))
}

fn table(rows: &[api::RoleAssignmentView]) -> comfy_table::Table {
    let mut table = output::table(&["ID", "ASSIGNEE", "ROLE", "SCOPE", "CREATED BY"]);
    for r in rows {
        table.add_row(vec![
            r.id.to_string(),
            r.assignee.clone(),
            r.role.to_string(),
            r.scope.clone(),
            r.created_by.clone(),
        ]);
    }
    table
}
