package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Backup writes a consistent copy of the whole database to dst while the
// daemon keeps writing. SQLite's VACUUM INTO reads one snapshot of the
// database, so the copy holds every transaction committed before Backup
// started and none that was half done; writers wait only for the moments
// VACUUM holds the read snapshot, never for the whole copy to reach disk.
//
// The copy is written beside dst under a temporary name, fsynced and then
// renamed, so an interrupted backup never leaves a truncated file where a
// good one is expected. dst must not exist: a backup never overwrites one.
// The file is 0600, like the database: it holds password hashes.
func (s *Store) Backup(ctx context.Context, dst string) error {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return fmt.Errorf("store: backup to %s: %w", dst, err)
	}
	if _, err := os.Lstat(abs); err == nil {
		return fmt.Errorf("store: backup to %s: %w (a backup never overwrites a file)", abs, os.ErrExist)
	}
	tmp := abs + ".partial"
	_ = os.Remove(tmp) // a leftover of an interrupted backup
	// VACUUM INTO accepts an existing empty file; creating it ourselves
	// gives it our mode rather than SQLite's 0644.
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: backup to %s: %w", abs, err)
	}
	f.Close()
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: backup to %s: %w", abs, err)
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: backup to %s: %w", abs, err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: backup to %s: %w", abs, err)
	}
	return syncDir(filepath.Dir(abs))
}

// RestoreReport says what a restore put in place.
type RestoreReport struct {
	AuditRows int // rows in the restored audit log, whose chain is whole
}

// Restore replaces the database at dbPath with the backup at src. The
// daemon must not be running (Restore takes the same lock as `run`, see
// LockDaemon). The backup is copied beside the database first, opened
// (which migrates an older backup forward and refuses one made by a newer
// Gatehouse) and its audit chain verified; only a backup that passes all of
// that replaces the database, by rename, so a bad backup leaves the
// database as it was.
func Restore(ctx context.Context, src, dbPath string) (RestoreReport, error) {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return RestoreReport{}, fmt.Errorf("store: restore %s: %w", dbPath, err)
	}
	unlock, err := LockDaemon(abs)
	if err != nil {
		return RestoreReport{}, err
	}
	defer unlock()

	staged := abs + ".restore"
	for _, p := range []string{staged, staged + "-wal", staged + "-shm"} {
		_ = os.Remove(p)
	}
	if err := copyFile(src, staged); err != nil {
		return RestoreReport{}, fmt.Errorf("store: restore from %s: %w", src, err)
	}
	cleanup := func() {
		for _, p := range []string{staged, staged + "-wal", staged + "-shm"} {
			_ = os.Remove(p)
		}
	}
	st, err := Open(ctx, staged)
	if err != nil {
		cleanup()
		return RestoreReport{}, fmt.Errorf("store: restore from %s: not a usable Gatehouse database: %w", src, err)
	}
	n, verr := st.VerifyAudit(ctx)
	// A checkpoint folds the WAL into the file, so the one file renamed
	// below is the whole database.
	if verr == nil {
		_, verr = st.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	if cerr := st.Close(); verr == nil {
		verr = cerr
	}
	if verr != nil {
		cleanup()
		return RestoreReport{}, fmt.Errorf("store: restore from %s: refused: %w", src, verr)
	}
	// The old database's WAL must not be replayed onto the restored file.
	for _, p := range []string{abs + "-wal", abs + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			cleanup()
			return RestoreReport{}, fmt.Errorf("store: restore: removing %s: %w", p, err)
		}
	}
	if err := os.Rename(staged, abs); err != nil {
		cleanup()
		return RestoreReport{}, fmt.Errorf("store: restore: %w", err)
	}
	cleanup()
	return RestoreReport{AuditRows: n}, syncDir(filepath.Dir(abs))
}

// ErrDaemonRunning is returned (wrapped) by LockDaemon when another process
// (normally `gatehouse run`) holds the database's daemon lock.
var ErrDaemonRunning = errors.New("store: a Gatehouse daemon is using this database")

// LockDaemon takes the exclusive daemon lock of the database at dbPath (a
// flock on dbPath+".lock"), so that two daemons never serve one database
// and a restore never replaces a database under a running daemon. Short
// CLI commands (issuing a code, verifying the audit log) do not take it:
// SQLite's own locking covers them. The lock ends with the process, so a
// crashed daemon never leaves it held.
func LockDaemon(dbPath string) (unlock func(), err error) {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", abs, err)
	}
	f, err := os.OpenFile(abs+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", abs, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s); stop it first", ErrDaemonRunning, abs)
		}
		return nil, fmt.Errorf("store: lock %s: %w", abs, err)
	}
	return func() { f.Close() }, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	return nil
}
