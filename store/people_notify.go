package store

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
)

// NetworkManagerEmails are the addresses of the enabled admin accounts
// with the network role: the email of the member of staff the account
// belongs to (the account is named by their username, email or staff code,
// the link RevokePerson uses), or the account's own name when that is an
// address. Accounts with neither are left out; no address twice.
func (s *Store) NetworkManagerEmails(ctx context.Context) ([]string, error) {
	type row struct{ name, email string }
	rows, err := queryAll(ctx, s.db, "network managers", func(sc scanner) (row, error) {
		var r row
		err := sc.Scan(&r.name, &r.email)
		return r, err
	}, `SELECT u.name, COALESCE((SELECT p.email FROM people p
			WHERE p.kind = 'staff' AND p.state IN ('active', 'leaving') AND p.email <> ''
			  AND (p.username <> '' AND p.username = u.name COLLATE NOCASE
			    OR p.email = u.name COLLATE NOCASE
			    OR p.staff_code <> '' AND p.staff_code = u.name COLLATE NOCASE)
			ORDER BY p.id LIMIT 1), '')
		FROM users u WHERE u.role = ? AND u.disabled = 0 ORDER BY u.name`, RoleNetwork)
	if err != nil {
		return nil, fmt.Errorf("store: network managers' addresses: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		addr := r.email
		if addr == "" {
			if a, err := mail.ParseAddress(r.name); err == nil && a.Name == "" && strings.Contains(r.name, "@") {
				addr = a.Address
			}
		}
		if addr == "" || seen[strings.ToLower(addr)] {
			continue
		}
		seen[strings.ToLower(addr)] = true
		out = append(out, addr)
	}
	return out, nil
}
