-- Network isolation of serverless clusters. `network_version` is the version of the workspace's
-- network settings (`workspace_network.version`, 0 for never set) a cluster was placed under: a
-- warm cluster is reused only under the same settings, and `workspace show` lists the live ones
-- still on older settings.
ALTER TABLE clusters ADD COLUMN network_version INTEGER NOT NULL DEFAULT 0;

-- The kernel objects of an isolated cluster: its network namespace, the veth pair joining it to
-- the host and the /30 of `[network] cluster_subnet` they use (`slot`). A row is inserted
-- (`creating`) before anything is created and marked `removed` once the namespace is deleted,
-- so a crash in between leaves a row the next start reaps. The filter rules live inside the
-- namespace (`rules` is the nftables script applied there) and go with it.
CREATE TABLE cluster_networks (
    cluster_id     INTEGER PRIMARY KEY REFERENCES clusters (id),
    netns          TEXT NOT NULL,
    host_veth      TEXT NOT NULL,
    slot           INTEGER NOT NULL,
    host_address   TEXT NOT NULL,
    cluster_address TEXT NOT NULL,
    isolation_mode TEXT NOT NULL,
    outbound_rules TEXT NOT NULL,
    rules          TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('creating', 'up', 'removed')),
    created_at     TEXT NOT NULL,
    removed_at     TEXT
);
-- A slot is used by one live namespace at a time.
CREATE UNIQUE INDEX cluster_networks_live_slot ON cluster_networks (slot) WHERE state != 'removed';
