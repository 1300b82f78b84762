-- A log of every change to what DHCP needs to know about a device: that it
-- is recorded, approved or blocked. The DHCP server keeps that state in
-- memory (a lookup per packet costs more than the rest of the exchange) and
-- follows this log to stay correct whoever writes the devices table: the
-- admin pages, people, RADIUS, the purges, the CLI in another process, or a
-- person with the sqlite3 shell. Triggers fill it, so no writer can forget.
--
-- Each row carries the device's state after the change (present 0: the
-- record was deleted), so applying rows in seq order converges on the
-- table. Only the last 8192 rows are kept: a reader that fell further
-- behind sees the gap (its seq is older than the oldest row) and reloads.
CREATE TABLE device_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    mac      TEXT NOT NULL,
    present  INTEGER NOT NULL CHECK (present IN (0, 1)),
    approved INTEGER NOT NULL CHECK (approved IN (0, 1)),
    blocked  INTEGER NOT NULL CHECK (blocked IN (0, 1))
);

CREATE TRIGGER device_changes_insert AFTER INSERT ON devices BEGIN
    INSERT INTO device_changes (mac, present, approved, blocked) VALUES (new.mac, 1, new.approved, new.blocked);
END;

-- DHCP's sighting upsert sets none of these columns, so it logs nothing.
CREATE TRIGGER device_changes_update AFTER UPDATE OF mac, approved, blocked ON devices
WHEN old.mac IS NOT new.mac OR old.approved IS NOT new.approved OR old.blocked IS NOT new.blocked BEGIN
    INSERT INTO device_changes (mac, present, approved, blocked) SELECT old.mac, 0, 0, 0 WHERE old.mac IS NOT new.mac;
    INSERT INTO device_changes (mac, present, approved, blocked) VALUES (new.mac, 1, new.approved, new.blocked);
END;

CREATE TRIGGER device_changes_delete AFTER DELETE ON devices BEGIN
    INSERT INTO device_changes (mac, present, approved, blocked) VALUES (old.mac, 0, 0, 0);
END;

CREATE TRIGGER device_changes_prune AFTER INSERT ON device_changes BEGIN
    DELETE FROM device_changes WHERE seq <= new.seq - 8192;
END;

-- How many device records there are, kept by triggers: the inventory bound
-- (evictDevicesTx) is checked in every DHCP commit, and COUNT(*) walks the
-- whole table.
CREATE TABLE device_count (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    n    INTEGER NOT NULL
);
INSERT INTO device_count (only, n) SELECT 1, COUNT(*) FROM devices;

CREATE TRIGGER device_count_insert AFTER INSERT ON devices BEGIN
    UPDATE device_count SET n = n + 1 WHERE only = 1;
END;

CREATE TRIGGER device_count_delete AFTER DELETE ON devices BEGIN
    UPDATE device_count SET n = n - 1 WHERE only = 1;
END;
