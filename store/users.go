package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Roles of admin users. A user has exactly one.
const (
	RoleReception = "reception" // vouchers only
	RoleNetwork   = "network"   // segments, rules, devices, people, settings
	RoleDSL       = "dsl"       // alerts and the incident log
)

// ValidRole reports whether r is one of the roles above.
func ValidRole(r string) bool {
	switch r {
	case RoleReception, RoleNetwork, RoleDSL:
		return true
	}
	return false
}

// User is an administrator of the admin page and the CLI.
type User struct {
	ID           int64
	Name         string
	Role         string
	PasswordHash string
	FailedLogins int
	LockedUntil  time.Time // zero when not locked
	CreatedAt    time.Time
	Disabled     bool
	// DisplayName is how pages name the user ("Mrs Patel"); spaces allowed,
	// at most MaxDisplayName bytes. Empty: the login name.
	DisplayName string
}

// MaxDisplayName bounds User.DisplayName.
const MaxDisplayName = 100

// Shown is how pages name u: the display name, or the login name.
func (u User) Shown() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Name
}

// userAudit is what the audit log records about a user: never the hash.
type userAudit struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name,omitempty"`
	Role        string    `json:"role"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
}

const maxNameLen = 64

// validName accepts what fits in "user:<name>" audit objects, log lines and
// URLs without quoting: letters, digits and . _ - @.
func validName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("name must be 1..%d bytes", maxNameLen)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '@':
		default:
			return fmt.Errorf("name %q may contain only letters, digits and . _ - @", name)
		}
	}
	return nil
}

// CreateUser adds a user and audits it as "user.create". Names are unique
// ignoring case; a duplicate is ErrExists. The role must be one of the Role
// constants. ID is assigned and CreatedAt filled if zero.
func (s *Store) CreateUser(ctx context.Context, actor string, u User) (User, error) {
	if err := validName(u.Name); err != nil {
		return User{}, fmt.Errorf("store: create user: %w", err)
	}
	if !ValidRole(u.Role) {
		return User{}, fmt.Errorf("store: create user %s: role %q is not one of %q, %q, %q", u.Name, u.Role, RoleReception, RoleNetwork, RoleDSL)
	}
	if u.PasswordHash == "" {
		return User{}, fmt.Errorf("store: create user %s: empty password hash", u.Name)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	u.CreatedAt = u.CreatedAt.UTC()
	u.FailedLogins, u.LockedUntil = 0, time.Time{}
	if err := validDisplayName(u.DisplayName); err != nil {
		return User{}, fmt.Errorf("store: create user %s: %w", u.Name, err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, role, password_hash, created_at, disabled, display_name) VALUES (?, ?, ?, ?, ?, ?)`,
			u.Name, u.Role, u.PasswordHash, formatTime(u.CreatedAt), u.Disabled, u.DisplayName)
		if err != nil {
			if isUniqueViolation(err) {
				return ErrExists
			}
			return err
		}
		if u.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		after, err := auditJSON(userAudit{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "user.create", Object: "user:" + u.Name, After: after})
	})
	if err != nil {
		return User{}, fmt.Errorf("store: create user %s: %w", u.Name, err)
	}
	return u, nil
}

// SetUserPassword replaces a user's password hash, audited as
// "user.password" (without the hash), and deletes the user's API tokens in
// the same transaction: whoever knew the old password may have made one.
// ErrNotFound if there is no such user.
func (s *Store) SetUserPassword(ctx context.Context, actor string, name, hash string) error {
	if hash == "" {
		return fmt.Errorf("store: set password for %s: empty password hash", name)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		u, err := userByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, u.ID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, u.ID)
		if err != nil {
			return err
		}
		ended, err := res.RowsAffected()
		if err != nil {
			return err
		}
		after, err := auditJSON(struct {
			APITokensEnded int64 `json:"api_tokens_ended"`
		}{ended})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "user.password", Object: "user:" + u.Name, After: after})
	})
	if err != nil {
		return fmt.Errorf("store: set password for %s: %w", name, err)
	}
	return nil
}

const userColumns = `id, name, role, password_hash, failed_logins, locked_until, created_at, disabled, display_name`

type scanner interface{ Scan(dest ...any) error }

