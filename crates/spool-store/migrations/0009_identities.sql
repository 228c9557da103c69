-- Managed identities: user-assigned ones an admin creates (and may attach to the workspace, so
-- serverless jobs with `identity: {type: managed}` act as them), and one system-assigned identity
-- per attached pool, named `pool/<pool>`, created on attach and deleted on detach.
CREATE TABLE identities (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    client_id     TEXT NOT NULL UNIQUE,
    principal_id  TEXT NOT NULL UNIQUE,
    pool          TEXT,
    in_workspace  INTEGER NOT NULL DEFAULT 0,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- The principal a job acts as (a user's name or an identity's), resolved at submit.
ALTER TABLE jobs ADD COLUMN principal TEXT;
