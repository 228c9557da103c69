//! Role assignments and data access checks: who may read or write which datastore paths.
//!
//! Checked where paths enter: a job's inputs (read) and outputs (write) at submit, a Livy
//! batch's files (read), datastore uploads (write), and output downloads (read). The admin
//! holds every role; a user holds only what is assigned. The decision itself is
//! `access::allows`; this module reads the assignments and words the refusals.

use spool_api_types as api;
use spool_core::RoleAssignmentId;
use spool_store::{NewRoleAssignment, RoleAssignmentRow, StoreError};

use crate::access::{self, Access, Grant, Scope};
use crate::datastore::DatastoreUri;
use crate::identity::Principal;
use crate::{Action, Caller, Control, ControlError, Result, invalid};

/// What a caller may touch: everything (the admin), or what their grants cover.
pub(crate) enum DataAccess {
    Everything,
    Granted { who: String, grants: Vec<Grant> },
}

impl DataAccess {
    /// Refuses `access` to `path` in `datastore` unless a grant covers it; `field` names the
    /// request field the path came from.
    pub(crate) fn check(
        &self,
        field: &str,
        datastore: &str,
        path: &str,
        access: Access,
    ) -> Result<()> {
        match self {
            DataAccess::Everything => Ok(()),
            DataAccess::Granted { who, grants } => {
                if access::allows(grants, datastore, path, access) {
                    Ok(())
                } else {
                    Err(ControlError::Forbidden {
                        message: format!(
                            "{field}: {}",
                            access::denial(who, datastore, path, access)
                        ),
                    })
                }
            }
        }
    }

    pub(crate) fn check_uri(&self, field: &str, uri: &DatastoreUri, access: Access) -> Result<()> {
        self.check(field, &uri.datastore, &uri.path, access)
    }
}

/// Until data Owners grant at their scope: workspace Owners only.
fn only_owners_grant(caller: &Caller) -> Result<()> {
    if caller.sees_everything() {
        return Ok(());
    }
    Err(ControlError::Forbidden {
        message: format!(
            "user `{}` ({}) cannot assign or remove data roles; this needs the Owner workspace role",
            caller.name, caller.role
        ),
    })
}

fn view(row: RoleAssignmentRow) -> api::RoleAssignmentView {
    let scope = Scope {
        datastore: row.datastore,
        prefix: row.prefix,
    };
    api::RoleAssignmentView {
        id: row.id,
        assignee: row.assignee,
        assignee_type: row.assignee_kind,
        role: row.role,
        scope: scope.to_uri(),
        created_by: row.created_by,
        created_at: row.created_at,
    }
}

impl Control {
    /// The caller's data access, read once per request.
    pub(crate) async fn data_access(&self, caller: &Caller) -> Result<DataAccess> {
        if caller.sees_everything() {
            return Ok(DataAccess::Everything);
        }
        self.grants_of("user", &caller.name).await
    }

    /// Refuses a session to a user without read access to the whole default datastore: a
    /// session acts as its user (identity passthrough), and Azure asks for Storage Blob Data
    /// Reader on the storage for interactive use. Checked before anything is recorded.
    pub(crate) async fn check_session_data_access(&self, owner: &Caller) -> Result<()> {
        let datastore = crate::DEFAULT_DATASTORE;
        match self.data_access(owner).await? {
            DataAccess::Everything => Ok(()),
            DataAccess::Granted { grants, .. }
                if access::allows(&grants, datastore, "", Access::Read) =>
            {
                Ok(())
            }
            DataAccess::Granted { .. } => Err(ControlError::Forbidden {
                message: access::session_denial(&owner.name, datastore),
            }),
        }
    }

    /// What a job acting as `principal` may touch: a user's roles (everything for the admin
    /// acting as themselves), or the identity's, whoever submitted the job.
    pub(crate) async fn principal_access(
        &self,
        submitter: &Caller,
        principal: &Principal,
    ) -> Result<DataAccess> {
        match principal {
            Principal::User(_) => self.data_access(submitter).await,
            Principal::Identity(name) => self.grants_of("identity", name).await,
        }
    }

    async fn grants_of(&self, kind: &str, name: &str) -> Result<DataAccess> {
        let grants = self
            .store()
            .role_assignments(Some((kind, name)))
            .await?
            .into_iter()
            .map(|row| Grant {
                role: row.role,
                scope: Scope {
                    datastore: row.datastore,
                    prefix: row.prefix,
                },
            })
            .collect();
        Ok(DataAccess::Granted {
            who: name.to_string(),
            grants,
        })
    }

    /// Grants a data role. Workspace Owners only.
    pub async fn create_role_assignment(
        &self,
        caller: &Caller,
        request: &api::RoleAssignmentCreate,
    ) -> Result<api::RoleAssignmentView> {
        caller.require(Action::AssignRoles)?;
        only_owners_grant(caller)?;
        let role: spool_core::DataRole = request
            .role
            .parse()
            .map_err(|e: spool_core::UnknownState| invalid("role", e.to_string()))?;
        let scope = Scope::parse(&request.scope).map_err(|m| invalid("scope", m))?;
        if self.store().datastore(&scope.datastore).await?.is_none() {
            return Err(invalid(
                "scope",
                format!(
                    "scope `{}`: datastore `{}` not found\nhint: `spool datastore list` shows the datastores",
                    request.scope, scope.datastore
                ),
            ));
        }
        let assignee_kind = if self
            .store()
            .user_by_name(&request.assignee)
            .await?
            .is_some()
        {
            "user"
        } else if self
            .store()
            .identity_by_name(&request.assignee)
            .await?
            .is_some()
        {
            "identity"
        } else {
            return Err(invalid(
                "assignee",
                format!(
                    "assignee `{}`: no user or identity has that name\nhint: `spool identity list` shows the identities",
                    request.assignee
                ),
            ));
        };
        let new = NewRoleAssignment {
            assignee_kind,
            assignee: &request.assignee,
            role,
            datastore: &scope.datastore,
            prefix: &scope.prefix,
            created_by: &caller.name,
        };
        match self.store().create_role_assignment(&new).await {
            Ok(row) => {
                tracing::info!(assignee = %request.assignee, %role, scope = %scope.to_uri(), by = %caller.name, "role assigned");
                Ok(view(row))
            }
            Err(StoreError::Conflict(_)) => Err(ControlError::Conflict {
                target: "scope".into(),
                message: format!(
                    "{} already has {role} on {}",
                    request.assignee,
                    scope.to_uri()
                ),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Every assignment for an Owner; a user's own for a user.
    pub async fn role_assignments(&self, caller: &Caller) -> Result<Vec<api::RoleAssignmentView>> {
        caller.require(Action::ViewRoleAssignments)?;
        let only = (!caller.sees_everything()).then_some(("user", caller.name.as_str()));
        Ok(self
            .store()
            .role_assignments(only)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// Removes an assignment. Workspace Owners only; it applies to the next request, job or
    /// session.
    pub async fn delete_role_assignment(
        &self,
        caller: &Caller,
        id: RoleAssignmentId,
    ) -> Result<()> {
        caller.require(Action::AssignRoles)?;
        only_owners_grant(caller)?;
        if self.store().delete_role_assignment(id).await? {
            tracing::info!(%id, by = %caller.name, "role assignment removed");
            Ok(())
        } else {
            Err(ControlError::NotFound {
                kind: "role assignment",
                name: id.to_string(),
            })
        }
    }
}
