-- A person's Wi-Fi password (PAP / 802.1X), as an argon2id hash from
-- package password; '' = none. Kept out of the people row's audit JSON.
ALTER TABLE people ADD COLUMN wifi_password_hash TEXT NOT NULL DEFAULT '';
