-- When each admin session last made a request, for the idle timeout (the
-- limit itself is web's policy). Sessions from before this column start as
-- if last seen at login, so a stale one ends at its next request.
ALTER TABLE sessions ADD COLUMN last_seen TEXT NOT NULL DEFAULT '';
UPDATE sessions SET last_seen = created_at;
