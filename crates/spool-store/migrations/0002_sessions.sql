-- Interactive sessions (Livy's integer ids) and their statements.
CREATE TABLE sessions (
    id                INTEGER PRIMARY KEY,
    name              TEXT UNIQUE,
    owner_id          INTEGER NOT NULL REFERENCES users(id),
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,
    state_reason      TEXT,
    runtime           TEXT NOT NULL,
    sizing_json       TEXT NOT NULL,
    conf_json         TEXT NOT NULL DEFAULT '{}',
    idle_timeout_s    INTEGER NOT NULL,
    cluster_id        INTEGER REFERENCES clusters(id),
    repl_port         INTEGER,
    spark_app_id      TEXT,
    spark_ui_url      TEXT,
    phases_json       TEXT NOT NULL DEFAULT '[]',
    created_at        TEXT NOT NULL,
    last_activity_at  TEXT NOT NULL,
    ended_at          TEXT
);
CREATE INDEX sessions_owner ON sessions(owner_id);
CREATE INDEX sessions_state ON sessions(state);

CREATE TABLE statements (
    id            INTEGER PRIMARY KEY,
    session_id    INTEGER NOT NULL REFERENCES sessions(id),
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    code          TEXT NOT NULL,
    state         TEXT NOT NULL,
    output_json   TEXT,
    progress      REAL NOT NULL DEFAULT 0,
    started_ms    INTEGER NOT NULL DEFAULT 0,
    completed_ms  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (session_id, seq)
);
