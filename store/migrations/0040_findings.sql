-- Inspection findings: one row per bypass attempt or device problem the
-- inspect engine raised, kept for the school's retention (default 90 days)
-- and purged in chunks. Addresses are canonical text, MACs lower-case colon
-- text ('' when unknown), times fixed-width UTC text. device_id and
-- person_id are the attribution (who had that MAC or address then), filled
-- in later by the alert pipeline; NULL until then. They carry no foreign
-- key because the people tables arrive in their own migrations and a
-- finding must outlive the device or person it named.
CREATE TABLE findings (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    segment   TEXT NOT NULL DEFAULT '',
    src_ip    TEXT NOT NULL DEFAULT '',
    src_mac   TEXT NOT NULL DEFAULT '',
    dst_ip    TEXT NOT NULL DEFAULT '',
    dst_port  INTEGER NOT NULL DEFAULT 0 CHECK (dst_port BETWEEN 0 AND 65535),
    proto     TEXT NOT NULL DEFAULT '',
    class     TEXT NOT NULL CHECK (class <> ''),
    detail    TEXT NOT NULL DEFAULT '',
    evidence  TEXT NOT NULL DEFAULT '',
    device_id INTEGER,
    person_id INTEGER
);

CREATE INDEX findings_at ON findings (at);
CREATE INDEX findings_class ON findings (class, at);
CREATE INDEX findings_segment ON findings (segment, at);
CREATE INDEX findings_src_mac ON findings (src_mac, at);
