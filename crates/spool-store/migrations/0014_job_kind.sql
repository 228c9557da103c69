-- What a job runs: `spark` (a Spark application on a cluster), `command` (a shell command on
-- the Spool host, needing no cluster) or `pipeline` (steps that are jobs of their own).
-- Every job before this was a Spark job.
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'spark';
