-- The school's people (staff and pupils) as the MIS knows them, the groups
-- rules name, the term calendar, imports from the MIS and the revocations
-- that end a leaver's access. Dates (a day in the school's zone, not an
-- instant) are YYYY-MM-DD text ("" = none); instants are fixed-width UTC
-- text ("" = never).

-- AUTOINCREMENT: an id is never reused, so "person:7" in the audit log
-- always names one person, even after a retention purge.
--
-- state: active (has access, no leaving date), leaving (has access until
-- the leaving date), revoked (access ended; kept as a record), left (gone
-- from the MIS as well; retention counts from left_on).
-- version counts changes, so an import applied after its preview can tell
-- that someone changed a row in between.
CREATE TABLE people (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    kind               TEXT NOT NULL CHECK (kind IN ('pupil', 'staff')),
    upn                TEXT NOT NULL DEFAULT '',
    admission_no       TEXT NOT NULL DEFAULT '',
    staff_code         TEXT NOT NULL DEFAULT '',
    title              TEXT NOT NULL DEFAULT '',
    legal_forename     TEXT NOT NULL DEFAULT '',
    legal_surname      TEXT NOT NULL DEFAULT '',
    preferred_forename TEXT NOT NULL DEFAULT '',
    year_group         TEXT NOT NULL DEFAULT '',
    reg_group          TEXT NOT NULL DEFAULT '',
    role               TEXT NOT NULL DEFAULT '',
    starts_on          TEXT NOT NULL DEFAULT '',
    leaves_on          TEXT NOT NULL DEFAULT '',
    leaves_at_term_end INTEGER NOT NULL DEFAULT 0 CHECK (leaves_at_term_end IN (0, 1)),
    username           TEXT NOT NULL DEFAULT '',
    email              TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'leaving', 'revoked', 'left')),
    postponed_to       TEXT NOT NULL DEFAULT '',
    postpone_reason    TEXT NOT NULL DEFAULT '',
    records_hold       INTEGER NOT NULL DEFAULT 0 CHECK (records_hold IN (0, 1)),
    hold_reason        TEXT NOT NULL DEFAULT '',
    revoked_at         TEXT NOT NULL DEFAULT '',
    left_on            TEXT NOT NULL DEFAULT '',
    notified_for       TEXT NOT NULL DEFAULT '',
    source             TEXT NOT NULL DEFAULT '',
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    version            INTEGER NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX people_upn ON people (upn) WHERE upn <> '';
CREATE UNIQUE INDEX people_staff_code ON people (staff_code COLLATE NOCASE) WHERE staff_code <> '';
CREATE INDEX people_admission_no ON people (admission_no) WHERE admission_no <> '';
CREATE INDEX people_username ON people (username COLLATE NOCASE) WHERE username <> '';
CREATE INDEX people_year ON people (year_group, state);
CREATE INDEX people_reg ON people (reg_group, state);

-- Groups the network manager makes (custom); year groups, registration
-- groups and staff/pupils follow from the people's own columns and are not
-- stored as memberships.
CREATE TABLE people_groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);

CREATE TABLE people_group_members (
    group_id  INTEGER NOT NULL REFERENCES people_groups (id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, person_id)
);

CREATE INDEX people_group_members_person ON people_group_members (person_id);

-- The school year's terms; a half-term is a holiday inside its term.
CREATE TABLE term_dates (
    name             TEXT NOT NULL,
    starts_on        TEXT NOT NULL,
    ends_on          TEXT NOT NULL CHECK (ends_on >= starts_on),
    half_term_starts TEXT NOT NULL DEFAULT '',
    half_term_ends   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (starts_on)
);

-- One import from the MIS: its preview (what it would change, as JSON the
-- people package writes) and whether and when it was applied.
CREATE TABLE people_imports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('preview', 'applied', 'waiting', 'discarded')),
    summary     TEXT NOT NULL DEFAULT '',
    preview     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(preview)),
    applied_at  TEXT NOT NULL DEFAULT '',
    applied_by  TEXT NOT NULL DEFAULT ''
);

CREATE INDEX people_imports_created ON people_imports (created_at);

-- Saved column mappings for CSV exports whose headers no built-in shape
-- recognises: header_key is the file's header row, normalised.
CREATE TABLE people_import_mappings (
    name       TEXT PRIMARY KEY,
    header_key TEXT NOT NULL UNIQUE,
    mapping    TEXT NOT NULL CHECK (json_valid(mapping)),
    updated_at TEXT NOT NULL
);

-- A revocation is written (with the person's and devices' new state) before
-- anything outside the database is touched, and marked done after; one
-- still pending at start is finished then.
CREATE TABLE people_revocations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id   INTEGER REFERENCES people (id) ON DELETE SET NULL,
    reason      TEXT NOT NULL,
    devices     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(devices)),
    created_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT ''
);

CREATE INDEX people_revocations_pending ON people_revocations (finished_at);

-- A device belongs to at most one person.
ALTER TABLE devices ADD COLUMN person_id INTEGER REFERENCES people (id) ON DELETE SET NULL;
CREATE INDEX devices_person ON devices (person_id) WHERE person_id IS NOT NULL;
