package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// A device that never took a lease but that inspection saw (a static
// address) is in the inventory, first seen when the finding was; a device
// recorded by hand gets its first-seen time from its first sighting.
func TestFindingsRecordTheirDevicesAsSeen(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	static := leaseTestMAC(t, "02:77:00:00:00:01")
	byHand := leaseTestMAC(t, "02:77:00:00:00:02")
	if err := s.DecideDevice(ctx, "web:nm", byHand, DeviceDecision{Approved: true, Name: "printer"}, leaseT0.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	early, late := leaseT0.Add(-2*time.Hour), leaseT0.Add(-time.Hour)
	fs := []Finding{
		{At: late, Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.9"), SrcMAC: static, Class: "vpn"},
		{At: early, Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.9"), SrcMAC: static, Class: "vpn"},
		{At: late, Segment: "staff", SrcIP: netip.MustParseAddr("10.10.0.7"), SrcMAC: byHand, Class: "doh"},
		{At: late, Segment: "staff", SrcIP: netip.MustParseAddr("10.10.0.8"), SrcMAC: leaseTestMAC(t, "ff:ff:ff:ff:ff:ff"), Class: "doh"},
	}
	if err := s.InsertFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	d, err := s.DeviceByMAC(ctx, static)
	if err != nil {
		t.Fatalf("the device inspection saw is not in the inventory: %v", err)
	}
	if !d.FirstSeen.Equal(early) || !d.LastSeen.Equal(late) || d.Segment != "pupil" || d.IP.String() != "10.20.0.9" {
		t.Errorf("inspected device = first %v last %v on %q at %v; want first %v last %v on pupil at 10.20.0.9", d.FirstSeen, d.LastSeen, d.Segment, d.IP, early, late)
	}
	h, err := s.DeviceByMAC(ctx, byHand)
	if err != nil {
		t.Fatal(err)
	}
	if !h.FirstSeen.Equal(late) || !h.Approved || h.Name != "printer" {
		t.Errorf("recorded device after its first sighting = %+v; want first seen %v, approval and name kept", h, late)
	}
	if _, err := s.DeviceByMAC(ctx, leaseTestMAC(t, "ff:ff:ff:ff:ff:ff")); !errors.Is(err, ErrNotFound) {
		t.Errorf("the broadcast address became a device: %v", err)
	}
	// A later DHCP sighting leaves the earlier first-seen time alone.
	if err := s.SaveDHCP(ctx, nil, []Device{{MAC: static, FirstSeen: leaseT0, LastSeen: leaseT0, Segment: "pupil"}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.DeviceByMAC(ctx, static); !d.FirstSeen.Equal(early) {
		t.Errorf("first seen moved to %v after a DHCP sighting; want %v", d.FirstSeen, early)
	}
}

// The inventory is bounded: over the cap, the least recently seen devices
// nobody decided about go first; approved, named and reserved ones stay.
func TestDeviceInventoryEvictsOldestUndecided(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	s.SetMaxDevices(5)
	mac := func(i int) string { return fmt.Sprintf("02:88:00:00:00:%02x", i) }
	// Two old devices a person decided about: never evicted.
	if err := s.DecideDevice(ctx, "web:nm", leaseTestMAC(t, mac(0)), DeviceDecision{Approved: true}, leaseT0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideDevice(ctx, "web:nm", leaseTestMAC(t, mac(1)), DeviceDecision{Name: "kiosk"}, leaseT0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 12; i++ {
		at := leaseT0.Add(time.Duration(i) * time.Minute)
		if i%2 == 0 {
			if err := s.SaveDHCP(ctx, nil, []Device{{MAC: leaseTestMAC(t, mac(i)), FirstSeen: at, LastSeen: at, Segment: "lab"}}); err != nil {
				t.Fatal(err)
			}
		} else if err := s.InsertFindings(ctx, []Finding{{At: at, SrcMAC: leaseTestMAC(t, mac(i)), Class: "vpn"}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.CountDevices(ctx, DeviceFilter{})
	if err != nil || n != 5 {
		t.Fatalf("inventory holds %d devices (%v), want the cap of 5", n, err)
	}
	for _, i := range []int{0, 1, 9, 10, 11} {
		if _, err := s.DeviceByMAC(ctx, leaseTestMAC(t, mac(i))); err != nil {
			t.Errorf("device %s was evicted: %v", mac(i), err)
		}
	}
	entries, err := s.AuditList(ctx, 1, 0)
	if err != nil || len(entries) == 0 || entries[0].Action != "device.evict" {
		t.Errorf("eviction not audited: %+v %v", entries, err)
	}
}

// The device search is plain text: LIKE's wildcards in it match only
// themselves, and it pages.
func TestListDevicesSearchAndPages(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	var devs []Device
	for i := range 7 {
		at := leaseT0.Add(time.Duration(i) * time.Minute)
		devs = append(devs, Device{MAC: leaseTestMAC(t, fmt.Sprintf("02:99:00:00:00:%02x", i)), FirstSeen: at, LastSeen: at, Hostname: fmt.Sprintf("lab-pc%d", i)})
	}
	devs[3].Hostname = "100%_done"
	if err := s.SaveDHCP(ctx, nil, devs); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListDevices(ctx, DeviceFilter{Q: "%_"})
	if err != nil || len(got) != 1 || got[0].Hostname != "100%_done" {
		t.Errorf("search %%_ = %+v (%v), want only 100%%_done", got, err)
	}
	got, err = s.ListDevices(ctx, DeviceFilter{Q: "LAB-", Limit: 2, Offset: 2})
	if err != nil || len(got) != 2 || got[0].Hostname != "lab-pc4" || got[1].Hostname != "lab-pc2" {
		t.Errorf("second page = %+v (%v), want lab-pc4, lab-pc2", got, err)
	}
	if n, err := s.CountDevices(ctx, DeviceFilter{Q: "lab-"}); err != nil || n != 6 {
		t.Errorf("count = %d (%v), want 6", n, err)
	}
}
