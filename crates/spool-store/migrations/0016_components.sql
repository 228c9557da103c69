-- Registered components (`spool component create`), workspace-wide: one container per name,
-- one row per version. Nothing is deleted: archiving hides a version (its own flag) or every
-- version of a name (the container's flag) from listings, and archived components still run.
CREATE TABLE component_containers (
    name       TEXT PRIMARY KEY,
    archived   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE components (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL REFERENCES component_containers(name),
    version    TEXT NOT NULL,
    spec_json  TEXT NOT NULL,
    owner_id   INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    archived   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, version)
);
