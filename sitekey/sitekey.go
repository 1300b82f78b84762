// Package sitekey owns the site key: 32 random bytes in a 0600 file beside
// the database, never in it, so a copied or leaked database alone does not
// open what the key seals (personal Wi-Fi keys) or forge what it signs.
// Callers derive their own subkeys from it (HKDF or HMAC with a label), so
// one key file serves every feature without two features sharing a key.
//
// It owns the file only: creating it once, reading it, refusing one that
// others can read or that is the wrong size. It does not encrypt anything.
package sitekey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Size is the key's length in bytes.
const Size = 32

// FileName is the key file's name in the database's directory.
const FileName = "site.key"

// PathFor returns where the site key of the database at dbPath is kept.
func PathFor(dbPath string) string { return filepath.Join(filepath.Dir(dbPath), FileName) }

// Load reads the key at path, creating it (0600, random) when it does not
// exist yet. Two processes creating it at once agree: only one create wins
// (O_EXCL) and the other reads the winner's key.
func Load(path string) ([]byte, error) {
	for range 2 {
		key, err := read(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return key, err
		}
		err = create(path)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return read(path)
}

func read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("site key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("site key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("site key: %s is readable by others (mode %v); it must be 0600", path, st.Mode().Perm())
	}
	if st.Size() != Size {
		return nil, fmt.Errorf("site key: %s holds %d bytes, want %d", path, st.Size(), Size)
	}
	key := make([]byte, Size)
	if _, err := f.ReadAt(key, 0); err != nil {
		return nil, fmt.Errorf("site key: reading %s: %w", path, err)
	}
	return key, nil
}

// create writes a new key under a temporary name and links it into place,
// so no reader ever sees a half-written key.
func create(path string) error {
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("site key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".site.key-*")
	if err != nil {
		return fmt.Errorf("site key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("site key: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return fmt.Errorf("site key: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("site key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("site key: %w", err)
	}
	// Link fails with EEXIST if another process won: its key stands.
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("site key: %w", err)
	}
	return nil
}
