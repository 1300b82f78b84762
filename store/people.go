package store

// The people aggregate: staff and pupils, custom groups, the term calendar,
// MIS imports, saved column mappings, revocations and device ownership.
// The store keeps these as given and owns their audit trail; what a state
// or a leaving date means, and when a revocation is due, is package
// people's business.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ErrConflict is returned (wrapped) when a change was prepared against a
// version of a row that someone has changed since (an import previewed
// before another import was applied).
var ErrConflict = errors.New("store: changed since it was read")

// Person is one member of staff or pupil. Dates are days in the school's
// time zone as YYYY-MM-DD ("" = none); instants are times.
type Person struct {
	ID                int64     `json:"id"`
	Kind              string    `json:"kind"` // "pupil" or "staff"
	UPN               string    `json:"upn,omitempty"`
	AdmissionNo       string    `json:"admission_no,omitempty"`
	StaffCode         string    `json:"staff_code,omitempty"`
	Title             string    `json:"title,omitempty"`
	LegalForename     string    `json:"legal_forename"`
	LegalSurname      string    `json:"legal_surname"`
	PreferredForename string    `json:"preferred_forename,omitempty"`
	YearGroup         string    `json:"year_group,omitempty"`
	RegGroup          string    `json:"reg_group,omitempty"`
	Role              string    `json:"role,omitempty"`
	StartsOn          string    `json:"starts_on,omitempty"`
	LeavesOn          string    `json:"leaves_on,omitempty"`
	LeavesAtTermEnd   bool      `json:"leaves_at_term_end,omitempty"`
	Username          string    `json:"username,omitempty"`
	Email             string    `json:"email,omitempty"`
	State             string    `json:"state"`
	PostponedTo       string    `json:"postponed_to,omitempty"`
	PostponeReason    string    `json:"postpone_reason,omitempty"`
	RecordsHold       bool      `json:"records_hold,omitempty"`
	HoldReason        string    `json:"hold_reason,omitempty"`
	RevokedAt         time.Time `json:"revoked_at,omitzero"`
	LeftOn            string    `json:"left_on,omitempty"`
	NotifiedFor       string    `json:"notified_for,omitempty"`
	Source            string    `json:"source,omitempty"`
	CreatedAt         time.Time `json:"-"`
	UpdatedAt         time.Time `json:"-"`
	Version           int64     `json:"-"`
}

// Person states.
const (
	PersonActive  = "active"
	PersonLeaving = "leaving"
	PersonRevoked = "revoked"
	PersonLeft    = "left"
)

const personColumns = `id, kind, upn, admission_no, staff_code, title, legal_forename, legal_surname,
	preferred_forename, year_group, reg_group, role, starts_on, leaves_on, leaves_at_term_end, username, email,
	state, postponed_to, postpone_reason, records_hold, hold_reason, revoked_at, left_on, notified_for, source,
	created_at, updated_at, version`

func scanPerson(sc scanner) (Person, error) {
	var p Person
	var revoked, created, updated string
	if err := sc.Scan(&p.ID, &p.Kind, &p.UPN, &p.AdmissionNo, &p.StaffCode, &p.Title, &p.LegalForename, &p.LegalSurname,
		&p.PreferredForename, &p.YearGroup, &p.RegGroup, &p.Role, &p.StartsOn, &p.LeavesOn, &p.LeavesAtTermEnd,
		&p.Username, &p.Email, &p.State, &p.PostponedTo, &p.PostponeReason, &p.RecordsHold, &p.HoldReason, &revoked,
		&p.LeftOn, &p.NotifiedFor, &p.Source, &created, &updated, &p.Version); err != nil {
		return Person{}, err
	}
	var err error
	if p.RevokedAt, err = parseTime(revoked); err != nil {
		return Person{}, err
	}
	if p.CreatedAt, err = parseTime(created); err != nil {
		return Person{}, err
	}
	if p.UpdatedAt, err = parseTime(updated); err != nil {
		return Person{}, err
	}
	return p, nil
}

func checkPerson(p Person) error {
	switch p.Kind {
	case "pupil", "staff":
	default:
		return fmt.Errorf("kind %q is not pupil or staff", p.Kind)
	}
	switch p.State {
	case PersonActive, PersonLeaving, PersonRevoked, PersonLeft:
	default:
		return fmt.Errorf("state %q", p.State)
	}
	if p.UPN == "" && p.StaffCode == "" && p.AdmissionNo == "" && p.Username == "" {
		return errors.New("needs a UPN, admission number, staff code or username")
	}
	return nil
}

// PeopleFilter narrows ListPeople; zero fields do not filter.
type PeopleFilter struct {
	Kind   string
	States []string
	// Search matches names, ids, username and email (case-insensitive,
	// substring).
	Search string
	// Group matches a year group, registration group or custom group by
	// name.
	Group string
	// LeavingBefore keeps people with a leaving date before this day.
	LeavingBefore string
	Limit         int // 0: no limit
	Offset        int // with a Limit: rows to skip, for a list's pages
}

