//! Workspace files (`spool workspace update --file`), shaped like Azure ML's workspace YAML:
//! the `managed_network` block with its isolation mode and outbound rules, plus `ip` rules
//! (Spool's on-premises analogue of Azure's `service_tag` rules). Only the network is kept;
//! `name`, `description`, `display_name` and `tags` are accepted so Azure's files load.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::yaml::{self, Node, Value};

pub use spool_core::IsolationMode;

/// A workspace's managed network, as checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ManagedNetwork {
    pub isolation_mode: IsolationMode,
    #[serde(default)]
    pub outbound_rules: Vec<OutboundRule>,
}

/// One outbound rule, by its `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundRule {
    /// A host name, or `*.` and a domain.
    Fqdn { name: String, destination: String },
    /// Addresses, a protocol and ports.
    Ip {
        name: String,
        destination: IpDestination,
    },
    /// A Spool datastore or attached compute.
    PrivateEndpoint {
        name: String,
        destination: PrivateEndpoint,
    },
}

impl OutboundRule {
    pub fn name(&self) -> &str {
        match self {
            OutboundRule::Fqdn { name, .. }
            | OutboundRule::Ip { name, .. }
            | OutboundRule::PrivateEndpoint { name, .. } => name,
        }
    }
}

/// Where an `ip` rule lets traffic go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpDestination {
    /// A CIDR block (`10.0.0.0/24`) or one address.
    pub address_prefix: String,
    /// `TCP`, `UDP` or `*`.
    pub protocol: String,
    /// Ports and ranges, comma-separated (`80,443,8000-8100`).
    pub port_ranges: String,
}

/// What a `private_endpoint` rule names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateEndpoint {
    /// `azureml://datastores/<name>` or `azureml:<attached compute>`.
    pub service_resource_id: String,
    /// Whether serverless Spark may use it (Azure's flag).
    #[serde(default)]
    pub spark_enabled: bool,
    /// `blob` or `dfs`, for a datastore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource_target: Option<String>,
    /// Where `service_resource_id` was written, for the server's check that it exists.
    #[serde(skip)]
    pub pos: Option<yaml::Pos>,
}

/// The Spool resource a private endpoint names, for the server to check that it exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EndpointTarget {
    Datastore(String),
    Compute(String),
}

impl PrivateEndpoint {
    /// The datastore or compute named by `service_resource_id` (checked when loaded).
    pub fn target(&self) -> Option<EndpointTarget> {
        endpoint_target(&self.service_resource_id)
    }
}

/// A diagnostic for each private endpoint whose datastore or attached compute does not exist,
/// by `exists` (the server's lookups, made before).
pub fn missing_endpoints(
    network: &ManagedNetwork,
    exists: impl Fn(&EndpointTarget) -> bool,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (i, rule) in network.outbound_rules.iter().enumerate() {
        let OutboundRule::PrivateEndpoint { name, destination } = rule else {
            continue;
        };
        let Some(target) = destination.target() else {
            continue;
        };
        if exists(&target) {
            continue;
        }
        let (message, accepted) = match &target {
            EndpointTarget::Datastore(store) => (
                format!("rule `{name}` names no datastore `{store}`"),
                "a datastore `spool datastore list` shows, as `azureml://datastores/<name>`",
            ),
            EndpointTarget::Compute(compute) => (
                format!("rule `{name}` names no attached compute `{compute}`"),
                "an attached compute `spool compute list` shows, as `azureml:<name>`",
            ),
        };
        diags.push(
            Diagnostic::new(
                format!("managed_network.outbound_rules[{i}].destination.service_resource_id"),
                message,
            )
            .at(destination.pos)
            .value(destination.service_resource_id.clone())
            .accepted(accepted),
        );
    }
    diags
}

fn endpoint_target(id: &str) -> Option<EndpointTarget> {
    let named = |name: &str| is_simple_name(name.trim_end_matches('/'), 255);
    if let Some(name) = id.strip_prefix("azureml://datastores/") {
        return named(name).then(|| EndpointTarget::Datastore(name.trim_end_matches('/').into()));
    }
    let name = id.strip_prefix("azureml:")?;
    named(name).then(|| EndpointTarget::Compute(name.to_string()))
}

fn is_simple_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

