-- What a job runs: `spark` (every job before this migration), `command`, or `pipeline` (a
-- parent whose nodes are child jobs; it runs nothing itself).
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'spark';
