//! Attach files for Spark pools, shaped like Azure ML's Synapse Spark attach YAML with a
//! standalone master URL in place of Azure's `resource_id`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::yaml::{self, Node, Value};

/// A checked attach file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachSpec {
    pub name: String,
    /// `spark://host:port`.
    pub master_url: String,
    /// The master's web UI (default `http://<host>:8080`), where its status is read.
    pub master_ui_url: String,
    pub identity: PoolIdentity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The identity jobs on the pool act as by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolIdentity {
    /// `system_assigned` (default) or `user_assigned`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Named user-assigned identities; the first is used by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_assigned_identities: Vec<String>,
}

const ACCEPTED_FIELDS: &str =
    "`name`, `type`, `master_url`, `master_ui_url`, `identity`, `description`, `tags`";

fn text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str { text, .. } => Some(text.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Parses an attach file; every problem is reported with its position.
pub fn parse_attach(source: &str) -> Result<AttachSpec, Vec<Diagnostic>> {
    let root = yaml::parse(source).map_err(|e| vec![crate::diag::syntax_error(e)])?;
    let Value::Map(entries) = &root.value else {
        return Err(vec![
            Diagnostic::new("(document)", "an attach file is a mapping")
                .at(Some(root.pos))
                .accepted(ACCEPTED_FIELDS),
        ]);
    };
    let mut diags = Vec::new();
    let get = |key: &str| entries.iter().find(|(k, _, _)| k == key).map(|(_, _, n)| n);
    for (key, pos, _) in entries {
        if !matches!(
            key.as_str(),
            "name"
                | "type"
                | "master_url"
                | "master_ui_url"
                | "identity"
                | "description"
                | "tags"
                | "resource_id"
                | "$schema"
        ) {
            diags.push(
                Diagnostic::new(key.clone(), "unknown field in an attach file")
                    .at(Some(*pos))
                    .accepted(ACCEPTED_FIELDS),
            );
        }
    }
    let name = match get("name").and_then(text) {
        Some(name)
            if !name.is_empty()
                && name.len() <= 32
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            name
        }
        Some(name) => {
            diags.push(
                Diagnostic::new("name", "invalid compute name")
                    .at(get("name").map(|n| n.pos))
                    .value(name)
                    .accepted("1-32 letters, digits, `-` and `_`, starting with a letter"),
            );
            String::new()
        }
        None => {
            diags.push(
                Diagnostic::new("name", "an attached compute needs a name")
                    .at(Some(root.pos))
                    .accepted("name: my-pool"),
            );
            String::new()
        }
    };
    match get("type").and_then(text).as_deref() {
        Some("sparkpool") => {}
        Some(kind) if kind.eq_ignore_ascii_case("synapsespark") => diags.push(
            Diagnostic::new(
                "type",
                "Spool attaches Spark standalone pools by their master URL, not Synapse pools by resource id",
            )
            .at(get("type").map(|n| n.pos))
            .value(kind)
            .accepted("type: sparkpool\nmaster_url: spark://<host>:7077   # in place of resource_id"),
        ),
        Some(kind) => diags.push(
            Diagnostic::new("type", "unsupported compute type")
                .at(get("type").map(|n| n.pos))
                .value(kind)
                .accepted("`sparkpool`"),
        ),
        None => diags.push(
            Diagnostic::new("type", "an attach file needs a `type`")
                .at(Some(root.pos))
                .accepted("type: sparkpool"),
        ),
    }
    if let Some(node) = get("resource_id") {
        diags.push(
            Diagnostic::new(
                "resource_id",
                "Azure resource ids cannot be attached; name the pool's Spark master instead",
            )
            .at(Some(node.pos))
            .accepted("master_url: spark://<host>:7077"),
        );
    }
    let (master_url, host) = match get("master_url").and_then(text) {
        Some(url) => match url
            .strip_prefix("spark://")
            .and_then(|rest| rest.rsplit_once(':'))
            .filter(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        {
            Some((host, _)) => (url.clone(), host.to_string()),
            None => {
                diags.push(
                    Diagnostic::new("master_url", "not a Spark standalone master URL")
                        .at(get("master_url").map(|n| n.pos))
                        .value(url)
                        .accepted("spark://<host>:<port>, e.g. spark://10.0.0.5:7077"),
                );
                (String::new(), String::new())
            }
        },
        None => {
            diags.push(
                Diagnostic::new("master_url", "an attached pool needs its master URL")
                    .at(Some(root.pos))
                    .accepted("master_url: spark://<host>:7077"),
            );
            (String::new(), String::new())
        }
    };
    let master_ui_url = match get("master_ui_url").and_then(text) {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            url.trim_end_matches('/').to_string()
        }
        Some(url) => {
            diags.push(
                Diagnostic::new("master_ui_url", "not an http(s) URL")
                    .at(get("master_ui_url").map(|n| n.pos))
                    .value(url)
                    .accepted("http://<host>:8080"),
            );
            String::new()
        }
        None => format!("http://{host}:8080"),
    };
    let identity = identity(get("identity"), &mut diags);
    let description = get("description").and_then(text);
    let mut tags = BTreeMap::new();
    if let Some(node) = get("tags") {
        match &node.value {
            Value::Map(items) => {
                for (key, _, value) in items {
                    tags.insert(
                        key.clone(),
                        text(value).unwrap_or_else(|| value.value.display()),
                    );
                }
            }
            Value::Null => {}
            other => diags.push(
                Diagnostic::new("tags", format!("must be a mapping, not {}", other.kind()))
                    .at(Some(node.pos)),
            ),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(AttachSpec {
        name,
        master_url,
        master_ui_url,
        identity,
        description,
        tags,
    })
}

fn identity(node: Option<&Node>, diags: &mut Vec<Diagnostic>) -> PoolIdentity {
    let default = PoolIdentity {
        kind: "system_assigned".into(),
        user_assigned_identities: Vec::new(),
    };
    let Some(node) = node else {
        return default;
    };
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new("identity", "must be a mapping")
                .at(Some(node.pos))
                .accepted("identity:\n  type: system_assigned"),
        );
        return default;
    };
    let get = |key: &str| entries.iter().find(|(k, _, _)| k == key).map(|(_, _, n)| n);
    let kind = get("type")
        .and_then(text)
        .unwrap_or_else(|| "system_assigned".into());
    let kind = match kind.to_ascii_lowercase().replace('-', "_").as_str() {
        "system_assigned" | "systemassigned" => "system_assigned".to_string(),
        "user_assigned" | "userassigned" => "user_assigned".to_string(),
        _ => {
            diags.push(
                Diagnostic::new("identity.type", "unknown identity type")
                    .at(get("type").map(|n| n.pos))
                    .value(kind)
                    .accepted("`system_assigned` or `user_assigned`"),
            );
            return default;
        }
    };
    let mut names = Vec::new();
    if let Some(list) = get("user_assigned_identities") {
        match &list.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let name = match &item.value {
                        Value::Str { text, .. } => Some(text.clone()),
                        Value::Map(fields) => fields
                            .iter()
                            .find(|(k, _, _)| k == "name" || k == "resource_id")
                            .and_then(|(_, _, n)| text(n)),
                        _ => None,
                    };
                    match name {
                        // An Azure resource id names the identity by its last segment.
                        Some(name) => {
                            names.push(name.rsplit('/').next().unwrap_or(&name).to_string())
                        }
                        None => diags.push(
                            Diagnostic::new(
                                format!("identity.user_assigned_identities[{i}]"),
                                "must name an identity",
                            )
                            .at(Some(item.pos))
                            .accepted("- name: <identity>"),
                        ),
                    }
                }
            }
            other => diags.push(
                Diagnostic::new(
                    "identity.user_assigned_identities",
                    format!("must be a list, not {}", other.kind()),
                )
                .at(Some(list.pos)),
            ),
        }
    }
    if kind == "user_assigned" && names.is_empty() {
        diags.push(
            Diagnostic::new(
                "identity.user_assigned_identities",
                "`user_assigned` needs at least one identity; the first is used by default",
            )
            .at(Some(node.pos))
            .accepted("user_assigned_identities:\n    - name: <identity>"),
        );
    }
    PoolIdentity {
        kind,
        user_assigned_identities: names,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(text: &str, expected: Expect) {
        let out = match parse_attach(text) {
            Ok(spec) => serde_json::to_string(&spec).expect("json"),
            Err(diags) => diags
                .iter()
                .map(|d| d.render("pool.yml"))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        expected.assert_eq(&out);
    }

    #[test]
    fn a_pool_with_defaults() {
        check(
            "name: pool\ntype: sparkpool\nmaster_url: spark://127.0.0.1:7077\n",
            expect![[
                r#"{"name":"pool","master_url":"spark://127.0.0.1:7077","master_ui_url":"http://127.0.0.1:8080","identity":{"type":"system_assigned"},"tags":{}}"#
            ]],
        );
    }

    #[test]
    fn user_assigned_identities_by_name_or_resource_id() {
        check(
            "name: pool\ntype: sparkpool\nmaster_url: spark://h:7077\nmaster_ui_url: http://h:9090/\nidentity:\n  type: user_assigned\n  user_assigned_identities:\n    - resource_id: /subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/etl\n    - name: backup\ndescription: team pool\ntags:\n  team: data\n",
            expect![[
                r#"{"name":"pool","master_url":"spark://h:7077","master_ui_url":"http://h:9090","identity":{"type":"user_assigned","user_assigned_identities":["etl","backup"]},"description":"team pool","tags":{"team":"data"}}"#
            ]],
        );
    }

    #[test]
    fn a_synapse_attach_file_is_told_what_to_write() {
        check(
            "name: synapse-pool\ntype: synapsespark\nresource_id: /subscriptions/x/resourceGroups/y/providers/Microsoft.Synapse/workspaces/w/bigDataPools/p\nidentity:\n  type: system_assigned\n",
            expect![[r#"
                pool.yml:2:7: `type`: Spool attaches Spark standalone pools by their master URL, not Synapse pools by resource id (got `synapsespark`)
                  accepted: type: sparkpool
                master_url: spark://<host>:7077   # in place of resource_id
                pool.yml:3:14: `resource_id`: Azure resource ids cannot be attached; name the pool's Spark master instead
                  accepted: master_url: spark://<host>:7077
                pool.yml:1:1: `master_url`: an attached pool needs its master URL
                  accepted: master_url: spark://<host>:7077"#]],
        );
    }

    #[test]
    fn an_alias_bomb_is_rejected_with_the_limit() {
        check(
            crate::yaml::ALIAS_BOMB,
            expect![[r#"
                pool.yml:5:7: `(document)`: a list anchored here has 66430 nodes, and with the copy kept for its aliases the document would build 149470, more than the 100000 accepted
                  accepted: documents that build at most 100000 nodes, counting everything an alias repeats; write the values out without aliases"#]],
        );
    }
}
