-- The people change log (0090) also names a person whose sealed NT hash
-- (people_wifi_nt, 0063) is stored, replaced or removed: RADIUS's identity
-- cache now holds the sealed NT hash beside the argon2id hash (so a PEAP or
-- TTLS-MSCHAPv2 login reads no SQL), and must drop it when it changes. A
-- password set or reset already logs the person through their people row;
-- these cover the writes that touch only this table: turning MSCHAPv2 off
-- (ClearWiFiNTHashes deletes every row), a revocation's or departure's
-- clearing, and the sqlite3 shell.
CREATE TRIGGER people_changes_nt_insert AFTER INSERT ON people_wifi_nt BEGIN
    INSERT INTO people_changes (person_id) VALUES (new.person_id);
END;

CREATE TRIGGER people_changes_nt_update AFTER UPDATE ON people_wifi_nt BEGIN
    INSERT INTO people_changes (person_id) SELECT old.person_id WHERE old.person_id IS NOT new.person_id;
    INSERT INTO people_changes (person_id) VALUES (new.person_id);
END;

CREATE TRIGGER people_changes_nt_delete AFTER DELETE ON people_wifi_nt BEGIN
    INSERT INTO people_changes (person_id) VALUES (old.person_id);
END;