func scanUser(sc scanner) (User, error) {
	var u User
	var locked, created string
	if err := sc.Scan(&u.ID, &u.Name, &u.Role, &u.PasswordHash, &u.FailedLogins, &locked, &created, &u.Disabled, &u.DisplayName); err != nil {
		return User{}, err
	}
	var err error
	if u.LockedUntil, err = parseTime(locked); err != nil {
		return User{}, fmt.Errorf("user %d locked_until: %w", u.ID, err)
	}
	if u.CreatedAt, err = parseTime(created); err != nil {
		return User{}, fmt.Errorf("user %d created_at: %w", u.ID, err)
	}
	return u, nil
}

func userByName(ctx context.Context, q querier, name string) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

// UserByName looks a user up by name, ignoring case.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := userByName(ctx, s.db, name)
	if err != nil {
		return User{}, fmt.Errorf("store: user %s: %w", name, err)
	}
	return u, nil
}

// UserByID looks a user up by id.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %d: %w", id, err)
	}
	return u, nil
}

// ListUsers returns all users ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	return queryAll(ctx, s.db, "list users", scanUser, `SELECT `+userColumns+` FROM users ORDER BY name`)
}

type lockAudit struct {
	FailedLogins int    `json:"failed_logins"`
	LockedUntil  string `json:"locked_until"`
}

