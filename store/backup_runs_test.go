package store

import (
	"context"
	"testing"
	"time"
)

func TestBackupRunsAreRecordedAndBounded(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if last, ok, err := s.LastBackups(ctx); err != nil || !last.At.IsZero() || !ok.At.IsZero() {
		t.Fatalf("no runs yet: %+v %+v %v", last, ok, err)
	}
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	for i := range keepBackupRuns + 5 {
		if err := s.RecordBackup(ctx, BackupRun{At: t0.Add(time.Duration(i) * time.Minute), File: "/root/b.db", Size: int64(1000 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordBackup(ctx, BackupRun{At: t0.Add(time.Hour * 24), File: "/full/b.db", Err: "no space left on device"}); err != nil {
		t.Fatal(err)
	}
	last, ok, err := s.LastBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last.OK() || last.Err != "no space left on device" || !ok.OK() || ok.Size != int64(1000+keepBackupRuns+4) {
		t.Errorf("last = %+v, last good = %+v", last, ok)
	}
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM backup_runs`).Scan(&n); err != nil || n != keepBackupRuns {
		t.Errorf("%d runs kept (%v), want %d", n, err, keepBackupRuns)
	}
}
