-- dhcp_leases keyed by (ip, segment) and without a rowid: one b-tree for
-- the rows and their key, and the mac index, instead of four (the rowid
-- table, the (segment, ip) key's index, the mac index and the ip index).
-- Every DHCP ACK writes a lease, and each b-tree a new lease touches is
-- another page in the WAL on the ACK's fsync: 12 frames for a commit of one
-- lease and its device, 4.2 a lease in batches of 64, before this
-- (store's BenchmarkSaveDHCPWALFrames). The key's leading ip serves "who
-- held 10.20.3.7 at 10:41?" (LeaseAt) as the ip index did; the upsert's
-- ON CONFLICT (segment, ip) names the same key.

CREATE TABLE dhcp_leases_by_ip (
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
    PRIMARY KEY (ip, segment)
) WITHOUT ROWID;

INSERT INTO dhcp_leases_by_ip (segment, ip, mac, client_id, hostname, state, start_at, expires_at, relay, relay_info)
    SELECT segment, ip, mac, client_id, hostname, state, start_at, expires_at, relay, relay_info FROM dhcp_leases;

DROP TABLE dhcp_leases;
ALTER TABLE dhcp_leases_by_ip RENAME TO dhcp_leases;

CREATE INDEX dhcp_leases_mac ON dhcp_leases (mac, segment);
