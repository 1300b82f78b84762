// Package store owns Gatehouse's SQLite database: the connection settings,
// the versioned schema migrations, and every SQL query. It is the only package
// that speaks SQL; everyone else calls its typed methods.
//
// It owns durability and the audit log: every state-changing method commits
// its change and the matching audit row in one transaction, and a committed
// transaction survives SIGKILL and power loss (WAL with synchronous=FULL).
// It does not own policy: it does not hash passwords (package password),
// decide who may do what (web, people) or touch the kernel (policy, dhcp).
//
// # Writing store code in another file (for other packages' tables)
//
// Migrations live in store/migrations/NNNN_name.sql and are picked up by the
// loader automatically; number ranges are allocated per feature (0001-0019
// core, 0020s dhcp, 0030s policy, 0040s inspect, 0050s captive). A released
// migration must never be edited: its SHA-256 is recorded and Open refuses a
// database whose applied migration no longer matches the file. Migrations run
// inside a transaction with foreign keys enforced; a table rebuild that needs
// them relaxed can use PRAGMA defer_foreign_keys=ON inside the file.
//
// Reads use s.db directly. Every write goes through s.inTx, and every write a
// person or the scheduler causes also calls s.auditTx with the same tx, e.g.
//
//	err := s.inTx(ctx, func(tx *sql.Tx) error {
//		res, err := tx.ExecContext(ctx, `INSERT INTO dhcp_reservations ...`, ...)
//		if err != nil {
//			return err
//		}
//		after, err := auditJSON(reservation)
//		if err != nil {
//			return err
//		}
//		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "dhcp.reserve",
//			Object: "reservation:" + ip, After: after})
//	})
//
// What devices do by themselves (a DHCP lease, a DNS lookup, a finding) is
// data, not a change someone made, and is not audited.
//
// Times are stored as fixed-width UTC text (formatTime/parseTime) so that SQL
// string comparison orders them correctly and the sqlite3 CLI shows them
// readably; the zero time is stored as "". Map constraint errors with
// isUniqueViolation/isForeignKeyViolation to ErrExists/ErrNotFound.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

var (
	// ErrNotFound is returned (wrapped) when a looked-up row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned (wrapped) when a create would duplicate a unique key.
	ErrExists = errors.New("store: already exists")
)

// Store is an open Gatehouse database. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	// writeSem serialises this process's write transactions in Go, where
	// waiting is cheap and fair, instead of in SQLite's sleep-and-retry busy
	// handler. busy_timeout still covers writers in other processes (the CLI
	// while the daemon runs).
	writeSem chan struct{}
	// commits counts the write transactions that ended (see Commits).
	commits atomic.Uint64
	health  writeHealth
	// devCap bounds the device inventory (SetMaxDevices).
	devCap deviceCap

	// stmts are statements prepared once for per-packet paths (see
	// prepared), indexed by the stmt* constants.
	stmtMu sync.Mutex
	stmts  [numStmts]*sql.Stmt

	// watch reads the change logs' newest entries (changewatch.go).
	watch changeWatch

	// portal keeps the portal's AUP and branding between reads
	// (portalcache.go).
	portal portalCache

	// dhcpArgs is SaveDHCP's argument storage (leases_batch.go).
	dhcpArgs dhcpArgs
}

// Connection parameters, applied by the driver to every pooled connection.
// synchronous=FULL (not the WAL-default NORMAL) makes each COMMIT fsync the
// WAL, so an audit row that was reported written is on disk. _txlock=immediate
// makes every BeginTx take the write lock up front, which avoids SQLITE_BUSY
// deadlocks from read-to-write upgrades and serialises audit appends across
// processes. _cache_size bounds each connection's page cache to 1 MiB
// (SQLite's default is 2 MiB): with up to eight connections (maxConns) that
// is memory the router keeps, and the file is in the kernel's page cache anyway.
const dsnParams = "_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_busy_timeout=5000&_txlock=immediate&_cache_size=-1024"

// maxConns is how many SQLite connections a Store opens at most, and keeps
// open (see openDB).
const maxConns = 8

// Open opens (creating if needed) the database at path and brings its schema
// up to date. It refuses a database whose schema is newer than this binary.
// A missing parent directory is created 0750 and a new file 0600: the file
// holds password hashes and the audit log.
func Open(ctx context.Context, path string) (*Store, error) {
	s, err := openDB(ctx, path)
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err == nil {
		err = s.migrate(ctx, sub)
	}
	if err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: open %s: %w", s.path, err)
	}
	return s, nil
}

