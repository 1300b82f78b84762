-- Code attempts are aggregated: one row per device (MAC, address), outcome
-- and minute, counting the attempts, so a flood of guesses costs a row a
-- minute rather than a row each.
ALTER TABLE voucher_attempts ADD COLUMN count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1);

CREATE INDEX voucher_attempts_key ON voucher_attempts (mac, ip, outcome, at);
