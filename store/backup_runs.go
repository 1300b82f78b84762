package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// BackupRun is one run of `gatehouse backup`.
type BackupRun struct {
	At   time.Time // zero: no run recorded
	File string
	Size int64  // bytes written
	Err  string // "" when the backup was written
}

// OK reports whether the run wrote its backup.
func (r BackupRun) OK() bool { return !r.At.IsZero() && r.Err == "" }

// keepBackupRuns bounds the backup history.
const keepBackupRuns = 100

// RecordBackup remembers a backup run, keeping the newest keepBackupRuns.
// Runs are the operator's doing through the CLI, recorded for the overview,
// not a change to what the school set up, so they are not audited.
func (s *Store) RecordBackup(ctx context.Context, r BackupRun) error {
	if r.At.IsZero() {
		return fmt.Errorf("store: record backup: no time")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO backup_runs (at, file, size, error) VALUES (?, ?, ?, ?)`,
			formatTime(r.At), r.File, max(r.Size, 0), r.Err); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM backup_runs WHERE id NOT IN (SELECT id FROM backup_runs ORDER BY at DESC, id DESC LIMIT ?)`, keepBackupRuns)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record backup: %w", err)
	}
	return nil
}

// LastBackups returns the newest backup run and the newest one that
// worked; a zero BackupRun for none.
func (s *Store) LastBackups(ctx context.Context) (last, lastOK BackupRun, err error) {
	scan := func(q string) (BackupRun, error) {
		var r BackupRun
		var at string
		err := s.db.QueryRowContext(ctx, q).Scan(&at, &r.File, &r.Size, &r.Err)
		if err == sql.ErrNoRows {
			return BackupRun{}, nil
		}
		if err != nil {
			return BackupRun{}, err
		}
		r.At, err = parseTime(at)
		return r, err
	}
	if last, err = scan(`SELECT at, file, size, error FROM backup_runs ORDER BY at DESC, id DESC LIMIT 1`); err != nil {
		return BackupRun{}, BackupRun{}, fmt.Errorf("store: last backup: %w", err)
	}
	if lastOK, err = scan(`SELECT at, file, size, error FROM backup_runs WHERE error = '' ORDER BY at DESC, id DESC LIMIT 1`); err != nil {
		return BackupRun{}, BackupRun{}, fmt.Errorf("store: last backup: %w", err)
	}
	return last, lastOK, nil
}