// ListPeople returns people ordered by surname, forename and id.
func (s *Store) ListPeople(ctx context.Context, f PeopleFilter) ([]Person, error) {
	where, args := f.where()
	q := `SELECT ` + personColumns + ` FROM people` + where
	q += ` ORDER BY legal_surname, legal_forename, id`
	if f.Limit > 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, max(f.Offset, 0))
	}
	return queryAll(ctx, s.db, "list people", scanPerson, q, args...)
}

// CountPeople counts the people f selects (Limit and Offset ignored).
func (s *Store) CountPeople(ctx context.Context, f PeopleFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM people`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count people: %w", err)
	}
	return n, nil
}

// where renders the filter as a WHERE clause and its arguments.
func (f PeopleFilter) where() (string, []any) {
	q := ` WHERE 1=1`
	var args []any
	if f.Kind != "" {
		q += ` AND kind = ?`
		args = append(args, f.Kind)
	}
	if len(f.States) > 0 {
		q += ` AND state IN (?` + strings.Repeat(`, ?`, len(f.States)-1) + `)`
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if f.Search != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f.Search) + "%"
		q += ` AND (legal_forename || ' ' || legal_surname LIKE ? ESCAPE '\' OR preferred_forename || ' ' || legal_surname LIKE ? ESCAPE '\'
			OR upn LIKE ? ESCAPE '\' OR admission_no LIKE ? ESCAPE '\' OR staff_code LIKE ? ESCAPE '\'
			OR username LIKE ? ESCAPE '\' OR email LIKE ? ESCAPE '\')`
		for range 7 {
			args = append(args, like)
		}
	}
	if f.Group != "" {
		q += ` AND (year_group = ? COLLATE NOCASE OR reg_group = ? COLLATE NOCASE OR id IN
			(SELECT m.person_id FROM people_group_members m JOIN people_groups g ON g.id = m.group_id WHERE g.name = ?))`
		args = append(args, f.Group, f.Group, f.Group)
	}
	if f.LeavingBefore != "" {
		q += ` AND leaves_on <> '' AND leaves_on < ?`
		args = append(args, f.LeavingBefore)
	}
	return q, args
}

// PersonByID returns one person; ErrNotFound if there is none.
func (s *Store) PersonByID(ctx context.Context, id int64) (Person, error) {
	return queryOne(ctx, s.db, fmt.Sprintf("person %d", id), scanPerson, `SELECT `+personColumns+` FROM people WHERE id = ?`, id)
}

// PersonByKey finds a person by UPN, staff code, admission number or
// username (in that order), for a command line or form that names one;
// ErrNotFound if none matches.
func (s *Store) PersonByKey(ctx context.Context, key string) (Person, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return Person{}, fmt.Errorf("store: person %q: %w", key, ErrNotFound)
	}
	for _, col := range []string{"upn", "staff_code", "admission_no", "username", "email"} {
		p, err := scanPerson(s.db.QueryRowContext(ctx, `SELECT `+personColumns+` FROM people WHERE `+col+` = ? COLLATE NOCASE ORDER BY id LIMIT 1`, key))
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Person{}, fmt.Errorf("store: person %q: %w", key, err)
		}
	}
	return Person{}, fmt.Errorf("store: person %q: %w", key, ErrNotFound)
}

