-- The principal work runs as (`user:<name>` or `identity:<name>`): a serverless cluster is reused
-- only for work of the same principal, and with enforcement on its processes run under that
-- principal's OS account. '' on rows from before.
ALTER TABLE jobs ADD COLUMN runs_as TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN runs_as TEXT NOT NULL DEFAULT '';
ALTER TABLE clusters ADD COLUMN runs_as TEXT NOT NULL DEFAULT '';
-- Whether the operating system enforced the principal's data access while the work ran
-- (1: its processes ran under the principal's account; 0: the server could not switch accounts).
ALTER TABLE jobs ADD COLUMN enforced INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN enforced INTEGER NOT NULL DEFAULT 0;

-- The OS accounts Spool created, one per principal. A row is written before `useradd` runs
-- (uid NULL until it has), so an account a crash left half-made is found and finished or removed.
CREATE TABLE os_accounts (
    id          INTEGER PRIMARY KEY,
    principal   TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL UNIQUE,
    uid         INTEGER,
    gid         INTEGER,
    created_at  TEXT NOT NULL
);
