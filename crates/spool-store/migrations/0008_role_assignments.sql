-- Data roles on datastores, or on a path prefix inside one ('' is the whole datastore).
-- The assignee is a principal's name: a user today, managed identities later (`assignee_kind`).
CREATE TABLE role_assignments (
    id             INTEGER PRIMARY KEY,
    assignee_kind  TEXT NOT NULL DEFAULT 'user',
    assignee       TEXT NOT NULL,
    role           TEXT NOT NULL,
    datastore      TEXT NOT NULL,
    prefix         TEXT NOT NULL DEFAULT '',
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    UNIQUE (assignee_kind, assignee, role, datastore, prefix)
);
CREATE INDEX role_assignments_by_assignee ON role_assignments (assignee_kind, assignee);
