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
