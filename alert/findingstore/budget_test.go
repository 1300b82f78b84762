package findingstore

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/gatehouse-net/gatehouse/store"
)

// TestAFindingFloodKeepsTheFirstAndTheUnusual: a pupil crafting packets
// that each raise the same finding must not bury a real one, nor grow the
// database without bound.
func TestAFindingFloodKeepsTheFirstAndTheUnusual(t *testing.T) {
	clock := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	st := storetest.Open(t)
	s, err := New(Options{Store: st, Queue: 100000, ClientBudget: 20, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	other := net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0b}
	for range 5000 {
		s.HandleFinding(vpnFinding(clock, "10.20.0.10")) // the same kind over and over
	}
	tor := vpnFinding(clock, "10.20.0.10")
	tor.Class, tor.Detail, tor.DstIP, tor.DstPort = "tor", "tor-handshake", netip.MustParseAddr("192.0.2.99"), 9001
	s.HandleFinding(tor) // unusual: a kind not seen this minute, kept after the flood
	ssh := vpnFinding(clock, "10.20.0.11")
	ssh.SrcMAC, ssh.Class = other, "ssh"
	s.HandleFinding(ssh) // another device is not slowed by the pupil's flood
	stop := runSink(t, s)
	stop()
	if got := s.Stats(); got.OverBudget != 5000-20 || got.Dropped != 0 {
		t.Errorf("stats %+v, want %d over budget and none dropped", got, 5000-20)
	}
	ctx := context.Background()
	for _, c := range []struct {
		f    store.FindingFilter
		want int
	}{
		{store.FindingFilter{Class: "vpn", MAC: pupilMAC}, 20},
		{store.FindingFilter{Class: "tor", MAC: pupilMAC}, 1},
		{store.FindingFilter{Class: "ssh", MAC: other}, 1},
	} {
		if n, err := st.CountFindings(ctx, c.f); err != nil || n != c.want {
			t.Errorf("%s findings of %s: %d (%v), want %d", c.f.Class, c.f.MAC, n, err, c.want)
		}
	}
	// The next minute the pupil's findings are stored again.
	clock = clock.Add(time.Minute)
	before := s.Stats().OverBudget
	s.HandleFinding(vpnFinding(clock, "10.20.0.10"))
	if s.Stats().OverBudget != before {
		t.Error("a finding in the next minute was left out")
	}
}