// RecordLoginFailure counts one failed login for name. When the count reaches
// max and the account is not already locked, it sets locked_until to now+lock
// and writes a "user.lock" audit row (actor "web:login"). The count is not
// reset by locking, only by ResetLoginFailures (a successful login), so after
// a lock expires the next failure locks again at once. It returns whether the
// account is locked at now. ErrNotFound if there is no such user; the caller
// decides what an unknown name looks like from outside.
func (s *Store) RecordLoginFailure(ctx context.Context, name string, now time.Time, max int, lock time.Duration) (locked bool, err error) {
	if max < 1 || lock <= 0 {
		return false, fmt.Errorf("store: record login failure for %s: max %d and lock %v must be positive", name, max, lock)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		u, err := userByName(ctx, tx, name)
		if err != nil {
			return err
		}
		failed := u.FailedLogins + 1
		lockedUntil := u.LockedUntil
		alreadyLocked := lockedUntil.After(now)
		if failed >= max && !alreadyLocked {
			lockedUntil = now.Add(lock)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?`,
			failed, formatTime(lockedUntil), u.ID); err != nil {
			return err
		}
		locked = lockedUntil.After(now)
		if !locked || alreadyLocked {
			return nil
		}
		before, err := auditJSON(lockAudit{FailedLogins: u.FailedLogins, LockedUntil: formatTime(u.LockedUntil)})
		if err != nil {
			return err
		}
		after, err := auditJSON(lockAudit{FailedLogins: failed, LockedUntil: formatTime(lockedUntil)})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{At: now, Actor: "web:login", Action: "user.lock", Object: "user:" + u.Name, Before: before, After: after})
	})
	if err != nil {
		return false, fmt.Errorf("store: record login failure for %s: %w", name, err)
	}
	return locked, nil
}

// ResetLoginFailures clears the failure count and any lock, after a
// successful login. An administrator unlocking an account should also write
// an audit row; a routine login reset is not audited.
func (s *Store) ResetLoginFailures(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return execOne(ctx, tx, `UPDATE users SET failed_logins = 0, locked_until = '' WHERE name = ?`, name)
	})
	if err != nil {
		return fmt.Errorf("store: reset login failures for %s: %w", name, err)
	}
	return nil
}

// Session is a logged-in browser. TokenHash is the SHA-256 (hex) of the
// cookie value; the cookie itself is never stored.
type Session struct {
	TokenHash string
	UserID    int64
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastSeen is the last request TouchSession recorded. The store does not
	// judge idleness: how long a session may sit unused is web's policy.
	LastSeen time.Time
}

// CreateSession stores a session. ErrExists if the token hash is taken,
// ErrNotFound if the user does not exist. CreatedAt is filled if zero, and
// LastSeen (if zero) with CreatedAt.
func (s *Store) CreateSession(ctx context.Context, sess Session) error {
	if sess.TokenHash == "" || sess.CSRFToken == "" {
		return errors.New("store: create session: token hash and CSRF token are required")
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = time.Now()
	}
	if sess.LastSeen.IsZero() {
		sess.LastSeen = sess.CreatedAt
	}
	if !sess.ExpiresAt.After(sess.CreatedAt) {
		return fmt.Errorf("store: create session: expiry %v is not after creation %v", sess.ExpiresAt, sess.CreatedAt)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)`,
			sess.TokenHash, sess.UserID, sess.CSRFToken, formatTime(sess.CreatedAt), formatTime(sess.ExpiresAt), formatTime(sess.LastSeen))
		switch {
		case isUniqueViolation(err):
			return ErrExists
		case isForeignKeyViolation(err):
			return fmt.Errorf("user %d: %w", sess.UserID, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// SessionByTokenHash returns a live session and its user. A missing or
// expired session, or one whose user is disabled, is ErrNotFound: a disabled
// account must stop working at once, not when its cookies expire. It does
// not apply an idle limit; the caller compares LastSeen with its own.
func (s *Store) SessionByTokenHash(ctx context.Context, tokenHash string, now time.Time) (Session, User, error) {
	var sess Session
	var created, expires, seen string
	row := s.db.QueryRowContext(ctx, `SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at, s.expires_at, s.last_seen,
			u.id, u.name, u.role, u.password_hash, u.failed_logins, u.locked_until, u.created_at, u.disabled, u.display_name
		FROM sessions AS s JOIN users AS u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0`, tokenHash, formatTime(now))
	u, err := scanUser(prefixScanner{row, []any{&sess.TokenHash, &sess.UserID, &sess.CSRFToken, &created, &expires, &seen}})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err == nil {
		if sess.CreatedAt, err = parseTime(created); err == nil {
			if sess.ExpiresAt, err = parseTime(expires); err == nil {
				sess.LastSeen, err = parseTime(seen)
			}
		}
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("store: session: %w", err)
	}
	return sess, u, nil
}

// prefixScanner lets scanUser read the user columns that follow some other
// columns in the same row.
type prefixScanner struct {
	sc     scanner
	prefix []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.sc.Scan(append(p.prefix[:len(p.prefix):len(p.prefix)], dest...)...)
}

// DeleteSession removes a session (logout). Deleting a session that is
// already gone is not an error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// TouchSession records a request on a session at now. It is a single-row
// update without an audit row, but still a write: callers should skip it
// while LastSeen is recent. last_seen never moves backwards, so a request
// that raced a later one cannot shorten the session's idle time.
// ErrNotFound if there is no such session.
func (s *Store) TouchSession(ctx context.Context, tokenHash string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return execOne(ctx, tx, `UPDATE sessions SET last_seen = max(last_seen, ?) WHERE token_hash = ?`, formatTime(now), tokenHash)
	})
	if err != nil {
		return fmt.Errorf("store: touch session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user except the one whose
// token hash is except ("" ends them all), e.g. after a password change, and
// returns how many it ended. Not audited: the event that caused it (the
// password change) is. A user without sessions, or no such user, is 0.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64, except string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?`, userID, except)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete sessions of user %d: %w", userID, err)
	}
	return n, nil
}

// DeleteExpiredSessions removes sessions expired at now and returns how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, formatTime(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return n, nil
}

// APIToken is a long-lived credential for scripts and the CLI. TokenHash is
// the SHA-256 (hex) of the token; the token itself is never stored.
type APIToken struct {
	ID        int64
	Name      string
	UserID    int64
	TokenHash string
	CreatedAt time.Time
	LastUsed  time.Time // zero if never used
}

type apiTokenAudit struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	UserID    int64     `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
}

func tokenAuditJSON(t APIToken) (string, error) {
	return auditJSON(apiTokenAudit{ID: t.ID, Name: t.Name, UserID: t.UserID, CreatedAt: t.CreatedAt})
}

// CreateAPIToken stores a token for a user, audited as "api_token.create"
// (without the hash). ErrExists if the hash, or the name for that user, is
// taken; ErrNotFound if the user does not exist. ID and CreatedAt are filled.
func (s *Store) CreateAPIToken(ctx context.Context, actor string, t APIToken) (APIToken, error) {
	if err := validName(t.Name); err != nil {
		return APIToken{}, fmt.Errorf("store: create API token: %w", err)
	}
	if t.TokenHash == "" {
		return APIToken{}, fmt.Errorf("store: create API token %s: empty token hash", t.Name)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	t.CreatedAt, t.LastUsed = t.CreatedAt.UTC(), time.Time{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (name, user_id, token_hash, created_at) VALUES (?, ?, ?, ?)`,
			t.Name, t.UserID, t.TokenHash, formatTime(t.CreatedAt))
		switch {
		case isUniqueViolation(err):
			return ErrExists
		case isForeignKeyViolation(err):
			return fmt.Errorf("user %d: %w", t.UserID, ErrNotFound)
		case err != nil:
			return err
		}
		if t.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		after, err := tokenAuditJSON(t)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "api_token.create", Object: "api_token:" + strconv.FormatInt(t.ID, 10), After: after})
	})
	if err != nil {
		return APIToken{}, fmt.Errorf("store: create API token %s: %w", t.Name, err)
	}
	return t, nil
}