func insertPerson(ctx context.Context, tx *sql.Tx, p *Person, now time.Time) error {
	p.CreatedAt, p.UpdatedAt, p.Version = now.UTC(), now.UTC(), 1
	res, err := tx.ExecContext(ctx, `INSERT INTO people (kind, upn, admission_no, staff_code, title, legal_forename, legal_surname,
		preferred_forename, year_group, reg_group, role, starts_on, leaves_on, leaves_at_term_end, username, email, state,
		postponed_to, postpone_reason, records_hold, hold_reason, revoked_at, left_on, notified_for, source, created_at, updated_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		p.Kind, p.UPN, p.AdmissionNo, p.StaffCode, p.Title, p.LegalForename, p.LegalSurname, p.PreferredForename,
		p.YearGroup, p.RegGroup, p.Role, p.StartsOn, p.LeavesOn, p.LeavesAtTermEnd, p.Username, p.Email, p.State,
		p.PostponedTo, p.PostponeReason, p.RecordsHold, p.HoldReason, formatTime(p.RevokedAt), p.LeftOn, p.NotifiedFor,
		p.Source, formatTime(now), formatTime(now))
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("person %s: %w", personLabel(*p), ErrExists)
		}
		return err
	}
	p.ID, err = res.LastInsertId()
	return err
}

// updatePerson writes p over the row with p.ID if its version is still
// expect, and bumps the version.
func updatePerson(ctx context.Context, tx *sql.Tx, p *Person, expect int64, now time.Time) error {
	err := execOne(ctx, tx, `UPDATE people SET kind = ?, upn = ?, admission_no = ?, staff_code = ?, title = ?, legal_forename = ?,
		legal_surname = ?, preferred_forename = ?, year_group = ?, reg_group = ?, role = ?, starts_on = ?, leaves_on = ?,
		leaves_at_term_end = ?, username = ?, email = ?, state = ?, postponed_to = ?, postpone_reason = ?, records_hold = ?,
		hold_reason = ?, revoked_at = ?, left_on = ?, notified_for = ?, source = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ?`,
		p.Kind, p.UPN, p.AdmissionNo, p.StaffCode, p.Title, p.LegalForename, p.LegalSurname, p.PreferredForename,
		p.YearGroup, p.RegGroup, p.Role, p.StartsOn, p.LeavesOn, p.LeavesAtTermEnd, p.Username, p.Email, p.State,
		p.PostponedTo, p.PostponeReason, p.RecordsHold, p.HoldReason, formatTime(p.RevokedAt), p.LeftOn, p.NotifiedFor,
		p.Source, formatTime(now), p.ID, expect)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("person %d: %w", p.ID, ErrConflict)
	}
	if isUniqueViolation(err) {
		return fmt.Errorf("person %s: %w", personLabel(*p), ErrExists)
	}
	if err != nil {
		return err
	}
	p.Version = expect + 1
	p.UpdatedAt = now.UTC()
	if p.State == PersonRevoked || p.State == PersonLeft {
		// Whatever path took them out, their Wi-Fi password (both forms)
		// goes with their access.
		if err := clearWiFiPasswordTx(ctx, tx, p.ID); err != nil {
			return err
		}
	}
	return nil
}

func personLabel(p Person) string {
	for _, k := range []string{p.UPN, p.StaffCode, p.AdmissionNo, p.Username} {
		if k != "" {
			return k
		}
	}
	return fmt.Sprint(p.ID)
}

func personObject(id int64) string { return fmt.Sprintf("person:%d", id) }

// PersonChange is one change an import makes: a new person (ID 0) or an
// update of an existing one prepared against Version.
type PersonChange struct {
	Person  Person
	Version int64 // for an update, the version the change was computed from
}

// ApplyImport applies an import's changes in one transaction: each person
// created or updated with an audit row ("person.create", "person.update"),
// and the import marked applied ("people.import.apply"). A change prepared
// against a row that has changed since is ErrConflict and nothing is
// applied. It returns the people as written.
func (s *Store) ApplyImport(ctx context.Context, actor string, importID int64, changes []PersonChange, now time.Time) ([]Person, error) {
	out := make([]Person, 0, len(changes))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM people_imports WHERE id = ?`, importID).Scan(&state); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("import %d: %w", importID, ErrNotFound)
			}
			return err
		}
		if state != "preview" && state != "waiting" {
			return fmt.Errorf("import %d is %s: %w", importID, state, ErrConflict)
		}
		for _, c := range changes {
			p := c.Person
			if err := checkPerson(p); err != nil {
				return fmt.Errorf("person %s: %w", personLabel(p), err)
			}
			if p.ID == 0 {
				if err := insertPerson(ctx, tx, &p, now); err != nil {
					return err
				}
				after, err := auditJSON(p)
				if err != nil {
					return err
				}
				if err := s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "person.create", Object: personObject(p.ID), After: after, At: now}); err != nil {
					return err
				}
			} else {
				before, err := scanPerson(tx.QueryRowContext(ctx, `SELECT `+personColumns+` FROM people WHERE id = ?`, p.ID))
				if errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("person %d: %w", p.ID, ErrConflict)
				}
				if err != nil {
					return err
				}
				p.CreatedAt = before.CreatedAt
				if err := updatePerson(ctx, tx, &p, c.Version, now); err != nil {
					return err
				}
				if err := s.auditPersonTx(ctx, tx, actor, "person.update", before, p, now); err != nil {
					return err
				}
			}
			out = append(out, p)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE people_imports SET state = 'applied', applied_at = ?, applied_by = ? WHERE id = ?`,
			formatTime(now), actor, importID); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Changes int `json:"changes"`
		}{len(changes)})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "people.import.apply", Object: fmt.Sprintf("import:%d", importID), After: after, At: now})
	})
	if err != nil {
		return nil, fmt.Errorf("store: apply import %d: %w", importID, err)
	}
	return out, nil
}

func (s *Store) auditPersonTx(ctx context.Context, tx *sql.Tx, actor, action string, before, after Person, now time.Time) error {
	b, err := auditJSON(before)
	if err != nil {
		return err
	}
	a, err := auditJSON(after)
	if err != nil {
		return err
	}
	return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: action, Object: personObject(after.ID), Before: b, After: a, At: now})
}

// UpdatePerson writes p (prepared from the row at version p.Version) and
// audits it under action ("person.postpone", "person.hold", ...).
// ErrConflict if the row changed since; ErrNotFound if it is gone.
func (s *Store) UpdatePerson(ctx context.Context, actor, action string, p Person, now time.Time) (Person, error) {
	if err := checkPerson(p); err != nil {
		return Person{}, fmt.Errorf("store: update person %d: %w", p.ID, err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanPerson(tx.QueryRowContext(ctx, `SELECT `+personColumns+` FROM people WHERE id = ?`, p.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		p.CreatedAt = before.CreatedAt
		if err := updatePerson(ctx, tx, &p, p.Version, now); err != nil {
			return err
		}
		return s.auditPersonTx(ctx, tx, actor, action, before, p, now)
	})
	if err != nil {
		return Person{}, fmt.Errorf("store: update person %d: %w", p.ID, err)
	}
	return p, nil
}

// CreatePerson adds one person by hand, audited as "person.create".
func (s *Store) CreatePerson(ctx context.Context, actor string, p Person, now time.Time) (Person, error) {
	if p.State == "" {
		p.State = PersonActive
	}
	if err := checkPerson(p); err != nil {
		return Person{}, fmt.Errorf("store: create person: %w", err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := insertPerson(ctx, tx, &p, now); err != nil {
			return err
		}
		after, err := auditJSON(p)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "person.create", Object: personObject(p.ID), After: after, At: now})
	})
	if err != nil {
		return Person{}, fmt.Errorf("store: create person: %w", err)
	}
	return p, nil
}

// ImportRun is one import from the MIS: the preview JSON is package
// people's and the store keeps it as given.
type ImportRun struct {
	ID        int64
	Source    string
	CreatedAt time.Time
	CreatedBy string
	State     string // preview, applied, waiting (held back for a person), discarded
	Summary   string
	Preview   json.RawMessage
	AppliedAt time.Time
	AppliedBy string
}

// SaveImport records a new import's preview, audited as
// "people.import.preview", and returns its id.
func (s *Store) SaveImport(ctx context.Context, actor string, r ImportRun) (int64, error) {
	if r.State == "" {
		r.State = "preview"
	}
	if len(r.Preview) == 0 {
		r.Preview = json.RawMessage("{}")
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO people_imports (source, created_at, created_by, state, summary, preview)
			VALUES (?, ?, ?, ?, ?, ?)`, r.Source, formatTime(r.CreatedAt), actor, r.State, r.Summary, string(r.Preview))
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Source  string `json:"source"`
			State   string `json:"state"`
			Summary string `json:"summary"`
		}{r.Source, r.State, r.Summary})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "people.import.preview", Object: fmt.Sprintf("import:%d", id), After: after, At: r.CreatedAt})
	})
	if err != nil {
		return 0, fmt.Errorf("store: save import from %s: %w", r.Source, err)
	}
	return id, nil
}

