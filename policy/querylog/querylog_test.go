package querylog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/store"
)

func query(i int, at time.Time) dnsguard.Query {
	return dnsguard.Query{Time: at, Client: netip.MustParseAddr("10.20.0.10"), MAC: net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0a},
		Segment: "pupil", Name: fmt.Sprintf("n%d.example", i), Type: "A", Answer: "203.0.113.80", Action: dnsguard.Forwarded}
}

// run starts l.Run and returns a function that stops it and waits.
func run(t *testing.T, l *Log) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestRecordsReachTheDatabaseAndTheHub(t *testing.T) {
	st := storetest.Open(t)
	hub := events.New()
	sub := events.Subscribe[events.DNSQuery](hub, "test", 100)
	defer sub.Close()
	l, err := New(Options{Sink: st, Events: hub, BatchSize: 4, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 10 {
		l.Record(query(i, now.Add(time.Duration(i)*time.Millisecond)))
	}
	// Two full batches are written at once; the last two wait for the
	// flush that stopping Run makes.
	stop()
	rows, err := st.DNSQueries(context.Background(), store.DNSQueryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 10 || rows[0].Name != "n9.example" || rows[9].Name != "n0.example" {
		t.Fatalf("%d rows in the log: %+v", len(rows), rows)
	}
	if r := rows[0]; r.Segment != "pupil" || r.Action != "forwarded" || r.MAC.String() != "02:00:00:00:20:0a" || r.Client.String() != "10.20.0.10" {
		t.Errorf("row %+v", r)
	}
	if s := l.Stats(); s.Recorded != 10 || s.Written != 10 || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
	got := sub.Drain()
	if len(got) != 10 {
		t.Fatalf("%d lookups published, want 10", len(got))
	}
	for i, q := range got {
		if q.Name != fmt.Sprintf("n%d.example", i) || q.Segment != "pupil" || q.Action != string(dnsguard.Forwarded) || q.MAC.String() != "02:00:00:00:20:0a" {
			t.Fatalf("event %d: %+v", i, q)
		}
	}
}

func TestPartialBatchIsWrittenOnTheFlushInterval(t *testing.T) {
	st := storetest.Open(t)
	l, err := New(Options{Sink: st, BatchSize: 100, FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, l)
	l.Record(query(1, time.Now()))
	for range 500 { // 5 s at most
		if l.Stats().Written == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("a lone record was not written by the flush ticker: %+v", l.Stats())
}

// blockedSink holds every insert until released, to fill the queue.
type blockedSink struct {
	release chan struct{}
	mu      sync.Mutex
	rows    int
	fail    bool
	purges  []time.Time
}

func (b *blockedSink) InsertDNSQueries(ctx context.Context, qs []store.DNSQuery) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail {
		return errors.New("disk full")
	}
	b.rows += len(qs)
	return nil
}

func (b *blockedSink) PurgeDNSQueries(_ context.Context, _ string, before time.Time) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.purges = append(b.purges, before)
	return 3, nil
}

func TestFullQueueDropsAndCountsWithoutBlocking(t *testing.T) {
	sink := &blockedSink{release: make(chan struct{})}
	l, err := New(Options{Sink: sink, Queue: 8, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Without Run nothing drains: the ninth record on must be dropped, and
	// Record must return at once every time.
	done := make(chan struct{})
	go func() {
		for i := range 20 {
			l.Record(query(i, time.Now()))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a full queue")
	}
	if s := l.Stats(); s.Recorded != 20 || s.Dropped != 12 {
		t.Fatalf("stats %+v, want 20 recorded and 12 dropped", s)
	}
	close(sink.release)
	stop := run(t, l)
	stop()
	if sink.rows != 8 || l.Stats().Written != 8 {
		t.Fatalf("wrote %d rows (stats %+v), want the 8 queued", sink.rows, l.Stats())
	}
}

func TestRefusedBatchIsCountedAndLoggingGoesOn(t *testing.T) {
	sink := &blockedSink{release: make(chan struct{}), fail: true}
	close(sink.release)
	l, err := New(Options{Sink: sink, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	for i := range 4 {
		l.Record(query(i, time.Now()))
	}
	stop()
	if s := l.Stats(); s.Failed != 4 || s.Written != 0 {
		t.Fatalf("stats %+v, want 4 failed", s)
	}
}

func TestRunPurgesAtStartAndOnTheIntervalWithTheRetention(t *testing.T) {
	sink := &blockedSink{release: make(chan struct{})}
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	l, err := New(Options{Sink: sink, PurgeEvery: 10 * time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	for range 500 { // 5 s at most
		sink.mu.Lock()
		n := len(sink.purges)
		sink.mu.Unlock()
		if n >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.purges) < 2 {
		t.Fatalf("%d purges, want one at start and more on the interval", len(sink.purges))
	}
	if want := now.Add(-30 * 24 * time.Hour); !sink.purges[0].Equal(want) {
		t.Errorf("purged before %v, want the default 30 days: %v", sink.purges[0], want)
	}
	if l.Stats().Purged < 6 {
		t.Errorf("purged count %d", l.Stats().Purged)
	}
}

func TestNewNeedsASink(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without a sink succeeded")
	}
}
