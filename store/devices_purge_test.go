package store

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestPurgeUnleasedDevicesKeepsLeasedAndDecidedOnes(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	old, recent := leaseT0.Add(-8*24*time.Hour), leaseT0.Add(-time.Hour)
	dev := func(mac string, first time.Time) Device {
		return Device{MAC: leaseTestMAC(t, mac), FirstSeen: first, LastSeen: first, Segment: "lab"}
	}
	made := dev("02:66:00:00:00:01", old)     // a flood's made-up MAC: goes
	fresh := dev("02:66:00:00:00:02", recent) // too recent: stays
	leased := dev("02:00:00:00:00:03", old)   // completed a lease: stays
	decided := dev("02:00:00:00:00:04", old)  // a person blocked it: stays
	if err := s.SaveDHCP(ctx, []DHCPLease{{Segment: "lab", IP: netip.MustParseAddr("10.30.0.50"), MAC: leased.MAC, State: "released", Start: old, Expires: old}},
		[]Device{made, fresh, leased, decided}); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideDevice(ctx, "web:nm", decided.MAC, DeviceDecision{Blocked: true}, old); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeUnleasedDevices(ctx, "scheduler", leaseT0.Add(-7*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purged %d (%v), want 1", n, err)
	}
	if _, err := s.DeviceByMAC(ctx, made.MAC); !errors.Is(err, ErrNotFound) {
		t.Errorf("the made-up MAC is still there: %v", err)
	}
	for _, d := range []Device{fresh, leased, decided} {
		if _, err := s.DeviceByMAC(ctx, d.MAC); err != nil {
			t.Errorf("%s was purged: %v", d.MAC, err)
		}
	}
	entries, err := s.AuditList(ctx, 5, 0)
	if err != nil || len(entries) == 0 || entries[0].Action != "device.purge_unleased" {
		t.Errorf("no audit entry for the purge: %+v %v", entries, err)
	}
}
