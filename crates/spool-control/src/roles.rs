//! Role assignments and data access checks: who may read or write which datastore paths.
//!
//! Checked where paths enter: a job's inputs (read) and outputs (write) at submit, a Livy
//! batch's files (read), datastore uploads (write), output downloads (read), and a session's
//! creation (read on the default datastore). Workspace Owners hold every role; a user holds only
//! what is assigned. Roles are granted and removed by workspace Owners anywhere, and by holders
//! of Storage Blob Data Owner at their scope and inside it. The decisions themselves are
//! `access::allows` and `access::may_grant`; this module reads the assignments and words the
//! refusals.

use spool_api_types as api;
use spool_core::RoleAssignmentId;
use spool_store::{NewRoleAssignment, RoleAssignmentRow, StoreError};

use crate::access::{self, Access, Grant, Scope};
use crate::datastore::DatastoreUri;
use crate::identity::Principal;
use crate::{Action, Caller, Control, ControlError, Result, invalid};

/// What a caller may touch: everything (a workspace Owner), or what their grants cover.
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

fn scope_of(row: &RoleAssignmentRow) -> Scope {
    Scope {
        datastore: row.datastore.clone(),
        prefix: row.prefix.clone(),
    }
}

/// Whether an assignment is the caller's own.
fn is_own(caller: &Caller, row: &RoleAssignmentRow) -> bool {
    row.assignee_kind == "user" && row.assignee == caller.name
}

fn view(row: RoleAssignmentRow) -> api::RoleAssignmentView {
    let scope = scope_of(&row);
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

    /// What a job acting as `principal` may touch: a user's roles (everything for an Owner
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

    /// Refuses granting or removing roles at `scope` unless the caller is a workspace Owner or
    /// holds Storage Blob Data Owner there or above.
    async fn check_may_grant(&self, caller: &Caller, scope: &Scope) -> Result<()> {
        match self.data_access(caller).await? {
            DataAccess::Everything => Ok(()),
            DataAccess::Granted { grants, .. } if access::may_grant(&grants, scope) => Ok(()),
            DataAccess::Granted { grants, .. } => Err(ControlError::Forbidden {
                message: access::grant_denial(&caller.name, &grants, scope),
            }),
        }
    }

    /// Grants a data role: workspace Owners at any scope, Storage Blob Data Owners at their
    /// scope or inside it.
    pub async fn create_role_assignment(
        &self,
        caller: &Caller,
        request: &api::RoleAssignmentCreate,
    ) -> Result<api::RoleAssignmentView> {
        caller.require(Action::AssignRoles)?;
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
        self.check_may_grant(caller, &scope).await?;
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
                self.sync_datastore_acls(None).await?;
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

    /// Every assignment for an Owner; for a user, their own and those at the scopes where
    /// they may grant.
    pub async fn role_assignments(&self, caller: &Caller) -> Result<Vec<api::RoleAssignmentView>> {
        caller.require(Action::ViewRoleAssignments)?;
        let rows = self.store().role_assignments(None).await?;
        let rows: Vec<RoleAssignmentRow> = match self.data_access(caller).await? {
            DataAccess::Everything => rows,
            DataAccess::Granted { grants, .. } => rows
                .into_iter()
                .filter(|row| is_own(caller, row) || access::may_grant(&grants, &scope_of(row)))
                .collect(),
        };
        Ok(rows.into_iter().map(view).collect())
    }

    /// Removes an assignment: workspace Owners any, Storage Blob Data Owners those at their
    /// scope or inside it. It applies to the next request, job or session. An assignment the
    /// caller may not see (neither theirs nor at their scope) is "not found".
    pub async fn delete_role_assignment(
        &self,
        caller: &Caller,
        id: RoleAssignmentId,
    ) -> Result<()> {
        caller.require(Action::AssignRoles)?;
        let not_found = || ControlError::NotFound {
            kind: "role assignment",
            name: id.to_string(),
        };
        let row = self
            .store()
            .role_assignment(id)
            .await?
            .ok_or_else(not_found)?;
        if let DataAccess::Granted { grants, .. } = self.data_access(caller).await? {
            let scope = scope_of(&row);
            if !access::may_grant(&grants, &scope) {
                return Err(if is_own(caller, &row) {
                    ControlError::Forbidden {
                        message: access::grant_denial(&caller.name, &grants, &scope),
                    }
                } else {
                    not_found()
                });
            }
        }
        if self.store().delete_role_assignment(id).await? {
            tracing::info!(%id, by = %caller.name, "role assignment removed");
            self.sync_datastore_acls(None).await?;
            Ok(())
        } else {
            Err(not_found())
        }
    }
}

impl Control {
    /// Makes the datastore trees' ACLs match the role assignments (and the Owners'), when the
    /// OS enforces access: each assignee's account gets exactly its roles' access, nobody else
    /// any. All datastores at start and after every change of an assignment, a datastore or a
    /// role; after a job (`written_by` its principal), only those its account could write to,
    /// as nothing else can have new entries from it.
    pub(crate) async fn sync_datastore_acls(&self, written_by: Option<&str>) -> Result<()> {
        let accounts = &self.inner().accounts;
        if !accounts.enforced() {
            return Ok(());
        }
        let store = self.store();
        let mut by_datastore: std::collections::BTreeMap<String, Vec<crate::acl::AccountGrant>> =
            std::collections::BTreeMap::new();
        let datastores = store.list_datastores().await?;
        // Workspace Owners hold every data role.
        for admin in store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.role == spool_core::WorkspaceRole::Owner)
        {
            if let Some(account) = accounts.ensure(&Principal::User(admin.name).key()).await? {
                for datastore in &datastores {
                    by_datastore
                        .entry(datastore.name.clone())
                        .or_default()
                        .push(crate::acl::AccountGrant {
                            uid: account.uid,
                            prefix: String::new(),
                            write: true,
                        });
                }
            }
        }
        for row in store.role_assignments(None).await? {
            let principal = if row.assignee_kind == "identity" {
                Principal::Identity(row.assignee.clone())
            } else {
                Principal::User(row.assignee.clone())
            };
            let Some(account) = accounts.ensure(&principal.key()).await? else {
                continue;
            };
            let write = row.role.writes();
            by_datastore
                .entry(row.datastore.clone())
                .or_default()
                .push(crate::acl::AccountGrant {
                    uid: account.uid,
                    prefix: row.prefix.clone(),
                    write,
                });
        }
        let writer = match written_by {
            Some(principal) => match accounts.ensure(principal).await? {
                Some(account) => Some(account.uid),
                None => return Ok(()),
            },
            None => None,
        };
        let group = accounts.group_gid();
        let work: Vec<(std::path::PathBuf, Vec<crate::acl::AccountGrant>)> = datastores
            .into_iter()
            .map(|d| {
                let grants = by_datastore.remove(&d.name).unwrap_or_default();
                (std::path::PathBuf::from(d.root), grants)
            })
            .filter(|(_, grants)| {
                writer.is_none_or(|uid| grants.iter().any(|g| g.uid == uid && g.write))
            })
            .collect();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for (root, grants) in work {
                if !root.is_dir() {
                    continue;
                }
                if let Some(parent) = root.parent() {
                    crate::accounts::make_traversable(parent, group)?;
                }
                crate::accounts::apply_datastore_acls(&root, &grants).map_err(|e| {
                    e.context(format!("set the ACLs of datastore `{}`", root.display()))
                })?;
            }
            Ok(())
        })
        .await
        .map_err(anyhow::Error::from)??;
        Ok(())
    }
}
