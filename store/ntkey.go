package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SetPersonWiFiCredentials sets a person's Wi-Fi password in both forms at
// once: the argon2id hash (PAP, TTLS-PAP) and the sealed NT hash
// (MSCHAPv2), so the two can never disagree. hash "" clears the password;
// ntSealed nil or empty stores no NT hash (MSCHAPv2 disabled, or clearing).
// The store never sees an NT hash in clear: package people seals it.
// Audited as "person.wifi_password" with whether each form is set, never
// the hashes.
func (s *Store) SetPersonWiFiCredentials(ctx context.Context, actor string, personID int64, hash string, ntSealed []byte, now time.Time) error {
	if hash == "" && len(ntSealed) > 0 {
		return fmt.Errorf("store: set Wi-Fi password of person %d: an NT hash without a password hash", personID)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := execOne(ctx, tx, `UPDATE people SET wifi_password_hash = ? WHERE id = ?`, hash, personID); err != nil {
			return err
		}
		if len(ntSealed) == 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM people_wifi_nt WHERE person_id = ?`, personID); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `INSERT INTO people_wifi_nt (person_id, sealed) VALUES (?, ?)
			ON CONFLICT (person_id) DO UPDATE SET sealed = excluded.sealed`, personID, ntSealed); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Set    bool `json:"set"`
			NTHash bool `json:"nt_hash"`
		}{hash != "", len(ntSealed) > 0})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "person.wifi_password", Object: personObject(personID), After: after, At: now})
	})
	if err != nil {
		return fmt.Errorf("store: set Wi-Fi password of person %d: %w", personID, err)
	}
	return nil
}

// PersonNTLogin finds the person whose username (ignoring case) is name,
// with their sealed NT hash (empty when none), for MSCHAPv2. ErrNotFound
// if nobody.
func (s *Store) PersonNTLogin(ctx context.Context, name string) (Person, []byte, error) {
	var sealed []byte
	p, err := scanPerson(suffixScanner{s.db.QueryRowContext(ctx, `SELECT `+prefixed("people.", personColumns)+`, coalesce(n.sealed, x'')
		FROM people LEFT JOIN people_wifi_nt n ON n.person_id = people.id
		WHERE people.username = ? COLLATE NOCASE AND people.username <> '' ORDER BY people.id LIMIT 1`, name), []any{&sealed}})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Person{}, nil, fmt.Errorf("store: MSCHAPv2 login %q: %w", name, err)
	}
	return p, sealed, nil
}

// PersonWiFiLogin finds the person whose username (ignoring case) is
// name, with both forms of their Wi-Fi password in one read: the argon2id
// hash ("" when none) and the sealed NT hash (empty when none). RADIUS's
// identity cache holds both, so PEAP and TTLS-MSCHAPv2 read no SQL of
// their own. ErrNotFound if nobody.
func (s *Store) PersonWiFiLogin(ctx context.Context, name string) (Person, string, []byte, error) {
	var (
		hash   string
		sealed []byte
	)
	p, err := scanPerson(suffixScanner{s.db.QueryRowContext(ctx, `SELECT `+prefixed("people.", personColumns)+`, people.wifi_password_hash, coalesce(n.sealed, x'')
		FROM people LEFT JOIN people_wifi_nt n ON n.person_id = people.id
		WHERE people.username = ? COLLATE NOCASE AND people.username <> '' ORDER BY people.id LIMIT 1`, name), []any{&hash, &sealed}})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Person{}, "", nil, fmt.Errorf("store: Wi-Fi login %q: %w", name, err)
	}
	return p, hash, sealed, nil
}

// ClearWiFiNTHashes removes every stored NT hash: when MSCHAPv2 is turned
// off they must not linger. Returns how many there were; audited as
// "people.wifi_nt_hashes_cleared" (only when there were any).
func (s *Store) ClearWiFiNTHashes(ctx context.Context, actor string, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM people_wifi_nt`)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		after, err := auditJSON(struct {
			Cleared int64 `json:"cleared"`
		}{n})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "people.wifi_nt_hashes_cleared", Object: "people", After: after, At: now})
	})
	if err != nil {
		return 0, fmt.Errorf("store: clear NT hashes: %w", err)
	}
	return n, nil
}

// CountWiFiNTHashes says how many people have an NT hash stored.
func (s *Store) CountWiFiNTHashes(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM people_wifi_nt`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count NT hashes: %w", err)
	}
	return n, nil
}

// clearWiFiPasswordTx removes both forms of a person's Wi-Fi password, for
// a revocation or a departure (whichever path takes them out).
func clearWiFiPasswordTx(ctx context.Context, tx *sql.Tx, personID int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE people SET wifi_password_hash = '' WHERE id = ?`, personID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM people_wifi_nt WHERE person_id = ?`, personID)
	return err
}

// prefixed qualifies each of a comma-separated column list with table.
func prefixed(table, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = table + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
