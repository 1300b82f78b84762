package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned (wrapped) by Open when the database was migrated
// by a newer Gatehouse: running old code against a newer schema could corrupt
// it, so the operator must upgrade the binary (or restore a backup) instead.
var ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")

type migration struct {
	version  int
	name     string // file name, e.g. "0001_audit.sql"
	sql      string
	checksum string // hex SHA-256 of sql
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads every *.sql file at the root of fsys, sorted by
// version. A .sql file with a malformed name or a duplicated version is an
// error rather than being skipped, so a misnamed migration is noticed in the
// first test run and not in the field.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: name must be NNNN_lower_snake.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1]) // four digits: cannot fail
		if v == 0 {
			return nil, fmt.Errorf("migration file %q: version 0000 is reserved", e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migration files %q and %q share version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(body)
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body), checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies every migration in fsys that the database has not yet
// recorded, each in its own transaction together with its schema_migrations
// row, in version order. Versions need not be contiguous: feature ranges grow
// independently, so a new 0004 may arrive after 0020 was applied.
func (s *Store) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			checksum   TEXT NOT NULL,
			applied_at TEXT NOT NULL
		)`)
		return err
	}); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}

	applied, err := s.appliedMigrations(ctx, s.db)
	if err != nil {
		return err
	}
	if err := checkApplied(ms, applied); err != nil {
		return err
	}
	for _, m := range ms {
		if _, done := applied[m.version]; done {
			continue
		}
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			// Another process may have applied it since we looked.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
				m.version, m.name, m.checksum, formatTime(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

type appliedMigration struct{ name, checksum string }

func (s *Store) appliedMigrations(ctx context.Context, q querier) (map[int]appliedMigration, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, name, checksum FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]appliedMigration{}
	for rows.Next() {
		var v int
		var a appliedMigration
		if err := rows.Scan(&v, &a.name, &a.checksum); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// checkApplied refuses a database that this binary cannot safely run against:
// one migrated past what it knows, one carrying a migration it has never seen,
// or one whose applied migration differs from the file of the same version.
func checkApplied(known []migration, applied map[int]appliedMigration) error {
	maxKnown := 0
	byVersion := map[int]migration{}
	for _, m := range known {
		byVersion[m.version] = m
		maxKnown = max(maxKnown, m.version)
	}
	maxApplied := 0
	for v := range applied {
		maxApplied = max(maxApplied, v)
	}
	if maxApplied > maxKnown {
		return fmt.Errorf("%w: database is at version %d, this binary knows up to %d", ErrSchemaTooNew, maxApplied, maxKnown)
	}
	versions := make([]int, 0, len(applied))
	for v := range applied {
		versions = append(versions, v)
	}
	sort.Ints(versions)
	for _, v := range versions {
		a := applied[v]
		m, ok := byVersion[v]
		if !ok {
			return fmt.Errorf("%w: database has migration %d (%s), which this binary does not know", ErrSchemaTooNew, v, a.name)
		}
		if a.name != m.name || a.checksum != m.checksum {
			return fmt.Errorf("store: migration %d was applied as %s (sha256 %s) but this binary has %s (sha256 %s); released migrations must not change",
				v, a.name, a.checksum, m.name, m.checksum)
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}
