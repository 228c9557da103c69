-- What an attached pool's master reported when it was attached (workers, cores, memory).
ALTER TABLE computes ADD COLUMN workers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE computes ADD COLUMN cores INTEGER NOT NULL DEFAULT 0;
ALTER TABLE computes ADD COLUMN memory_mb INTEGER NOT NULL DEFAULT 0;
