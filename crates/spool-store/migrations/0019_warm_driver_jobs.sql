-- Batch jobs on pre-warmed drivers. `driver_path` is how a Spark job's driver was started
-- (`spark_submit`, or `warm_driver`: a pre-warmed session's driver ran the job's entry and was
-- then never reused), set when the job is placed; `driver_reason` says why that path (which
-- driver it took, or what kept it from a warm one). NULL for jobs placed before this migration
-- and for jobs not placed yet.
ALTER TABLE jobs ADD COLUMN driver_path TEXT;
ALTER TABLE jobs ADD COLUMN driver_reason TEXT;
