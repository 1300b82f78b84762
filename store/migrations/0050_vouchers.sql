-- Visitor codes (vouchers), the devices that redeemed them, every
-- acceptance of the portal's Acceptable Use Policy, every code attempt, the
-- AUP texts and the per-site key that codes are hashed with. MACs are
-- lower-case colon text, addresses dotted quads, times fixed-width UTC text
-- ("" = never / not set). A code is never stored: only its HMAC under the
-- site key, so a copy of the database cannot be used to get online.

-- One row: the random HMAC key codes are hashed with. Created on first use.
CREATE TABLE voucher_key (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL CHECK (length(key) >= 32)
);

CREATE TABLE voucher_batches (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE vouchers (
    id                INTEGER PRIMARY KEY,
    code_hash         TEXT NOT NULL UNIQUE,
    batch_id          INTEGER REFERENCES voucher_batches (id),
    created_by        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    duration_s        INTEGER NOT NULL CHECK (duration_s > 0),
    start_on_use      INTEGER NOT NULL DEFAULT 1 CHECK (start_on_use IN (0, 1)),
    not_before        TEXT NOT NULL DEFAULT '',
    not_after         TEXT NOT NULL DEFAULT '',
    max_devices       INTEGER NOT NULL DEFAULT 1 CHECK (max_devices >= 0), -- 0: unlimited
    rate_up_bps       INTEGER NOT NULL DEFAULT 0 CHECK (rate_up_bps >= 0),
    rate_down_bps     INTEGER NOT NULL DEFAULT 0 CHECK (rate_down_bps >= 0),
    quota_bytes       INTEGER NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),
    note              TEXT NOT NULL DEFAULT '',
    first_used_at     TEXT NOT NULL DEFAULT '',
    expires_at        TEXT NOT NULL DEFAULT '', -- '' until the clock has started
    revoked_at        TEXT NOT NULL DEFAULT ''
);

CREATE INDEX vouchers_created_by ON vouchers (created_by, created_at);
CREATE INDEX vouchers_batch ON vouchers (batch_id);

-- Devices that redeemed a code. A device that logged out keeps its slot (it
-- may come back with the same code) but is not re-admitted on its own.
CREATE TABLE voucher_devices (
    voucher_id    INTEGER NOT NULL REFERENCES vouchers (id) ON DELETE CASCADE,
    mac           TEXT NOT NULL,
    ip            TEXT NOT NULL DEFAULT '',
    first_at      TEXT NOT NULL,
    last_at       TEXT NOT NULL,
    logged_out_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (voucher_id, mac)
);

CREATE INDEX voucher_devices_mac ON voucher_devices (mac);

-- Every acceptance of the AUP with a code: the record a school keeps.
CREATE TABLE guest_acceptances (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    voucher_id  INTEGER NOT NULL REFERENCES vouchers (id) ON DELETE CASCADE,
    mac         TEXT NOT NULL,
    randomised  INTEGER NOT NULL CHECK (randomised IN (0, 1)),
    ip          TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    company     TEXT NOT NULL DEFAULT '',
    aup_version TEXT NOT NULL
);

CREATE INDEX guest_acceptances_at ON guest_acceptances (at);

-- Every code typed at the portal, without the code.
CREATE TABLE voucher_attempts (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    mac     TEXT NOT NULL DEFAULT '',
    ip      TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL
);

CREATE INDEX voucher_attempts_at ON voucher_attempts (at);

-- The AUP texts ever published; the newest is in force. version is the
-- SHA-256 of the texts, recorded with each acceptance.
CREATE TABLE portal_aup (
    id      INTEGER PRIMARY KEY,
    version TEXT NOT NULL,
    text_en TEXT NOT NULL,
    text_cy TEXT NOT NULL DEFAULT '',
    set_at  TEXT NOT NULL,
    set_by  TEXT NOT NULL
);
