-- The school's ordered forwarding rules (who, what, where, when, action),
-- edited on the admin page. The store keeps them as given; package policy
-- says what the fields mean and checks them against the network. Lists are
-- JSON arrays; times are fixed-width UTC text.
--
-- AUTOINCREMENT: an id is never reused, so "rule:7" in the audit log always
-- names one rule. position is 1-based and kept contiguous by the store (no
-- UNIQUE constraint, because SQLite checks uniqueness row by row while a
-- move shifts its neighbours).
CREATE TABLE policy_rules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    position     INTEGER NOT NULL CHECK (position >= 1),
    name         TEXT NOT NULL DEFAULT '',
    who_kind     TEXT NOT NULL CHECK (who_kind <> ''),
    who_id       TEXT NOT NULL DEFAULT '',
    what_kind    TEXT NOT NULL CHECK (what_kind <> ''),
    proto        TEXT NOT NULL DEFAULT '',
    ports_json   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(ports_json)),
    subnet       TEXT NOT NULL DEFAULT '',
    server       TEXT NOT NULL DEFAULT '',
    domains_json TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(domains_json)),
    class        TEXT NOT NULL DEFAULT '',
    segment      TEXT NOT NULL DEFAULT '',
    when_kind    TEXT NOT NULL CHECK (when_kind <> ''),
    slots_json   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(slots_json)),
    action       TEXT NOT NULL CHECK (action <> ''),
    disabled     INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL
);

CREATE INDEX policy_rules_position ON policy_rules (position, id);
