package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ReceptionLimits are the bounds the network manager sets on the options
// reception may put on a visitor code: reception can then neither issue a
// code for every device in the building nor lift the rate or data limits
// the network depends on.
type ReceptionLimits struct {
	// MaxDevices is the most devices one of reception's codes may allow;
	// reception cannot issue unlimited-device codes.
	MaxDevices int
	// MaxRateBps caps each direction's rate, in bits per second, of
	// reception's codes: a code must set a rate, at most this; 0 means no
	// cap (reception may leave the rate to the segment).
	MaxRateBps int64
	// MaxQuotaBytes caps a code's data quota likewise; 0 means no cap.
	MaxQuotaBytes int64
	// MaxDuration is the longest code reception may issue.
	MaxDuration time.Duration
	SetAt       time.Time // zero: the built-in defaults
	SetBy       string
}

// DefaultReceptionLimits hold until the network manager sets others: a
// family's devices, a week, the segment's own rate and no quota of the
// code's own.
var DefaultReceptionLimits = ReceptionLimits{MaxDevices: 5, MaxDuration: 7 * 24 * time.Hour}

// Check reports what is wrong with l, in words for a form.
func (l ReceptionLimits) Check() error {
	switch {
	case l.MaxDevices < 1 || l.MaxDevices > 1000:
		return errors.New("the most devices per code must be 1 to 1000")
	case l.MaxRateBps < 0 || l.MaxQuotaBytes < 0:
		return errors.New("the rate and quota caps must not be negative")
	case l.MaxDuration < time.Minute || l.MaxDuration > 366*24*time.Hour:
		return errors.New("the longest code must be from a minute to 366 days")
	}
	return nil
}

// ReceptionLimits returns the limits in force.
func (s *Store) ReceptionLimits(ctx context.Context) (ReceptionLimits, error) {
	var l ReceptionLimits
	var secs int64
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT max_devices, max_rate_bps, max_quota_bytes, max_duration_s, set_at, set_by
		FROM reception_limits WHERE id = 1`).Scan(&l.MaxDevices, &l.MaxRateBps, &l.MaxQuotaBytes, &secs, &at, &l.SetBy)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return DefaultReceptionLimits, nil
	case err != nil:
		return ReceptionLimits{}, fmt.Errorf("store: reception limits: %w", err)
	}
	l.MaxDuration = time.Duration(secs) * time.Second
	if l.SetAt, err = parseTime(at); err != nil {
		return ReceptionLimits{}, fmt.Errorf("store: reception limits: %w", err)
	}
	return l, nil
}

// SetReceptionLimits replaces the limits, audited as "reception.limits"
// in the same transaction.
func (s *Store) SetReceptionLimits(ctx context.Context, actor string, l ReceptionLimits, at time.Time) error {
	if err := l.Check(); err != nil {
		return fmt.Errorf("store: set reception limits: %w", err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO reception_limits (id, max_devices, max_rate_bps, max_quota_bytes, max_duration_s, set_at, set_by)
			VALUES (1, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET max_devices = excluded.max_devices, max_rate_bps = excluded.max_rate_bps,
				max_quota_bytes = excluded.max_quota_bytes, max_duration_s = excluded.max_duration_s, set_at = excluded.set_at, set_by = excluded.set_by`,
			l.MaxDevices, l.MaxRateBps, l.MaxQuotaBytes, int64(l.MaxDuration/time.Second), formatTime(at), actor); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			MaxDevices    int   `json:"max_devices"`
			MaxRateBps    int64 `json:"max_rate_bps"`
			MaxQuotaBytes int64 `json:"max_quota_bytes"`
			MaxDurationS  int64 `json:"max_duration_s"`
		}{l.MaxDevices, l.MaxRateBps, l.MaxQuotaBytes, int64(l.MaxDuration / time.Second)})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "reception.limits", Object: "reception", After: after})
	})
	if err != nil {
		return fmt.Errorf("store: set reception limits: %w", err)
	}
	return nil
}
