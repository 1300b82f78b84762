package sitekey

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadCreatesOncePrivateAndThenReadsTheSameKey(t *testing.T) {
	path := PathFor(filepath.Join(t.TempDir(), "gatehouse.db"))
	a, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || len(a) != Size {
		t.Fatalf("mode %v len %d err %v", st.Mode(), len(a), err)
	}
	b, err := Load(path)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second load differs: %v", err)
	}
}

func TestLoadRefusesAReadableOrWrongSizedKey(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, make([]byte, Size), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(open); err == nil {
		t.Fatal("a world-readable key was accepted")
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(short); err == nil {
		t.Fatal("a 3-byte key was accepted")
	}
}
