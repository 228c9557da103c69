-- Pre-warmed sessions: drivers started ahead of demand, owned by no user until claimed.
ALTER TABLE sessions ADD COLUMN prewarmed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sessions_prewarmed ON sessions(prewarmed, state, runtime);
