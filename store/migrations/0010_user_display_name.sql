-- A person's name as the admin page shows it ("Mrs Patel", "Reception
-- kiosk"), beside the login name, which stays one word. Empty: show the
-- login name.
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
