package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// One term or holiday at a time, as the calendar page edits them; SaveTerms
// (people.go) replaces a whole year from a file.

// Holiday is a span of days the school is closed inside a term besides
// its half-term (a bank holiday, an INSET day, a closure).
type Holiday struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	StartsOn string `json:"starts_on"`
	EndsOn   string `json:"ends_on"`
}

// Holidays returns the holidays in date order.
func (s *Store) Holidays(ctx context.Context) ([]Holiday, error) {
	return queryAll(ctx, s.db, "list holidays", scanHoliday,
		`SELECT id, name, starts_on, ends_on FROM term_holidays ORDER BY starts_on, id`)
}

func scanHoliday(sc scanner) (Holiday, error) {
	var h Holiday
	err := sc.Scan(&h.ID, &h.Name, &h.StartsOn, &h.EndsOn)
	return h, err
}

func termAt(ctx context.Context, tx *sql.Tx, startsOn string) (Term, error) {
	var t Term
	err := tx.QueryRowContext(ctx, `SELECT name, starts_on, ends_on, half_term_starts, half_term_ends FROM term_dates WHERE starts_on = ?`, startsOn).
		Scan(&t.Name, &t.StartsOn, &t.EndsOn, &t.HalfTermStarts, &t.HalfTermEnds)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// SaveTerm adds a term (was "") or replaces the term that started on was,
// audited as "calendar.term.add" or "calendar.term.edit". The caller checks
// the dates; a term that overlaps another is ErrConflict, one starting on
// the day another starts is ErrExists, and was naming no term ErrNotFound.
func (s *Store) SaveTerm(ctx context.Context, actor, was string, t Term, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		e := AuditEntry{Actor: actor, Action: "calendar.term.add", Object: "term:" + t.StartsOn, At: now}
		if was != "" {
			before, err := termAt(ctx, tx, was)
			if err != nil {
				return err
			}
			if e.Before, err = auditJSON(before); err != nil {
				return err
			}
			e.Action = "calendar.term.edit"
			if _, err := tx.ExecContext(ctx, `DELETE FROM term_dates WHERE starts_on = ?`, was); err != nil {
				return err
			}
		}
		var other string
		err := tx.QueryRowContext(ctx, `SELECT name FROM term_dates WHERE starts_on <= ? AND ? <= ends_on LIMIT 1`, t.EndsOn, t.StartsOn).Scan(&other)
		if err == nil {
			return fmt.Errorf("it overlaps %s: %w", other, ErrConflict)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO term_dates (name, starts_on, ends_on, half_term_starts, half_term_ends) VALUES (?, ?, ?, ?, ?)`,
			t.Name, t.StartsOn, t.EndsOn, t.HalfTermStarts, t.HalfTermEnds); err != nil {
			if isUniqueViolation(err) {
				return ErrExists
			}
			return err
		}
		if e.After, err = auditJSON(t); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("store: save term %s: %w", t.Name, err)
	}
	return nil
}

// DeleteTerm removes the term that starts on startsOn, audited as
// "calendar.term.delete"; ErrNotFound when there is none.
func (s *Store) DeleteTerm(ctx context.Context, actor, startsOn string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := termAt(ctx, tx, startsOn)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM term_dates WHERE starts_on = ?`, startsOn); err != nil {
			return err
		}
		b, err := auditJSON(before)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "calendar.term.delete", Object: "term:" + startsOn, Before: b, At: now})
	})
	if err != nil {
		return fmt.Errorf("store: delete term %s: %w", startsOn, err)
	}
	return nil
}

// SaveHoliday adds a holiday (ID 0) or changes one, audited as
// "calendar.holiday.add" or "calendar.holiday.edit"; it returns the
// holiday with its ID. An ID naming no holiday is ErrNotFound.
func (s *Store) SaveHoliday(ctx context.Context, actor string, h Holiday, now time.Time) (Holiday, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		e := AuditEntry{Actor: actor, Action: "calendar.holiday.add", At: now}
		if h.ID != 0 {
			before, err := scanHoliday(tx.QueryRowContext(ctx, `SELECT id, name, starts_on, ends_on FROM term_holidays WHERE id = ?`, h.ID))
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			if e.Before, err = auditJSON(before); err != nil {
				return err
			}
			e.Action = "calendar.holiday.edit"
			if _, err := tx.ExecContext(ctx, `UPDATE term_holidays SET name = ?, starts_on = ?, ends_on = ? WHERE id = ?`, h.Name, h.StartsOn, h.EndsOn, h.ID); err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, `INSERT INTO term_holidays (name, starts_on, ends_on) VALUES (?, ?, ?)`, h.Name, h.StartsOn, h.EndsOn)
			if err != nil {
				return err
			}
			if h.ID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		e.Object = fmt.Sprintf("holiday:%d", h.ID)
		var err error
		if e.After, err = auditJSON(h); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, e)
	})
	if err != nil {
		return Holiday{}, fmt.Errorf("store: save holiday %s: %w", h.Name, err)
	}
	return h, nil
}

// DeleteHoliday removes a holiday, audited as "calendar.holiday.delete";
// ErrNotFound when there is none.
func (s *Store) DeleteHoliday(ctx context.Context, actor string, id int64, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanHoliday(tx.QueryRowContext(ctx, `SELECT id, name, starts_on, ends_on FROM term_holidays WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM term_holidays WHERE id = ?`, id); err != nil {
			return err
		}
		b, err := auditJSON(before)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "calendar.holiday.delete", Object: fmt.Sprintf("holiday:%d", id), Before: b, At: now})
	})
	if err != nil {
		return fmt.Errorf("store: delete holiday %d: %w", id, err)
	}
	return nil
}
