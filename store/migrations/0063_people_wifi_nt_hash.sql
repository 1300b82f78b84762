-- A person's Wi-Fi password as an NT hash (MD4 of UTF-16LE), which
-- MSCHAPv2 (PEAP, TTLS-MSCHAPv2) needs and an argon2id hash cannot give.
-- Sealed by package people with AES-256-GCM under a key derived from the
-- site key (which lives beside the database, never in it): never in clear.
-- A row exists only while MSCHAPv2 is enabled and the person has a Wi-Fi
-- password. Its own table (not a people column) because this migration
-- number comes before the people table's; the reference resolves once
-- 0070 has made it, and a deleted person takes their row along.
CREATE TABLE people_wifi_nt (
    person_id INTEGER PRIMARY KEY REFERENCES people (id) ON DELETE CASCADE,
    sealed    BLOB NOT NULL
);
