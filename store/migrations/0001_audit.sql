-- Append-only, hash-chained audit log. See store/audit.go for the hash.
-- AUTOINCREMENT keeps sqlite_sequence at the highest id ever used, so rows
-- deleted from the end of the log and then followed by new rows leave a gap
-- that VerifyAudit reports.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object      TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json  TEXT NOT NULL,
    -- UNIQUE: two rows can never claim the same predecessor, so the chain
    -- cannot fork even if a writer bypassed the store's locking.
    prev_hash   TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL UNIQUE
);

CREATE INDEX audit_log_object ON audit_log (object, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
