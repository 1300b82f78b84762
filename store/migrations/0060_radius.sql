-- RADIUS: accounting sessions, the rooms access points stand in, and what
-- the RADIUS server keeps per device (the segment it was approved for, its
-- personal Wi-Fi keys sealed with the site key). Times are fixed-width UTC
-- text ("" = not yet), MACs lower-case colon text.

-- One row per accounting session a NAS reported. A session is open while
-- stopped_at is ''. (nas, acct_session_id) is unique among open sessions
-- only: access points reuse session ids after a reboot.
CREATE TABLE radius_sessions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    nas             TEXT NOT NULL,             -- the client's name in the configuration
    nas_addr        TEXT NOT NULL,             -- where its requests came from (CoA goes there)
    acct_session_id TEXT NOT NULL,
    username        TEXT NOT NULL DEFAULT '',
    person          TEXT NOT NULL DEFAULT '',
    mac             TEXT NOT NULL DEFAULT '',
    ip              TEXT NOT NULL DEFAULT '',
    ap              TEXT NOT NULL DEFAULT '',  -- Called-Station-Id's MAC part
    room            TEXT NOT NULL DEFAULT '',
    ssid            TEXT NOT NULL DEFAULT '',
    nas_port        TEXT NOT NULL DEFAULT '',
    started_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    stopped_at      TEXT NOT NULL DEFAULT '',
    stop_cause      TEXT NOT NULL DEFAULT '',
    in_octets       INTEGER NOT NULL DEFAULT 0,
    out_octets      INTEGER NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX radius_sessions_open ON radius_sessions (nas, acct_session_id) WHERE stopped_at = '';
-- "Who held this address / MAC at that moment?" walks these.
CREATE INDEX radius_sessions_ip ON radius_sessions (ip, started_at);
CREATE INDEX radius_sessions_mac ON radius_sessions (mac, started_at);
CREATE INDEX radius_sessions_started ON radius_sessions (started_at);

-- The room each access point is in, set by the network manager.
CREATE TABLE radius_rooms (
    ap   TEXT PRIMARY KEY,   -- MAC, lower-case colon text
    room TEXT NOT NULL
);

-- What the RADIUS server keeps per device beside the devices table.
CREATE TABLE radius_devices (
    mac        TEXT PRIMARY KEY,
    segment    TEXT NOT NULL DEFAULT '',  -- the segment it was approved for; '' = the SSID's
    psk_sealed BLOB,                       -- AES-GCM(site key, personal key); NULL = none
    psk_set_at TEXT NOT NULL DEFAULT ''
);
