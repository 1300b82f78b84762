-- The school's branding for the portal and the slips: one row at most.
-- logo is a PNG the admin page re-encoded from the upload (never the
-- uploaded bytes), '' for none; colour is "#rrggbb", '' for the default.
CREATE TABLE branding (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    logo    BLOB NOT NULL DEFAULT x'',
    colour  TEXT NOT NULL DEFAULT '',
    set_at  TEXT NOT NULL,
    set_by  TEXT NOT NULL
);
