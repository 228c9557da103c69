//! Managed identities: user-assigned ones Owners create and attach to the workspace, and
//! the system-assigned identity of each attached pool (`pool/<name>`). Jobs act as them by the
//! rules of `identity.rs`; they hold data roles like users.

use rand::RngCore;
use spool_api_types as api;
use spool_store::{IdentityRow, NewIdentity, StoreError};

use spool_spec::compute::AttachSpec;

use crate::identity::{Compute, Known};
use crate::{Action, Caller, Control, ControlError, Result, invalid};

/// The name of an attached pool's system-assigned identity.
pub(crate) fn system_identity_name(pool: &str) -> String {
    format!("pool/{pool}")
}

/// A random id in the shape Azure gives client and object ids (a UUID's text).
fn random_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::datastore::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn view(row: IdentityRow) -> api::IdentityView {
    api::IdentityView {
        name: row.name,
        kind: row.kind,
        client_id: row.client_id,
        principal_id: row.principal_id,
        pool: row.pool,
        in_workspace: row.in_workspace,
        created_by: row.created_by,
        created_at: row.created_at,
    }
}

pub(crate) fn known(row: &IdentityRow) -> Known {
    Known {
        name: row.name.clone(),
        client_id: row.client_id.clone(),
        principal_id: row.principal_id.clone(),
    }
}

impl Control {
    /// The user-assigned identities attached to the workspace.
    pub(crate) async fn workspace_identities(&self) -> Result<Vec<Known>> {
        Ok(self
            .store()
            .identities()
            .await?
            .iter()
            .filter(|row| row.in_workspace && row.kind == "user_assigned")
            .map(known)
            .collect())
    }

    /// An attached pool's system-assigned identity, made if it has none: on attach, and at
    /// start for pools a server before identities attached.
    pub(crate) async fn ensure_pool_identity(&self, pool: &str, created_by: &str) -> Result<()> {
        let name = system_identity_name(pool);
        if self.store().identity_by_name(&name).await?.is_none() {
            self.insert_identity(created_by, &name, "system_assigned", Some(pool))
                .await?;
        }
        Ok(())
    }

    /// The identities an attached pool may act as: its system-assigned one and the
    /// user-assigned ones its attach file names.
    pub(crate) async fn pool_identities(&self, pool: &spool_store::ComputeRow) -> Result<Compute> {
        let spec: AttachSpec =
            serde_json::from_str(&pool.spec_json).map_err(anyhow::Error::from)?;
        let system = self.identity_row(&system_identity_name(&pool.name)).await?;
        let mut user_assigned = Vec::new();
        for name in &spec.identity.user_assigned_identities {
            match self.store().identity_by_name(name).await? {
                Some(row) => user_assigned.push(known(&row)),
                None => {
                    return Err(invalid(
                        "identity",
                        format!(
                            "pool `{}` names identity `{name}`, which does not exist\nhint: create it with `spool identity create --name {name}`",
                            pool.name
                        ),
                    ));
                }
            }
        }
        Ok(Compute::Pool {
            name: pool.name.clone(),
            system: known(&system),
            user_assigned,
            default_system: spec.identity.kind != "user_assigned",
        })
    }

    /// Creates a user-assigned managed identity (Owners only).
    pub async fn create_identity(&self, caller: &Caller, name: &str) -> Result<api::IdentityView> {
        caller.require(Action::ManageIdentities)?;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return Err(invalid(
                "name",
                format!(
                    "identity name `{name}` may contain only letters, digits, `_`, `-` and `.`, starting with a letter or digit (1 to 64)"
                ),
            ));
        }
        // Users and identities share one namespace: a role assignment names either.
        if self.store().user_by_name(name).await?.is_some() {
            return Err(invalid(
                "name",
                format!("`{name}` is a user's name; identities and users need different names"),
            ));
        }
        self.insert_identity(&caller.name, name, "user_assigned", None)
            .await
    }

    pub(crate) async fn insert_identity(
        &self,
        created_by: &str,
        name: &str,
        kind: &str,
        pool: Option<&str>,
    ) -> Result<api::IdentityView> {
        let (client_id, principal_id) = (random_id(), random_id());
        let new = NewIdentity {
            name,
            kind,
            client_id: &client_id,
            principal_id: &principal_id,
            pool,
            created_by,
        };
        match self.store().create_identity(&new).await {
            Ok(row) => Ok(view(row)),
            Err(StoreError::Conflict(_)) => Err(ControlError::Conflict {
                target: "name".into(),
                message: format!("identity `{name}` already exists"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn identities(&self, caller: &Caller) -> Result<Vec<api::IdentityView>> {
        caller.require(Action::ViewIdentities)?;
        Ok(self
            .store()
            .identities()
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    pub async fn identity(&self, caller: &Caller, name: &str) -> Result<api::IdentityView> {
        caller.require(Action::ViewIdentities)?;
        self.identity_row(name).await.map(view)
    }

    pub(crate) async fn identity_row(&self, name: &str) -> Result<IdentityRow> {
        self.store()
            .identity_by_name(name)
            .await?
            .ok_or_else(|| ControlError::NotFound {
                kind: "identity",
                name: name.to_string(),
            })
    }

    /// Deletes a user-assigned identity and its role assignments (Owners only). A pool's
    /// system-assigned identity goes with the pool; one an attached pool names stays.
    pub async fn delete_identity(&self, caller: &Caller, name: &str) -> Result<()> {
        caller.require(Action::ManageIdentities)?;
        let row = self.identity_row(name).await?;
        if let Some(pool) = &row.pool {
            return Err(ControlError::Conflict {
                target: "name".into(),
                message: format!(
                    "`{name}` is the system-assigned identity of pool `{pool}`; it is deleted when the pool is detached"
                ),
            });
        }
        for compute in self.store().computes().await? {
            let spec: AttachSpec =
                serde_json::from_str(&compute.spec_json).map_err(anyhow::Error::from)?;
            if spec
                .identity
                .user_assigned_identities
                .iter()
                .any(|n| n == name)
            {
                return Err(ControlError::Conflict {
                    target: "name".into(),
                    message: format!(
                        "pool `{}` names identity `{name}`; detach the pool first",
                        compute.name
                    ),
                });
            }
        }
        self.store().delete_identity(name).await?;
        tracing::info!(identity = name, by = %caller.name, "identity deleted");
        self.inner()
            .accounts
            .remove(&crate::identity::Principal::Identity(name.to_string()).key())
            .await;
        Ok(())
    }

    /// Attaches a user-assigned identity to the workspace, or detaches it (Owners only).
    pub async fn set_workspace_identity(
        &self,
        caller: &Caller,
        name: &str,
        attached: bool,
    ) -> Result<api::IdentityView> {
        caller.require(Action::ManageIdentities)?;
        let row = self.identity_row(name).await?;
        if row.kind != "user_assigned" {
            return Err(invalid(
                "name",
                format!(
                    "`{name}` is a pool's system-assigned identity; only user-assigned identities attach to the workspace"
                ),
            ));
        }
        self.store()
            .set_identity_in_workspace(name, attached)
            .await?;
        self.identity_row(name).await.map(view)
    }
}
