package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A backup taken while another goroutine keeps committing holds every row
// that was acknowledged before the backup started, its audit chain is
// whole, and a restore puts exactly that database in place.
func TestBackupUnderWritesRestoresEveryAcknowledgedRow(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	appendN(t, s, 50)

	var mu sync.Mutex
	var acked []int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		// Bounded: at most 2,000 writes, and it stops when told.
		for i := range 2000 {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			e, err := s.Audit(ctx, AuditEntry{Actor: "cli:root", Action: "test.load", Object: fmt.Sprintf("n:%d", i)})
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			acked = append(acked, e.ID)
			mu.Unlock()
		}
		done <- nil
	}()
	// Let the writer get going, then note what was acknowledged before the
	// backup starts.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 100 {
			break
		}
	}
	mu.Lock()
	before := append([]int64(nil), acked...)
	mu.Unlock()

	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, dst); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600 (it holds password hashes)", fi.Mode().Perm())
	}
	if err := s.Backup(ctx, dst); !errors.Is(err, os.ErrExist) {
		t.Errorf("a second backup onto the same file: %v, want ErrExist", err)
	}

	target := filepath.Join(t.TempDir(), "restored.db")
	rep, err := Restore(ctx, dst, target)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	r, err := Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := r.VerifyAudit(ctx)
	if err != nil || n != rep.AuditRows {
		t.Fatalf("restored audit: %d rows, %v; restore said %d", n, err, rep.AuditRows)
	}
	have := map[int64]bool{}
	for off := 0; ; off += 1000 {
		rows, err := r.AuditList(ctx, 1000, off)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rows {
			have[e.ID] = true
		}
		if len(rows) < 1000 {
			break
		}
	}
	for _, id := range before {
		if !have[id] {
			t.Fatalf("audit row %d was acknowledged before the backup began but is not in it", id)
		}
	}
	t.Logf("backup held %d rows; %d were acknowledged before it began", n, len(before)+50)
}

func TestRestoreRefusesWhileTheDaemonHoldsTheLock(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	appendN(t, s, 3)
	dst := filepath.Join(t.TempDir(), "b.db")
	if err := s.Backup(ctx, dst); err != nil {
		t.Fatal(err)
	}
	unlock, err := LockDaemon(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDaemon(path); !errors.Is(err, ErrDaemonRunning) {
		t.Errorf("second daemon lock: %v, want ErrDaemonRunning", err)
	}
	if _, err := Restore(ctx, dst, path); !errors.Is(err, ErrDaemonRunning) {
		t.Errorf("restore under a running daemon: %v, want ErrDaemonRunning", err)
	}
	unlock()
	if _, err := Restore(ctx, dst, path); err != nil {
		t.Errorf("restore once the daemon stopped: %v", err)
	}
}

// A backup whose audit chain was edited by hand is refused, and the
// database it would have replaced is left as it was.
func TestRestoreRefusesATamperedBackupAndKeepsTheDatabase(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	appendN(t, s, 5)
	dst := filepath.Join(t.TempDir(), "b.db")
	if err := s.Backup(ctx, dst); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, dst)
	for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET actor = 'cli:mallory' WHERE id = 3`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	target := filepath.Join(t.TempDir(), "live.db")
	live, err := Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, live, 7)
	live.Close()

	if _, err := Restore(ctx, dst, target); err == nil {
		t.Fatal("a tampered backup was restored")
	}
	again, err := Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n, err := again.VerifyAudit(ctx); err != nil || n != 7 {
		t.Fatalf("the live database after a refused restore: %d rows, %v; want 7, whole", n, err)
	}
	if _, err := os.Stat(target + ".restore"); !os.IsNotExist(err) {
		t.Errorf("the staged copy was left behind: %v", err)
	}
}

func TestRestoreRefusesAFileThatIsNotADatabase(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte("not sqlite at all, just text that is long enough to look like a header"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(context.Background(), junk, filepath.Join(t.TempDir(), "x.db")); err == nil {
		t.Fatal("a text file was restored as a database")
	}
}
