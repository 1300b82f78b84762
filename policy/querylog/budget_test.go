package querylog

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
)

// TestAFloodKeepsTheFirstAndTheUnusual is the proved attack: a pupil flooded
// junk lookups to push their real ones out of what the DSL sees.
func TestAFloodKeepsTheFirstAndTheUnusual(t *testing.T) {
	clock := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sink := &blockedSink{release: make(chan struct{})}
	close(sink.release)
	l, err := New(Options{Sink: sink, Queue: 100000, ClientBudget: 50, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	pupil, other := netip.MustParseAddr("10.20.0.10"), netip.MustParseAddr("10.20.0.11")
	rec := func(client netip.Addr, name string, a dnsguard.Action) {
		l.Record(dnsguard.Query{Time: clock, Client: client, Name: name, Type: "A", Action: a})
	}
	rec(pupil, "real-first.example", dnsguard.Forwarded)
	for range 5000 {
		rec(pupil, "junk.example", dnsguard.Forwarded)
	}
	rec(pupil, "nordvpn.com", dnsguard.Blocked) // unusual: kept however many came before
	rec(other, "homework.example", dnsguard.Forwarded)
	stop := run(t, l)
	stop()
	s := l.Stats()
	if s.Dropped != 0 || s.OverBudget != 5000-49 {
		t.Fatalf("stats %+v, want %d over budget and nothing dropped", s, 5000-49)
	}
	if s.Written != 50+1+1 {
		t.Errorf("written %d, want the pupil's first 50, the blocked lookup and the other client's", s.Written)
	}
	// The next minute the pupil's lookups are stored again.
	clock = clock.Add(time.Minute)
	before := l.Stats().OverBudget
	rec(pupil, "real-later.example", dnsguard.Forwarded)
	if l.Stats().OverBudget != before {
		t.Error("a lookup in the next minute was left out")
	}
}

// TestTheBudgetCountsTheMinuteALookupWasAskedIn: lookups reach Record late
// (the guard's hit log hands cached ones on in batches), so the budget goes
// by each lookup's own time, not the clock when it arrives.
func TestTheBudgetCountsTheMinuteALookupWasAskedIn(t *testing.T) {
	clock := time.Date(2026, 3, 2, 9, 0, 59, 0, time.UTC)
	l, err := New(Options{Sink: discard{}, Queue: 1000, ClientBudget: 10, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	pupil := netip.MustParseAddr("10.20.0.10")
	for i := range 20 {
		// Ten asked in the minute before the clock's, ten in its minute.
		at := clock.Add(-time.Minute)
		if i >= 10 {
			at = clock
		}
		l.Record(dnsguard.Query{Time: at, Client: pupil, Name: "a.example", Type: "A", Action: dnsguard.Cached})
	}
	if s := l.Stats(); s.OverBudget != 0 {
		t.Errorf("stats %+v: ten lookups in each of two minutes went over a budget of ten", s)
	}
	// A lookup with no time (none the guard makes) counts at the clock.
	l.Record(dnsguard.Query{Client: pupil, Name: "a.example", Type: "A", Action: dnsguard.Cached})
	if s := l.Stats(); s.OverBudget != 1 {
		t.Errorf("stats %+v: an untimed lookup past the minute's ten was not left out", s)
	}
}
