//! `spool identity create|list|show|delete` and `spool workspace identity add|remove|list`:
//! managed identities jobs act as, as Azure's user-assigned identities.

use spool_api_types as api;

use crate::Globals;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum IdentityCommand {
    /// Create a user-assigned managed identity (Owners only). Attach it to the workspace for
    /// serverless jobs with `identity: {type: managed}`, or name it in a pool's attach file.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List identities: user-assigned ones and each attached pool's system-assigned one
    /// (`pool/<name>`).
    List,
    /// Show an identity with its client and principal ids.
    Show {
        #[arg(long)]
        name: String,
    },
    /// Delete a user-assigned identity and its role assignments (Owners only).
    Delete {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum WorkspaceIdentityCommand {
    /// Attach an identity to the workspace (Owners only).
    Add {
        #[arg(long)]
        name: String,
    },
    /// Detach an identity from the workspace (Owners only); jobs already submitted keep it.
    Remove {
        #[arg(long)]
        name: String,
    },
    /// List the identities attached to the workspace.
    List,
}

pub async fn run(command: IdentityCommand, globals: &Globals) -> anyhow::Result<i32> {
    let client = globals.client()?;
    match command {
        IdentityCommand::Create { name } => {
            let created = client.create_identity(&name).await?;
            print(globals, std::slice::from_ref(&created))?;
        }
        IdentityCommand::List => print(globals, &client.identities().await?.identities)?,
        IdentityCommand::Show { name } => {
            let shown = client.identity(&name).await?;
            print(globals, std::slice::from_ref(&shown))?;
        }
        IdentityCommand::Delete { name } => {
            client.delete_identity(&name).await?;
            eprintln!("deleted identity `{name}` and its role assignments");
        }
    }
    Ok(0)
}

pub async fn run_workspace(
    command: WorkspaceIdentityCommand,
    globals: &Globals,
) -> anyhow::Result<i32> {
    let client = globals.client()?;
    match command {
        WorkspaceIdentityCommand::Add { name } => {
            let identity = client.set_workspace_identity(&name, true).await?;
            print(globals, std::slice::from_ref(&identity))?;
        }
        WorkspaceIdentityCommand::Remove { name } => {
            let identity = client.set_workspace_identity(&name, false).await?;
            print(globals, std::slice::from_ref(&identity))?;
        }
        WorkspaceIdentityCommand::List => {
            print(globals, &client.workspace_identities().await?.identities)?;
        }
    }
    Ok(0)
}

fn print(globals: &Globals, rows: &[api::IdentityView]) -> anyhow::Result<()> {
    output::print(globals.format(), &rows, || {
        let mut table = output::table(&["NAME", "TYPE", "CLIENT ID", "IN WORKSPACE", "POOL"]);
        for i in rows {
            table.add_row(vec![
                i.name.clone(),
                i.kind.clone(),
                i.client_id.clone(),
                if i.in_workspace { "yes" } else { "no" }.to_string(),
                i.pool.clone().unwrap_or_default(),
            ]);
        }
        table
    })
}
