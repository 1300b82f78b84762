package findingstore

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/store"
)

var pupilMAC = net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0a}

func vpnFinding(at time.Time, src string) finding.Finding {
	return finding.Finding{Time: at, Source: finding.SourceInspect, SrcIP: netip.MustParseAddr(src), SrcMAC: pupilMAC,
		DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp",
		Class: inspect.ClassVPN, Detail: "openvpn", Evidence: "OpenVPN hard reset"}
}

// runSink starts s.Run and returns a function that stops it and reports
// Run's result.
func runSink(t *testing.T, s *Sink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancel")
		}
	}
}

func TestFindingsAreStoredWithSegmentAndSourceFromEverySource(t *testing.T) {
	st := storetest.Open(t)
	stored := make(chan struct{}, 64)
	s, err := New(Options{
		Store: st, Batch: 3, FlushEvery: 20 * time.Millisecond,
		Stored:    func() { stored <- struct{}{} },
		SegmentOf: SegmentByPrefix(map[string]netip.Prefix{"pupil": netip.MustParsePrefix("10.20.0.0/21")}),
		Ignore: func(f finding.Finding) string {
			if f.SrcIP == netip.MustParseAddr("10.20.0.1") {
				return "the router"
			}
			return ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSink(t, s)

	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	for i := range 5 {
		s.HandleFinding(vpnFinding(t0.Add(time.Duration(i)*time.Second), "10.20.0.10"))
	}
	s.HandleFinding(vpnFinding(t0.Add(5*time.Second), "10.77.0.10")) // in no segment
	s.ForSegment("staff").HandleFinding(inspect.Finding{Time: t0.Add(6 * time.Second), SrcIP: netip.MustParseAddr("10.20.0.11"),
		SrcMAC: pupilMAC, DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp", Class: inspect.ClassVPN, Detail: "openvpn"})
	s.HandleFinding(vpnFinding(t0.Add(7*time.Second), "10.20.0.1")) // the router itself: noise
	// DHCP offers through the finding.Sink it is given.
	s.Offer(finding.Finding{Time: t0.Add(8 * time.Second), Source: finding.SourceDHCP,
		Class: finding.ClassPoolExhausted, Segment: "staff", Detail: "pool-exhausted"})

	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := st.CountFindings(context.Background(), store.FindingFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if n == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 8 findings stored within 10s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	select {
	case <-stored:
	default:
		t.Error("Stored was never called")
	}

	rows, err := st.Findings(context.Background(), store.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	wantSeg := map[string]string{"10.20.0.10": "pupil", "10.77.0.10": "", "10.20.0.11": "staff", "invalid IP": "staff"}
	for _, r := range rows {
		if r.SrcIP == netip.MustParseAddr("10.20.0.1") {
			t.Errorf("the router's own finding was stored: %+v", r)
		}
		if r.Segment != wantSeg[r.SrcIP.String()] {
			t.Errorf("row from %v has segment %q, want %q", r.SrcIP, r.Segment, wantSeg[r.SrcIP.String()])
		}
		switch r.Class {
		case "vpn":
			if r.Source != "inspect" || r.Detail != "openvpn" || r.SrcMAC.String() != pupilMAC.String() || r.DstPort != 1194 {
				t.Errorf("row %+v", r)
			}
		case "pool-exhausted":
			if r.Source != "dhcp" {
				t.Errorf("row %+v", r)
			}
		default:
			t.Errorf("row %+v", r)
		}
	}
	if st := s.Stats(); st.Received != 9 || st.Ignored != 1 || st.Stored != 8 || st.Dropped != 0 || st.WriteErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Fill the queue: nothing drains it (Run is not running), so every
// finding past the queue's size meets a full queue. None may be lost: each
// is written at once (spilled), and the queued ones when Run starts.
func TestAFullQueueLosesNoFinding(t *testing.T) {
	st := storetest.Open(t)
	const queue, n = 4, 200
	s, err := New(Options{Store: st, Queue: queue, ClientBudget: -1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range n {
		s.HandleFinding(vpnFinding(t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("10.20.%d.%d", i/200, 10+i%200)))
	}
	ctx := context.Background()
	if got, err := st.CountFindings(ctx, store.FindingFilter{}); err != nil || got != n-queue {
		t.Fatalf("%d findings in the database with the queue full (err %v), want %d written at once", got, err, n-queue)
	}
	stop := runSink(t, s)
	stop() // the shutdown flush writes the queued ones
	got, err := st.CountFindings(ctx, store.FindingFilter{})
	if err != nil || got != n {
		t.Fatalf("%d findings stored (err %v), want all %d", got, err, n)
	}
	stats := s.Stats()
	t.Logf("filled a queue of %d with %d findings: %+v", queue, n, stats)
	if stats.Received != n || stats.Dropped != 0 || stats.Spilled != n-queue || stats.Stored != n || stats.WriteErrors != 0 {
		t.Errorf("stats %+v, want %d received, 0 dropped, %d spilled, %d stored", stats, n, n-queue, n)
	}
}

// The engine folds every finding of a full-queue burst: the rows the
// spill wrote are in id order with the rest.
func TestAFullQueueFromManySourcesLosesNoFinding(t *testing.T) {
	st := storetest.Open(t)
	const queue, producers, each = 8, 4, 100
	s, err := New(Options{Store: st, Queue: queue, Batch: 16, FlushEvery: 5 * time.Millisecond, ClientBudget: -1})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSink(t, s)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s.HandleFinding(vpnFinding(time.Now(), fmt.Sprintf("10.20.%d.%d", p, 10+i)))
			}
		}()
	}
	wg.Wait()
	stop()
	got, err := st.CountFindings(context.Background(), store.FindingFilter{})
	if err != nil || got != producers*each {
		t.Fatalf("%d findings stored (err %v), want %d", got, err, producers*each)
	}
	stats := s.Stats()
	t.Logf("%d producers x %d findings through a queue of %d: %+v", producers, each, queue, stats)
	if stats.Dropped != 0 || stats.Stored != producers*each {
		t.Errorf("stats %+v, want nothing dropped and all stored", stats)
	}
}

func TestQueuedFindingsAreWrittenOnShutdown(t *testing.T) {
	st := storetest.Open(t)
	// A flush interval longer than the test: only the shutdown path writes.
	s, err := New(Options{Store: st, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s.HandleFinding(vpnFinding(time.Now().Add(time.Duration(i)*time.Second), "10.20.0.10"))
	}
	stop := runSink(t, s)
	stop()
	if n, err := st.CountFindings(context.Background(), store.FindingFilter{}); err != nil || n != 3 {
		t.Fatalf("%d findings stored at shutdown (err %v), want 3", n, err)
	}
}

func TestRetentionPurgesExpiredFindings(t *testing.T) {
	st := storetest.Open(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	rows := []store.Finding{
		{At: now.Add(-91 * 24 * time.Hour), Class: "vpn"},
		{At: now.Add(-89 * 24 * time.Hour), Class: "doh"},
	}
	if err := st.InsertFindings(ctx, rows); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Store: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSink(t, s)
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Purged == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	left, err := st.Findings(ctx, store.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Class != "doh" {
		t.Fatalf("left after purge: %+v, want only the 89-day-old doh finding", left)
	}
	if s.Stats().Purged != 1 {
		t.Errorf("stats %+v, want 1 purged", s.Stats())
	}
}

func TestWriteFailureIsCounted(t *testing.T) {
	st := storetest.Open(t)
	s, err := New(Options{Store: st, FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // every write now fails
	s.HandleFinding(vpnFinding(time.Now(), "10.20.0.10"))
	stop := runSink(t, s)
	for deadline := time.Now().Add(10 * time.Second); s.Stats().WriteErrors == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if st := s.Stats(); st.WriteErrors != 1 || st.Stored != 0 {
		t.Errorf("stats %+v, want 1 write error", st)
	}
}

func TestNewNeedsAStore(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

// TestEngineReplayLandsInStore runs the real engine over a capture with the
// sink attached, as the daemon wires it.
func TestEngineReplayLandsInStore(t *testing.T) {
	st := storetest.Open(t)
	s, err := New(Options{Store: st, FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("GATEHOUSE_PCAPS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "pcaps")
	}
	e := inspect.NewEngine(inspect.Options{Sink: s.ForSegment("pupil")})
	if err := e.ReplayFile(context.Background(), filepath.Join(dir, "443-opvn.pcap")); err != nil {
		if testing.Short() {
			t.Skipf("shared capture set not available (set GATEHOUSE_PCAPS): %v", err)
		}
		t.Fatalf("shared capture set not available (set GATEHOUSE_PCAPS, or -short to skip): %v", err)
	}
	stop := runSink(t, s)
	stop()
	rows, err := st.Findings(context.Background(), store.FindingFilter{Class: inspect.ClassVPN, Segment: "pupil"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || rows[0].Detail != "openvpn" || !rows[0].SrcIP.IsValid() || rows[0].Source != "inspect" {
		t.Fatalf("stored vpn findings from 443-opvn.pcap: %+v (stats %+v)", rows, s.Stats())
	}
}

func TestCollectorReportsCounters(t *testing.T) {
	s, err := New(Options{Store: storetest.Open(t), Queue: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.HandleFinding(vpnFinding(time.Now(), "10.20.0.10"))
	s.HandleFinding(vpnFinding(time.Now(), "10.20.0.10")) // queue full: written at once
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(s))
	want := `
# HELP gatehouse_findings_dropped_total Findings lost because the sink's queue was full (0: a full queue spills to a direct write).
# TYPE gatehouse_findings_dropped_total counter
gatehouse_findings_dropped_total 0
# HELP gatehouse_findings_spilled_total Findings that met a full queue and were written at once by their source (back-pressure).
# TYPE gatehouse_findings_spilled_total counter
gatehouse_findings_spilled_total 1
# HELP gatehouse_findings_received_total Findings handed to the store sink by every source.
# TYPE gatehouse_findings_received_total counter
gatehouse_findings_received_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gatehouse_findings_dropped_total", "gatehouse_findings_spilled_total", "gatehouse_findings_received_total"); err != nil {
		t.Error(err)
	}
}
