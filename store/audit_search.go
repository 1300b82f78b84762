package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AuditFilter narrows AuditSearch. Zero fields match everything.
type AuditFilter struct {
	Actor  string    // exact: "web:sarah"
	Kind   string    // an action, or its first part: "voucher" matches "voucher.issue"
	Text   string    // a substring of the object or the action
	From   time.Time // at or after
	Before time.Time // strictly before
	Limit  int       // 1..MaxAuditPage
	Offset int
}

// AuditSearch returns the entries f matches, newest first: the audit page's
// filters by person, kind and date.
func (s *Store) AuditSearch(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit < 1 || f.Limit > MaxAuditPage || f.Offset < 0 {
		return nil, fmt.Errorf("store: audit search: limit %d must be 1..%d and offset %d >= 0", f.Limit, MaxAuditPage, f.Offset)
	}
	var where []string
	var args []any
	if f.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, f.Actor)
	}
	if f.Kind != "" {
		where = append(where, "(action = ? OR substr(action, 1, ?) = ?)")
		args = append(args, f.Kind, len(f.Kind)+1, f.Kind+".")
	}
	if f.Text != "" {
		where = append(where, "(instr(lower(object), lower(?)) > 0 OR instr(lower(action), lower(?)) > 0)")
		args = append(args, f.Text, f.Text)
	}
	if !f.From.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, formatTime(f.From))
	}
	if !f.Before.IsZero() {
		where = append(where, "at < ?")
		args = append(args, formatTime(f.Before))
	}
	q := `SELECT id, at, actor, action, object, before_json, after_json, prev_hash, hash FROM audit_log `
	if len(where) > 0 {
		q += "WHERE " + strings.Join(where, " AND ") + " "
	}
	q += "ORDER BY id DESC LIMIT ? OFFSET ?"
	args = append(args, f.Limit, f.Offset)
	return queryAll(ctx, s.db, "audit search", func(sc scanner) (AuditEntry, error) {
		var e AuditEntry
		var at string
		if err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &e.Before, &e.After, &e.PrevHash, &e.Hash); err != nil {
			return e, err
		}
		var err error
		e.At, err = parseTime(at)
		return e, err
	}, q, args...)
}

// AuditActors lists everyone who has an entry in the audit log, for the
// audit page's "who" filter.
func (s *Store) AuditActors(ctx context.Context) ([]string, error) {
	return queryAll(ctx, s.db, "audit actors", func(sc scanner) (string, error) {
		var a string
		err := sc.Scan(&a)
		return a, err
	}, `SELECT DISTINCT actor FROM audit_log ORDER BY actor LIMIT 500`)
}