const importColumns = `id, source, created_at, created_by, state, summary, preview, applied_at, applied_by`

func scanImport(sc scanner) (ImportRun, error) {
	var r ImportRun
	var created, applied, preview string
	if err := sc.Scan(&r.ID, &r.Source, &created, &r.CreatedBy, &r.State, &r.Summary, &preview, &applied, &r.AppliedBy); err != nil {
		return ImportRun{}, err
	}
	r.Preview = json.RawMessage(preview)
	var err error
	if r.CreatedAt, err = parseTime(created); err != nil {
		return ImportRun{}, err
	}
	if r.AppliedAt, err = parseTime(applied); err != nil {
		return ImportRun{}, err
	}
	return r, nil
}

// Import returns one import; ErrNotFound if there is none.
func (s *Store) Import(ctx context.Context, id int64) (ImportRun, error) {
	return queryOne(ctx, s.db, fmt.Sprintf("import %d", id), scanImport, `SELECT `+importColumns+` FROM people_imports WHERE id = ?`, id)
}

// ListImports returns the newest imports first, without their previews.
func (s *Store) ListImports(ctx context.Context, limit int) ([]ImportRun, error) {
	if limit <= 0 {
		limit = 50
	}
	return queryAll(ctx, s.db, "list imports", scanImport, `SELECT id, source, created_at, created_by, state, summary, '{}', applied_at, applied_by
		FROM people_imports ORDER BY id DESC LIMIT ?`, limit)
}

// DiscardImport marks a preview or waiting import discarded, audited as
// "people.import.discard".
func (s *Store) DiscardImport(ctx context.Context, actor string, id int64, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := execOne(ctx, tx, `UPDATE people_imports SET state = 'discarded' WHERE id = ? AND state IN ('preview', 'waiting')`, id); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "people.import.discard", Object: fmt.Sprintf("import:%d", id), At: now})
	})
	if err != nil {
		return fmt.Errorf("store: discard import %d: %w", id, err)
	}
	return nil
}

// ImportMapping is a saved column mapping for a CSV shape: HeaderKey is the
// file's normalised header row, Mapping package people's JSON.
type ImportMapping struct {
	Name      string
	HeaderKey string
	Mapping   json.RawMessage
	UpdatedAt time.Time
}

// SaveImportMapping creates or replaces a mapping, audited as
// "people.mapping.save".
func (s *Store) SaveImportMapping(ctx context.Context, actor string, m ImportMapping, now time.Time) error {
	if m.Name == "" || m.HeaderKey == "" || !json.Valid(m.Mapping) {
		return errors.New("store: save import mapping: needs a name, a header and JSON")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM people_import_mappings WHERE header_key = ? AND name <> ?`, m.HeaderKey, m.Name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO people_import_mappings (name, header_key, mapping, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET header_key = excluded.header_key, mapping = excluded.mapping, updated_at = excluded.updated_at`,
			m.Name, m.HeaderKey, string(m.Mapping), formatTime(now)); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "people.mapping.save", Object: "mapping:" + m.Name, After: string(m.Mapping), At: now})
	})
	if err != nil {
		return fmt.Errorf("store: save import mapping %s: %w", m.Name, err)
	}
	return nil
}

