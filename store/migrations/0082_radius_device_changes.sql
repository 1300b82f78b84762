-- The RADIUS server keeps the devices it answers for in memory (package
-- radius, devcache.go) and must learn of every change to what it decides on,
-- whoever makes it: the daemon itself, the admin pages, or `gatehouse device
-- approve` running in another process while the daemon runs. These triggers
-- log the MAC of every such change; the server reads max(seq) before trusting
-- its copy and, when it moved, drops the MACs logged since (see
-- Store.RADIUSDeviceChangesSince).
--
-- Only the columns the RADIUS decision reads fire the devices triggers, so
-- DHCP's last_seen/ip/hostname updates log nothing. seq is AUTOINCREMENT:
-- never reused, and a rolled-back transaction takes its numbers back with
-- it, so the log is gap-free until pruned; the reader treats a gap (rows
-- pruned past where it last read) as "everything may have changed".
CREATE TABLE radius_device_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mac TEXT NOT NULL
);

CREATE TRIGGER radius_device_changes_devices_insert AFTER INSERT ON devices
BEGIN
    INSERT INTO radius_device_changes (mac) VALUES (NEW.mac);
END;

CREATE TRIGGER radius_device_changes_devices_update
AFTER UPDATE OF mac, approved, blocked, name, owner, person_id ON devices
BEGIN
    INSERT INTO radius_device_changes (mac) SELECT NEW.mac UNION SELECT OLD.mac;
END;

CREATE TRIGGER radius_device_changes_devices_delete AFTER DELETE ON devices
BEGIN
    INSERT INTO radius_device_changes (mac) VALUES (OLD.mac);
END;

CREATE TRIGGER radius_device_changes_radius_insert AFTER INSERT ON radius_devices
BEGIN
    INSERT INTO radius_device_changes (mac) VALUES (NEW.mac);
END;

CREATE TRIGGER radius_device_changes_radius_update AFTER UPDATE ON radius_devices
BEGIN
    INSERT INTO radius_device_changes (mac) SELECT NEW.mac UNION SELECT OLD.mac;
END;

CREATE TRIGGER radius_device_changes_radius_delete AFTER DELETE ON radius_devices
BEGIN
    INSERT INTO radius_device_changes (mac) VALUES (OLD.mac);
END;

CREATE TRIGGER radius_device_changes_old_keys_insert AFTER INSERT ON radius_device_old_keys
BEGIN
    INSERT INTO radius_device_changes (mac) VALUES (NEW.mac);
END;

CREATE TRIGGER radius_device_changes_old_keys_update AFTER UPDATE ON radius_device_old_keys
BEGIN
    INSERT INTO radius_device_changes (mac) SELECT NEW.mac UNION SELECT OLD.mac;
END;

CREATE TRIGGER radius_device_changes_old_keys_delete AFTER DELETE ON radius_device_old_keys
BEGIN
    INSERT INTO radius_device_changes (mac) VALUES (OLD.mac);
END;

-- The log keeps its last 10,000 changes: a bulk import or purge beyond that
-- makes the reader start afresh rather than the table grow without bound.
CREATE TRIGGER radius_device_changes_prune AFTER INSERT ON radius_device_changes
WHEN NEW.seq > 10000
BEGIN
    DELETE FROM radius_device_changes WHERE seq <= NEW.seq - 10000;
END;
