package store

import (
	"bytes"
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
	s.portal.changed()
	if err != nil {
		return fmt.Errorf("store: set branding: %w", err)
	}
	return nil
}

// CurrentBranding returns the branding; a zero Branding when none was set.
// It is read for every portal page, so the last answer is kept (see
// portalCache); the caller gets its own copy of the logo.
func (s *Store) CurrentBranding(ctx context.Context) (Branding, error) {
	if b, ok := s.portal.branding(); ok {
		b.Logo = bytes.Clone(b.Logo)
		return b, nil
	}
	gen := s.portal.generation()
	var b Branding
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT logo, colour, set_at, set_by FROM branding WHERE id = 1`).Scan(&b.Logo, &b.Colour, &at, &b.SetBy)
	if errors.Is(err, sql.ErrNoRows) {
		s.portal.keepBranding(gen, Branding{})
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
	s.portal.keepBranding(gen, b)
	b.Logo = bytes.Clone(b.Logo)
	return b, nil
}
