package store

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	pupilMAC = net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0a}
	staffMAC = net.HardwareAddr{2, 0, 0, 0, 0x10, 0x0a}
)

func finding(at time.Time, segment, class string, mac net.HardwareAddr) Finding {
	return Finding{At: at, Segment: segment, SrcIP: netip.MustParseAddr("10.20.0.10"), SrcMAC: mac,
		DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp", Class: class,
		Detail: class + "-detail", Evidence: "seen " + class}
}

func TestFindingsRoundTripNewestFirstWithIDsAndAttribution(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	batch := []Finding{
		finding(t0, "pupil", "vpn", pupilMAC),
		finding(t0.Add(time.Second), "staff", "ssh", staffMAC),
		finding(t0.Add(2*time.Second), "", "rogue-dhcp", nil),
	}
	batch[1].DeviceID, batch[1].PersonID = 7, 42
	batch[0].Confidence = "attempt" // kept as given, like Detail
	batch[2].DstIP, batch[2].DstPort = netip.Addr{}, 0
	batch[2].SrcIP = netip.MustParseAddr("::ffff:10.20.0.99") // stored unmapped
	if err := s.InsertFindings(ctx, batch); err != nil {
		t.Fatalf("InsertFindings: %v", err)
	}
	for i, f := range batch {
		if f.ID == 0 {
			t.Fatalf("finding %d got no ID", i)
		}
	}
	got, err := s.Findings(ctx, FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{batch[2], batch[1], batch[0]}
	want[0].SrcIP = netip.MustParseAddr("10.20.0.99")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Findings:\n got %+v\nwant %+v", got, want)
	}
}

func TestFindingsFilter(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	batch := []Finding{
		finding(t0, "pupil", "vpn", pupilMAC),                    // 0
		finding(t0.Add(time.Minute), "pupil", "doh", pupilMAC),   // 1
		finding(t0.Add(2*time.Minute), "staff", "vpn", staffMAC), // 2
		finding(t0.Add(3*time.Minute), "pupil", "vpn", staffMAC), // 3
	}
	if err := s.InsertFindings(ctx, batch); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		f    FindingFilter
		want []int // indexes into batch, newest first
	}{
		{"all", FindingFilter{}, []int{3, 2, 1, 0}},
		{"class", FindingFilter{Class: "vpn"}, []int{3, 2, 0}},
		{"segment", FindingFilter{Segment: "pupil"}, []int{3, 1, 0}},
		{"device", FindingFilter{MAC: pupilMAC}, []int{1, 0}},
		{"other device", FindingFilter{MAC: staffMAC}, []int{3, 2}},
		{"since inclusive", FindingFilter{Since: t0.Add(time.Minute)}, []int{3, 2, 1}},
		{"until exclusive", FindingFilter{Until: t0.Add(2 * time.Minute)}, []int{1, 0}},
		{"combined", FindingFilter{Class: "vpn", Segment: "pupil", MAC: staffMAC}, []int{3}},
		{"limit", FindingFilter{Limit: 2}, []int{3, 2}},
		{"offset", FindingFilter{Limit: 2, Offset: 2}, []int{1, 0}},
		{"nothing", FindingFilter{Class: "tor"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Findings(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids, want []int64
			for _, f := range got {
				ids = append(ids, f.ID)
			}
			for _, i := range c.want {
				want = append(want, batch[i].ID)
			}
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("ids %v, want %v", ids, want)
			}
			n, err := s.CountFindings(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			if c.f.Limit == 0 && n != len(c.want) {
				t.Errorf("CountFindings = %d, want %d", n, len(c.want))
			}
		})
	}
	segs, err := s.FindingSegments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(segs, []string{"pupil", "staff"}) {
		t.Errorf("FindingSegments = %v", segs)
	}
}

func TestFindingsRefusesOversizedPage(t *testing.T) {
	s, _ := openTemp(t)
	for _, f := range []FindingFilter{{Limit: MaxFindingsPage + 1}, {Offset: -1}} {
		if _, err := s.Findings(context.Background(), f); err == nil {
			t.Errorf("Findings(%+v) succeeded", f)
		}
	}
}

func TestFindingBatchIsAllOrNothing(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	for name, bad := range map[string]Finding{
		"no class": {At: now, SrcIP: netip.MustParseAddr("10.20.0.10")},
		"no time":  {Class: "vpn"},
	} {
		batch := []Finding{finding(now, "pupil", "vpn", pupilMAC), bad}
		if err := s.InsertFindings(ctx, batch); err == nil {
			t.Errorf("%s: batch with a bad row inserted", name)
		}
		if batch[0].ID != 0 {
			t.Errorf("%s: a refused batch handed out IDs", name)
		}
	}
	if n, err := s.CountFindings(ctx, FindingFilter{}); err != nil || n != 0 {
		t.Fatalf("%d rows of refused batches kept (err %v)", n, err)
	}
}
