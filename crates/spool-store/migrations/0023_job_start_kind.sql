-- How a Spark job got its driver (`cold`, `warm`, `prewarmed`, `pool`), set when it starts
-- running; NULL before then, for command and pipeline jobs, and before this migration.
ALTER TABLE jobs ADD COLUMN start_kind TEXT;