const TOP_FIELDS: &str = "`managed_network`, and (kept for Azure's files, not stored) `$schema`, `name`, `description`, `display_name`, `tags`";
const NETWORK_FIELDS: &str = "`isolation_mode`, `outbound_rules`";
const MODES: &str = "`disabled`, `allow_internet_outbound` or `allow_only_approved_outbound`";
const RULE_FIELDS: &str = "`name`, `type`, `destination`";
const RULE_TYPES: &str = "`fqdn`, `ip` or `private_endpoint`";
const NAME_RULE: &str = "1-64 letters, digits, `-`, `_` and `.`, starting with a letter or digit and not ending with `.` or `-`";
const IP_EXAMPLE: &str = "destination:\n      address_prefix: 10.0.0.0/24\n      protocol: TCP\n      port_ranges: \"80,443,8000-8100\"";

fn text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str { text, .. } => Some(text.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn entry<'a>(entries: &'a [(String, yaml::Pos, Node)], key: &str) -> Option<&'a Node> {
    entries
        .iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, _, node)| node)
}

/// Reports keys outside `known` as unknown fields of `what`.
fn unknown_fields(
    entries: &[(String, yaml::Pos, Node)],
    prefix: &str,
    known: &[&str],
    accepted: &str,
    diags: &mut Vec<Diagnostic>,
) {
    for (key, pos, _) in entries {
        if !known.contains(&key.as_str()) {
            diags.push(
                Diagnostic::new(format!("{prefix}{key}"), "unknown field")
                    .at(Some(*pos))
                    .accepted(accepted),
            );
        }
    }
}

/// Parses a workspace file; every problem is reported with its position.
pub fn parse_workspace(source: &str) -> Result<ManagedNetwork, Vec<Diagnostic>> {
    let root = yaml::parse(source).map_err(|e| vec![crate::diag::syntax_error(e)])?;
    let Value::Map(entries) = &root.value else {
        return Err(vec![
            Diagnostic::new("(document)", "a workspace file is a mapping")
                .at(Some(root.pos))
                .accepted(TOP_FIELDS),
        ]);
    };
    let mut diags = Vec::new();
    unknown_fields(
        entries,
        "",
        &[
            "managed_network",
            "$schema",
            "name",
            "description",
            "display_name",
            "tags",
        ],
        TOP_FIELDS,
        &mut diags,
    );
    let network = match entry(entries, "managed_network") {
        Some(node) => managed_network(node, &mut diags),
        None => {
            diags.push(
                Diagnostic::new(
                    "managed_network",
                    "a workspace file needs `managed_network`, the only setting Spool keeps",
                )
                .at(Some(root.pos))
                .accepted("managed_network:\n  isolation_mode: disabled"),
            );
            ManagedNetwork::default()
        }
    };
    if diags.is_empty() {
        Ok(network)
    } else {
        Err(diags)
    }
}

fn managed_network(node: &Node, diags: &mut Vec<Diagnostic>) -> ManagedNetwork {
    let mut network = ManagedNetwork::default();
    let entries = match &node.value {
        Value::Map(entries) => entries,
        // `managed_network:` with nothing under it is the default.
        Value::Null => return network,
        other => {
            diags.push(
                Diagnostic::new(
                    "managed_network",
                    format!("must be a mapping, not {}", other.kind()),
                )
                .at(Some(node.pos))
                .accepted(NETWORK_FIELDS),
            );
            return network;
        }
    };
    unknown_fields(
        entries,
        "managed_network.",
        &["isolation_mode", "outbound_rules"],
        NETWORK_FIELDS,
        diags,
    );
    if let Some(mode) = entry(entries, "isolation_mode") {
        match text(mode).as_deref().map(|t| (t, IsolationMode::parse(t))) {
            Some((_, Some(parsed))) => network.isolation_mode = parsed,
            written => diags.push(
                Diagnostic::new("managed_network.isolation_mode", "unknown isolation mode")
                    .at(Some(mode.pos))
                    .value(written.map_or_else(|| mode.value.display(), |(t, _)| t.to_string()))
                    .accepted(MODES),
            ),
        }
    }
    let Some(rules) = entry(entries, "outbound_rules") else {
        return network;
    };
    let items = match &rules.value {
        Value::Seq(items) => items,
        Value::Null => return network,
        other => {
            diags.push(
                Diagnostic::new(
                    "managed_network.outbound_rules",
                    format!("must be a list, not {}", other.kind()),
                )
                .at(Some(rules.pos))
                .accepted("outbound_rules:\n    - name: pypi\n      type: fqdn\n      destination: pypi.org"),
            );
            return network;
        }
    };
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("managed_network.outbound_rules[{i}]");
        if let Some(rule) = outbound_rule(&path, item, diags) {
            let lower = rule.name().to_ascii_lowercase();
            match seen.iter().find(|(name, _)| *name == lower) {
                Some((_, first)) => diags.push(
                    Diagnostic::new(
                        format!("{path}.name"),
                        format!("rule names are unique; rule {first} has this name already"),
                    )
                    .at(Some(item.pos))
                    .value(rule.name())
                    .accepted("a name no other rule of the workspace has (case-insensitive)"),
                ),
                None => seen.push((lower, i)),
            }
            network.outbound_rules.push(rule);
        }
    }
    network
}

