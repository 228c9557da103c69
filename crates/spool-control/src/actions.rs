//! Workspace roles: what each of Azure ML's built-in roles may do with `Control`. Pure: the
//! one table ([`allowed_roles`]) and the wording of a refusal; `Control` asks before it reads
//! or changes anything (`Caller::require`).
//!
//! The roles nest (each allows all that the one below it does), but the table says so action by
//! action rather than by rank, so a role that does not nest (Azure's Compute Operator) fits.
//! Seeing everyone's work, not just one's own, is the Owner's alone (`Caller::sees_everything`).

use spool_core::WorkspaceRole;
use spool_core::WorkspaceRole::{Contributor, DataScientist, Owner, Reader};

use crate::{Caller, ControlError};

/// Everything a caller can ask `Control` to do, reading and changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    // Reading: every role. Work (jobs, sessions, clusters, environments) is the caller's own
    // unless they are an Owner; shared assets are everyone's.
    ViewCatalog,
    ViewUsers,
    ViewDatastores,
    ViewJobs,
    ViewSessions,
    ViewClusters,
    ViewComputes,
    ViewAgents,
    ViewEnvironments,
    ViewIdentities,
    ViewRoleAssignments,
    /// Registered components: workspace-wide, everyone's.
    ViewComponents,
    /// The workspace's settings (its managed network).
    ViewWorkspace,
    /// The audit log: every entry for Owners, a user's own calls for the others.
    ViewAudit,
    /// The server's Prometheus metrics: counts and durations over everyone's work, with no
    /// names, ids or paths in them.
    ViewMetrics,
    /// A user's own token: replacing a leaked credential changes nothing in the workspace, so
    /// Readers may too.
    RotateOwnToken,
    // Own work.
    UploadSnapshots,
    UploadToDatastores,
    /// Jobs and Livy batches.
    SubmitJobs,
    /// Registering, archiving and restoring components (workspace-wide, so any component).
    RegisterComponents,
    /// Cancelling a job, deleting a Livy batch.
    CancelJobs,
    CreateSessions,
    DeleteSessions,
    /// Statements and code completion: both run in the session's driver.
    RunStatements,
    CancelStatements,
    /// Granting and removing data roles: Owners anywhere, others only inside a scope where they
    /// hold Storage Blob Data Owner (checked by `access::may_grant`).
    AssignRoles,
    // Computes.
    AttachComputes,
    DetachComputes,
    // The workspace itself.
    ViewEvents,
    CreateUsers,
    UpdateUsers,
    DeleteUsers,
    RotateOthersTokens,
    CreateDatastores,
    RegisterAgents,
    ManageIdentities,
    PruneEnvironments,
    /// Replacing the workspace's managed network settings.
    UpdateWorkspace,
}

impl Action {
    /// Every action, in the order of the role table.
    pub const ALL: &'static [Action] = &[
        Action::ViewCatalog,
        Action::ViewUsers,
        Action::ViewDatastores,
        Action::ViewJobs,
        Action::ViewSessions,
        Action::ViewClusters,
        Action::ViewComputes,
        Action::ViewAgents,
        Action::ViewEnvironments,
        Action::ViewIdentities,
        Action::ViewRoleAssignments,
        Action::ViewComponents,
        Action::ViewWorkspace,
        Action::ViewAudit,
        Action::ViewMetrics,
        Action::RotateOwnToken,
        Action::UploadSnapshots,
        Action::UploadToDatastores,
        Action::SubmitJobs,
        Action::RegisterComponents,
        Action::CancelJobs,
        Action::CreateSessions,
        Action::DeleteSessions,
        Action::RunStatements,
        Action::CancelStatements,
        Action::AssignRoles,
        Action::AttachComputes,
        Action::DetachComputes,
        Action::ViewEvents,
        Action::CreateUsers,
        Action::UpdateUsers,
        Action::DeleteUsers,
        Action::RotateOthersTokens,
        Action::CreateDatastores,
        Action::RegisterAgents,
        Action::ManageIdentities,
        Action::PruneEnvironments,
        Action::UpdateWorkspace,
    ];

    /// What the action does, as it reads after "cannot".
    pub fn describe(self) -> &'static str {
        match self {
            Action::ViewCatalog => "view the catalog",
            Action::ViewUsers => "list users",
            Action::ViewDatastores => "list datastores",
            Action::ViewJobs => "view jobs",
            Action::ViewSessions => "view sessions",
            Action::ViewClusters => "list clusters",
            Action::ViewComputes => "view computes",
            Action::ViewAgents => "list agents",
            Action::ViewEnvironments => "view environments",
            Action::ViewIdentities => "view identities",
            Action::ViewRoleAssignments => "list role assignments",
            Action::ViewComponents => "view components",
            Action::ViewWorkspace => "view the workspace's settings",
            Action::ViewAudit => "read the audit log",
            Action::ViewMetrics => "read the server's metrics",
            Action::RotateOwnToken => "rotate their own token",
            Action::UploadSnapshots => "upload code snapshots",
            Action::UploadToDatastores => "upload to datastores",
            Action::SubmitJobs => "submit jobs",
            Action::RegisterComponents => "register, archive or restore components",
            Action::CancelJobs => "cancel jobs",
            Action::CreateSessions => "create sessions",
            Action::DeleteSessions => "delete sessions",
            Action::RunStatements => "run statements",
            Action::CancelStatements => "cancel statements",
            Action::AssignRoles => "assign or remove data roles",
            Action::AttachComputes => "attach computes",
            Action::DetachComputes => "detach computes",
            Action::ViewEvents => "read server events",
            Action::CreateUsers => "create users",
            Action::UpdateUsers => "change users' roles",
            Action::DeleteUsers => "delete users",
            Action::RotateOthersTokens => "rotate another user's token",
            Action::CreateDatastores => "create datastores",
            Action::RegisterAgents => "register agents",
            Action::ManageIdentities => "create, delete or attach identities",
            Action::PruneEnvironments => "prune environments",
            Action::UpdateWorkspace => "change the workspace's network settings",
        }
    }
}