// ImportMappings returns every saved mapping.
func (s *Store) ImportMappings(ctx context.Context) ([]ImportMapping, error) {
	return queryAll(ctx, s.db, "list import mappings", func(sc scanner) (ImportMapping, error) {
		var m ImportMapping
		var mapping, updated string
		if err := sc.Scan(&m.Name, &m.HeaderKey, &mapping, &updated); err != nil {
			return m, err
		}
		m.Mapping = json.RawMessage(mapping)
		var err error
		m.UpdatedAt, err = parseTime(updated)
		return m, err
	}, `SELECT name, header_key, mapping, updated_at FROM people_import_mappings ORDER BY name`)
}

// Term is one term of the school year; the half-term is a holiday inside it.
type Term struct {
	Name           string `json:"name"`
	StartsOn       string `json:"starts_on"`
	EndsOn         string `json:"ends_on"`
	HalfTermStarts string `json:"half_term_starts,omitempty"`
	HalfTermEnds   string `json:"half_term_ends,omitempty"`
}

// Terms returns the calendar in date order.
func (s *Store) Terms(ctx context.Context) ([]Term, error) {
	return queryAll(ctx, s.db, "list terms", func(sc scanner) (Term, error) {
		var t Term
		err := sc.Scan(&t.Name, &t.StartsOn, &t.EndsOn, &t.HalfTermStarts, &t.HalfTermEnds)
		return t, err
	}, `SELECT name, starts_on, ends_on, half_term_starts, half_term_ends FROM term_dates ORDER BY starts_on`)
}

// SaveTerms replaces the terms that start within [from, to] (a school year)
// by terms, audited as "calendar.update" with the old and new terms.
func (s *Store) SaveTerms(ctx context.Context, actor, from, to string, terms []Term, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := queryAll(ctx, tx, "list terms", func(sc scanner) (Term, error) {
			var t Term
			err := sc.Scan(&t.Name, &t.StartsOn, &t.EndsOn, &t.HalfTermStarts, &t.HalfTermEnds)
			return t, err
		}, `SELECT name, starts_on, ends_on, half_term_starts, half_term_ends FROM term_dates WHERE starts_on BETWEEN ? AND ? ORDER BY starts_on`, from, to)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM term_dates WHERE starts_on BETWEEN ? AND ?`, from, to); err != nil {
			return err
		}
		for _, t := range terms {
			if _, err := tx.ExecContext(ctx, `INSERT INTO term_dates (name, starts_on, ends_on, half_term_starts, half_term_ends) VALUES (?, ?, ?, ?, ?)`,
				t.Name, t.StartsOn, t.EndsOn, t.HalfTermStarts, t.HalfTermEnds); err != nil {
				if isUniqueViolation(err) {
					return fmt.Errorf("term starting %s: %w", t.StartsOn, ErrExists)
				}
				return err
			}
		}
		e := AuditEntry{Actor: actor, Action: "calendar.update", Object: "calendar:" + from + ".." + to, At: now}
		if len(before) > 0 {
			if e.Before, err = auditJSON(before); err != nil {
				return err
			}
		}
		if e.After, err = auditJSON(terms); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("store: save terms: %w", err)
	}
	return nil
}

// PersonGroup is a group the network manager made.
type PersonGroup struct {
	ID          int64
	Name        string
	Description string
	Members     int
}

// CreateGroup adds a custom group, audited as "group.create"; ErrExists if
// the name is taken.
func (s *Store) CreateGroup(ctx context.Context, actor, name, description string, now time.Time) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO people_groups (name, description, created_at) VALUES (?, ?, ?)`, name, description, formatTime(now))
		if isUniqueViolation(err) {
			return ErrExists
		}
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		}{name, description})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "group.create", Object: fmt.Sprintf("group:%d", id), After: after, At: now})
	})
	if err != nil {
		return 0, fmt.Errorf("store: create group %q: %w", name, err)
	}
	return id, nil
}

// DeleteGroup removes a custom group and its memberships, audited as
// "group.delete".
func (s *Store) DeleteGroup(ctx context.Context, actor string, id int64, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var name string
		if err := tx.QueryRowContext(ctx, `SELECT name FROM people_groups WHERE id = ?`, id).Scan(&name); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM people_groups WHERE id = ?`, id); err != nil {
			return err
		}
		before, err := auditJSON(struct {
			Name string `json:"name"`
		}{name})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "group.delete", Object: fmt.Sprintf("group:%d", id), Before: before, At: now})
	})
	if err != nil {
		return fmt.Errorf("store: delete group %d: %w", id, err)
	}
	return nil
}

// SetGroupMember adds (in true) or removes a person from a custom group,
// audited as "group.member.add" or "group.member.remove".
func (s *Store) SetGroupMember(ctx context.Context, actor string, groupID, personID int64, in bool, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		action := "group.member.remove"
		if in {
			action = "group.member.add"
			_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO people_group_members (group_id, person_id) VALUES (?, ?)`, groupID, personID)
			if isForeignKeyViolation(err) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `DELETE FROM people_group_members WHERE group_id = ? AND person_id = ?`, groupID, personID); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Person int64 `json:"person"`
		}{personID})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: action, Object: fmt.Sprintf("group:%d", groupID), After: after, At: now})
	})
	if err != nil {
		return fmt.Errorf("store: group %d member %d: %w", groupID, personID, err)
	}
	return nil
}