fn outbound_rule(path: &str, item: &Node, diags: &mut Vec<Diagnostic>) -> Option<OutboundRule> {
    let Value::Map(entries) = &item.value else {
        diags.push(
            Diagnostic::new(
                path,
                format!("a rule is a mapping, not {}", item.value.kind()),
            )
            .at(Some(item.pos))
            .accepted(RULE_FIELDS),
        );
        return None;
    };
    let before = diags.len();
    unknown_fields(
        entries,
        &format!("{path}."),
        &["name", "type", "destination"],
        RULE_FIELDS,
        diags,
    );
    let name = match entry(entries, "name") {
        Some(node) => match text(node) {
            Some(name) if is_rule_name(&name) => Some(name),
            written => {
                diags.push(
                    Diagnostic::new(format!("{path}.name"), "invalid rule name")
                        .at(Some(node.pos))
                        .value(written.unwrap_or_else(|| node.value.display()))
                        .accepted(NAME_RULE),
                );
                None
            }
        },
        None => {
            diags.push(
                Diagnostic::new(format!("{path}.name"), "a rule needs a name")
                    .at(Some(item.pos))
                    .accepted(NAME_RULE),
            );
            None
        }
    };
    let destination = entry(entries, "destination");
    let Some(kind_node) = entry(entries, "type") else {
        diags.push(
            Diagnostic::new(format!("{path}.type"), "a rule needs a type")
                .at(Some(item.pos))
                .accepted(RULE_TYPES),
        );
        return None;
    };
    let kind = text(kind_node).unwrap_or_else(|| kind_node.value.display());
    let Some(destination) = destination else {
        if matches!(
            kind.as_str(),
            "fqdn" | "ip" | "private_endpoint" | "service_tag"
        ) {
            diags.push(
                Diagnostic::new(format!("{path}.destination"), "a rule needs a destination")
                    .at(Some(item.pos))
                    .accepted(match kind.as_str() {
                        "fqdn" => "destination: pypi.org",
                        "private_endpoint" => {
                            "destination:\n      service_resource_id: azureml://datastores/<name>\n      spark_enabled: true"
                        }
                        _ => IP_EXAMPLE,
                    }),
            );
        }
        return None;
    };
    let dest_path = format!("{path}.destination");
    // A name missing or invalid was reported above; the rule is still checked.
    let name = name.unwrap_or_default();
    let rule = match kind.as_str() {
        "fqdn" => fqdn(&dest_path, destination, diags)
            .map(|destination| OutboundRule::Fqdn { name, destination }),
        "ip" => ip_destination(&dest_path, destination, diags)
            .map(|destination| OutboundRule::Ip { name, destination }),
        "private_endpoint" => private_endpoint(&dest_path, destination, diags)
            .map(|destination| OutboundRule::PrivateEndpoint { name, destination }),
        "service_tag" => {
            diags.push(
                Diagnostic::new(
                    format!("{path}.type"),
                    "service tags name Azure services, which Spool cannot reach on premises; write an `ip` rule with the addresses instead",
                )
                .at(Some(kind_node.pos))
                .value(kind.clone())
                .accepted(format!("type: ip\n    {IP_EXAMPLE}")),
            );
            None
        }
        _ => {
            diags.push(
                Diagnostic::new(format!("{path}.type"), "unknown rule type")
                    .at(Some(kind_node.pos))
                    .value(kind.clone())
                    .accepted(RULE_TYPES),
            );
            None
        }
    };
    if diags.len() > before {
        return None;
    }
    rule
}

