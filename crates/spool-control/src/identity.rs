//! Which principal a job acts as, by Azure ML's rules: pure, no store, no IO.
//!
//! | compute | `identity` omitted | `user_identity` | `managed` |
//! |---|---|---|---|
//! | serverless | the submitting user | the user | a user-assigned identity attached to the workspace |
//! | attached pool | the pool's default: its system-assigned identity, or its first user-assigned one | the user | the pool's identity (`client_id` etc. pick one of its identities) |
//!
//! A `client_id`, `object_id` or `msi_resource_id` (whose last segment is a name) picks one
//! identity among those the compute may use; a choice that matches none is refused at submit.

use spool_spec::{IdentityKind, IdentitySelector};

/// An identity a compute may act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub client_id: String,
    pub principal_id: String,
}

/// The compute a job runs on, with the identities it may act as.
#[derive(Debug, Clone)]
pub enum Compute {
    /// Serverless Spark: user-assigned identities attached to the workspace.
    Serverless { workspace: Vec<Known> },
    /// An attached pool: its system-assigned identity and its user-assigned ones (in the attach
    /// file's order); `default_system` when its attach file says `system_assigned`.
    Pool {
        name: String,
        system: Known,
        user_assigned: Vec<Known>,
        default_system: bool,
    },
}

/// Who a job acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    Identity(String),
}

impl Principal {
    pub fn name(&self) -> &str {
        match self {
            Principal::User(name) | Principal::Identity(name) => name,
        }
    }

    /// `user:<name>` or `identity:<name>`: what work records as the principal it runs as (a
    /// user and an identity may share a name), and what its OS account is found by.
    pub fn key(&self) -> String {
        match self {
            Principal::User(name) => format!("user:{name}"),
            Principal::Identity(name) => format!("identity:{name}"),
        }
    }
}

/// Resolves the principal; a refusal is a message about the `identity` field.
pub fn resolve(
    kind: Option<IdentityKind>,
    selector: &IdentitySelector,
    compute: &Compute,
    submitter: &str,
) -> Result<Principal, String> {
    if kind != Some(IdentityKind::Managed) && !selector.is_empty() {
        return Err(
            "`client_id`, `object_id` and `msi_resource_id` name a managed identity; they need `type: managed`".into(),
        );
    }
    match (kind, compute) {
        (Some(IdentityKind::UserIdentity), _) | (None, Compute::Serverless { .. }) => {
            Ok(Principal::User(submitter.to_string()))
        }
        (Some(IdentityKind::AmlToken), _) => Err(
            "`aml_token` is not supported for Spark jobs; use `user_identity` or `managed`".into(),
        ),
        (Some(IdentityKind::Managed), Compute::Serverless { workspace }) => {
            if workspace.is_empty() {
                return Err("`managed` on serverless Spark acts as a user-assigned managed identity attached to the workspace, and none is attached\nhint: create one and attach it with `spool identity create --name <name>` and `spool workspace identity add --name <name>`, or use `user_identity`".into());
            }
            if selector.is_empty() {
                return match workspace.as_slice() {
                    [only] => Ok(Principal::Identity(only.name.clone())),
                    several => Err(format!(
                        "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity: the workspace has {}\nhint: add `client_id: <its client id>` under `identity` (`spool identity list` shows them)",
                        names(several)
                    )),
                };
            }
            pick(selector, workspace, "attached to the workspace")
        }
        (
            None,
            Compute::Pool {
                system,
                user_assigned,
                default_system,
                ..
            },
        ) => Ok(Principal::Identity(
            default_identity(system, user_assigned, *default_system)
                .name
                .clone(),
        )),
        (
            Some(IdentityKind::Managed),
            Compute::Pool {
                name,
                system,
                user_assigned,
                default_system,
            },
        ) => {
            if selector.is_empty() {
                return Ok(Principal::Identity(
                    default_identity(system, user_assigned, *default_system)
                        .name
                        .clone(),
                ));
            }
            let all: Vec<Known> = std::iter::once(system.clone())
                .chain(user_assigned.iter().cloned())
                .collect();
            pick(selector, &all, &format!("of pool `{name}`"))
        }
    }
}

fn default_identity<'a>(
    system: &'a Known,
    user_assigned: &'a [Known],
    default_system: bool,
) -> &'a Known {
    match user_assigned.first() {
        Some(first) if !default_system => first,
        _ => system,
    }
}

