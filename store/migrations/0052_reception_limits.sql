-- What reception may put on a visitor code, as the network manager set it:
-- one row (id 1) or none (the built-in defaults, see
-- store.DefaultReceptionLimits). 0 in a max_* column means no cap.
CREATE TABLE reception_limits (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    max_devices     INTEGER NOT NULL CHECK (max_devices >= 1),
    max_rate_bps    INTEGER NOT NULL CHECK (max_rate_bps >= 0),
    max_quota_bytes INTEGER NOT NULL CHECK (max_quota_bytes >= 0),
    max_duration_s  INTEGER NOT NULL CHECK (max_duration_s >= 60),
    set_at          TEXT NOT NULL,
    set_by          TEXT NOT NULL
);
