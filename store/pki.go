package store

// Client certificates issued by the school CA (package pki) and their
// revocation. The table is the serial deny-list EAP-TLS checks.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ClientCert is the record of one client certificate the school CA issued.
type ClientCert struct {
	Serial       string    `json:"serial"` // lower-case hex
	Kind         string    `json:"kind"`   // CertPerson or CertDevice
	Identity     string    `json:"identity"`
	PersonID     int64     `json:"person_id,omitempty"` // 0: none (a device, or a purged person)
	SHA256       string    `json:"sha256"`              // hex, of the certificate's DER
	NotBefore    time.Time `json:"not_before"`
	NotAfter     time.Time `json:"not_after"`
	IssuedAt     time.Time `json:"issued_at"`
	IssuedBy     string    `json:"issued_by"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	RevokedBy    string    `json:"revoked_by,omitempty"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

// Kinds of client certificate.
const (
	CertPerson = "person"
	CertDevice = "device"
)

// Revoked reports whether the certificate is on the deny-list.
func (c ClientCert) Revoked() bool { return !c.RevokedAt.IsZero() }

// ClientCertFilter selects client certificates; the zero value lists the
// newest first, at most MaxClientCertList.
type ClientCertFilter struct {
	PersonID  int64 // 0: everyone
	ValidOnly bool  // only those not revoked
	Limit     int   // 0 or more than MaxClientCertList: MaxClientCertList
}

// MaxClientCertList bounds one listing.
const MaxClientCertList = 1000

const clientCertColumns = `serial, kind, identity, person_id, sha256, not_before, not_after, issued_at, issued_by, revoked_at, revoked_by, revoke_reason`

func scanClientCert(r scanner) (ClientCert, error) {
	var c ClientCert
	var person sql.NullInt64
	var nb, na, ia, ra string
	if err := r.Scan(&c.Serial, &c.Kind, &c.Identity, &person, &c.SHA256, &nb, &na, &ia, &c.IssuedBy, &ra, &c.RevokedBy, &c.RevokeReason); err != nil {
		return ClientCert{}, err
	}
	c.PersonID = person.Int64
	var err error
	for _, t := range []struct {
		dst *time.Time
		s   string
	}{{&c.NotBefore, nb}, {&c.NotAfter, na}, {&c.IssuedAt, ia}, {&c.RevokedAt, ra}} {
		if *t.dst, err = parseTime(t.s); err != nil {
			return ClientCert{}, err
		}
	}
	return c, nil
}

// RecordClientCert records a certificate the CA just issued, audited as
// "pki.client.issue". A serial already recorded is ErrExists.
func (s *Store) RecordClientCert(ctx context.Context, actor string, c ClientCert) error {
	if c.Serial == "" || c.SHA256 == "" || c.Identity == "" || (c.Kind != CertPerson && c.Kind != CertDevice) {
		return fmt.Errorf("store: record client certificate: serial, sha256, identity and kind are required")
	}
	var person any
	if c.PersonID != 0 {
		person = c.PersonID
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_client_certs (`+clientCertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', '')`,
			c.Serial, c.Kind, c.Identity, person, c.SHA256, formatTime(c.NotBefore), formatTime(c.NotAfter), formatTime(c.IssuedAt), actor)
		if isUniqueViolation(err) {
			return ErrExists
		}
		if isForeignKeyViolation(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		c.IssuedBy = actor
		after, err := auditJSON(c)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "pki.client.issue", Object: "cert:" + c.Serial, After: after})
	})
	if err != nil {
		return fmt.Errorf("store: record client certificate %s: %w", c.Serial, err)
	}
	return nil
}

// ClientCert looks one certificate up by serial; ErrNotFound when the CA
// never issued it.
func (s *Store) ClientCert(ctx context.Context, serial string) (ClientCert, error) {
	return queryOne(ctx, s.db, "client certificate "+serial, scanClientCert,
		`SELECT `+clientCertColumns+` FROM pki_client_certs WHERE serial = ?`, serial)
}

// ClientCerts lists certificates, newest first.
func (s *Store) ClientCerts(ctx context.Context, f ClientCertFilter) ([]ClientCert, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxClientCertList {
		limit = MaxClientCertList
	}
	q := `SELECT ` + clientCertColumns + ` FROM pki_client_certs WHERE 1=1`
	var args []any
	if f.PersonID != 0 {
		q += ` AND person_id = ?`
		args = append(args, f.PersonID)
	}
	if f.ValidOnly {
		q += ` AND revoked_at = ''`
	}
	q += ` ORDER BY issued_at DESC, serial LIMIT ?`
	args = append(args, limit)
	return queryAll(ctx, s.db, "list client certificates", scanClientCert, q, args...)
}

// RevokeClientCert puts one certificate on the deny-list, audited as
// "pki.client.revoke" in the same transaction. ErrNotFound for an unknown
// serial, ErrConflict for one already revoked.
func (s *Store) RevokeClientCert(ctx context.Context, actor, serial, reason string, now time.Time) (ClientCert, error) {
	var out ClientCert
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := queryOne(ctx, tx, "client certificate "+serial, scanClientCert,
			`SELECT `+clientCertColumns+` FROM pki_client_certs WHERE serial = ?`, serial)
		if err != nil {
			return err
		}
		if before.Revoked() {
			return ErrConflict
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pki_client_certs SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE serial = ?`,
			formatTime(now), actor, reason, serial); err != nil {
			return err
		}
		out = before
		out.RevokedAt, out.RevokedBy, out.RevokeReason = now.UTC(), actor, reason
		b, err := auditJSON(before)
		if err != nil {
			return err
		}
		a, err := auditJSON(out)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "pki.client.revoke", Object: "cert:" + serial, Before: b, After: a})
	})
	if err != nil {
		return ClientCert{}, fmt.Errorf("store: revoke client certificate %s: %w", serial, err)
	}
	return out, nil
}

// RevokePersonClientCerts revokes every certificate of a person still in
// force (a leaver, a revoked person), audited as "person.certs.revoke" with
// the serials, and returns how many it revoked.
func (s *Store) RevokePersonClientCerts(ctx context.Context, actor string, personID int64, reason string, now time.Time) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		certs, err := queryAll(ctx, tx, "list client certificates", scanClientCert,
			`SELECT `+clientCertColumns+` FROM pki_client_certs WHERE person_id = ? AND revoked_at = '' ORDER BY serial`, personID)
		if err != nil {
			return err
		}
		n = len(certs)
		if n == 0 {
			return nil // nothing changed: no audit row
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pki_client_certs SET revoked_at = ?, revoked_by = ?, revoke_reason = ?
			WHERE person_id = ? AND revoked_at = ''`, formatTime(now), actor, reason, personID); err != nil {
			return err
		}
		serials := make([]string, 0, n)
		for _, c := range certs {
			serials = append(serials, c.Serial)
		}
		after, err := auditJSON(struct {
			Person  int64    `json:"person"`
			Serials []string `json:"serials"`
			Reason  string   `json:"reason"`
		}{personID, serials, reason})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "person.certs.revoke", Object: fmt.Sprintf("person:%d", personID), After: after})
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("store: revoke certificates of person %d: %w", personID, err)
	}
	return n, err
}
