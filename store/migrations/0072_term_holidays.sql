-- Days the school is closed inside its terms besides the half-terms: bank
-- holidays, INSET (training) days, closures. Rules for "term time" treat
-- them as holidays. Dates are YYYY-MM-DD in the school's zone.
CREATE TABLE term_holidays (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    ends_on   TEXT NOT NULL CHECK (ends_on >= starts_on)
);

CREATE INDEX term_holidays_starts ON term_holidays (starts_on);
