package findingstore

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

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
	st := openStore(t)
	hub := events.New()
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
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	sub := events.Subscribe[finding.Finding](hub, "findings", 64)
	go func() { defer close(followed); s.Follow(ctx, sub) }()

	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	for i := range 5 {
		s.HandleFinding(vpnFinding(t0.Add(time.Duration(i)*time.Second), "10.20.0.10"))
	}
	s.HandleFinding(vpnFinding(t0.Add(5*time.Second), "10.77.0.10")) // in no segment
	s.ForSegment("staff").HandleFinding(inspect.Finding{Time: t0.Add(6 * time.Second), SrcIP: netip.MustParseAddr("10.20.0.11"),
		SrcMAC: pupilMAC, DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp", Class: inspect.ClassVPN, Detail: "openvpn"})
	s.HandleFinding(vpnFinding(t0.Add(7*time.Second), "10.20.0.1")) // the router itself: noise
	// DHCP publishes on the hub.
	events.Publish(hub, finding.Finding{Time: t0.Add(8 * time.Second), Source: finding.SourceDHCP,
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
	cancel()
	<-followed
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

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	s, err := New(Options{Store: openStore(t), Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			s.HandleFinding(vpnFinding(time.Now(), "10.20.0.10")) // nothing drains: Run is not running
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HandleFinding blocked on a full queue")
	}
	if st := s.Stats(); st.Received != 5 || st.Dropped != 3 {
		t.Errorf("stats %+v, want 5 received and 3 dropped", st)
	}
}

func TestQueuedFindingsAreWrittenOnShutdown(t *testing.T) {
	st := openStore(t)
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
	st := openStore(t)
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
	st := openStore(t)
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
	st := openStore(t)
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
	s, err := New(Options{Store: openStore(t), Queue: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.HandleFinding(vpnFinding(time.Now(), "10.20.0.10"))
	s.HandleFinding(vpnFinding(time.Now(), "10.20.0.10")) // queue full: dropped
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(s))
	want := `
# HELP gatehouse_findings_dropped_total Findings dropped because the sink's queue was full.
# TYPE gatehouse_findings_dropped_total counter
gatehouse_findings_dropped_total 1
# HELP gatehouse_findings_received_total Findings handed to the store sink by every source.
# TYPE gatehouse_findings_received_total counter
gatehouse_findings_received_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gatehouse_findings_dropped_total", "gatehouse_findings_received_total"); err != nil {
		t.Error(err)
	}
}

// The guard's word for a refused bypass name is what FollowLookups looks
// for: the hub carries it as text, so a rename in dnsguard must show here.
func TestBlockedActionIsTheGuards(t *testing.T) {
	if BlockedAction != string(dnsguard.Blocked) {
		t.Fatalf("BlockedAction %q, the guard says %q", BlockedAction, dnsguard.Blocked)
	}
}
