package store

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A classified flow's first report and its end are one row; the device's
// flows are found by MAC (or address) within a window; purges are audited.
func TestFlowsUpsertWindowAndPurge(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	mac := net.HardwareAddr{0, 0x1c, 0xb3, 0, 0x20, 0x0a}
	c, srv := netip.MustParseAddr("10.20.0.10"), netip.MustParseAddr("192.0.2.11")
	vpn := Flow{Start: t0, Last: t0.Add(time.Second), Segment: "pupil", MAC: mac, Client: c, ClientPort: 40000, Server: srv, ServerPort: 1194,
		Proto: "udp", Class: "vpn", BytesOut: 100, BytesIn: 200, PacketsOut: 2, PacketsIn: 2}
	if err := s.SaveFlows(ctx, []Flow{vpn}); err != nil {
		t.Fatal(err)
	}
	end := vpn
	end.Last, end.Ended, end.Class, end.BytesOut, end.BytesIn, end.PacketsOut, end.PacketsIn = t0.Add(10*time.Minute), true, "", 9000, 12000, 80, 90
	old := Flow{Start: t0.Add(-3 * time.Hour), Last: t0.Add(-3 * time.Hour), Client: c, ClientPort: 5353, Server: netip.MustParseAddr("192.0.2.53"), ServerPort: 53, Proto: "udp", Name: "dns.example", Ended: true}
	other := Flow{Start: t0, Last: t0, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, Client: netip.MustParseAddr("10.20.0.11"), Server: srv, Proto: "tcp"}
	if err := s.SaveFlows(ctx, []Flow{end, old, other}); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeviceFlows(ctx, c, mac, t0.Add(-time.Hour), t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("flows in the window: %+v, want the one vpn flow", got)
	}
	g := got[0]
	if !g.Ended || g.Class != "vpn" || g.BytesOut != 9000 || g.BytesIn != 12000 || !g.Last.Equal(t0.Add(10*time.Minute)) || g.MAC.String() != mac.String() || g.Segment != "pupil" {
		t.Errorf("the two reports did not fold into one row: %+v", g)
	}
	if err := s.SaveFlows(ctx, []Flow{{Client: c, Server: srv}}); err == nil {
		t.Error("a flow without a start was saved")
	}
	n, err := s.PurgeFlows(ctx, "test", t0.Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purged %d (err %v), want the 3-hour-old flow", n, err)
	}
}
