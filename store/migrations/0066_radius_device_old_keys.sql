-- Personal Wi-Fi keys a device keeps beside its current one (radius_devices.psk_sealed):
-- a rotation with an overlap leaves the old key valid until expires_at, so the
-- devices that have not yet been given the new key keep joining. Sealed like
-- psk_sealed (AES-GCM under the site key, bound to the MAC); the RADIUS server
-- sends one Tunnel-Password per key not yet expired. Times are fixed-width UTC
-- text, MACs lower-case colon text.
CREATE TABLE radius_device_old_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    mac        TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    set_at     TEXT NOT NULL,  -- when it became the device's key
    expires_at TEXT NOT NULL   -- it is not sent from this moment on
);

CREATE INDEX radius_device_old_keys_mac ON radius_device_old_keys (mac, expires_at);
