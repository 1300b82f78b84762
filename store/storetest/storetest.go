// Package storetest opens the real store a test runs against: a fresh
// SQLite database with every migration applied, in the test's temporary
// directory, closed when the test ends. It is the one such helper (web/webtest
// and the feature packages' tests use it); the product never imports it.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gatehouse-net/gatehouse/store"
)

// Open returns a new store in t's temporary directory, failing t if it
// cannot be opened.
func Open(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatalf("storetest: open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Path returns where a new database file would go in t's temporary
// directory, for a test that opens the file itself (OpenPath, or a raw SQL
// connection standing for another program).
func Path(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "gatehouse.db")
}

// OpenPath opens the store in the database file at path, failing t if it
// cannot be opened, and closes it when t ends. Opening one path twice gives
// two processes' views of one database.
func OpenPath(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("storetest: open store %s: %v", path, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// OpenTwice opens one new database file twice: the daemon's store and
// other, standing for a second process (such as `gatehouse device approve`)
// writing the same file beside it. Both close when t ends.
func OpenTwice(t testing.TB) (daemon, other *store.Store) {
	t.Helper()
	path := Path(t)
	return OpenPath(t, path), OpenPath(t, path)
}
