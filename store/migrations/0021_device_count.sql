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
