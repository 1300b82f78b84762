package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuditEntry is one row of the append-only audit log. Every change made
// through the admin page, the CLI or the scheduler is one entry.
type AuditEntry struct {
	ID       int64
	At       time.Time
	Actor    string // who: "web:alice", "cli:root", "scheduler"
	Action   string // what: "user.create"
	Object   string // on what: "user:alice"
	Before   string // JSON of the object before the change, or ""
	After    string // JSON of the object after the change, or ""
	PrevHash string // hex SHA-256 of the previous entry (64 zeros for the first)
	Hash     string // hex SHA-256 of this entry, see auditHash
}

// AuditBreak is the error VerifyAudit returns for the first row at which the
// chain is broken.
type AuditBreak struct {
	ID     int64
	Reason string
}

func (b *AuditBreak) Error() string {
	return fmt.Sprintf("audit: row %d: %s", b.ID, b.Reason)
}

// genesisHash is the prev_hash of the first row.
var genesisHash = strings.Repeat("0", 64)

// auditHash is SHA-256 over a domain tag and each field as an 8-byte
// big-endian length followed by its bytes. Length prefixes make the encoding
// unambiguous: no two different entries encode to the same bytes, however
// their text is split between fields.
func auditHash(id int64, at time.Time, actor, action, object, before, after, prevHash string) string {
	h := sha256.New()
	h.Write([]byte("gatehouse-audit-v1"))
	var n [8]byte
	for _, f := range []string{
		strconv.FormatInt(id, 10),
		at.UTC().Format(time.RFC3339Nano),
		actor, action, object, before, after, prevHash,
	} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// auditJSON renders v for AuditEntry.Before/After. Callers pass a struct that
// leaves out secrets (password hashes, token hashes).
func auditJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("audit json: %w", err)
	}
	return string(b), nil
}

// Audit appends one entry on its own, for events that change nothing in the
// database (a login, an export, a kernel action). It fills ID, At (if zero),
// PrevHash and Hash and returns the stored entry.
func (s *Store) Audit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	var out AuditEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = appendAudit(ctx, tx, e)
		return err
	})
	if err != nil {
		return AuditEntry{}, fmt.Errorf("store: audit %s %s: %w", e.Action, e.Object, err)
	}
	return out, nil
}

// auditTx appends e inside tx, the transaction that makes the change being
// audited, so that the change and its audit row commit or vanish together.
// tx must come from s.inTx: the chain append relies on the write lock that
// BEGIN IMMEDIATE already holds to stop two writers forking the chain.
func (s *Store) auditTx(ctx context.Context, tx *sql.Tx, e AuditEntry) error {
	_, err := appendAudit(ctx, tx, e)
	return err
}

