use expect_test::{Expect, expect};

use super::*;

#[track_caller]
fn check(yaml: &str, expect: Expect) {
    let out = match parse_workspace(yaml) {
        Ok(network) => serde_json::to_string(&network).expect("json"),
        Err(diags) => diags
            .iter()
            .map(|d| d.render("workspace.yml"))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    expect.assert_eq(&out);
}

#[test]
fn an_empty_managed_network_is_the_default() {
    check(
        "managed_network: {}\n",
        expect![[r#"{"isolation_mode":"disabled","outbound_rules":[]}"#]],
    );
    check(
        "managed_network:\n",
        expect![[r#"{"isolation_mode":"disabled","outbound_rules":[]}"#]],
    );
}

#[test]
fn azures_workspace_fields_are_accepted() {
    check(
        r#"$schema: https://azuremlschemas.azureedge.net/latest/workspace.schema.json
name: mlw-spool
display_name: Spool
description: the team's workspace
tags:
  team: data
managed_network:
  isolation_mode: AllowInternetOutbound
"#,
        expect![[r#"{"isolation_mode":"allow_internet_outbound","outbound_rules":[]}"#]],
    );
}

#[test]
fn every_rule_type() {
    check(
        r#"managed_network:
  isolation_mode: allow_only_approved_outbound
  outbound_rules:
    - name: pypi
      type: fqdn
      destination: PyPI.org
    - name: mirrors
      type: fqdn
      destination: "*.example.com"
    - name: db.net
      type: ip
      destination:
        address_prefix: 10.0.0.0/24
        protocol: tcp
        port_ranges: 80, 443,8000-8100
    - name: one-host
      type: ip
      destination:
        address_prefix: "fd00::1"
        protocol: "*"
        port_ranges: 5432
    - name: lake
      type: private_endpoint
      destination:
        service_resource_id: azureml://datastores/workspaceblobstore
        spark_enabled: true
        subresource_target: dfs
    - name: pool
      type: private_endpoint
      destination:
        service_resource_id: azureml:team-pool
"#,
        expect![[
            r#"{"isolation_mode":"allow_only_approved_outbound","outbound_rules":[{"type":"fqdn","name":"pypi","destination":"pypi.org"},{"type":"fqdn","name":"mirrors","destination":"*.example.com"},{"type":"ip","name":"db.net","destination":{"address_prefix":"10.0.0.0/24","protocol":"TCP","port_ranges":"80,443,8000-8100"}},{"type":"ip","name":"one-host","destination":{"address_prefix":"fd00::1","protocol":"*","port_ranges":"5432"}},{"type":"private_endpoint","name":"lake","destination":{"service_resource_id":"azureml://datastores/workspaceblobstore","spark_enabled":true,"subresource_target":"dfs"}},{"type":"private_endpoint","name":"pool","destination":{"service_resource_id":"azureml:team-pool","spark_enabled":false}}]}"#
        ]],
    );
}

#[test]
fn unknown_fields_are_reported_where_written() {
    check(
        "name: w\nlocation: westeurope\nmanaged_network:\n  isolation_mode: disabled\n  firewall_sku: basic\n",
        expect![[r#"
            workspace.yml:2:1: `location`: unknown field
              accepted: `managed_network`, and (kept for Azure's files, not stored) `$schema`, `name`, `description`, `display_name`, `tags`
            workspace.yml:5:3: `managed_network.firewall_sku`: unknown field
              accepted: `isolation_mode`, `outbound_rules`"#]],
    );
}

#[test]
fn a_file_without_a_managed_network() {
    check(
        "name: w\n",
        expect![[r#"
            workspace.yml:1:1: `managed_network`: a workspace file needs `managed_network`, the only setting Spool keeps
              accepted: managed_network:
              isolation_mode: disabled"#]],
    );
    check(
        "- managed_network\n",
        expect![[r#"
            workspace.yml:1:1: `(document)`: a workspace file is a mapping
              accepted: `managed_network`, and (kept for Azure's files, not stored) `$schema`, `name`, `description`, `display_name`, `tags`"#]],
    );
}

#[test]
fn an_unknown_isolation_mode() {
    check(
        "managed_network:\n  isolation_mode: private\n",
        expect![[r#"
            workspace.yml:2:19: `managed_network.isolation_mode`: unknown isolation mode (got `private`)
              accepted: `disabled`, `allow_internet_outbound` or `allow_only_approved_outbound`"#]],
    );
}

#[test]
fn outbound_rules_must_be_a_list_of_mappings() {
    check(
        "managed_network:\n  outbound_rules: pypi.org\n",
        expect![[r#"
            workspace.yml:2:19: `managed_network.outbound_rules`: must be a list, not a string
              accepted: outbound_rules:
                - name: pypi
                  type: fqdn
                  destination: pypi.org"#]],
    );
    check(
        "managed_network:\n  outbound_rules:\n    - pypi.org\n",
        expect![[r#"
            workspace.yml:3:7: `managed_network.outbound_rules[0]`: a rule is a mapping, not a string
              accepted: `name`, `type`, `destination`"#]],
    );
}

#[test]
fn rule_names_are_required_valid_and_unique() {
    check(
        r#"managed_network:
  outbound_rules:
    - type: fqdn
      destination: a.org
    - name: -bad name
      type: fqdn
      destination: b.org
    - name: pypi
      type: fqdn
      destination: pypi.org
    - name: PyPI
      type: fqdn
      destination: files.pythonhosted.org
"#,
        expect![[r#"
            workspace.yml:3:7: `managed_network.outbound_rules[0].name`: a rule needs a name
              accepted: 1-64 letters, digits, `-`, `_` and `.`, starting with a letter or digit and not ending with `.` or `-`
            workspace.yml:5:13: `managed_network.outbound_rules[1].name`: invalid rule name (got `-bad name`)
              accepted: 1-64 letters, digits, `-`, `_` and `.`, starting with a letter or digit and not ending with `.` or `-`
            workspace.yml:11:7: `managed_network.outbound_rules[3].name`: rule names are unique; rule 2 has this name already (got `PyPI`)
              accepted: a name no other rule of the workspace has (case-insensitive)"#]],
    );
}

#[test]
fn rule_types_and_destinations() {
    check(
        r#"managed_network:
  outbound_rules:
    - name: a
      type: firewall
      destination: x.org
    - name: b
      destination: x.org
    - name: c
      type: fqdn
    - name: d
      type: fqdn
      destination: {host: x.org}
      port: 443
"#,
        expect![[r#"
            workspace.yml:4:13: `managed_network.outbound_rules[0].type`: unknown rule type (got `firewall`)
              accepted: `fqdn`, `ip` or `private_endpoint`
            workspace.yml:6:7: `managed_network.outbound_rules[1].type`: a rule needs a type
              accepted: `fqdn`, `ip` or `private_endpoint`
            workspace.yml:8:7: `managed_network.outbound_rules[2].destination`: a rule needs a destination
              accepted: destination: pypi.org
            workspace.yml:13:7: `managed_network.outbound_rules[3].port`: unknown field
              accepted: `name`, `type`, `destination`
            workspace.yml:12:20: `managed_network.outbound_rules[3].destination`: must be a host name, not a mapping
              accepted: a host name (`pypi.org`) or a wildcard for its subdomains (`*.example.com`)"#]],
    );
}

#[test]
fn fqdn_destinations_are_host_names() {
    check(
        r#"managed_network:
  outbound_rules:
    - {name: a, type: fqdn, destination: "exa_mple.com"}
    - {name: b, type: fqdn, destination: "*.com"}
    - {name: c, type: fqdn, destination: "www.*.example.com"}
    - {name: d, type: fqdn, destination: 10.1.2.3}
    - {name: e, type: fqdn, destination: "-a.example.com"}
"#,
        expect![[r#"
            workspace.yml:3:42: `managed_network.outbound_rules[0].destination`: not a host name (got `exa_mple.com`)
              accepted: a host name (`pypi.org`) or a wildcard for its subdomains (`*.example.com`)
            workspace.yml:4:42: `managed_network.outbound_rules[1].destination`: a wildcard needs a domain of at least two labels, as `*.example.com` (got `*.com`)
              accepted: a host name (`pypi.org`) or a wildcard for its subdomains (`*.example.com`)
            workspace.yml:5:42: `managed_network.outbound_rules[2].destination`: a wildcard is allowed only as the first label, as `*.example.com` (got `www.*.example.com`)
              accepted: a host name (`pypi.org`) or a wildcard for its subdomains (`*.example.com`)
            workspace.yml:6:42: `managed_network.outbound_rules[3].destination`: an `fqdn` rule names a host; write an `ip` rule for an address (got `10.1.2.3`)
              accepted: a host name (`pypi.org`) or a wildcard for its subdomains (`*.example.com`)
            workspace.yml:7:42: `managed_network.outbound_rules[4].destination`: not a host name (got `-a.example.com`)
              accepted: a host name (`pypi.org`) or a wildcard for its subdomains (`*.example.com`)"#]],
    );
}

#[test]
fn ip_destinations_check_prefix_protocol_and_ports() {
    check(
        r#"managed_network:
  outbound_rules:
    - name: a
      type: ip
      destination:
        address_prefix: 10.0.0.1/24
        protocol: ICMP
        port_ranges: "80,0"
    - name: b
      type: ip
      destination:
        address_prefix: 300.1.1.1
        protocol: TCP
        port_ranges: 9000-8000
    - name: c
      type: ip
      destination:
        address_prefix: 10.0.0.0/33
        port_ranges: 70000
    - name: d
      type: ip
      destination: 10.0.0.0/8
"#,
        expect![[r#"
            workspace.yml:6:25: `managed_network.outbound_rules[0].destination.address_prefix`: host bits are set; the block is `10.0.0.0/24` (got `10.0.0.1/24`)
              accepted: an IPv4 or IPv6 address or CIDR block, as `10.0.0.0/24`
            workspace.yml:7:19: `managed_network.outbound_rules[0].destination.protocol`: unknown protocol (got `ICMP`)
              accepted: `TCP`, `UDP` or `"*"` (both)
            workspace.yml:8:22: `managed_network.outbound_rules[0].destination.port_ranges`: `0` is not a port from 1 to 65535 (got `80,0`)
              accepted: ports from 1 to 65535 and ranges `lo-hi`, comma-separated, as `"80,443,8000-8100"`
            workspace.yml:12:25: `managed_network.outbound_rules[1].destination.address_prefix`: not an IP address or CIDR block (got `300.1.1.1`)
              accepted: an IPv4 or IPv6 address or CIDR block, as `10.0.0.0/24`
            workspace.yml:14:22: `managed_network.outbound_rules[1].destination.port_ranges`: the range `9000-8000` ends below its start (got `9000-8000`)
              accepted: ports from 1 to 65535 and ranges `lo-hi`, comma-separated, as `"80,443,8000-8100"`
            workspace.yml:18:25: `managed_network.outbound_rules[2].destination.address_prefix`: the prefix length is at most 32 (got `10.0.0.0/33`)
              accepted: an IPv4 or IPv6 address or CIDR block, as `10.0.0.0/24`
            workspace.yml:18:9: `managed_network.outbound_rules[2].destination.protocol`: missing field
              accepted: `TCP`, `UDP` or `"*"` (both)
            workspace.yml:19:22: `managed_network.outbound_rules[2].destination.port_ranges`: `70000` is not a port from 1 to 65535 (got `70000`)
              accepted: ports from 1 to 65535 and ranges `lo-hi`, comma-separated, as `"80,443,8000-8100"`
            workspace.yml:22:20: `managed_network.outbound_rules[3].destination`: must be a mapping, not a string
              accepted: destination:
                  address_prefix: 10.0.0.0/24
                  protocol: TCP
                  port_ranges: "80,443,8000-8100""#]],
    );
}

#[test]
fn a_service_tag_rule_is_told_to_use_an_ip_rule() {
    check(
        r#"managed_network:
  isolation_mode: allow_only_approved_outbound
  outbound_rules:
    - name: added-servicetagrule
      type: service_tag
      destination:
        port_ranges: 80, 8080
        protocol: TCP
        service_tag: DataFactory
"#,
        expect![[r#"
            workspace.yml:5:13: `managed_network.outbound_rules[0].type`: service tags name Azure services, which Spool cannot reach on premises; write an `ip` rule with the addresses instead (got `service_tag`)
              accepted: type: ip
                destination:
                  address_prefix: 10.0.0.0/24
                  protocol: TCP
                  port_ranges: "80,443,8000-8100""#]],
    );
}

#[test]
fn private_endpoints_name_a_datastore_or_a_compute() {
    check(
        r#"managed_network:
  outbound_rules:
    - name: a
      type: private_endpoint
      destination:
        service_resource_id: /subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/x
        spark_enabled: yes please
        subresource_target: file
    - name: b
      type: private_endpoint
      destination:
        service_resource_id: azureml://datastores/
    - name: c
      type: private_endpoint
      destination:
        spark_enabled: true
"#,
        expect![[r#"
            workspace.yml:6:30: `managed_network.outbound_rules[0].destination.service_resource_id`: Azure resource ids name Azure resources; a Spool private endpoint names a datastore or an attached compute (got `/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/x`)
              accepted: `azureml://datastores/<datastore>` or `azureml:<attached compute>`
            workspace.yml:7:24: `managed_network.outbound_rules[0].destination.spark_enabled`: must be a boolean (got `yes please`)
              accepted: `true` or `false`
            workspace.yml:8:29: `managed_network.outbound_rules[0].destination.subresource_target`: unknown subresource target (got `file`)
              accepted: `blob` or `dfs`
            workspace.yml:12:30: `managed_network.outbound_rules[1].destination.service_resource_id`: not a datastore or attached compute (got `azureml://datastores/`)
              accepted: `azureml://datastores/<datastore>` or `azureml:<attached compute>`
            workspace.yml:16:9: `managed_network.outbound_rules[2].destination.service_resource_id`: missing field
              accepted: `azureml://datastores/<datastore>` or `azureml:<attached compute>`"#]],
    );
}

#[test]
fn invalid_yaml_and_alias_bombs_are_rejected_with_their_position() {
    check(
        "managed_network: [\n",
        expect![
            "workspace.yml:2:1: `(document)`: invalid YAML: while parsing a node, did not find expected node content"
        ],
    );
    check(
        crate::yaml::ALIAS_BOMB,
        expect![[r#"
        workspace.yml:5:7: `(document)`: a list anchored here has 66430 nodes, and with the copy kept for its aliases the document would build 149470, more than the 100000 accepted
          accepted: documents that build at most 100000 nodes, counting everything an alias repeats; write the values out without aliases"#]],
    );
}

#[test]
fn internet_outbound_never_becomes_approved_only() {
    use IsolationMode::*;
    let switches: Vec<String> = [Disabled, AllowInternetOutbound, AllowOnlyApprovedOutbound]
        .iter()
        .flat_map(|from| {
            [Disabled, AllowInternetOutbound, AllowOnlyApprovedOutbound]
                .iter()
                .map(move |to| {
                    format!(
                        "{} -> {}: {}",
                        from.as_str(),
                        to.as_str(),
                        from.refuses_switch_to(*to).unwrap_or_else(|| "ok".into())
                    )
                })
        })
        .collect();
    expect![[r#"
        disabled -> disabled: ok
        disabled -> allow_internet_outbound: ok
        disabled -> allow_only_approved_outbound: ok
        allow_internet_outbound -> disabled: ok
        allow_internet_outbound -> allow_internet_outbound: ok
        allow_internet_outbound -> allow_only_approved_outbound: a workspace with `allow_internet_outbound` cannot switch to `allow_only_approved_outbound`, as in Azure ML
        allow_only_approved_outbound -> disabled: ok
        allow_only_approved_outbound -> allow_internet_outbound: ok
        allow_only_approved_outbound -> allow_only_approved_outbound: ok"#]].assert_eq(&switches.join("\n"));
}

#[test]
fn endpoint_targets() {
    let target = |id: &str| endpoint_target(id);
    assert_eq!(
        target("azureml://datastores/lake/"),
        Some(EndpointTarget::Datastore("lake".into()))
    );
    assert_eq!(
        target("azureml:team-pool"),
        Some(EndpointTarget::Compute("team-pool".into()))
    );
    assert_eq!(target("azureml:a/b"), None);
}

#[test]
fn missing_endpoints_are_reported_where_they_were_named() {
    let network = parse_workspace(
        "managed_network:\n  outbound_rules:\n    - name: lake\n      type: private_endpoint\n      destination:\n        service_resource_id: azureml://datastores/lake\n    - name: pool\n      type: private_endpoint\n      destination: {service_resource_id: \"azureml:team-pool\"}\n    - {name: pypi, type: fqdn, destination: pypi.org}\n",
    )
    .unwrap();
    let rendered: Vec<String> = missing_endpoints(&network, |target| {
        *target == EndpointTarget::Datastore("lake".into())
    })
    .iter()
    .map(|d| d.render("workspace.yml"))
    .collect();
    expect![[r#"
        workspace.yml:9:42: `managed_network.outbound_rules[1].destination.service_resource_id`: rule `pool` names no attached compute `team-pool` (got `azureml:team-pool`)
          accepted: an attached compute `spool compute list` shows, as `azureml:<name>`"#]].assert_eq(&rendered.join("\n"));
    assert!(missing_endpoints(&network, |_| true).is_empty());
}
