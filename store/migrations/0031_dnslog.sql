-- The DNS guard's query log: one row per lookup a client made, kept for the
-- school's retention (default 30 days) and purged in chunks. Addresses are
-- dotted quads, MACs lower-case colon text ('' when unknown), times
-- fixed-width UTC text.
CREATE TABLE dns_queries (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    client  TEXT NOT NULL,
    mac     TEXT NOT NULL DEFAULT '',
    segment TEXT NOT NULL DEFAULT '',
    name    TEXT NOT NULL,
    qtype   TEXT NOT NULL DEFAULT '',
    answer  TEXT NOT NULL DEFAULT '',
    action  TEXT NOT NULL
);

CREATE INDEX dns_queries_at ON dns_queries (at);
CREATE INDEX dns_queries_client ON dns_queries (client, at);
