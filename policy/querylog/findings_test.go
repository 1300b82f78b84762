package querylog_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/findingstore"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/policy/querylog"
	"github.com/gatehouse-net/gatehouse/store"
)

// TestBlockedLookupFloodIsNotLostToAQueue: the DNS guard's refused lookups
// reach the finding store through Options.Findings, not the hub. A burst
// of 10,000 findings (more than the 4096 the alert pipeline's hub
// subscription held, and than the store's own queue), recorded from four
// goroutines faster than batches are written, is stored in full: every
// device stays within its budget, so none may be missing. One device that
// floods the same name is cut to its budget, and that cut is counted. A
// slow hub subscriber meanwhile drops lookups (counted), which no longer
// costs a finding.
func TestBlockedLookupFloodIsNotLostToAQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Truncate(time.Second)
	sink, err := findingstore.New(findingstore.Options{Store: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx) }()

	hub := events.New()
	slow := events.Subscribe[events.DNSQuery](hub, "slow-observer", 16) // never read
	defer slow.Close()
	l, err := querylog.New(querylog.Options{Sink: st, Events: hub, Findings: sink, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}

	const (
		devices   = 200
		perDevice = findingstore.DefaultClientBudget - 10 // within budget
		flood     = 500                                   // one device, one name, over budget
	)
	q := func(dev int, name string) dnsguard.Query {
		return dnsguard.Query{Time: now, Client: netip.AddrFrom4([4]byte{10, 20, byte(dev >> 8), byte(dev)}),
			MAC: net.HardwareAddr{2, 0, 0, 0, byte(dev >> 8), byte(dev)}, Segment: "pupil", Name: name, Type: "A", Action: dnsguard.Blocked}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for d := w; d < devices; d += 4 {
				for i := range perDevice {
					l.Record(q(d+1, fmt.Sprintf("vpn%d.example", i)))
				}
			}
		})
	}
	wg.Go(func() {
		for range flood {
			l.Record(q(1000, "dns.google"))
		}
	})
	wg.Wait()
	// A routine lookup is the query log's, never a finding.
	l.Record(dnsguard.Query{Time: now, Client: netip.MustParseAddr("10.20.9.9"), Name: "example.com", Type: "A", Action: dnsguard.Forwarded})

	wantStored := uint64(devices*perDevice + findingstore.DefaultClientBudget)
	deadline := time.Now().Add(60 * time.Second)
	for sink.Stats().Stored+sink.Stats().WriteErrors < wantStored && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := sink.Stats()
	n, err := st.CountFindings(context.Background(), store.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("offered %d blocked lookups; stored %d (rows %d), spilled past a full queue %d, over budget %d, queue drops %d, write errors %d; hub: slow subscriber dropped %d",
		s.Received, s.Stored, n, s.Spilled, s.OverBudget, s.Dropped, s.WriteErrors, slow.Dropped())
	if s.Received != uint64(devices*perDevice+flood) {
		t.Errorf("sink received %d findings, want %d (one per blocked lookup, none for the routine one)", s.Received, devices*perDevice+flood)
	}
	if s.Stored != wantStored || uint64(n) != wantStored {
		t.Errorf("stored %d (rows %d), want %d: every finding within budget", s.Stored, n, wantStored)
	}
	if s.Dropped != 0 || s.WriteErrors != 0 {
		t.Errorf("%d dropped, %d write errors", s.Dropped, s.WriteErrors)
	}
	if want := uint64(flood - findingstore.DefaultClientBudget); s.OverBudget != want {
		t.Errorf("over budget %d, want %d (the flooding device past its budget)", s.OverBudget, want)
	}
	if slow.Dropped() == 0 {
		t.Error("the never-read hub subscriber dropped nothing: the burst did not exceed a hub queue, so the test shows nothing")
	}
}
