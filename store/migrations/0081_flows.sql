-- The flow log: a bounded summary of each inspected flow (who, where, how
-- much, the class it raised), so the DSL's timeline of an alert shows what
-- the device talked to either side of it. One row per flow: the engine
-- reports a classified flow at once and every flow again when it ends, and
-- the second report updates the first (same client, server, ports,
-- protocol and start). Written in batches by the alert pipeline's flow
-- log, bounded per client and purged after its retention.
CREATE TABLE flows (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,              -- first packet
    last        TEXT NOT NULL,              -- last packet seen
    ended       INTEGER NOT NULL DEFAULT 0,
    segment     TEXT NOT NULL DEFAULT '',
    mac         TEXT NOT NULL DEFAULT '',
    client_ip   TEXT NOT NULL,
    client_port INTEGER NOT NULL DEFAULT 0,
    server_ip   TEXT NOT NULL,
    server_port INTEGER NOT NULL DEFAULT 0,
    proto       TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL DEFAULT '',   -- the name the client resolved the server from
    class       TEXT NOT NULL DEFAULT '',   -- the finding class the flow raised
    bytes_out   INTEGER NOT NULL DEFAULT 0,
    bytes_in    INTEGER NOT NULL DEFAULT 0,
    packets_out INTEGER NOT NULL DEFAULT 0,
    packets_in  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (client_ip, client_port, server_ip, server_port, proto, at)
);

CREATE INDEX flows_mac ON flows (mac, at);
CREATE INDEX flows_client ON flows (client_ip, at);
CREATE INDEX flows_at ON flows (at);
