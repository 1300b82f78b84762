package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// openTemp opens a fresh, fully migrated store in a test temp dir.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// rawDB opens the file the way a person with the sqlite3 CLI would: no
// store code, no migrations, triggers only as the file has them.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func embeddedMigrations(t *testing.T) []migration {
	t.Helper()
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(sub)
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	return ms
}

// openBefore makes a database at path migrated up to (not including)
// version, as a Gatehouse that predates that migration left it, for a
// test of what the migration does to existing rows. The caller closes it
// and opens path with Open to migrate the rest.
func openBefore(t *testing.T, path string, version int) *Store {
	t.Helper()
	old, err := openDB(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	for _, m := range embeddedMigrations(t) {
		if m.version < version {
			before[m.name] = &fstest.MapFile{Data: []byte(m.sql)}
		}
	}
	if err := old.migrate(context.Background(), before); err != nil {
		old.Close()
		t.Fatal(err)
	}
	return old
}

func TestOpenCreatesPrivateDirectoryAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "lib", "gatehouse", "gatehouse.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Dir(path), 0o750 | os.ModeDir},
		{path, 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != tc.want {
			t.Errorf("%s mode = %v, want %v", tc.path, fi.Mode(), tc.want)
		}
	}
}

func TestEveryPooledConnectionIsDurableWALWithForeignKeys(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	// Hold several connections at once so the pool must open new ones: the
	// settings must be per connection, not a one-off PRAGMA.
	var conns []*sql.Conn
	for range 4 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		for _, tc := range []struct {
			pragma, want string
		}{
			{"journal_mode", "wal"},
			{"synchronous", "2"}, // FULL
			{"foreign_keys", "1"},
			{"busy_timeout", "5000"},
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("conn %d: PRAGMA %s = %s, want %s", i, tc.pragma, got, tc.want)
			}
		}
		c.Close()
	}
}

func TestPathWithURIMetacharactersOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?#% name", "g.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the requested path: %v", err)
	}
}

func TestMigrationsApplyOnceAndReopenIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	ms := embeddedMigrations(t)
	want := ms[len(ms)-1].version
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != want {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, want)
	}
	if _, err := s.Audit(ctx, AuditEntry{Actor: "test", Action: "test.mark"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for range 2 {
		s2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		var n int
		if err := s2.db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) {
			t.Errorf("schema_migrations has %d rows after reopen, want %d", n, len(ms))
		}
		list, err := s2.AuditList(ctx, 10, 0)
		if err != nil || len(list) != 1 {
			t.Errorf("data lost on reopen: %d audit rows, %v", len(list), err)
		}
		s2.Close()
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		version int
	}{
		{"beyond the newest known", 9999},
		{"unknown version inside the known range", 19}, // core range, not shipped
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openTemp(t)
			s.Close()
			for _, m := range embeddedMigrations(t) {
				if m.version == tc.version {
					t.Skipf("migration %d exists now; pick another unknown version", tc.version)
				}
			}
			if _, err := rawDB(t, path).Exec(`INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, 'future.sql', 'x', '')`, tc.version); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(ctx, path)
			if err == nil {
				s2.Close()
				t.Fatal("Open accepted a database with a migration this binary does not know")
			}
			if !errors.Is(err, ErrSchemaTooNew) {
				t.Fatalf("Open error = %v, want ErrSchemaTooNew", err)
			}
		})
	}
}

func TestOpenRefusesChangedMigration(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	if _, err := rawDB(t, path).Exec(`UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(context.Background(), path); err == nil {
		s2.Close()
		t.Fatal("Open accepted a database whose migration 1 differs from the binary's")
	} else if !strings.Contains(err.Error(), "must not change") {
		t.Fatalf("Open error = %v", err)
	}
}

func TestMigrationLoader(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name     string
		files    fstest.MapFS
		wantErr  string
		wantVers []int
	}{
		{"sorted by version not by listing", fstest.MapFS{
			"0020_dhcp.sql": file("SELECT 1;"), "0002_b.sql": file("SELECT 1;"), "0001_a.sql": file("SELECT 1;"),
		}, "", []int{1, 2, 20}},
		{"subdirectories ignored", fstest.MapFS{
			"0001_a.sql": file("SELECT 1;"), "old/0002_b.sql": file("SELECT 1;"),
		}, "", []int{1}},
		{"bad name", fstest.MapFS{"1_a.sql": file("")}, "name must be", nil},
		{"upper case name", fstest.MapFS{"0001_Add.sql": file("")}, "name must be", nil},
		{"stray file", fstest.MapFS{"0001_a.sql": file(""), "README": file("")}, "name must be", nil},
		{"duplicate version", fstest.MapFS{"0003_a.sql": file(""), "0003_b.sql": file("")}, "share version 3", nil},
		{"version zero", fstest.MapFS{"0000_a.sql": file("")}, "reserved", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.files)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if !equalInts(got, tc.wantVers) {
				t.Fatalf("versions = %v, want %v", got, tc.wantVers)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMigrateAppliesLateLowerNumbersAndRollsBackFailures(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := openDB(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fsys := fstest.MapFS{
		"0001_a.sql":  {Data: []byte("CREATE TABLE a (x INTEGER);")},
		"0030_po.sql": {Data: []byte("CREATE TABLE po (x INTEGER);")},
	}
	if err := s.migrate(ctx, fsys); err != nil {
		t.Fatal(err)
	}
	// A later release adds 0002 (core range) after 0030 was applied.
	fsys["0002_b.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE b (x INTEGER);")}
	if err := s.migrate(ctx, fsys); err != nil {
		t.Fatalf("applying a late lower-numbered migration: %v", err)
	}
	if _, err := s.db.Exec(`INSERT INTO b VALUES (1)`); err != nil {
		t.Fatalf("migration 0002 not applied: %v", err)
	}
	// A migration that fails half-way must leave nothing behind.
	fsys["0003_bad.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE half (x INTEGER); INSERT INTO nosuchtable VALUES (1);")}
	err = s.migrate(ctx, fsys)
	if err == nil || !strings.Contains(err.Error(), "0003_bad.sql") {
		t.Fatalf("failing migration: err = %v, want one naming the file", err)
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("partial migration left table behind (count %d, %v)", n, err)
	}
	if err := s.db.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version = 3`).Scan(&n); err != nil || n != 0 {
		t.Errorf("failed migration recorded as applied (count %d, %v)", n, err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != 30 {
		t.Errorf("SchemaVersion = %d, %v; want 30", v, err)
	}
}
