package store

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// The change watch reads a log again only when something was committed,
// and a commit by any connection is seen by the very next read: another
// *sql.DB on the same file (another process, such as `gatehouse device
// approve` while the daemon runs), raw SQL on it (the sqlite3 shell), and
// this Store's own pool.
func TestChangeWatchSeesEveryCommit(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	other, err := Open(ctx, path) // a second *sql.DB on the file
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

	reads := func() int { n, _ := watchReads(s); return n }
	versionReads := func() int { _, n := watchReads(s); return n }
	latest := func() int64 { t.Helper(); return latestChange(t, s) }
	g := latest()
	latest() // the WAL index is opened after the first read made the -shm file
	before, beforeVersion := reads(), versionReads()
	for range 3 {
		if got := latest(); got != g {
			t.Fatalf("nothing committed: latest %d, then %d", g, got)
		}
	}
	if n := reads() - before; n != 0 {
		t.Errorf("nothing committed: the log was read %d times more; want 0", n)
	}
	if n := versionReads() - beforeVersion; n != 0 {
		t.Errorf("nothing committed: data_version was read %d times more; want 0 (the WAL index's header stands for it)", n)
	}
	// Past walTrust the header alone is not trusted.
	s.watch.mu.Lock()
	s.watch.walAt = s.watch.walAt.Add(-walTrust)
	s.watch.mu.Unlock()
	if got := latest(); got != g || versionReads() != beforeVersion+1 {
		t.Errorf("walTrust after the last data_version: latest %d (want %d), data_version read %d times more (want 1)", got, g, versionReads()-beforeVersion)
	}

	// Each writer in turn, many times: the read right after the commit
	// returns must see it.
	writers := []struct {
		name  string
		write func(i int) error
	}{
		{"another Store", func(i int) error {
			mac := net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}
			return other.ApproveDevice(ctx, "cli", mac, "staff", "Laptop", now)
		}},
		{"raw SQL on another connection", func(i int) error {
			_, err := other.db.ExecContext(ctx, `UPDATE devices SET name = ? WHERE mac = '02:00:00:00:00:00'`, fmt.Sprint("renamed ", i))
			return err
		}},
		{"this Store", func(i int) error {
			mac := net.HardwareAddr{2, 0, 0, 1, byte(i >> 8), byte(i)}
			return s.ApproveDevice(ctx, "nm", mac, "staff", "Tablet", now)
		}},
	}
	for i := range 60 {
		w := writers[i%len(writers)]
		if err := w.write(i); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		got := latest()
		if got <= g {
			t.Fatalf("commit %d by %s: latest %d, was %d; want it to move", i, w.name, got, g)
		}
		g = got
		if want, err := other.LatestChange(ctx); err != nil || want != got {
			t.Fatalf("commit %d by %s: latest %d, another Store reads %d (%v)", i, w.name, got, want, err)
		}
	}

	// A commit to the other log, or to any table, moves data_version: the
	// device log is read again but has not moved.
	if _, err := other.db.ExecContext(ctx, `UPDATE people SET state = state`); err != nil {
		t.Fatal(err)
	}
	before = reads()
	if got := latest(); got != g {
		t.Errorf("after an unrelated commit: latest %d; want %d", got, g)
	}
	if n := reads() - before; n != 1 {
		t.Errorf("after an unrelated commit: the log was read %d times; want 1", n)
	}
}

// A commit by another process (`gatehouse device approve` while the
// daemon runs) is seen by the very next read, though the watch asks SQLite
// nothing while the WAL index's header stands still: the other process's
// SQLite writes that header through its own mapping of the -shm file.
// The writer is this test binary again (TestChangeWatchChild), so
// build/cross skips it: an emulated ARM binary cannot exec itself.
func TestChangeWatchSeesAnotherProcess(t *testing.T) {
	s, path := openTemp(t)
	latest := func() int64 { t.Helper(); return latestChange(t, s) }
	versionReads := func() int { _, n := watchReads(s); return n }
	g := latest()
	for i := range 5 {
		latest() // the header read, the WAL index opened on the first
		before := versionReads()
		if got := latest(); got != g || versionReads() != before {
			t.Fatalf("round %d, nothing committed: latest %d (want %d), data_version read %d times more (want 0)", i, got, g, versionReads()-before)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestChangeWatchChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), changeWatchChildEnv+"="+path, changeWatchChildEnv+"_N="+fmt.Sprint(i))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the other process: %v: %s", err, out)
		}
		got := latest()
		if got <= g {
			t.Fatalf("round %d: latest %d after the other process's approval, was %d; want it to move", i, got, g)
		}
		g = got
	}
}

// latestChange is s.LatestChange, failing t on an error.
func latestChange(t *testing.T, s *Store) int64 {
	t.Helper()
	g, err := s.LatestChange(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// watchReads is how many times s's change watch has read a log and
// data_version.
func watchReads(s *Store) (logs, versions int) {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	return s.watch.logReads, s.watch.versionReads
}

const changeWatchChildEnv = "GATEHOUSE_STORE_CHANGEWATCH_CHILD_DB"

// TestChangeWatchChild is TestChangeWatchSeesAnotherProcess's writer.
// Run normally it does nothing.
func TestChangeWatchChild(t *testing.T) {
	path := os.Getenv(changeWatchChildEnv)
	if path == "" {
		t.Skip("only runs as the child of TestChangeWatchSeesAnotherProcess")
	}
	i, err := strconv.Atoi(os.Getenv(changeWatchChildEnv + "_N"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mac := net.HardwareAddr{2, 0, 0, 2, byte(i >> 8), byte(i)}
	if err := s.ApproveDevice(ctx, "cli", mac, "staff", "Phone", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// The watch's connection holds no read transaction between calls: a
// checkpoint that must wait for every reader finishes.
func TestChangeWatchHoldsNoReader(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if _, err := s.LatestChange(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LatestPersonChange(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.ApproveDevice(ctx, "nm", net.HardwareAddr{2, 0, 0, 0, 0, 1}, "staff", "Laptop", time.Now()); err != nil {
		t.Fatal(err)
	}
	var busy, logged, done int
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &done); err != nil {
		t.Fatal(err)
	}
	if busy != 0 {
		t.Errorf("checkpoint blocked (busy %d, %d of %d frames)", busy, done, logged)
	}
}

func BenchmarkLatestChange(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir()+"/g.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.LatestChange(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