/// The roles that may do `action`, most powerful first: the one table of the workspace roles.
pub fn allowed_roles(action: Action) -> &'static [WorkspaceRole] {
    const EVERYONE: &[WorkspaceRole] = &[Owner, Contributor, DataScientist, Reader];
    const OWN_WORK: &[WorkspaceRole] = &[Owner, Contributor, DataScientist];
    const COMPUTES: &[WorkspaceRole] = &[Owner, Contributor];
    const OWNER: &[WorkspaceRole] = &[Owner];
    match action {
        Action::ViewCatalog
        | Action::ViewUsers
        | Action::ViewDatastores
        | Action::ViewJobs
        | Action::ViewSessions
        | Action::ViewClusters
        | Action::ViewComputes
        | Action::ViewAgents
        | Action::ViewEnvironments
        | Action::ViewIdentities
        | Action::ViewRoleAssignments
        | Action::ViewComponents
        | Action::ViewWorkspace
        | Action::ViewAudit
        | Action::ViewMetrics
        | Action::RotateOwnToken => EVERYONE,
        Action::UploadSnapshots
        | Action::UploadToDatastores
        | Action::SubmitJobs
        | Action::RegisterComponents
        | Action::CancelJobs
        | Action::CreateSessions
        | Action::DeleteSessions
        | Action::RunStatements
        | Action::CancelStatements
        | Action::AssignRoles => OWN_WORK,
        Action::AttachComputes | Action::DetachComputes => COMPUTES,
        // Server events span every user's work; agents and datastores with a `--path` reach
        // into the server's hosts; identities attached to the workspace let anyone act as them;
        // the managed network governs what everyone's clusters may reach.
        Action::ViewEvents
        | Action::CreateUsers
        | Action::UpdateUsers
        | Action::DeleteUsers
        | Action::RotateOthersTokens
        | Action::CreateDatastores
        | Action::RegisterAgents
        | Action::ManageIdentities
        | Action::PruneEnvironments
        | Action::UpdateWorkspace => OWNER,
    }
}

/// Whether a holder of `role` may do `action`.
pub fn allows(role: WorkspaceRole, action: Action) -> bool {
    allowed_roles(action).contains(&role)
}

/// Why `user` (holding `role`) may not do `action`: the roles that may, and the command that
/// gives the least of them.
pub fn denial(user: &str, role: WorkspaceRole, action: Action) -> String {
    let allowed = allowed_roles(action);
    let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
    let roles = match names.as_slice() {
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        [] => String::new(),
    };
    let least = allowed.last().copied().unwrap_or(Owner);
    let quoted = if least.as_str().contains(' ') {
        format!("\"{least}\"")
    } else {
        least.to_string()
    };
    let ask = if least == Owner {
        "ask an Owner to do it, or to run"
    } else {
        "ask an Owner to run"
    };
    format!(
        "user `{user}` ({role}) cannot {what}; this needs the {roles} workspace role\nhint: {ask} `spool user update {user} --role {quoted}` (`spool user list` shows the Owners)",
        what = action.describe(),
    )
}