const tokenColumns = `t.id, t.name, t.user_id, t.token_hash, t.created_at, t.last_used`

func scanToken(sc scanner) (APIToken, error) {
	var t APIToken
	var created, used string
	if err := sc.Scan(&t.ID, &t.Name, &t.UserID, &t.TokenHash, &created, &used); err != nil {
		return APIToken{}, err
	}
	var err error
	if t.CreatedAt, err = parseTime(created); err != nil {
		return APIToken{}, err
	}
	if t.LastUsed, err = parseTime(used); err != nil {
		return APIToken{}, err
	}
	return t, nil
}

// APITokensByUser returns a user's tokens ordered by name, for listing and
// revoking; the hashes are included but are no use to a reader. A user
// without tokens, or no such user, gives an empty list.
func (s *Store) APITokensByUser(ctx context.Context, userID int64) ([]APIToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens AS t WHERE t.user_id = ? ORDER BY t.name, t.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: API tokens of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: API tokens of user %d: %w", userID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: API tokens of user %d: %w", userID, err)
	}
	return out, nil
}

// OwnedAPIToken is a token with its user's name, for the network role's list
// of every token.
type OwnedAPIToken struct {
	APIToken
	UserName string
}

// AllAPITokens returns every user's tokens ordered by user and token name,
// so the network role can revoke any of them.
func (s *Store) AllAPITokens(ctx context.Context) ([]OwnedAPIToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+`, u.name FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id ORDER BY u.name, t.name, t.id`)
	if err != nil {
		return nil, fmt.Errorf("store: all API tokens: %w", err)
	}
	defer rows.Close()
	var out []OwnedAPIToken
	for rows.Next() {
		var o OwnedAPIToken
		var name string
		t, err := scanToken(suffixScanner{rows, []any{&name}})
		if err != nil {
			return nil, fmt.Errorf("store: all API tokens: %w", err)
		}
		o.APIToken, o.UserName = t, name
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: all API tokens: %w", err)
	}
	return out, nil
}

// APITokenByHash authenticates a request: it returns the token and its user
// and records now as the time of use. ErrNotFound if no token has that hash
// or its user is disabled. The lookup is a plain read, so guessed tokens
// never take the write lock; only a hit writes last_used.
func (s *Store) APITokenByHash(ctx context.Context, tokenHash string, now time.Time) (APIToken, User, error) {
	var t APIToken
	var created, used string
	row := s.db.QueryRowContext(ctx, `SELECT t.id, t.name, t.user_id, t.token_hash, t.created_at, t.last_used,
			u.id, u.name, u.role, u.password_hash, u.failed_logins, u.locked_until, u.created_at, u.disabled, u.display_name
		FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id
		WHERE t.token_hash = ? AND u.disabled = 0`, tokenHash)
	u, err := scanUser(prefixScanner{row, []any{&t.ID, &t.Name, &t.UserID, &t.TokenHash, &created, &used}})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err == nil {
		t.CreatedAt, err = parseTime(created)
	}
	if err == nil {
		// Through the stored text, so the result equals a later read.
		t.LastUsed, err = parseTime(formatTime(now))
	}
	if err == nil {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			// ErrNotFound when the token was revoked since the read: the
			// revocation wins.
			return execOne(ctx, tx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, formatTime(t.LastUsed), t.ID)
		})
	}
	if err != nil {
		return APIToken{}, User{}, fmt.Errorf("store: API token: %w", err)
	}
	return t, u, nil
}

// DeleteAPIToken revokes a token, audited as "api_token.delete".
// ErrNotFound if there is no such token.
func (s *Store) DeleteAPIToken(ctx context.Context, actor string, id int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens AS t WHERE t.id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ?`, id); err != nil {
			return err
		}
		before, err := tokenAuditJSON(t)
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "api_token.delete", Object: "api_token:" + strconv.FormatInt(id, 10), Before: before})
	})
	if err != nil {
		return fmt.Errorf("store: delete API token %d: %w", id, err)
	}
	return nil
}

// validDisplayName allows any printable text (spaces included) up to
// MaxDisplayName bytes, without control characters or surrounding space.
func validDisplayName(s string) error {
	if len(s) > MaxDisplayName {
		return fmt.Errorf("display name is longer than %d bytes", MaxDisplayName)
	}
	if strings.TrimSpace(s) != s {
		return errors.New("display name starts or ends with a space")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return errors.New("display name has a control character")
		}
	}
	return nil
}
