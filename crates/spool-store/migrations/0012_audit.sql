-- The audit log: every state-changing call and every denial, with who made it, the identity it
-- acted as, the action, its target and its result. Append-only: rows are inserted, never
-- changed, and deleted only by retention pruning (oldest first). AUTOINCREMENT keeps ids from
-- being reused, so an entry's id orders it for good. No token or request body is ever stored.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    principal  TEXT NOT NULL,
    identity   TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    status     INTEGER NOT NULL,
    result     TEXT NOT NULL
);
CREATE INDEX audit_log_by_at ON audit_log (at);
CREATE INDEX audit_log_by_principal ON audit_log (principal, id);
CREATE TRIGGER audit_log_is_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
