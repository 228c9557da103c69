-- A session's or job's Python environment: the checked conda file (JSON: file name,
-- requirements, channels, whether to rebuild), NULL for the runtime's packages only.
ALTER TABLE sessions ADD COLUMN environment_json TEXT;
ALTER TABLE jobs ADD COLUMN environment_json TEXT;
