//! Users' workspace roles: listing users, and changing a role (never leaving the server without
//! an Owner). Creating, deleting and token rotation are in `lib.rs`.

use spool_api_types as api;
use spool_core::WorkspaceRole;
use spool_store::{RoleChange, UserRow};

use crate::{Action, Caller, Control, ControlError, Result, invalid};

/// Reads a workspace role from a request, as people type it.
pub(crate) fn parse_role(text: &str) -> Result<WorkspaceRole> {
    WorkspaceRole::from_input(text).map_err(|e| invalid("role", e.to_string()))
}

fn view(row: UserRow) -> api::UserView {
    api::UserView {
        is_admin: row.role == WorkspaceRole::Owner,
        name: row.name,
        role: row.role,
        created_at: row.created_at,
    }
}

impl Control {
    /// Every user with their role, oldest first (no tokens).
    pub async fn users(&self, caller: &Caller) -> Result<Vec<api::UserView>> {
        caller.require(Action::ViewUsers)?;
        let rows = self.store().list_users().await?;
        Ok(rows.into_iter().map(view).collect())
    }

    /// One user by name.
    pub async fn user(&self, caller: &Caller, name: &str) -> Result<api::UserView> {
        caller.require(Action::ViewUsers)?;
        self.store()
            .user_by_name(name)
            .await?
            .map(view)
            .ok_or_else(|| ControlError::NotFound {
                kind: "user",
                name: name.to_string(),
            })
    }

    /// Gives a user another workspace role (Owners only); refused for the last Owner. The new
    /// role applies from the user's next request.
    pub async fn update_user(
        &self,
        caller: &Caller,
        name: &str,
        role: &str,
    ) -> Result<api::UserView> {
        caller.require(Action::UpdateUsers)?;
        let role = parse_role(role)?;
        match self.store().set_user_role(name, role).await? {
            RoleChange::Changed(row) => {
                // The cached caller carries the old role.
                self.forget_user(row.id);
                tracing::info!(user = name, %role, by = %caller.name, "changed a user's workspace role");
                // Owners hold every data role: the datastores' ACLs follow.
                self.sync_datastore_acls(None).await?;
                Ok(view(row))
            }
            RoleChange::NotFound => Err(ControlError::NotFound {
                kind: "user",
                name: name.to_string(),
            }),
            RoleChange::LastOwner => Err(ControlError::Conflict {
                target: "role".into(),
                message: format!(
                    "user `{name}` is the last Owner; a server needs one\nhint: make another user an Owner first (`spool user update NAME --role Owner`)"
                ),
            }),
        }
    }
}
