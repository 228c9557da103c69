//! Data access: what data roles allow on which datastore paths. Pure: no store, no IO, no
//! clock; `Control` reads the caller's assignments and asks here.
//!
//! A role at a datastore covers the whole datastore; at a path prefix it covers that path and
//! everything under it, component by component (`data` covers `data/x.csv`, not `database`).

use spool_core::DataRole;

/// What a request does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    /// The least role that allows it.
    pub fn role_needed(self) -> DataRole {
        match self {
            Access::Read => DataRole::Reader,
            Access::Write => DataRole::Contributor,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One data role held at a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: DataRole,
    pub scope: Scope,
}

/// Where a role applies: a datastore, or a path prefix in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub datastore: String,
    /// Normalized: no leading or trailing `/`, no `.` or `..`; empty for the whole datastore.
    pub prefix: String,
}

impl Scope {
    /// Parses `azureml://datastores/<name>[/paths/<prefix>]`.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let expected = "expected `azureml://datastores/<name>` or `azureml://datastores/<name>/paths/<prefix>`";
        let rest = text
            .strip_prefix("azureml://datastores/")
            .ok_or_else(|| format!("scope `{text}`: {expected}"))?;
        let (datastore, prefix) = match rest.split_once('/') {
            None => (rest, ""),
            Some((datastore, tail)) => {
                let prefix = tail
                    .strip_prefix("paths")
                    .filter(|p| p.is_empty() || p.starts_with('/'))
                    .ok_or_else(|| format!("scope `{text}`: {expected}"))?;
                (datastore, prefix)
            }
        };
        if datastore.is_empty() {
            return Err(format!(
                "scope `{text}`: the datastore name is empty; {expected}"
            ));
        }
        let prefix = normalize(prefix).map_err(|e| format!("scope `{text}`: {e}"))?;
        Ok(Scope {
            datastore: datastore.to_string(),
            prefix,
        })
    }

    pub fn to_uri(&self) -> String {
        if self.prefix.is_empty() {
            format!("azureml://datastores/{}", self.datastore)
        } else {
            format!(
                "azureml://datastores/{}/paths/{}",
                self.datastore, self.prefix
            )
        }
    }

    /// Whether the scope covers `path` in `datastore`.
    fn covers(&self, datastore: &str, path: &str) -> bool {
        if self.datastore != datastore {
            return false;
        }
        if self.prefix.is_empty() {
            return true;
        }
        let mut path = path.split('/').filter(|c| !c.is_empty() && *c != ".");
        self.prefix.split('/').all(|want| path.next() == Some(want))
    }
}

/// Normalizes a path inside a datastore: components without `.`, refusing `..`.
pub fn normalize(path: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("`{path}` may not contain `..`")),
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// Whether any of `grants` allows `access` to `path` in `datastore`.
pub fn allows(grants: &[Grant], datastore: &str, path: &str, access: Access) -> bool {
    grants.iter().any(|grant| {
        (access == Access::Read || grant.role.writes()) && grant.scope.covers(datastore, path)
    })
}

/// Whether `grants` let their holder grant and remove roles at `scope`: Storage Blob Data Owner
/// at that scope or above it (a prefix of it, component by component), never wider. Workspace
/// Owners need no grant (`roles.rs`).
pub fn may_grant(grants: &[Grant], scope: &Scope) -> bool {
    grants.iter().any(|grant| {
        grant.role == DataRole::Owner && grant.scope.covers(&scope.datastore, &scope.prefix)
    })
}

/// Why `who` may not grant or remove roles at `scope`, with the scopes where they may.
pub fn grant_denial(who: &str, grants: &[Grant], scope: &Scope) -> String {
    let owned: Vec<String> = grants
        .iter()
        .filter(|g| g.role == DataRole::Owner)
        .map(|g| format!("`{}`", g.scope.to_uri()))
        .collect();
    let hint = if owned.is_empty() {
        "hint: ask a workspace Owner to grant it, or to give you Storage Blob Data Owner on that scope".to_string()
    } else {
        let them = if owned.len() == 1 { "it" } else { "them" };
        format!(
            "hint: you may grant at {} and inside {them}",
            owned.join(", ")
        )
    };
    format!(
        "user `{who}` cannot assign or remove data roles at `{uri}`: that needs the Owner workspace role, or {owner} on `{uri}` or a scope above it\n{hint}",
        uri = scope.to_uri(),
        owner = DataRole::Owner,
    )
}