impl Caller {
    /// Refuses `action` unless the caller's workspace role allows it: always a `Forbidden`
    /// naming the caller, the action and the roles that may, so every API answers 403 alike.
    /// `Control` asks this first, before it looks anything up, so a refusal says nothing of
    /// whether the thing exists.
    pub fn require(&self, action: Action) -> crate::Result<()> {
        if allows(self.role, action) {
            Ok(())
        } else {
            Err(ControlError::Forbidden {
                message: denial(&self.name, self.role, action),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, one action per line: `x` where the role may.
    fn table() -> String {
        let mut out = String::from("action                    Own Con DS  Rea\n");
        for action in Action::ALL {
            let cells: Vec<&str> = WorkspaceRole::ALL
                .iter()
                .map(|role| {
                    if allows(*role, *action) {
                        " x  "
                    } else {
                        " .  "
                    }
                })
                .collect();
            out.push_str(&format!(
                "{:<25}{}\n",
                format!("{action:?}"),
                cells.concat()
            ));
        }
        out.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn what_each_workspace_role_may_do() {
        expect_test::expect![[r#"
            action                    Own Con DS  Rea
            ViewCatalog               x   x   x   x
            ViewUsers                 x   x   x   x
            ViewDatastores            x   x   x   x
            ViewJobs                  x   x   x   x
            ViewSessions              x   x   x   x
            ViewClusters              x   x   x   x
            ViewComputes              x   x   x   x
            ViewAgents                x   x   x   x
            ViewEnvironments          x   x   x   x
            ViewIdentities            x   x   x   x
            ViewRoleAssignments       x   x   x   x
            ViewComponents            x   x   x   x
            ViewWorkspace             x   x   x   x
            ViewAudit                 x   x   x   x
            ViewMetrics               x   x   x   x
            RotateOwnToken            x   x   x   x
            UploadSnapshots           x   x   x   .
            UploadToDatastores        x   x   x   .
            SubmitJobs                x   x   x   .
            RegisterComponents        x   x   x   .
            CancelJobs                x   x   x   .
            CreateSessions            x   x   x   .
            DeleteSessions            x   x   x   .
            RunStatements             x   x   x   .
            CancelStatements          x   x   x   .
            AssignRoles               x   x   x   .
            AttachComputes            x   x   .   .
            DetachComputes            x   x   .   .
            ViewEvents                x   .   .   .
            CreateUsers               x   .   .   .
            UpdateUsers               x   .   .   .
            DeleteUsers               x   .   .   .
            RotateOthersTokens        x   .   .   .
            CreateDatastores          x   .   .   .
            RegisterAgents            x   .   .   .
            ManageIdentities          x   .   .   .
            PruneEnvironments         x   .   .   .
            UpdateWorkspace           x   .   .   ."#]]
        .assert_eq(&table());
    }

    #[test]
    fn the_owner_may_do_everything_and_roles_nest() {
        for action in Action::ALL {
            assert!(allows(Owner, *action), "{action:?}");
            // Each role may do all that the one below it may.
            for pair in WorkspaceRole::ALL.windows(2) {
                assert!(
                    !allows(pair[1], *action) || allows(pair[0], *action),
                    "{action:?}: {} may, {} may not",
                    pair[1],
                    pair[0]
                );
            }
        }
    }

    #[test]
    fn a_denial_names_the_user_the_action_and_the_roles_that_may() {
        expect_test::expect![[r#"
            user `bob` (Reader) cannot submit jobs; this needs the Owner, Contributor or AzureML Data Scientist workspace role
            hint: ask an Owner to run `spool user update bob --role "AzureML Data Scientist"` (`spool user list` shows the Owners)"#]]
        .assert_eq(&denial("bob", Reader, Action::SubmitJobs));
        expect_test::expect![[r#"
            user `alice` (AzureML Data Scientist) cannot attach computes; this needs the Owner or Contributor workspace role
            hint: ask an Owner to run `spool user update alice --role Contributor` (`spool user list` shows the Owners)"#]]
        .assert_eq(&denial("alice", DataScientist, Action::AttachComputes));
        expect_test::expect![[r#"
            user `carol` (Contributor) cannot create users; this needs the Owner workspace role
            hint: ask an Owner to do it, or to run `spool user update carol --role Owner` (`spool user list` shows the Owners)"#]]
        .assert_eq(&denial("carol", Contributor, Action::CreateUsers));
    }
}
