-- Users own jobs and clusters. Only a SHA-256 of each token is kept.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    is_admin    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

CREATE TABLE datastores (
    name        TEXT PRIMARY KEY,
    root        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- A serverless cluster: one Spark standalone master and its workers.
CREATE TABLE clusters (
    id                 INTEGER PRIMARY KEY,
    owner_id           INTEGER NOT NULL REFERENCES users(id),
    runtime            TEXT NOT NULL,
    shape_key          TEXT NOT NULL,
    shape_json         TEXT NOT NULL,
    state              TEXT NOT NULL,
    reserved_cores     INTEGER NOT NULL,
    reserved_memory_mb INTEGER NOT NULL,
    master_url         TEXT,
    master_ui_url      TEXT,
    created_at         TEXT NOT NULL,
    ready_at           TEXT,
    idle_since         TEXT,
    ended_at           TEXT,
    end_reason         TEXT
);
CREATE INDEX clusters_state ON clusters(state);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    owner_id         INTEGER NOT NULL REFERENCES users(id),
    display_name     TEXT NOT NULL,
    experiment_name  TEXT NOT NULL,
    status           TEXT NOT NULL,
    status_reason    TEXT,
    error            TEXT,
    spec_json        TEXT NOT NULL,
    sizing_json      TEXT NOT NULL,
    runtime          TEXT NOT NULL,
    compute          TEXT NOT NULL,
    identity         TEXT NOT NULL,
    cluster_id       INTEGER REFERENCES clusters(id),
    spark_app_id     TEXT,
    spark_ui_url     TEXT,
    launch_json      TEXT,
    phases_json      TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL,
    ended_at         TEXT
);
CREATE INDEX jobs_owner ON jobs(owner_id);
CREATE INDEX jobs_status ON jobs(status);

-- Every process Spool starts, recorded before it is spawned.
CREATE TABLE processes (
    id           INTEGER PRIMARY KEY,
    owner_kind   TEXT NOT NULL,
    owner_id     INTEGER NOT NULL,
    role         TEXT NOT NULL,
    command      TEXT NOT NULL,
    log_dir      TEXT NOT NULL,
    pid          INTEGER,
    start_ticks  INTEGER,
    state        TEXT NOT NULL,
    exit_code    INTEGER,
    outcome      TEXT,
    started_at   TEXT NOT NULL,
    ended_at     TEXT
);
CREATE INDEX processes_state ON processes(state);

-- What the server did on its own: restarts, adoptions, reaping.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    message  TEXT NOT NULL
);
