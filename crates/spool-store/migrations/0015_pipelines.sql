-- Pipeline jobs. A pipeline is a job row of kind `pipeline`; each node is a child job row with
-- `parent_id` set, recorded together with its parent before anything runs.
ALTER TABLE jobs ADD COLUMN parent_id INTEGER REFERENCES jobs(id);
CREATE INDEX jobs_by_parent ON jobs (parent_id);

-- What a pipeline decides by: its settings.
CREATE TABLE pipelines (
    job_id                   INTEGER PRIMARY KEY REFERENCES jobs(id),
    continue_on_step_failure INTEGER NOT NULL,
    force_rerun              INTEGER NOT NULL
);

-- One row per node: which child job runs it, the component it runs, the key an unchanged
-- later run matches to reuse it (NULL when the node may not be reused by others: not
-- deterministic, or run with force_rerun), and the job it reused instead of running.
CREATE TABLE pipeline_nodes (
    job_id        INTEGER PRIMARY KEY REFERENCES jobs(id),
    parent_id     INTEGER NOT NULL REFERENCES jobs(id),
    node          TEXT NOT NULL,
    component_id  TEXT NOT NULL,
    reuse_key     TEXT,
    reused_job_id INTEGER REFERENCES jobs(id),
    UNIQUE (parent_id, node)
);
CREATE INDEX pipeline_nodes_by_reuse_key ON pipeline_nodes (reuse_key);

-- A child waits for the children it reads from: it is not placed until each has Completed.
CREATE TABLE job_dependencies (
    job_id     INTEGER NOT NULL REFERENCES jobs(id),
    depends_on INTEGER NOT NULL REFERENCES jobs(id),
    PRIMARY KEY (job_id, depends_on)
);