// openDB opens the file with Gatehouse's connection settings but does not
// migrate, so tests can migrate from their own file sets.
func openDB(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("store: open %s: create directory: %w", abs, err)
	}
	// Create the file ourselves so its mode is ours, not SQLite's 0644. The
	// -wal and -shm files inherit the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}

	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + dsnParams
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	// Readers (DHCP device lookups, RADIUS, the admin pages, the DNS log)
	// come in bursts. Every connection the pool may open it also keeps:
	// with more open than idle (database/sql's default keeps two idle and
	// opens without limit; this file once kept eight of an unlimited
	// number), a burst wider than the idle count opened a connection per
	// query beyond it (an SQLite open, the DSN's pragmas, every statement
	// prepared again) and closed it after, which cost more than the
	// queries. A query beyond the limit waits for a connection instead, in
	// database/sql's queue: cheap, and SQLite on a router's two or four
	// cores gains nothing from more readers in cgo at once. Eight leaves
	// readers room beside the one write transaction (writeSem) and a
	// backup's VACUUM INTO (one of the eight is held for good by the change
	// logs' reads, changewatch.go). The limit cannot deadlock: inTx's fn uses only
	// its tx, no row loop queries, and a write waits for writeSem before it
	// takes a connection. The one place that asks for a second connection
	// while holding one, txPrepared's first preparation of a statement
	// inside a transaction, waits only for a reader, and readers wait on
	// nothing.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &Store{db: db, path: abs, writeSem: make(chan struct{}, 1)}
	s.watch.path = abs
	if err := s.checkPragmas(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	return s, nil
}

// checkPragmas confirms the connection settings took effect; a DSN typo or a
// filesystem that cannot do WAL would otherwise silently weaken durability.
func (s *Store) checkPragmas(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	for _, p := range []struct {
		name string
		want int
	}{{"synchronous", 2}, {"foreign_keys", 1}, {"busy_timeout", 5000}, {"cache_size", -1024}} {
		var got int
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(&got); err != nil {
			return fmt.Errorf("read %s: %w", p.name, err)
		}
		if got != p.want {
			return fmt.Errorf("%s is %d, want %d", p.name, got, p.want)
		}
	}
	return nil
}

// Close closes the database. Committed transactions are already durable.
func (s *Store) Close() error {
	s.watch.close()
	s.stmtMu.Lock()
	for i, st := range s.stmts {
		if st != nil {
			st.Close()
			s.stmts[i] = nil
		}
	}
	s.stmtMu.Unlock()
	err := s.db.Close()
	s.watch.closeWAL() // after the database: changewatch.go
	if err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// inTx runs fn in one write transaction (BEGIN IMMEDIATE) and commits it, or
// rolls it back if fn returns an error or panics or ctx ends before the
// commit. When inTx returns nil the commit is durable. fn must not call inTx
// (or any exported Store method that writes): the write lock is not
// re-entrant and that would deadlock. fn should use only tx, never s.db, for
// the same reason.
//
// The transaction begins with ctx's values but not its end, and inTx checks
// ctx itself before it commits: given a context that can end, the SQLite
// driver runs BEGIN on a goroutine of its own (to interrupt it), which cost
// a goroutine start, two switches and six allocations on every write (the
// DHCP group commit makes two thousand a second at a busy school's morning
// rate). fn's own statements still stop when ctx ends, since they run with
// the ctx they are given.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	defer func() { s.health.record(err) }()
	select {
	case s.writeSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writeSem }()

	tx, err := s.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// Counted once it is over, committed or not (a commit that failed may
	// still have reached the file), before the caller hears of it.
	defer s.commits.Add(1)
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	err = fn(tx)
	if err == nil {
		err = ctx.Err() // the caller gave up: nothing of fn is kept
	}
	if err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Commits counts the write transactions this Store has ended (committed
// or rolled back), moving before each one's method returns. A reader
// that holds stored state in memory and checks it against a change log
// only every few milliseconds (RADIUS's device and identity caches) checks
// at once when the count moved since its last check: a change made through
// this Store (a revocation on the admin page, the leavers' scheduler) is
// then seen by the very next lookup, and only another process's change
// waits for the reader's bound.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// querier is what both *sql.DB and *sql.Tx offer, so a lookup can be shared
// between plain reads and the inside of a write transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// timeLayout is fixed-width (always nine fractional digits, always Z) so that
// stored times sort correctly as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// formatTime renders t for storage; the zero time becomes "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// parseTime reverses formatTime.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

func isForeignKeyViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintForeignKey
}

// queryAll runs query on q and scans every row with scan. what names the
// query in errors, as in "store: list users: ...".
func queryAll[T any](ctx context.Context, q querier, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// queryOne runs a query for one row and scans it; ErrNotFound (wrapped with
// what) when there is none, the same error shape as queryAll's.
func queryOne[T any](ctx context.Context, q querier, what string, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(q.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("store: %s: %w", what, err)
	}
	return v, nil
}

// execOne runs a statement that must touch a row, and returns ErrNotFound
// when it touched none.
func execOne(ctx context.Context, q querier, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
