-- Agents: worker hosts that run Spark workers for serverless clusters on instruction.
CREATE TABLE agents (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    address     TEXT,
    cores       INTEGER NOT NULL DEFAULT 0,
    memory_mb   INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL DEFAULT 'new',   -- new, connected, lost
    state_reason TEXT,
    last_seen   TEXT,
    created_at  TEXT NOT NULL
);

-- Where a cluster's executors run: the server's own host (agent NULL) or an agent.
CREATE TABLE cluster_workers (
    id          INTEGER PRIMARY KEY,
    cluster_id  INTEGER NOT NULL REFERENCES clusters(id),
    agent       TEXT,
    executors   INTEGER NOT NULL,
    cores       INTEGER NOT NULL,
    memory_mb   INTEGER NOT NULL
);
CREATE INDEX cluster_workers_cluster ON cluster_workers(cluster_id);
