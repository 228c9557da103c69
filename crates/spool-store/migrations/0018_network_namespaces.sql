-- Network isolation. `network_version` is the version of the workspace's network settings
-- (`workspace_network.version`, 0 for never set) a cluster was placed under: a warm cluster is
-- reused only under the same settings, and `workspace show` lists the live ones still on older
-- settings.
ALTER TABLE clusters ADD COLUMN network_version INTEGER NOT NULL DEFAULT 0;

-- The kernel objects of isolated work: the network namespace of a serverless cluster or of a
-- command job (`owner_kind`, `owner_id`, as for processes), the veth pair joining it to the
-- host and the /30 of `[network] cluster_subnet` they use (`slot`). A row is inserted
-- (`creating`) before anything is created and marked `removed` once the namespace is deleted,
-- so a crash in between leaves a row the next start reaps. The filter rules live inside the
-- namespace (`rules` is the nftables script applied there) and go with it; `outbound_rules`
-- are the workspace's rules as the owner started with them (JSON), from which a refresh
-- re-resolves `fqdn` names.
CREATE TABLE network_namespaces (
    id             INTEGER PRIMARY KEY,
    owner_kind     TEXT NOT NULL,
    owner_id       INTEGER NOT NULL,
    netns          TEXT NOT NULL,
    host_veth      TEXT NOT NULL,
    slot           INTEGER NOT NULL,
    host_address   TEXT NOT NULL,
    inner_address  TEXT NOT NULL,
    isolation_mode TEXT NOT NULL,
    outbound_rules TEXT NOT NULL,
    rules          TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('creating', 'up', 'removed')),
    created_at     TEXT NOT NULL,
    removed_at     TEXT
);
-- A slot, and an owner, have one live namespace at a time.
CREATE UNIQUE INDEX network_namespaces_live_slot ON network_namespaces (slot)
    WHERE state != 'removed';
CREATE UNIQUE INDEX network_namespaces_live_owner ON network_namespaces (owner_kind, owner_id)
    WHERE state != 'removed';
