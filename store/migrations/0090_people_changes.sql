-- The people change log: the id of every person whose login identity (what
-- RADIUS's PAP, TTLS-PAP and accounting look up: state, username, Wi-Fi
-- password hash, leaving dates, groups) may have changed, whoever changes
-- it (the daemon, the admin pages, an MIS import, the leavers' scheduler,
-- `gatehouse people ...` in another process, the sqlite3 shell). Triggers
-- fill it, so no writer can forget; the reading rule is the device change
-- log's (device_changes.go), see people_changes.go.
--
-- person_id 0 means "everyone": a change to the term calendar or to a
-- group's name moves every leaver's end of access.
--
-- Every update of a people row is logged, not only of the columns read
-- today: people rows change rarely (imports, approvals, revocations), and
-- a column list here would silently go stale when the identity grows.
CREATE TABLE people_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id INTEGER NOT NULL
);

CREATE TRIGGER people_changes_insert AFTER INSERT ON people BEGIN
    INSERT INTO people_changes (person_id) VALUES (new.id);
END;

CREATE TRIGGER people_changes_update AFTER UPDATE ON people BEGIN
    INSERT INTO people_changes (person_id) SELECT old.id WHERE old.id IS NOT new.id;
    INSERT INTO people_changes (person_id) VALUES (new.id);
END;

CREATE TRIGGER people_changes_delete AFTER DELETE ON people BEGIN
    INSERT INTO people_changes (person_id) VALUES (old.id);
END;

CREATE TRIGGER people_changes_members_insert AFTER INSERT ON people_group_members BEGIN
    INSERT INTO people_changes (person_id) VALUES (new.person_id);
END;

CREATE TRIGGER people_changes_members_update AFTER UPDATE ON people_group_members BEGIN
    INSERT INTO people_changes (person_id) SELECT old.person_id WHERE old.person_id IS NOT new.person_id;
    INSERT INTO people_changes (person_id) VALUES (new.person_id);
END;

CREATE TRIGGER people_changes_members_delete AFTER DELETE ON people_group_members BEGIN
    INSERT INTO people_changes (person_id) VALUES (old.person_id);
END;

CREATE TRIGGER people_changes_groups_update AFTER UPDATE ON people_groups BEGIN
    INSERT INTO people_changes (person_id) VALUES (0);
END;

CREATE TRIGGER people_changes_groups_delete AFTER DELETE ON people_groups BEGIN
    INSERT INTO people_changes (person_id) VALUES (0);
END;

CREATE TRIGGER people_changes_terms_insert AFTER INSERT ON term_dates BEGIN
    INSERT INTO people_changes (person_id) VALUES (0);
END;

CREATE TRIGGER people_changes_terms_update AFTER UPDATE ON term_dates BEGIN
    INSERT INTO people_changes (person_id) VALUES (0);
END;

CREATE TRIGGER people_changes_terms_delete AFTER DELETE ON term_dates BEGIN
    INSERT INTO people_changes (person_id) VALUES (0);
END;

CREATE TRIGGER people_changes_holidays_insert AFTER INSERT ON term_holidays BEGIN
    INSERT INTO people_changes (person_id) VALUES (0);
END;

CREATE TRIGGER people_changes_holidays_update AFTER UPDATE ON term_holidays BEGIN
    INSERT INTO people_changes (person_id) VALUES (0);
END;

CREATE TRIGGER people_changes_holidays_delete AFTER DELETE ON term_holidays BEGIN
    INSERT INTO people_changes (person_id) VALUES (0);
END;

-- Only the last 10,000 changes are kept: an import beyond that makes
-- readers start afresh rather than the table grow unbounded.
CREATE TRIGGER people_changes_prune AFTER INSERT ON people_changes
WHEN new.seq > 10000 BEGIN
    DELETE FROM people_changes WHERE seq <= new.seq - 10000;
END;