/// Why `who` may not: the role needed, and the command that grants it at exactly that path.
pub fn denial(who: &str, datastore: &str, path: &str, access: Access) -> String {
    let scope = Scope {
        datastore: datastore.to_string(),
        prefix: normalize(path).unwrap_or_default(),
    };
    let role = access.role_needed();
    format!(
        "{who} has no data role that allows {verb} access to `{uri}`: it needs {role} (or a role above it) on that path or above it\nhint: a workspace Owner, or a Storage Blob Data Owner of that path, grants it with: spool role assignment create --assignee {who} --role \"{role}\" --scope {uri}",
        verb = access.verb(),
        uri = scope.to_uri(),
    )
}

/// Why `user` may not create a session: it needs read access to the whole default datastore.
pub fn session_denial(user: &str, datastore: &str) -> String {
    let scope = Scope {
        datastore: datastore.to_string(),
        prefix: String::new(),
    };
    let role = Access::Read.role_needed();
    format!(
        "user `{user}` cannot create sessions: a session runs as its user and reads the default datastore `{datastore}`, which needs {role} (or a role above it) on the whole datastore\nhint: a workspace Owner grants it with: spool role assignment create --assignee {user} --role \"{role}\" --scope {uri}",
        uri = scope.to_uri(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: DataRole, scope: &str) -> Grant {
        Grant {
            role,
            scope: Scope::parse(scope).unwrap(),
        }
    }

    #[test]
    fn roles_allow_by_scope_and_verb() {
        let grants = [
            grant(DataRole::Reader, "azureml://datastores/ws/paths/shared"),
            grant(
                DataRole::Contributor,
                "azureml://datastores/ws/paths/users/alice/",
            ),
            grant(DataRole::Owner, "azureml://datastores/team"),
        ];
        // (datastore, path, access, allowed)
        let cases = [
            ("ws", "shared/iris.csv", Access::Read, true),
            ("ws", "shared", Access::Read, true),
            ("ws", "./shared//iris.csv", Access::Read, true),
            ("ws", "shared/iris.csv", Access::Write, false),
            ("ws", "sharedx/iris.csv", Access::Read, false),
            ("ws", "users/alice/out/", Access::Write, true),
            ("ws", "users/alice", Access::Read, true),
            ("ws", "users/alicex/out", Access::Write, false),
            ("ws", "users/bob/out", Access::Read, false),
            ("ws", "", Access::Read, false),
            ("team", "anything/at/all", Access::Write, true),
            ("other", "shared/iris.csv", Access::Read, false),
        ];
        for (datastore, path, access, allowed) in cases {
            assert_eq!(
                allows(&grants, datastore, path, access),
                allowed,
                "{access:?} {datastore}:{path}"
            );
        }
        assert!(!allows(&[], "ws", "x", Access::Read));
    }

    #[test]
    fn data_owners_grant_at_their_scope_and_inside_it_only() {
        let grants = [
            grant(DataRole::Owner, "azureml://datastores/ws/paths/teams/a"),
            grant(DataRole::Contributor, "azureml://datastores/ws"),
            grant(DataRole::Owner, "azureml://datastores/team"),
        ];
        // (scope asked for, allowed)
        let cases = [
            ("azureml://datastores/ws/paths/teams/a", true),
            ("azureml://datastores/ws/paths/teams/a/", true),
            ("azureml://datastores/ws/paths/teams/a/alice", true),
            ("azureml://datastores/ws/paths/teams/a/alice/out", true),
            // Wider, beside, or only a name that starts the same.
            ("azureml://datastores/ws/paths/teams", false),
            ("azureml://datastores/ws", false),
            ("azureml://datastores/ws/paths/teams/ab", false),
            ("azureml://datastores/ws/paths/teams/b", false),
            // Contributor grants nothing, even on the whole datastore.
            ("azureml://datastores/ws/paths/other", false),
            ("azureml://datastores/team", true),
            ("azureml://datastores/team/paths/x", true),
            ("azureml://datastores/elsewhere", false),
        ];
        for (scope, allowed) in cases {
            assert_eq!(
                may_grant(&grants, &Scope::parse(scope).unwrap()),
                allowed,
                "{scope}"
            );
        }
        assert!(!may_grant(
            &[],
            &Scope::parse("azureml://datastores/ws").unwrap()
        ));
        expect_test::expect![[r#"
            user `alice` cannot assign or remove data roles at `azureml://datastores/ws/paths/teams`: that needs the Owner workspace role, or Storage Blob Data Owner on `azureml://datastores/ws/paths/teams` or a scope above it
            hint: you may grant at `azureml://datastores/ws/paths/teams/a`, `azureml://datastores/team` and inside them"#]]
        .assert_eq(&grant_denial(
            "alice",
            &grants,
            &Scope::parse("azureml://datastores/ws/paths/teams").unwrap(),
        ));
        expect_test::expect![[r#"
            user `bob` cannot assign or remove data roles at `azureml://datastores/ws`: that needs the Owner workspace role, or Storage Blob Data Owner on `azureml://datastores/ws` or a scope above it
            hint: ask a workspace Owner to grant it, or to give you Storage Blob Data Owner on that scope"#]]
        .assert_eq(&grant_denial("bob", &[], &Scope::parse("azureml://datastores/ws").unwrap()));
    }

    #[test]
    fn scopes_parse_and_print() {
        for (text, printed) in [
            ("azureml://datastores/ws", "azureml://datastores/ws"),
            ("azureml://datastores/ws/paths/", "azureml://datastores/ws"),
            (
                "azureml://datastores/ws/paths/a/./b/",
                "azureml://datastores/ws/paths/a/b",
            ),
        ] {
            assert_eq!(Scope::parse(text).unwrap().to_uri(), printed, "{text}");
        }
        for bad in [
            "ws",
            "azureml://datastores/",
            "azureml://datastores/ws/data",
            "azureml://datastores/ws/pathsx",
            "azureml://datastores/ws/paths/../x",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_session_needs_read_on_the_whole_default_datastore() {
        // (grants, allowed)
        let cases: &[(&[(DataRole, &str)], bool)] = &[
            (&[], false),
            (&[(DataRole::Reader, "azureml://datastores/ws")], true),
            (
                &[(DataRole::Contributor, "azureml://datastores/ws/paths/")],
                true,
            ),
            (&[(DataRole::Owner, "azureml://datastores/ws")], true),
            // A prefix is not the datastore; another datastore is not this one.
            (
                &[(DataRole::Owner, "azureml://datastores/ws/paths/users/alice")],
                false,
            ),
            (&[(DataRole::Owner, "azureml://datastores/other")], false),
        ];
        for (held, allowed) in cases {
            let grants: Vec<Grant> = held
                .iter()
                .map(|(role, scope)| grant(*role, scope))
                .collect();
            assert_eq!(
                allows(&grants, "ws", "", Access::Read),
                *allowed,
                "{held:?}"
            );
        }
        expect_test::expect![[r#"
            user `bob` cannot create sessions: a session runs as its user and reads the default datastore `workspaceblobstore`, which needs Storage Blob Data Reader (or a role above it) on the whole datastore
            hint: a workspace Owner grants it with: spool role assignment create --assignee bob --role "Storage Blob Data Reader" --scope azureml://datastores/workspaceblobstore"#]]
        .assert_eq(&session_denial("bob", "workspaceblobstore"));
    }

    #[test]
    fn a_denial_names_the_role_and_the_command() {
        expect_test::expect![[r#"
            alice has no data role that allows write access to `azureml://datastores/ws/paths/azureml/j/out`: it needs Storage Blob Data Contributor (or a role above it) on that path or above it
            hint: a workspace Owner, or a Storage Blob Data Owner of that path, grants it with: spool role assignment create --assignee alice --role "Storage Blob Data Contributor" --scope azureml://datastores/ws/paths/azureml/j/out"#]]
        .assert_eq(&denial("alice", "ws", "azureml/j/out/", Access::Write));
    }
}
