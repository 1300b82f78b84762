-- A device linked to a person (devices.person_id) ends its access when its
-- owner does: RADIUS clamps a MAB login's Session-Timeout to the owner's
-- departure (package people's RADIUSDevices), and holds that answer in its
-- device cache, which follows the device change log (0082). So whatever
-- may move a person's departure (everything the people change log names,
-- 0090: their row, their groups, and with person_id 0 the term calendar and
-- group names, which move everyone's) also names that person's devices.
--
-- Done from the people change log rather than from each table again, so
-- the two logs cannot disagree about what counts as a change. The cost is
-- a few extra device re-reads: an MIS import that touches every person
-- names every owned device once, and a calendar import (person_id 0)
-- names every owned device once per row, which the device cache's readers
-- turn into one reload (past maxChangesRead).
CREATE TRIGGER device_changes_owner AFTER INSERT ON people_changes BEGIN
    INSERT INTO device_changes (mac)
        SELECT mac FROM devices WHERE new.person_id <> 0 AND person_id = new.person_id
        UNION ALL
        SELECT mac FROM devices WHERE new.person_id = 0 AND person_id IS NOT NULL;
END;