// Groups returns the custom groups with their member counts.
func (s *Store) Groups(ctx context.Context) ([]PersonGroup, error) {
	return queryAll(ctx, s.db, "list groups", func(sc scanner) (PersonGroup, error) {
		var g PersonGroup
		err := sc.Scan(&g.ID, &g.Name, &g.Description, &g.Members)
		return g, err
	}, `SELECT g.id, g.name, g.description, (SELECT count(*) FROM people_group_members m WHERE m.group_id = g.id)
		FROM people_groups g ORDER BY g.name`)
}

// GroupsOf returns the names of the custom groups a person is in.
func (s *Store) GroupsOf(ctx context.Context, personID int64) ([]string, error) {
	return queryAll(ctx, s.db, "groups of person", func(sc scanner) (string, error) {
		var n string
		err := sc.Scan(&n)
		return n, err
	}, `SELECT g.name FROM people_groups g JOIN people_group_members m ON m.group_id = g.id WHERE m.person_id = ? ORDER BY g.name`, personID)
}

// OwnedDevice is a device and the person it belongs to.
type OwnedDevice struct {
	Device
	PersonID int64
}

// DevicesOf returns the devices that belong to the given people (every
// owned device when ids is nil).
func (s *Store) DevicesOf(ctx context.Context, ids []int64) ([]OwnedDevice, error) {
	q := `SELECT ` + deviceColumns + `, person_id FROM devices WHERE person_id IS NOT NULL`
	var args []any
	if ids != nil {
		if len(ids) == 0 {
			return nil, nil
		}
		q += ` AND person_id IN (SELECT value FROM json_each(?))`
		b, err := json.Marshal(ids)
		if err != nil {
			return nil, err
		}
		args = append(args, string(b))
	}
	q += ` ORDER BY person_id, mac`
	return queryAll(ctx, s.db, "devices of people", func(sc scanner) (OwnedDevice, error) {
		var od OwnedDevice
		d, err := scanDevice(suffixScanner{sc, []any{&od.PersonID}})
		od.Device = d
		return od, err
	}, q, args...)
}

// DeviceOwner returns the person id a device belongs to, 0 for none.
func (s *Store) DeviceOwner(ctx context.Context, mac net.HardwareAddr) (int64, error) {
	var id sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT person_id FROM devices WHERE mac = ?`, macText(mac)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: owner of %s: %w", mac, err)
	}
	return id.Int64, nil
}

// SetDeviceOwner links a device (which must be recorded) to a person (0:
// nobody), audited as "device.owner".
func (s *Store) SetDeviceOwner(ctx context.Context, actor string, mac net.HardwareAddr, personID int64, now time.Time) error {
	m := macText(mac)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var before sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT person_id FROM devices WHERE mac = ?`, m).Scan(&before); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if before.Int64 == personID {
			return nil
		}
		var pid any
		if personID != 0 {
			pid = personID
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET person_id = ? WHERE mac = ?`, pid, m); err != nil {
			if isForeignKeyViolation(err) {
				return fmt.Errorf("person %d: %w", personID, ErrNotFound)
			}
			return err
		}
		type owner struct {
			MAC    string `json:"mac"`
			Person int64  `json:"person"`
		}
		b, err := auditJSON(owner{m, before.Int64})
		if err != nil {
			return err
		}
		a, err := auditJSON(owner{m, personID})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "device.owner", Object: "device:" + m, Before: b, After: a, At: now})
	})
	if err != nil {
		return fmt.Errorf("store: set owner of %s: %w", m, err)
	}
	return nil
}

// suffixScanner lets scanDevice read its columns when more follow them.
type suffixScanner struct {
	sc     scanner
	suffix []any
}

func (p suffixScanner) Scan(dest ...any) error {
	return p.sc.Scan(append(dest[:len(dest):len(dest)], p.suffix...)...)
}

// RevokedDevice is a device as a revocation found it, so that a reinstatement
// can put its approval back.
type RevokedDevice struct {
	MAC         string `json:"mac"`
	IP          string `json:"ip,omitempty"`
	WasApproved bool   `json:"was_approved"`
	WasBlocked  bool   `json:"was_blocked"`
}

// Revocation is the record of one person's access being ended: written with
// the database's side of it, finished once the kernel, RADIUS and DHCP have
// been told.
type Revocation struct {
	ID         int64
	PersonID   int64
	Reason     string
	Devices    []RevokedDevice
	Users      []string // admin accounts disabled
	CreatedAt  time.Time
	FinishedAt time.Time
}

// RevokePerson ends a person's access in the database in one transaction:
// the person becomes revoked, their devices blocked and unapproved (so DHCP
// and RADIUS refuse them and a restart puts them in the kernel's revoked
// set), a staff member's admin accounts (users named by their username,
// email or staff code) disabled with every session and API token ended, and
// a pending revocation recorded for what lies outside the database. Audited
// as "person.revoke" (and "user.disable" per account). A person already
// revoked or left is ErrConflict.
func (s *Store) RevokePerson(ctx context.Context, actor string, personID int64, reason string, now time.Time) (Revocation, error) {
	rv := Revocation{PersonID: personID, Reason: reason, CreatedAt: now.UTC()}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanPerson(tx.QueryRowContext(ctx, `SELECT `+personColumns+` FROM people WHERE id = ?`, personID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if before.State == PersonRevoked || before.State == PersonLeft {
			return fmt.Errorf("person %d is already %s: %w", personID, before.State, ErrConflict)
		}
		after := before
		after.State, after.RevokedAt = PersonRevoked, now.UTC()
		if err := updatePerson(ctx, tx, &after, before.Version, now); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT mac, ip, approved, blocked FROM devices WHERE person_id = ? ORDER BY mac`, personID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var d RevokedDevice
			if err := rows.Scan(&d.MAC, &d.IP, &d.WasApproved, &d.WasBlocked); err != nil {
				rows.Close()
				return err
			}
			rv.Devices = append(rv.Devices, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET blocked = 1, approved = 0 WHERE person_id = ?`, personID); err != nil {
			return err
		}
		// Their Wi-Fi password stops working with the rest.
		if err := clearWiFiPasswordTx(ctx, tx, personID); err != nil {
			return err
		}
		if before.Kind == "staff" {
			users, err := queryAll(ctx, tx, "users of person", scanUser, `SELECT `+userColumns+` FROM users
				WHERE disabled = 0 AND (name = ? AND ? <> '' OR name = ? AND ? <> '' OR name = ? AND ? <> '')`,
				before.Username, before.Username, before.Email, before.Email, before.StaffCode, before.StaffCode)
			if err != nil {
				return err
			}
			for _, u := range users {
				if err := disableUserTx(ctx, s, tx, actor, u, now); err != nil {
					return err
				}
				rv.Users = append(rv.Users, u.Name)
			}
		}
		devs, err := json.Marshal(rv.Devices)
		if err != nil {
			return err
		}
		if devs == nil || string(devs) == "null" {
			devs = []byte("[]")
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO people_revocations (person_id, reason, devices, created_at) VALUES (?, ?, ?, ?)`,
			personID, reason, string(devs), formatTime(now))
		if err != nil {
			return err
		}
		if rv.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		b, err := auditJSON(before)
		if err != nil {
			return err
		}
		a, err := auditJSON(struct {
			Person  Person          `json:"person"`
			Reason  string          `json:"reason"`
			Devices []RevokedDevice `json:"devices"`
			Users   []string        `json:"users,omitempty"`
		}{after, reason, rv.Devices, rv.Users})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "person.revoke", Object: personObject(personID), Before: b, After: a, At: now})
	})
	if err != nil {
		return Revocation{}, fmt.Errorf("store: revoke person %d: %w", personID, err)
	}
	return rv, nil
}

