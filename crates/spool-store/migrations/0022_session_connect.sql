-- The port of the Spark Connect server a `connect` session's driver runs (on the cluster's
-- address), set before the driver is spawned; the server's gRPC proxy forwards there. NULL for
-- other sessions and before the driver starts.
ALTER TABLE sessions ADD COLUMN connect_port INTEGER;