/// Azure-like rule names: letters, digits, `-`, `_` and `.`, starting with a letter or digit.
fn is_rule_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !name.ends_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a host name (RFC 1123 labels), or `*.` followed by a domain of two labels or more.
fn host_problem(host: &str) -> Option<&'static str> {
    if host.parse::<IpAddr>().is_ok() {
        return Some("an `fqdn` rule names a host; write an `ip` rule for an address");
    }
    let (wildcard, rest) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    if rest.contains('*') {
        return Some("a wildcard is allowed only as the first label, as `*.example.com`");
    }
    if rest.is_empty() || rest.len() > 253 {
        return Some("a host name is 1-253 characters");
    }
    let labels: Vec<&str> = rest.trim_end_matches('.').split('.').collect();
    if wildcard && labels.len() < 2 {
        return Some("a wildcard needs a domain of at least two labels, as `*.example.com`");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !labels.iter().all(|label| label_ok(label)) {
        return Some("not a host name");
    }
    None
}

fn fqdn(path: &str, node: &Node, diags: &mut Vec<Diagnostic>) -> Option<String> {
    const ACCEPTED: &str =
        "a host name (`pypi.org`) or a wildcard for its subdomains (`*.example.com`)";
    let Some(host) = text(node) else {
        diags.push(
            Diagnostic::new(
                path,
                format!("must be a host name, not {}", node.value.kind()),
            )
            .at(Some(node.pos))
            .accepted(ACCEPTED),
        );
        return None;
    };
    match host_problem(&host) {
        Some(problem) => {
            diags.push(
                Diagnostic::new(path, problem)
                    .at(Some(node.pos))
                    .value(host)
                    .accepted(ACCEPTED),
            );
            None
        }
        None => Some(host.to_ascii_lowercase()),
    }
}

