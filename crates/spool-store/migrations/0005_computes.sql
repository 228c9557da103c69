-- Attached Spark pools. Each has a cluster row in state 'attached' (no processes, no reserved
-- capacity) that jobs and sessions are placed on; Spool never tears it down.
CREATE TABLE computes (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    master_url    TEXT NOT NULL,
    master_ui_url TEXT NOT NULL,
    spark_version TEXT NOT NULL,
    runtime       TEXT NOT NULL,
    spec_json     TEXT NOT NULL,
    cluster_id    INTEGER NOT NULL REFERENCES clusters(id),
    attached_by   INTEGER NOT NULL REFERENCES users(id),
    attached_at   TEXT NOT NULL
);

-- Where a session runs and the identity it acts as.
ALTER TABLE sessions ADD COLUMN compute TEXT NOT NULL DEFAULT 'serverless';
ALTER TABLE sessions ADD COLUMN identity TEXT NOT NULL DEFAULT 'user_identity';
