package store

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Every change to what DeviceForRADIUS reads is logged, by whichever Store
// (another process's, here a second Open of the same file) made it; DHCP's
// own updates to a device it already knows are not.
func TestRADIUSDeviceChangesLogWhatDeviceForRADIUSReads(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	other, err := Open(ctx, path) // another process's view of the file
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x31}
	g0, err := s.RADIUSDeviceGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// expect runs change and wants the log to name exactly mac since the
	// generation before it (logged: false wants nothing logged).
	expect := func(what string, logged bool, change func() error) {
		t.Helper()
		before, err := s.RADIUSDeviceGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		macs, gen, complete, err := s.RADIUSDeviceChangesSince(ctx, before, 100)
		if err != nil || !complete {
			t.Fatalf("%s: changes since %d: complete %v, %v", what, before, complete, err)
		}
		if !logged {
			if len(macs) != 0 || gen != before {
				t.Errorf("%s: logged %v (generation %d -> %d); want nothing", what, macs, before, gen)
			}
			return
		}
		slices.Sort(macs)
		if len(slices.Compact(macs)) != 1 || macs[0] != "02:00:00:00:00:31" || gen <= before {
			t.Errorf("%s: logged %v (generation %d -> %d); want 02:00:00:00:00:31", what, macs, before, gen)
		}
	}
	expect("approve from another process", true, func() error { return other.ApproveDevice(ctx, "cli", mac, "staff", "Laptop", now) })
	expect("DHCP sees it", false, func() error {
		return s.SaveDHCP(ctx, []DHCPLease{{Segment: "staff", IP: netip.MustParseAddr("10.10.0.5"), MAC: mac, State: "bound", Start: now, Expires: now.Add(time.Hour)}},
			[]Device{{MAC: mac, FirstSeen: now, LastSeen: now.Add(time.Minute), Segment: "staff", Hostname: "laptop"}})
	})
	expect("block", true, func() error {
		return other.DecideDevice(ctx, "nm", mac, DeviceDecision{Approved: true, Blocked: true, Name: "Laptop"}, now)
	})
	expect("personal key", true, func() error { return other.SetDeviceKey(ctx, "nm", mac, []byte("sealed"), now) })
	expect("rotation keeping the old key", true, func() error {
		return other.SetDeviceKeyKeepingOld(ctx, "nm", mac, []byte("sealed2"), now, now.Add(time.Hour))
	})
	expect("unblock", true, func() error {
		return other.DecideDevice(ctx, "nm", mac, DeviceDecision{Approved: true, Name: "Laptop"}, now)
	})
	expect("purge", true, func() error {
		n, err := other.PurgeStaleDevices(ctx, "retention", now.Add(48*time.Hour), now.Add(48*time.Hour))
		if err == nil && n != 1 {
			t.Errorf("purged %d devices, want 1", n)
		}
		return err
	})

	// A reader far behind (the log pruned past it) or ahead (a restored
	// backup) is told to start afresh, and where the log stands.
	g1, _ := s.RADIUSDeviceGeneration(ctx)
	if g1 <= g0 {
		t.Fatalf("generation %d after changes, %d before", g1, g0)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM radius_device_changes WHERE seq <= ?`, g0+1); err != nil {
		t.Fatal(err)
	}
	if macs, gen, complete, err := s.RADIUSDeviceChangesSince(ctx, g0, 100); err != nil || complete || macs != nil || gen != g1 {
		t.Errorf("behind a pruned log: %v %d %v %v; want incomplete at %d", macs, gen, complete, err, g1)
	}
	if macs, gen, complete, err := s.RADIUSDeviceChangesSince(ctx, g1+50, 100); err != nil || complete || macs != nil || gen != g1 {
		t.Errorf("ahead of the log: %v %d %v %v; want incomplete at %d", macs, gen, complete, err, g1)
	}
	if _, gen, complete, err := s.RADIUSDeviceChangesSince(ctx, g0+1, 1); err != nil || complete || gen != g1 {
		t.Errorf("more changes than asked for: %d %v %v; want incomplete at %d", gen, complete, err, g1)
	}
}
