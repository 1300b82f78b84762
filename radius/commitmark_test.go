package radius

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/store/storetest"
)

// countingLog counts the device change log's reads.
type countingLog struct {
	DeviceRecords
	log    DeviceChangeLog
	latest atomic.Int64
	path   string
}

func (l *countingLog) LatestChange(ctx context.Context) (int64, error) {
	l.latest.Add(1)
	return l.log.LatestChange(ctx)
}

func (l *countingLog) ChangesSince(ctx context.Context, since int64, max int) ([]string, int64, bool, error) {
	return l.log.ChangesSince(ctx, since, max)
}

func (l *countingLog) Path() string { return l.path }

// While nothing commits, a check past the bound does not read the change
// log (the WAL index says nothing moved); a commit by another process
// (a second Open of the file) makes the next check read it, and the
// lookup after it sees the change.
func TestDeviceCacheSkipsTheLogReadOnlyWhileNothingCommits(t *testing.T) {
	if newCommitProbe("x") == nil {
		t.Skip("no commit probe on this platform")
	}
	ctx := context.Background()
	st, cli := storetest.OpenTwice(t)
	l := &countingLog{DeviceRecords: st, log: st, path: st.Path()}
	c := cachedDevices(StoreDevices{Store: l}, 0).(*deviceCache)
	if c.f.probe == nil {
		t.Fatal("a store that names its file got no commit probe")
	}
	c.f.maxStale = 0 // every lookup is checked
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x44}
	look := func() DeviceInfo {
		t.Helper()
		info, err := c.Lookup(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	if info := look(); info.Approved {
		t.Fatalf("stranger: %+v", info)
	}
	before := l.latest.Load()
	for range 50 {
		if info := look(); info.Approved {
			t.Fatalf("stranger: %+v", info)
		}
	}
	if n := l.latest.Load() - before; n != 0 {
		t.Fatalf("50 lookups with nothing committed read the change log %d times, want 0", n)
	}
	if err := cli.ApproveDevice(ctx, "cli", mac, "staff", "Laptop", time.Now()); err != nil {
		t.Fatal(err)
	}
	if info := look(); !info.Approved {
		t.Fatalf("the lookup right after an approval by another process: %+v, want approved", info)
	}
	if l.latest.Load() == before {
		t.Fatal("a commit elsewhere did not make the check read the change log")
	}
	if err := cli.DecideDevice(ctx, "nm", mac, store.DeviceDecision{Approved: true, Blocked: true}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if info := look(); !info.Blocked {
		t.Fatalf("the lookup right after a block by another process: %+v, want blocked", info)
	}
}

// The probe's mark moves with every commit, from any connection, and
// stands still otherwise; a file SQLite replaced is mapped again.
func TestCommitProbeMarksEveryCommit(t *testing.T) {
	if newCommitProbe("x") == nil {
		t.Skip("no commit probe on this platform")
	}
	ctx := context.Background()
	st, cli := storetest.OpenTwice(t)
	probe := newCommitProbe(st.Path())
	m0, ok := probe()
	if !ok {
		t.Fatal("no mark of an open WAL database")
	}
	if m1, ok := probe(); !ok || m1 != m0 {
		t.Fatalf("the mark moved with nothing committed: %v %v", ok, m1 != m0)
	}
	prev := m0
	for i, s := range []interface {
		ApproveDevice(context.Context, string, net.HardwareAddr, string, string, time.Time) error
	}{cli, st, cli} {
		mac := net.HardwareAddr{0x02, 0, 0, 0, 1, byte(i)}
		if err := s.ApproveDevice(ctx, "t", mac, "", "", time.Now()); err != nil {
			t.Fatal(err)
		}
		m, ok := probe()
		if !ok || m == prev {
			t.Fatalf("commit %d: mark ok %v, moved %v; want a new mark", i, ok, m != prev)
		}
		prev = m
	}
	if _, ok := newCommitProbe(t.TempDir() + "/none.db")(); ok {
		t.Fatal("a mark of a database that does not exist")
	}
}
