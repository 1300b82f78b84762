-- How sure the inspect engine was of a finding: 'certain' (a protocol
-- handshake parsed), 'likely' (a fingerprint or heuristic) or 'attempt'
-- (recognised from the client's side alone; the server never answered).
-- '' for rows written before it was recorded and for sources that do not
-- grade their findings.
ALTER TABLE findings ADD COLUMN confidence TEXT NOT NULL DEFAULT '';
