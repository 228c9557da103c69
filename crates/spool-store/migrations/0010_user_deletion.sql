-- Deleted users keep their row (their jobs, sessions and clusters refer to it), lose their
-- token (the hash is replaced by one no token has) and are found by no lookup.
ALTER TABLE users ADD COLUMN deleted_at TEXT;