// disableUserTx disables an admin account and ends its sessions and API
// tokens, audited as "user.disable".
func disableUserTx(ctx context.Context, s *Store, tx *sql.Tx, actor string, u User, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = 1 WHERE id = ?`, u.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, u.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, u.ID); err != nil {
		return err
	}
	b, err := auditJSON(userAudit{ID: u.ID, Name: u.Name, Role: u.Role, Disabled: false, CreatedAt: u.CreatedAt})
	if err != nil {
		return err
	}
	a, err := auditJSON(userAudit{ID: u.ID, Name: u.Name, Role: u.Role, Disabled: true, CreatedAt: u.CreatedAt})
	if err != nil {
		return err
	}
	return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "user.disable", Object: "user:" + u.Name, Before: b, After: a, At: now})
}

func scanRevocation(sc scanner) (Revocation, error) {
	var rv Revocation
	var pid sql.NullInt64
	var devs, created, finished string
	if err := sc.Scan(&rv.ID, &pid, &rv.Reason, &devs, &created, &finished); err != nil {
		return rv, err
	}
	rv.PersonID = pid.Int64
	if err := json.Unmarshal([]byte(devs), &rv.Devices); err != nil {
		return rv, fmt.Errorf("revocation %d devices: %w", rv.ID, err)
	}
	var err error
	if rv.CreatedAt, err = parseTime(created); err != nil {
		return rv, err
	}
	rv.FinishedAt, err = parseTime(finished)
	return rv, err
}

// PendingRevocations returns revocations not yet finished, oldest first.
func (s *Store) PendingRevocations(ctx context.Context) ([]Revocation, error) {
	return queryAll(ctx, s.db, "pending revocations", scanRevocation,
		`SELECT id, person_id, reason, devices, created_at, finished_at FROM people_revocations WHERE finished_at = '' ORDER BY id`)
}

// Revocations returns a person's revocations, newest first.
func (s *Store) Revocations(ctx context.Context, personID int64) ([]Revocation, error) {
	return queryAll(ctx, s.db, "revocations", scanRevocation,
		`SELECT id, person_id, reason, devices, created_at, finished_at FROM people_revocations WHERE person_id = ? ORDER BY id DESC`, personID)
}

// FinishRevocation marks a revocation done, audited as
// "person.revoke.finish" with what the caller reports it did.
func (s *Store) FinishRevocation(ctx context.Context, actor string, id int64, done any, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var pid sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT person_id FROM people_revocations WHERE id = ? AND finished_at = ''`, id).Scan(&pid); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE people_revocations SET finished_at = ? WHERE id = ?`, formatTime(now), id); err != nil {
			return err
		}
		after, err := auditJSON(done)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "person.revoke.finish", Object: personObject(pid.Int64), After: after, At: now})
	})
	if err != nil {
		return fmt.Errorf("store: finish revocation %d: %w", id, err)
	}
	return nil
}

// ReinstatePerson lifts a revocation made in error: the person becomes
// state again and their devices get back the approval and blocking they
// had before the last revocation. Admin accounts stay disabled (a person
// re-enables them on the users page). Audited as "person.reinstate".
func (s *Store) ReinstatePerson(ctx context.Context, actor string, personID int64, state string, now time.Time) ([]RevokedDevice, error) {
	var devs []RevokedDevice
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanPerson(tx.QueryRowContext(ctx, `SELECT `+personColumns+` FROM people WHERE id = ?`, personID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if before.State != PersonRevoked {
			return fmt.Errorf("person %d is %s: %w", personID, before.State, ErrConflict)
		}
		rv, err := scanRevocation(tx.QueryRowContext(ctx, `SELECT id, person_id, reason, devices, created_at, finished_at
			FROM people_revocations WHERE person_id = ? ORDER BY id DESC LIMIT 1`, personID))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		for _, d := range rv.Devices {
			if _, err := tx.ExecContext(ctx, `UPDATE devices SET approved = ?, blocked = ? WHERE mac = ? AND person_id = ?`,
				d.WasApproved, d.WasBlocked, d.MAC, personID); err != nil {
				return err
			}
		}
		devs = rv.Devices
		after := before
		after.State, after.RevokedAt = state, time.Time{}
		if err := updatePerson(ctx, tx, &after, before.Version, now); err != nil {
			return err
		}
		return s.auditPersonTx(ctx, tx, actor, "person.reinstate", before, after, now)
	})
	if err != nil {
		return nil, fmt.Errorf("store: reinstate person %d: %w", personID, err)
	}
	return devs, nil
}

// PurgePeople deletes people who lost access and whose leaving day (the
// day they left the MIS, a postponed day, or the day of their revocation)
// is before cutoff (YYYY-MM-DD), except those under a records
// hold, and returns how many went. Their devices stay, unowned; their
// revocations stay, without a person. Audited as "people.purge" with the
// ids removed, in the same transaction.
func (s *Store) PurgePeople(ctx context.Context, actor, cutoff string, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids, err := queryAll(ctx, tx, "people to purge", func(sc scanner) (int64, error) {
			var id int64
			err := sc.Scan(&id)
			return id, err
		}, `SELECT id FROM people WHERE state IN ('revoked', 'left') AND records_hold = 0
			AND CASE WHEN left_on <> '' THEN left_on WHEN postponed_to > leaves_on THEN postponed_to
				WHEN leaves_on <> '' THEN leaves_on ELSE substr(revoked_at, 1, 10) END < ?
			ORDER BY id LIMIT 5000`, cutoff)
		if err != nil || len(ids) == 0 {
			return err
		}
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM people WHERE id IN (SELECT value FROM json_each(?))`, string(b))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Cutoff string  `json:"cutoff"`
			IDs    []int64 `json:"ids"`
		}{cutoff, ids})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "people.purge", Object: "people", After: after, At: now})
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge people left before %s: %w", cutoff, err)
	}
	return n, nil
}