/// Why `prefix` is not a CIDR block, with the network's own address when only host bits are
/// set.
fn prefix_problem(prefix: &str) -> Option<String> {
    let (address, length) = match prefix.split_once('/') {
        Some((address, length)) => (address, Some(length)),
        None => (prefix, None),
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return Some("not an IP address or CIDR block".into());
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    // A bare address is a block of one.
    let length = length?;
    let Ok(length) = length.parse::<u32>() else {
        return Some("the prefix length is not a number".into());
    };
    if length > max {
        return Some(format!("the prefix length is at most {max}"));
    }
    let (bits, network) = match address {
        IpAddr::V4(v4) => {
            let bits = u128::from(u32::from(v4));
            let mask = if length == 0 {
                0
            } else {
                u32::MAX << (32 - length)
            };
            (
                bits,
                IpAddr::from(std::net::Ipv4Addr::from(u32::from(v4) & mask)),
            )
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if length == 0 {
                0
            } else {
                u128::MAX << (128 - length)
            };
            (bits, IpAddr::from(std::net::Ipv6Addr::from(bits & mask)))
        }
    };
    let network_bits = match network {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    (bits != network_bits).then(|| format!("host bits are set; the block is `{network}/{length}`"))
}

/// Why `ranges` is not a list of ports and ranges of ports.
fn ports_problem(ranges: &str) -> Option<String> {
    let port = |text: &str| -> Result<u32, String> {
        match text.trim().parse::<u32>() {
            Ok(port) if (1..=65535).contains(&port) => Ok(port),
            _ => Err(format!("`{}` is not a port from 1 to 65535", text.trim())),
        }
    };
    for part in ranges.split(',') {
        let checked = match part.split_once('-') {
            Some((lo, hi)) => match (port(lo), port(hi)) {
                (Ok(lo), Ok(hi)) if lo > hi => {
                    Err(format!("the range `{}` ends below its start", part.trim()))
                }
                (Ok(_), Ok(_)) => Ok(()),
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
            None => port(part).map(|_| ()),
        };
        if let Err(e) = checked {
            return Some(e);
        }
    }
    None
}

fn ip_destination(path: &str, node: &Node, diags: &mut Vec<Diagnostic>) -> Option<IpDestination> {
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new(
                path,
                format!("must be a mapping, not {}", node.value.kind()),
            )
            .at(Some(node.pos))
            .accepted(IP_EXAMPLE),
        );
        return None;
    };
    let before = diags.len();
    unknown_fields(
        entries,
        &format!("{path}."),
        &["address_prefix", "protocol", "port_ranges"],
        "`address_prefix`, `protocol`, `port_ranges`",
        diags,
    );
    let mut field =
        |key: &str, accepted: &str, problem: &dyn Fn(&str) -> Option<String>| -> Option<String> {
            let field_path = format!("{path}.{key}");
            let Some(value) = entry(entries, key) else {
                diags.push(
                    Diagnostic::new(field_path, "missing field")
                        .at(Some(node.pos))
                        .accepted(accepted),
                );
                return None;
            };
            let written = text(value).unwrap_or_else(|| value.value.display());
            match problem(&written) {
                Some(problem) => {
                    diags.push(
                        Diagnostic::new(field_path, problem)
                            .at(Some(value.pos))
                            .value(written)
                            .accepted(accepted),
                    );
                    None
                }
                None => Some(written),
            }
        };
    let address_prefix = field(
        "address_prefix",
        "an IPv4 or IPv6 address or CIDR block, as `10.0.0.0/24`",
        &prefix_problem,
    );
    let protocol = field("protocol", "`TCP`, `UDP` or `\"*\"` (both)", &|p| {
        (!matches!(p.to_ascii_uppercase().as_str(), "TCP" | "UDP" | "*"))
            .then(|| "unknown protocol".to_string())
    });
    let port_ranges = field(
        "port_ranges",
        "ports from 1 to 65535 and ranges `lo-hi`, comma-separated, as `\"80,443,8000-8100\"`",
        &ports_problem,
    );
    if diags.len() > before {
        return None;
    }
    Some(IpDestination {
        address_prefix: address_prefix?,
        protocol: protocol?.to_ascii_uppercase(),
        port_ranges: port_ranges?
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(","),
    })
}

fn private_endpoint(
    path: &str,
    node: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<PrivateEndpoint> {
    const TARGETS: &str = "`azureml://datastores/<datastore>` or `azureml:<attached compute>`";
    let Value::Map(entries) = &node.value else {
        diags.push(
            Diagnostic::new(path, format!("must be a mapping, not {}", node.value.kind()))
                .at(Some(node.pos))
                .accepted("destination:\n      service_resource_id: azureml://datastores/<name>\n      spark_enabled: true"),
        );
        return None;
    };
    let before = diags.len();
    unknown_fields(
        entries,
        &format!("{path}."),
        &["service_resource_id", "spark_enabled", "subresource_target"],
        "`service_resource_id`, `spark_enabled`, `subresource_target`",
        diags,
    );
    let id_path = format!("{path}.service_resource_id");
    let id_pos = entry(entries, "service_resource_id").map(|value| value.pos);
    let service_resource_id = match entry(entries, "service_resource_id") {
        Some(value) => {
            let written = text(value).unwrap_or_else(|| value.value.display());
            if endpoint_target(&written).is_some() {
                Some(written)
            } else {
                let message = if written.starts_with("/subscriptions/") {
                    "Azure resource ids name Azure resources; a Spool private endpoint names a datastore or an attached compute"
                } else {
                    "not a datastore or attached compute"
                };
                diags.push(
                    Diagnostic::new(id_path, message)
                        .at(Some(value.pos))
                        .value(written)
                        .accepted(TARGETS),
                );
                None
            }
        }
        None => {
            diags.push(
                Diagnostic::new(id_path, "missing field")
                    .at(Some(node.pos))
                    .accepted(TARGETS),
            );
            None
        }
    };
    let spark_enabled = match entry(entries, "spark_enabled") {
        None => false,
        Some(Node {
            value: Value::Bool(flag),
            ..
        }) => *flag,
        Some(value) => {
            diags.push(
                Diagnostic::new(format!("{path}.spark_enabled"), "must be a boolean")
                    .at(Some(value.pos))
                    .value(value.value.display())
                    .accepted("`true` or `false`"),
            );
            false
        }
    };
    let subresource_target = match entry(entries, "subresource_target") {
        None => None,
        Some(value) => match text(value).map(|t| t.to_ascii_lowercase()).as_deref() {
            Some(target @ ("blob" | "dfs")) => Some(target.to_string()),
            _ => {
                diags.push(
                    Diagnostic::new(
                        format!("{path}.subresource_target"),
                        "unknown subresource target",
                    )
                    .at(Some(value.pos))
                    .value(text(value).unwrap_or_else(|| value.value.display()))
                    .accepted("`blob` or `dfs`"),
                );
                None
            }
        },
    };
    if diags.len() > before {
        return None;
    }
    Some(PrivateEndpoint {
        service_resource_id: service_resource_id?,
        spark_enabled,
        subresource_target,
        pos: id_pos,
    })
}

#[cfg(test)]
mod tests;
