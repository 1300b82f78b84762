-- Client certificates the school CA issued for EAP-TLS (package pki), and
-- their revocation: a certificate is accepted only while its row exists and
-- revoked_at is "" (the serial deny-list is the rows with revoked_at set).
-- The certificates and keys themselves are not kept: the PKCS#12 is shown
-- once; sha256 (of the DER) ties a presented certificate to its row.
--
-- serial: lower-case hex, no leading zeros. kind: person (identity is an
-- rfc822Name, person_id set) or device (identity is a DNS name). A purged
-- person leaves their certificates' rows, person_id NULL, for the record.
CREATE TABLE pki_client_certs (
    serial        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('person', 'device')),
    identity      TEXT NOT NULL,
    person_id     INTEGER REFERENCES people(id) ON DELETE SET NULL,
    sha256        TEXT NOT NULL,
    not_before    TEXT NOT NULL,
    not_after     TEXT NOT NULL,
    issued_at     TEXT NOT NULL,
    issued_by     TEXT NOT NULL,
    revoked_at    TEXT NOT NULL DEFAULT '',
    revoked_by    TEXT NOT NULL DEFAULT '',
    revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX pki_client_certs_person ON pki_client_certs(person_id) WHERE person_id IS NOT NULL;
CREATE INDEX pki_client_certs_issued ON pki_client_certs(issued_at);
