-- One row per `gatehouse backup` run, for the overview's "last backup":
-- when, where to, how big, and whether it worked. Times are fixed-width
-- UTC text; error is '' for a backup that was written. The store keeps the
-- newest 100 runs.
CREATE TABLE backup_runs (
    id    INTEGER PRIMARY KEY,
    at    TEXT NOT NULL,
    file  TEXT NOT NULL DEFAULT '',
    size  INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
    error TEXT NOT NULL DEFAULT ''
);
