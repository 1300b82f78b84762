-- Alerts: findings attributed to a device and a person and folded into one
-- case per class and device/person while it is open; the DSL's case history;
-- "not a concern for this device" suppressions; the durable notification
-- outbox; and the alert pipeline's own progress.

-- Which component raised a finding (inspect, dhcp, portal, dnsguard,
-- radius); '' for rows written before sources were recorded.
ALTER TABLE findings ADD COLUMN source TEXT NOT NULL DEFAULT '';

CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY,
    rollup_key     TEXT NOT NULL,           -- class + who: repeats fold in while the alert is open
    class          TEXT NOT NULL CHECK (class <> ''),
    severity       TEXT NOT NULL CHECK (severity IN ('high', 'medium', 'low')),
    state          TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'triaged', 'action', 'closed')),
    outcome        TEXT NOT NULL DEFAULT '' CHECK (outcome IN ('', 'true-positive', 'false-positive')),
    count          INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
    first_seen     TEXT NOT NULL,
    last_seen      TEXT NOT NULL,
    segment        TEXT NOT NULL DEFAULT '',
    src_ip         TEXT NOT NULL DEFAULT '',
    src_mac        TEXT NOT NULL DEFAULT '',
    device_name    TEXT NOT NULL DEFAULT '',
    hostname       TEXT NOT NULL DEFAULT '',
    manufacturer   TEXT NOT NULL DEFAULT '',
    person_name    TEXT NOT NULL DEFAULT '',
    person_group   TEXT NOT NULL DEFAULT '', -- year/registration group or staff role
    room           TEXT NOT NULL DEFAULT '',
    access_point   TEXT NOT NULL DEFAULT '',
    ssid           TEXT NOT NULL DEFAULT '',
    visitor        TEXT NOT NULL DEFAULT '', -- portal attribution: the code and the name given
    attributed_by  TEXT NOT NULL DEFAULT '', -- radius, portal, lease, device, '' (nobody)
    destination    TEXT NOT NULL DEFAULT '',
    detail         TEXT NOT NULL DEFAULT '',
    evidence       TEXT NOT NULL DEFAULT '',
    updated_at     TEXT NOT NULL,
    notified_at    TEXT NOT NULL DEFAULT '' -- first notification sent (any channel)
);

CREATE INDEX alerts_open ON alerts (rollup_key, state);
CREATE INDEX alerts_state ON alerts (state, last_seen);
CREATE INDEX alerts_last_seen ON alerts (last_seen);

-- Every finding folded into an alert: the evidence of each repeat.
CREATE TABLE alert_findings (
    alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    finding_id INTEGER NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (alert_id, finding_id)
);

-- The case history: every change of state and every note, who and when.
CREATE TABLE alert_notes (
    id         INTEGER PRIMARY KEY,
    alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    state_from TEXT NOT NULL,
    state_to   TEXT NOT NULL,
    outcome    TEXT NOT NULL DEFAULT '',
    note       TEXT NOT NULL DEFAULT ''
);

CREATE INDEX alert_notes_alert ON alert_notes (alert_id, at);

-- "Not a concern for this device": one class for one MAC until an expiry.
CREATE TABLE alert_suppressions (
    id         INTEGER PRIMARY KEY,
    mac        TEXT NOT NULL CHECK (mac <> ''),
    class      TEXT NOT NULL CHECK (class <> ''),
    reason     TEXT NOT NULL CHECK (reason <> ''),
    until      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX alert_suppressions_mac ON alert_suppressions (mac, class, until);

-- The durable outbox: a notification is sent from here, retried with
-- back-off, and deleted only once delivered (sent_at set), so a mail server
-- that is down loses nothing and a restart resends what was not sent.
CREATE TABLE alert_outbox (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'digest', 'webhook', 'syslog')),
    alert_id    INTEGER REFERENCES alerts (id) ON DELETE CASCADE, -- NULL for a digest
    payload     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT NOT NULL,
    last_error  TEXT NOT NULL DEFAULT '',
    sent_at     TEXT NOT NULL DEFAULT ''
);

CREATE INDEX alert_outbox_due ON alert_outbox (sent_at, next_at);

-- The pipeline's progress: the last finding turned into alerts, the last
-- digest sent.
CREATE TABLE alert_progress (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
