-- DHCP leases, the device inventory the DHCP exchanges feed, and static
-- reservations. Addresses are dotted-quad text, MACs lower-case colon text,
-- times fixed-width UTC text ("" = never).

-- One row per address a segment remembers. A MAC has at most one row per
-- segment (the store deletes its older row when it moves); a declined
-- address has mac '' and rests until expires_at.
CREATE TABLE dhcp_leases (
    segment    TEXT NOT NULL,
    ip         TEXT NOT NULL,
    mac        TEXT NOT NULL DEFAULT '',
    client_id  BLOB,
    hostname   TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL CHECK (state IN ('bound', 'released', 'declined')),
    start_at   TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    relay      TEXT NOT NULL DEFAULT '',
    relay_info BLOB,
    PRIMARY KEY (segment, ip)
);

CREATE INDEX dhcp_leases_mac ON dhcp_leases (mac, segment);
CREATE INDEX dhcp_leases_ip ON dhcp_leases (ip);

-- Every device ever seen by DHCP. The sighting columns are overwritten by
-- each exchange; approved, blocked, name and owner only by people, through
-- audited methods.
CREATE TABLE devices (
    mac          TEXT PRIMARY KEY,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    segment      TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT '',
    hostname     TEXT NOT NULL DEFAULT '',
    vendor_class TEXT NOT NULL DEFAULT '',
    fingerprint  TEXT NOT NULL DEFAULT '',
    os           TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    randomised   INTEGER NOT NULL DEFAULT 0 CHECK (randomised IN (0, 1)),
    approved     INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
    blocked      INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    name         TEXT NOT NULL DEFAULT '',
    owner        TEXT NOT NULL DEFAULT ''
);

CREATE INDEX devices_last_seen ON devices (last_seen);

CREATE TABLE dhcp_reservations (
    segment TEXT NOT NULL,
    mac     TEXT NOT NULL,
    ip      TEXT NOT NULL,
    PRIMARY KEY (segment, mac),
    UNIQUE (segment, ip)
);
