-- The WPA2 PMKs of personal Wi-Fi keys, per SSID, computed once when a key
-- is set (PBKDF2, 4096 rounds) so that the RADIUS server loads them at start
-- instead of deriving them again; sealed with AES-GCM under the site key
-- like the keys themselves, bound to the MAC, the key and the SSID. key_ref
-- names the key a PMK derives from (the first 16 octets of the SHA-256 of
-- that key's sealed form, in hex), which stays the same when a rotation
-- moves the key from radius_devices to radius_device_old_keys. MACs are
-- lower-case colon text.
--
-- (This file is numbered before the tables it refers to: it refers to them
-- by value only.)
CREATE TABLE radius_device_pmks (
    mac     TEXT NOT NULL,
    key_ref TEXT NOT NULL,
    ssid    TEXT NOT NULL,
    sealed  BLOB NOT NULL,
    PRIMARY KEY (mac, key_ref, ssid)
) WITHOUT ROWID;