fn names(identities: &[Known]) -> String {
    identities
        .iter()
        .map(|k| format!("`{}`", k.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one identity among `candidates` that every given selector matches.
fn pick(
    selector: &IdentitySelector,
    candidates: &[Known],
    which: &str,
) -> Result<Principal, String> {
    let resource_name = selector
        .msi_resource_id
        .as_deref()
        .map(|r| r.trim_end_matches('/').rsplit('/').next().unwrap_or(r));
    let found = candidates.iter().find(|k| {
        selector
            .client_id
            .as_deref()
            .is_none_or(|c| c == k.client_id)
            && selector
                .object_id
                .as_deref()
                .is_none_or(|o| o == k.principal_id)
            && resource_name.is_none_or(|n| n == k.name)
    });
    match found {
        Some(known) => Ok(Principal::Identity(known.name.clone())),
        None => {
            let given: Vec<String> = [
                selector
                    .client_id
                    .as_ref()
                    .map(|c| format!("client_id `{c}`")),
                selector
                    .object_id
                    .as_ref()
                    .map(|o| format!("object_id `{o}`")),
                selector
                    .msi_resource_id
                    .as_ref()
                    .map(|r| format!("msi_resource_id `{r}`")),
            ]
            .into_iter()
            .flatten()
            .collect();
            Err(format!(
                "no managed identity {which} matches {}; the identities {which} are {}\nhint: `spool identity list` shows their client ids",
                given.join(" and "),
                if candidates.is_empty() {
                    "none".to_string()
                } else {
                    names(candidates)
                }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> Known {
        Known {
            name: name.into(),
            client_id: format!("client-{name}"),
            principal_id: format!("object-{name}"),
        }
    }

    fn select(
        client_id: Option<&str>,
        object_id: Option<&str>,
        resource: Option<&str>,
    ) -> IdentitySelector {
        IdentitySelector {
            client_id: client_id.map(Into::into),
            object_id: object_id.map(Into::into),
            msi_resource_id: resource.map(Into::into),
        }
    }

    fn pool(default_system: bool, user_assigned: &[&str]) -> Compute {
        Compute::Pool {
            name: "team".into(),
            system: known("pool/team"),
            user_assigned: user_assigned.iter().map(|n| known(n)).collect(),
            default_system,
        }
    }

    /// What is resolved, the request, the compute and the principal or a part of the refusal.
    type Case<'a> = (
        &'a str,
        Option<IdentityKind>,
        IdentitySelector,
        &'a Compute,
        Result<Principal, &'a str>,
    );

    #[test]
    fn the_table_of_azure_ml() {
        use IdentityKind::{AmlToken, Managed, UserIdentity};
        let none = IdentitySelector::default();
        let none_attached = Compute::Serverless { workspace: vec![] };
        let one = Compute::Serverless {
            workspace: vec![known("etl")],
        };
        let system_only = pool(true, &[]);
        let etl_first = pool(false, &["etl", "ml"]);
        let etl_only = pool(false, &["etl"]);
        let two = Compute::Serverless {
            workspace: vec![known("etl"), known("ml")],
        };
        let cases: Vec<Case> = vec![
            (
                "serverless default",
                None,
                none.clone(),
                &none_attached,
                Ok(Principal::User("alice".into())),
            ),
            (
                "serverless user",
                Some(UserIdentity),
                none.clone(),
                &one,
                Ok(Principal::User("alice".into())),
            ),
            (
                "serverless managed, none attached",
                Some(Managed),
                none.clone(),
                &none_attached,
                Err("none is attached"),
            ),
            (
                "serverless managed, one attached",
                Some(Managed),
                none.clone(),
                &one,
                Ok(Principal::Identity("etl".into())),
            ),
            (
                "serverless managed, two attached",
                Some(Managed),
                none.clone(),
                &two,
                Err("Multiple user assigned identities exist"),
            ),
            (
                "serverless managed by client id",
                Some(Managed),
                select(Some("client-ml"), None, None),
                &two,
                Ok(Principal::Identity("ml".into())),
            ),
            (
                "serverless managed by object id",
                Some(Managed),
                select(None, Some("object-etl"), None),
                &two,
                Ok(Principal::Identity("etl".into())),
            ),
            (
                "serverless managed by resource id",
                Some(Managed),
                select(
                    None,
                    None,
                    Some(
                        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ml",
                    ),
                ),
                &two,
                Ok(Principal::Identity("ml".into())),
            ),
            (
                "serverless managed, unknown client id",
                Some(Managed),
                select(Some("client-x"), None, None),
                &two,
                Err("no managed identity attached to the workspace matches client_id `client-x`"),
            ),
            (
                "selectors and client id disagree",
                Some(Managed),
                select(Some("client-ml"), Some("object-etl"), None),
                &two,
                Err("matches client_id `client-ml` and object_id `object-etl`"),
            ),
            (
                "client id without managed",
                Some(UserIdentity),
                select(Some("client-ml"), None, None),
                &two,
                Err("they need `type: managed`"),
            ),
            (
                "aml token",
                Some(AmlToken),
                none.clone(),
                &one,
                Err("`aml_token` is not supported"),
            ),
            (
                "pool default, system",
                None,
                none.clone(),
                &system_only,
                Ok(Principal::Identity("pool/team".into())),
            ),
            (
                "pool default, user-assigned first",
                None,
                none.clone(),
                &etl_first,
                Ok(Principal::Identity("etl".into())),
            ),
            (
                "pool managed, default",
                Some(Managed),
                none.clone(),
                &etl_only,
                Ok(Principal::Identity("etl".into())),
            ),
            (
                "pool managed by client id",
                Some(Managed),
                select(Some("client-ml"), None, None),
                &etl_first,
                Ok(Principal::Identity("ml".into())),
            ),
            (
                "pool managed, system by client id",
                Some(Managed),
                select(Some("client-pool/team"), None, None),
                &etl_only,
                Ok(Principal::Identity("pool/team".into())),
            ),
            (
                "pool managed, not the pool's",
                Some(Managed),
                select(Some("client-other"), None, None),
                &system_only,
                Err("no managed identity of pool `team` matches"),
            ),
            (
                "pool user",
                Some(UserIdentity),
                none.clone(),
                &system_only,
                Ok(Principal::User("alice".into())),
            ),
        ];
        for (what, kind, selector, compute, expected) in cases {
            let got = resolve(kind, &selector, compute, "alice");
            match (&got, &expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{what}"),
                (Err(message), Err(part)) => assert!(message.contains(part), "{what}: {message}"),
                _ => panic!("{what}: got {got:?}, expected {expected:?}"),
            }
        }
    }
}
