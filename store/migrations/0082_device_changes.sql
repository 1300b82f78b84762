-- The device change log: the MAC of every change to what any in-memory
-- copy of devices depends on, whoever makes it (the daemon, the admin
-- pages, people, RADIUS, the purges, `gatehouse device ...` in another
-- process, the sqlite3 shell). Triggers fill it, so no writer can forget.
-- Readers (DHCP's device states, RADIUS's device cache, RADIUS's PMK
-- table) each keep their own position and follow it through
-- Store.ChangesSince; see device_changes.go for the reading rule.
--
-- Covered: devices (mac, approved, blocked, name, owner, person_id),
-- radius_devices, radius_device_old_keys, radius_device_pmks. DHCP's
-- sightings (last_seen, ip, hostname...) log nothing: only an insert or a
-- real change of a covered column does.
--
-- seq is AUTOINCREMENT: never reused, and a rolled-back transaction takes
-- its numbers back with it, so the log is gap-free until pruned.
CREATE TABLE device_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mac TEXT NOT NULL
);

CREATE TRIGGER device_changes_devices_insert AFTER INSERT ON devices BEGIN
    INSERT INTO device_changes (mac) VALUES (new.mac);
END;

CREATE TRIGGER device_changes_devices_update
AFTER UPDATE OF mac, approved, blocked, name, owner, person_id ON devices
WHEN old.mac IS NOT new.mac OR old.approved IS NOT new.approved OR old.blocked IS NOT new.blocked
  OR old.name IS NOT new.name OR old.owner IS NOT new.owner OR old.person_id IS NOT new.person_id BEGIN
    INSERT INTO device_changes (mac) SELECT old.mac WHERE old.mac IS NOT new.mac;
    INSERT INTO device_changes (mac) VALUES (new.mac);
END;

CREATE TRIGGER device_changes_devices_delete AFTER DELETE ON devices BEGIN
    INSERT INTO device_changes (mac) VALUES (old.mac);
END;

CREATE TRIGGER device_changes_radius_insert AFTER INSERT ON radius_devices BEGIN
    INSERT INTO device_changes (mac) VALUES (new.mac);
END;

CREATE TRIGGER device_changes_radius_update AFTER UPDATE ON radius_devices BEGIN
    INSERT INTO device_changes (mac) SELECT old.mac WHERE old.mac IS NOT new.mac;
    INSERT INTO device_changes (mac) VALUES (new.mac);
END;

CREATE TRIGGER device_changes_radius_delete AFTER DELETE ON radius_devices BEGIN
    INSERT INTO device_changes (mac) VALUES (old.mac);
END;

CREATE TRIGGER device_changes_old_keys_insert AFTER INSERT ON radius_device_old_keys BEGIN
    INSERT INTO device_changes (mac) VALUES (new.mac);
END;

CREATE TRIGGER device_changes_old_keys_update AFTER UPDATE ON radius_device_old_keys BEGIN
    INSERT INTO device_changes (mac) SELECT old.mac WHERE old.mac IS NOT new.mac;
    INSERT INTO device_changes (mac) VALUES (new.mac);
END;

CREATE TRIGGER device_changes_old_keys_delete AFTER DELETE ON radius_device_old_keys BEGIN
    INSERT INTO device_changes (mac) VALUES (old.mac);
END;

CREATE TRIGGER device_changes_pmks_insert AFTER INSERT ON radius_device_pmks BEGIN
    INSERT INTO device_changes (mac) VALUES (new.mac);
END;

CREATE TRIGGER device_changes_pmks_update AFTER UPDATE ON radius_device_pmks BEGIN
    INSERT INTO device_changes (mac) SELECT old.mac WHERE old.mac IS NOT new.mac;
    INSERT INTO device_changes (mac) VALUES (new.mac);
END;

CREATE TRIGGER device_changes_pmks_delete AFTER DELETE ON radius_device_pmks BEGIN
    INSERT INTO device_changes (mac) VALUES (old.mac);
END;

-- Only the last 10,000 changes are kept: a bulk import or purge beyond
-- that makes readers reload in full rather than the table grow unbounded.
CREATE TRIGGER device_changes_prune AFTER INSERT ON device_changes
WHEN new.seq > 10000 BEGIN
    DELETE FROM device_changes WHERE seq <= new.seq - 10000;
END;
