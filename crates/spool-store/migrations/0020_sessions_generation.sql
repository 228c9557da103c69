-- A counter that every change to what a session listing shows moves forward (triggers, so no
-- write path can forget it). The store keeps the last listing in memory and reads it again only
-- when the counter has moved: listing sessions is then one one-row query.
CREATE TABLE sessions_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO sessions_generation (id, n) VALUES (1, 0);

CREATE TRIGGER sessions_generation_insert AFTER INSERT ON sessions
BEGIN UPDATE sessions_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sessions_generation_update AFTER UPDATE ON sessions
BEGIN UPDATE sessions_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sessions_generation_delete AFTER DELETE ON sessions
BEGIN UPDATE sessions_generation SET n = n + 1 WHERE id = 1; END;
-- A listing shows its owner's name.
CREATE TRIGGER sessions_generation_user_name AFTER UPDATE OF name ON users
BEGIN UPDATE sessions_generation SET n = n + 1 WHERE id = 1; END;