func appendAudit(ctx context.Context, tx *sql.Tx, e AuditEntry) (AuditEntry, error) {
	if e.Actor == "" || e.Action == "" {
		return AuditEntry{}, errors.New("audit entry needs an actor and an action")
	}
	for _, f := range []struct{ name, v string }{{"before", e.Before}, {"after", e.After}} {
		if f.v != "" && !json.Valid([]byte(f.v)) {
			return AuditEntry{}, fmt.Errorf("audit entry %s is not valid JSON", f.name)
		}
	}
	// The next id comes from sqlite_sequence (the highest id ever issued), not
	// from the last row present: if rows were deleted from the end, the new
	// row's id leaves a gap for VerifyAudit to find.
	var seq int64
	err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'`).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return AuditEntry{}, fmt.Errorf("read audit sequence: %w", err)
	}
	prev := genesisHash
	err = tx.QueryRowContext(ctx, `SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return AuditEntry{}, fmt.Errorf("read audit head: %w", err)
	}
	e.ID = seq + 1
	if e.At.IsZero() {
		e.At = time.Now()
	}
	// Round-trip through the stored form so the returned entry, the stored
	// row and the hash all agree (UTC, no monotonic reading).
	e.At, err = parseTime(formatTime(e.At))
	if err != nil {
		return AuditEntry{}, err
	}
	e.PrevHash = prev
	e.Hash = auditHash(e.ID, e.At, e.Actor, e.Action, e.Object, e.Before, e.After, e.PrevHash)
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log
		(id, at, actor, action, object, before_json, after_json, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, formatTime(e.At), e.Actor, e.Action, e.Object, e.Before, e.After, e.PrevHash, e.Hash)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("insert audit row: %w", err)
	}
	return e, nil
}

// MaxAuditPage bounds AuditList so one request cannot pull the whole log.
const MaxAuditPage = 1000

// AuditList returns up to limit entries, newest first, skipping offset.
func (s *Store) AuditList(ctx context.Context, limit, offset int) ([]AuditEntry, error) {
	if limit < 1 || limit > MaxAuditPage || offset < 0 {
		return nil, fmt.Errorf("store: audit list: limit %d must be 1..%d and offset %d >= 0", limit, MaxAuditPage, offset)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, action, object, before_json, after_json, prev_hash, hash
		FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("store: audit list: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &e.Before, &e.After, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("store: audit list: %w", err)
		}
		if e.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("store: audit list: row %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit list: %w", err)
	}
	return out, nil
}

// VerifyAudit walks the chain in id order and returns how many rows verified.
// At the first broken row it returns the count so far and an *AuditBreak:
// a row whose hash does not match its contents (edited), whose prev_hash is
// not its predecessor's hash, or whose id does not follow on (rows deleted);
// and rows missing from the end when the id sequence has run past the last
// row. What it cannot see alone is the end of the log cut off together with
// sqlite_sequence; the caller should compare the returned head with one kept
// elsewhere (a log line, a backup) for that.
func (s *Store) VerifyAudit(ctx context.Context) (rows int, err error) {
	// One statement is one read snapshot in WAL, so the sequence value and the
	// rows agree even while other goroutines append. The LEFT JOIN yields a
	// single all-NULL row when the log is empty.
	q, err := s.db.QueryContext(ctx, `SELECT s.seq, a.id, a.at, a.actor, a.action, a.object,
			a.before_json, a.after_json, a.prev_hash, a.hash
		FROM (SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'), 0) AS seq) AS s
		LEFT JOIN audit_log AS a
		ORDER BY a.id`)
	if err != nil {
		return 0, fmt.Errorf("store: verify audit: %w", err)
	}
	defer q.Close()

	var (
		seq      int64
		lastID   int64
		lastHash = genesisHash
	)
	for q.Next() {
		var (
			id                                                     sql.NullInt64
			at, actor, action, object, before, after, prevH, hashH sql.NullString
		)
		if err := q.Scan(&seq, &id, &at, &actor, &action, &object, &before, &after, &prevH, &hashH); err != nil {
			return rows, fmt.Errorf("store: verify audit: %w", err)
		}
		if !id.Valid {
			break // empty log
		}
		t, err := parseTime(at.String)
		if err != nil || t.IsZero() {
			return rows, &AuditBreak{ID: id.Int64, Reason: "timestamp is not valid"}
		}
		if auditHash(id.Int64, t, actor.String, action.String, object.String, before.String, after.String, prevH.String) != hashH.String {
			return rows, &AuditBreak{ID: id.Int64, Reason: "hash does not match its contents"}
		}
		if id.Int64 != lastID+1 {
			return rows, &AuditBreak{ID: id.Int64, Reason: fmt.Sprintf("id follows %d: rows %d..%d are missing", lastID, lastID+1, id.Int64-1)}
		}
		if prevH.String != lastHash {
			return rows, &AuditBreak{ID: id.Int64, Reason: "prev_hash does not match the previous row's hash"}
		}
		lastID, lastHash = id.Int64, hashH.String
		rows++
	}
	if err := q.Err(); err != nil {
		return rows, fmt.Errorf("store: verify audit: %w", err)
	}
	if seq > lastID {
		return rows, &AuditBreak{ID: lastID + 1, Reason: fmt.Sprintf("rows %d..%d are missing from the end of the log", lastID+1, seq)}
	}
	return rows, nil
}
