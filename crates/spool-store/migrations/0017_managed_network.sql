-- The workspace's managed network (`spool workspace update`): one row, absent until the first
-- update (then the default, `disabled` with no rules, is shown). `rules_json` holds the checked
-- outbound rules (`spool_spec::network::OutboundRule`); `version` grows by one with every
-- update, so clusters can record which settings they started with. `had_internet_outbound`
-- stays 1 once the mode was `allow_internet_outbound`: such a workspace never switches to
-- `allow_only_approved_outbound` (Azure's rule), not even by way of `disabled`.
CREATE TABLE workspace_network (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    isolation_mode TEXT NOT NULL,
    rules_json     TEXT NOT NULL,
    version        INTEGER NOT NULL,
    had_internet_outbound INTEGER NOT NULL,
    updated_by     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
