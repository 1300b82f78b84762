package store

import (
	"context"
	"fmt"
	"time"
)

// HourCount is how many rows fell in one UTC hour.
type HourCount struct {
	Hour time.Time // start of the hour, UTC
	N    int
}

// FindingHours counts findings per UTC hour from since on, oldest first,
// for the overview's charts. Counting in SQL keeps the answer at most one
// row per hour however many findings a busy school stores.
func (s *Store) FindingHours(ctx context.Context, since time.Time) ([]HourCount, error) {
	return s.hourCounts(ctx, `findings`, `at`, since)
}

// VoucherHours counts visitor codes issued per UTC hour from since on,
// oldest first.
func (s *Store) VoucherHours(ctx context.Context, since time.Time) ([]HourCount, error) {
	return s.hourCounts(ctx, `vouchers`, `created_at`, since)
}

// hourCounts groups table by the hour of its time column (stored as
// formatTime's fixed-width UTC text, so its first 13 characters are the
// hour). table and col are constants of this file, never input.
func (s *Store) hourCounts(ctx context.Context, table, col string, since time.Time) ([]HourCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT substr(`+col+`, 1, 13), count(*) FROM `+table+
		` WHERE `+col+` >= ? GROUP BY 1 ORDER BY 1`, formatTime(since))
	if err != nil {
		return nil, fmt.Errorf("store: count %s per hour: %w", table, err)
	}
	defer rows.Close()
	var out []HourCount
	for rows.Next() {
		var h string
		var n int
		if err := rows.Scan(&h, &n); err != nil {
			return nil, fmt.Errorf("store: count %s per hour: %w", table, err)
		}
		t, err := time.Parse("2006-01-02T15", h)
		if err != nil {
			return nil, fmt.Errorf("store: count %s per hour: stored hour %q: %w", table, h, err)
		}
		out = append(out, HourCount{Hour: t.UTC(), N: n})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count %s per hour: %w", table, err)
	}
	return out, nil
}

// FindingClasses counts findings per class from since on.
func (s *Store) FindingClasses(ctx context.Context, since time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT class, count(*) FROM findings WHERE at >= ? GROUP BY class`, formatTime(since))
	if err != nil {
		return nil, fmt.Errorf("store: count findings per class: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var c string
		var n int
		if err := rows.Scan(&c, &n); err != nil {
			return nil, fmt.Errorf("store: count findings per class: %w", err)
		}
		out[c] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count findings per class: %w", err)
	}
	return out, nil
}