// AuditFor returns the newest audit entries about one object ("person:7"),
// for a person's history and a subject access export.
func (s *Store) AuditFor(ctx context.Context, object string, limit int) ([]AuditEntry, error) {
	if limit < 1 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	return queryAll(ctx, s.db, "audit of "+object, func(sc scanner) (AuditEntry, error) {
		var e AuditEntry
		var at string
		if err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &e.Before, &e.After, &e.PrevHash, &e.Hash); err != nil {
			return e, err
		}
		var err error
		e.At, err = parseTime(at)
		return e, err
	}, `SELECT id, at, actor, action, object, before_json, after_json, prev_hash, hash
		FROM audit_log WHERE object = ? ORDER BY id DESC LIMIT ?`, object, limit)
}

// SetPersonWiFiPassword sets (hash "" clears) a person's Wi-Fi password
// hash and clears any NT hash (see SetPersonWiFiCredentials), audited as
// "person.wifi_password" without the hash.
func (s *Store) SetPersonWiFiPassword(ctx context.Context, actor string, personID int64, hash string, now time.Time) error {
	return s.SetPersonWiFiCredentials(ctx, actor, personID, hash, nil, now)
}

// PersonLogin finds the person whose username (ignoring case) is name, with
// their Wi-Fi password hash, for RADIUS PAP. ErrNotFound if nobody.
func (s *Store) PersonLogin(ctx context.Context, name string) (Person, string, error) {
	var hash string
	p, err := scanPerson(suffixScanner{s.db.QueryRowContext(ctx, `SELECT `+personColumns+`, wifi_password_hash FROM people
		WHERE username = ? COLLATE NOCASE AND username <> '' ORDER BY id LIMIT 1`, name), []any{&hash}})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Person{}, "", fmt.Errorf("store: login %q: %w", name, err)
	}
	return p, hash, nil
}
