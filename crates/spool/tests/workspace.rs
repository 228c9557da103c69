//! The workspace's managed network settings through the real CLI: the default, an update from
//! a file, its errors, an Owner-only change, audit entries, and a restart that keeps them.
//! Starts no JVM.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use serde_json::{Value, json};
use spool_test::{TestServer, stderr, stdout};

fn show(server: &TestServer, token: &str) -> Value {
    let out = server.cli_as(token, &["workspace", "show", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn managed_network_settings_are_validated_kept_and_changed_only_by_owners() {
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_spool"), &[], None);
    let dir = tempfile::tempdir().unwrap();
    let out = server.cli(&["user", "create", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alice = stdout(&out).trim().to_string();

    // Never set: disabled, no rules, version 0; anyone may look.
    let default = show(&server, &alice);
    assert_eq!(
        default,
        json!({"managed_network": {"isolation_mode": "disabled", "outbound_rules": [], "version": 0}, "clusters_on_older_settings": []})
    );

    // The example shipped in the repository names the default datastore, which exists.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/workspace/network.yml"
    );
    let out = server.cli(&["workspace", "update", "--file", example, "-o", "json"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    assert!(
        stderr(&out).contains("serverless clusters started from now on run under it"),
        "{}",
        stderr(&out)
    );
    let shown = show(&server, &server.token);
    let network = &shown["managed_network"];
    assert_eq!(network["isolation_mode"], "allow_only_approved_outbound");
    assert_eq!(network["version"], 1);
    assert_eq!(network["updated_by"], "admin");
    assert_eq!(network["outbound_rules"].as_array().unwrap().len(), 4);
    assert_eq!(
        network["outbound_rules"][2],
        json!({"name": "warehouse", "type": "ip", "destination": {"address_prefix": "10.20.0.0/16", "protocol": "TCP", "port_ranges": "5432,8000-8100"}})
    );
    // The table shows the mode and the rules.
    let out = server.cli(&["workspace", "show", "-o", "table"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for expected in [
        "allow_only_approved_outbound",
        "warehouse",
        "*.pythonhosted.org",
    ] {
        assert!(stdout(&out).contains(expected), "{}", stdout(&out));
    }

    // An invalid file is refused with its position, and changes nothing.
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "managed_network:\n  isolation_mode: allow_only_approved_outbound\n  outbound_rules:\n    - name: db\n      type: ip\n      destination:\n        address_prefix: 10.0.0.0/24\n        protocol: TCP\n        port_ranges: 443-80\n",
    )
    .unwrap();
    let out = server.cli(&["workspace", "update", "--file", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bad.yml:9:22: `managed_network.outbound_rules[0].destination.port_ranges`: the range `443-80` ends below its start"),
        "{}",
        stderr(&out)
    );
    // A private endpoint naming no datastore is refused by the server.
    let missing = dir.path().join("missing.yml");
    std::fs::write(
        &missing,
        "managed_network:\n  outbound_rules:\n    - name: lake\n      type: private_endpoint\n      destination:\n        service_resource_id: azureml://datastores/nowhere\n",
    )
    .unwrap();
    let out = server.cli(&["workspace", "update", "--file", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("missing.yml:6:30: `managed_network.outbound_rules[0].destination.service_resource_id`: rule `lake` names no datastore `nowhere`"),
        "{}",
        stderr(&out)
    );

    // Only Owners change it: alice (AzureML Data Scientist) is refused.
    let out = server.cli_as(&alice, &["workspace", "update", "--file", example]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "user `alice` (AzureML Data Scientist) cannot change the workspace's network settings"
        ),
        "{}",
        stderr(&out)
    );

    // Azure's rule: internet outbound never becomes approved-only.
    let internet = dir.path().join("internet.yml");
    std::fs::write(
        &internet,
        "managed_network:\n  isolation_mode: allow_internet_outbound\n",
    )
    .unwrap();
    let out = server.cli(&["workspace", "update", "--file", internet.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["workspace", "update", "--file", example]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a workspace with `allow_internet_outbound` cannot switch to `allow_only_approved_outbound`"),
        "{}",
        stderr(&out)
    );

    // Not even by way of `disabled`.
    let disabled = dir.path().join("disabled.yml");
    std::fs::write(&disabled, "managed_network:\n  isolation_mode: disabled\n").unwrap();
    let out = server.cli(&["workspace", "update", "--file", disabled.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["workspace", "update", "--file", example]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot switch to `allow_only_approved_outbound`, as in Azure ML (the mode is `disabled` now)"),
        "{}",
        stderr(&out)
    );

    // Every update and the denial are in the audit log.
    let out = server.cli(&["audit", "list", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let entries: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let updates: Vec<String> = entries
        .iter()
        .rev()
        .filter(|e| e["action"] == "workspace.update")
        .map(|e| format!("{} {}", e["principal"].as_str().unwrap(), e["status"]))
        .collect();
    assert_eq!(
        updates,
        [
            "admin 200",
            "admin 400",
            "admin 400",
            "alice 403",
            "admin 200",
            "admin 409",
            "admin 200",
            "admin 409"
        ]
    );

    // A restart keeps the settings and their version.
    server.stop();
    server.restart();
    let kept = show(&server, &alice);
    assert_eq!(kept["managed_network"]["isolation_mode"], "disabled");
    assert_eq!(kept["managed_network"]["version"], 3);
    assert_eq!(kept["managed_network"]["outbound_rules"], json!([]));
    server.finish();
}
