package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Branding is the school's logo and colour, shown on the visitor portal
// and the printed slips.
type Branding struct {
	Logo   []byte // PNG; nil for none
	Colour string // "#rrggbb"; "" for the default
	SetAt  time.Time
	SetBy  string
}

// MaxLogoBytes bounds a stored logo: it is inlined in every portal page.
const MaxLogoBytes = 64 << 10

// SetBranding replaces the branding, audited as "portal.branding" (the
// logo by its size, never its bytes). The caller checks the logo and the
// colour; the store only bounds the logo's size.
func (s *Store) SetBranding(ctx context.Context, actor string, b Branding, at time.Time) error {
	if len(b.Logo) > MaxLogoBytes {
		return fmt.Errorf("store: set branding: logo of %d bytes is over %d", len(b.Logo), MaxLogoBytes)
	}
	if b.Logo == nil {
		b.Logo = []byte{}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO branding (id, logo, colour, set_at, set_by) VALUES (1, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET logo = excluded.logo, colour = excluded.colour, set_at = excluded.set_at, set_by = excluded.set_by`,
			b.Logo, b.Colour, formatTime(at), actor); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			LogoBytes int    `json:"logo_bytes"`
			Colour    string `json:"colour"`
		}{len(b.Logo), b.Colour})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "portal.branding", Object: "branding", After: after})
	})
	if err != nil {
		return fmt.Errorf("store: set branding: %w", err)
	}
	return nil
}

// CurrentBranding returns the branding; a zero Branding when none was set.
func (s *Store) CurrentBranding(ctx context.Context) (Branding, error) {
	var b Branding
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT logo, colour, set_at, set_by FROM branding WHERE id = 1`).Scan(&b.Logo, &b.Colour, &at, &b.SetBy)
	if errors.Is(err, sql.ErrNoRows) {
		return Branding{}, nil
	}
	if err == nil {
		b.SetAt, err = parseTime(at)
	}
	if err != nil {
		return Branding{}, fmt.Errorf("store: branding: %w", err)
	}
	if len(b.Logo) == 0 {
		b.Logo = nil
	}
	return b, nil
}
