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

func TestPurgeStaleDevicesForgetsEveryDeviceNotSeenWithinTheRetention(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	year, recent := leaseT0.Add(-400*24*time.Hour), leaseT0.Add(-time.Hour)
	dev := func(mac string, seen time.Time) Device {
		return Device{MAC: leaseTestMAC(t, mac), FirstSeen: seen, LastSeen: seen, Segment: "lab"}
	}
	leased := dev("02:00:00:00:01:01", year)   // leased long ago: goes, with its lease row
	approved := dev("02:00:00:00:01:02", year) // approved long ago: goes
	fresh := dev("02:00:00:00:01:03", recent)  // seen lately: stays
	blocked := dev("02:00:00:00:01:04", year)  // a person blocked it: stays
	reserved := dev("02:00:00:00:01:05", year) // has a reservation: stays
	running := dev("02:00:00:00:01:06", year)  // holds a running lease: stays
	if err := s.SaveDHCP(ctx, []DHCPLease{
		{Segment: "lab", IP: netip.MustParseAddr("10.30.0.50"), MAC: leased.MAC, State: "released", Start: year, Expires: year},
		{Segment: "lab", IP: netip.MustParseAddr("10.30.0.51"), MAC: running.MAC, State: "bound", Start: year, Expires: leaseT0.Add(time.Hour)},
	}, []Device{leased, approved, fresh, blocked, reserved, running}); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideDevice(ctx, "web:nm", approved.MAC, DeviceDecision{Approved: true}, year); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideDevice(ctx, "web:nm", blocked.MAC, DeviceDecision{Blocked: true}, year); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveAddress(ctx, "web:nm", DHCPReservation{Segment: "lab", MAC: reserved.MAC, IP: netip.MustParseAddr("10.30.0.9")}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeStaleDevices(ctx, "scheduler", leaseT0.Add(-365*24*time.Hour), leaseT0)
	if err != nil || n != 2 {
		t.Fatalf("purged %d (%v), want 2", n, err)
	}
	for _, d := range []Device{leased, approved} {
		if _, err := s.DeviceByMAC(ctx, d.MAC); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s not seen for 400 days is still there: %v", d.MAC, err)
		}
	}
	for _, d := range []Device{fresh, blocked, reserved, running} {
		if _, err := s.DeviceByMAC(ctx, d.MAC); err != nil {
			t.Errorf("%s was purged: %v", d.MAC, err)
		}
	}
	ls, err := s.DHCPLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.MAC.String() == leased.MAC.String() {
			t.Errorf("the purged device's old lease row is still there: %+v", l)
		}
	}
	if len(ls) != 1 {
		t.Errorf("leases after the purge: %+v, want the running one", ls)
	}
	entries, err := s.AuditList(ctx, 5, 0)
	if err != nil || len(entries) == 0 || entries[0].Action != "device.purge_stale" {
		t.Errorf("no audit entry for the purge: %+v %v", entries, err)
	}
}
