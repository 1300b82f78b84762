package store

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Every change to what the in-memory readers hold (DHCP's device states,
// RADIUS's device cache and PMK table) is logged, by whichever Store
// (another process's, here a second Open of the same file, or raw SQL as
// the sqlite3 shell would) made it; DHCP's own updates to a device it
// already knows are not.
func TestDeviceChangesLogEveryWriter(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	other, err := Open(ctx, path) // another process's view of the file
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x31}
	g0, err := s.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// expect runs change and wants the log to name exactly mac since the
	// generation before it (logged: false wants nothing logged).
	expect := func(what string, logged bool, change func() error) {
		t.Helper()
		before, err := s.LatestChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		macs, gen, gap, err := s.ChangesSince(ctx, before, 100)
		if err != nil || gap {
			t.Fatalf("%s: changes since %d: gap %v, %v", what, before, gap, err)
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
	expect("a PMK", true, func() error {
		return other.PutDevicePMKs(ctx, []SealedPMK{{MAC: mac, KeyRef: KeyRef([]byte("sealed2")), SSID: "Staff", Sealed: []byte("pmk")}})
	})
	expect("raw SQL", true, func() error {
		_, err := other.db.ExecContext(ctx, `UPDATE devices SET approved = 0 WHERE mac = '02:00:00:00:00:31'`)
		return err
	})
	expect("the same values again", false, func() error {
		_, err := other.db.ExecContext(ctx, `UPDATE devices SET approved = 0, blocked = blocked WHERE mac = '02:00:00:00:00:31'`)
		return err
	})
	if st, err := s.DeviceStatesOf(ctx, []string{"02:00:00:00:00:31", "02:00:00:00:00:99", "junk"}); err != nil || len(st) != 2 ||
		!st[0].Present || st[0].Approved || !st[0].Blocked || st[1].Present || st[1].MAC.String() != "02:00:00:00:00:99" {
		t.Errorf("states of a blocked device and an unknown one: %+v %v", st, err)
	}
	if held, err := s.HoldingKeys(ctx, []string{"02:00:00:00:00:99", "02:00:00:00:00:31"}); err != nil || !held {
		t.Errorf("a device with keys: held %v, %v", held, err)
	}
	if held, err := s.HoldingKeys(ctx, []string{"02:00:00:00:00:99"}); err != nil || held {
		t.Errorf("an unknown device: held %v, %v", held, err)
	}
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
	g1, _ := s.LatestChange(ctx)
	if g1 <= g0 {
		t.Fatalf("generation %d after changes, %d before", g1, g0)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM device_changes WHERE seq <= ?`, g0+1); err != nil {
		t.Fatal(err)
	}
	if macs, gen, gap, err := s.ChangesSince(ctx, g0, 100); err != nil || !gap || macs != nil || gen != g1 {
		t.Errorf("behind a pruned log: %v %d %v %v; want a gap at %d", macs, gen, gap, err, g1)
	}
	if macs, gen, gap, err := s.ChangesSince(ctx, g1+50, 100); err != nil || !gap || macs != nil || gen != g1 {
		t.Errorf("ahead of the log: %v %d %v %v; want a gap at %d", macs, gen, gap, err, g1)
	}
	if _, gen, gap, err := s.ChangesSince(ctx, g0+1, 1); err != nil || !gap || gen != g1 {
		t.Errorf("more changes than asked for: %d %v %v; want a gap at %d", gen, gap, err, g1)
	}
	if macs, gen, gap, err := s.ChangesSince(ctx, g1, 100); err != nil || gap || macs != nil || gen != g1 {
		t.Errorf("up to date: %v %d %v %v; want nothing at %d", macs, gen, gap, err, g1)
	}
}

// The log keeps its last 10,000 changes: more, and a reader at the start
// is told of the gap.
func TestDeviceChangesPruned(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	g0, err := s.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10050)
		INSERT INTO devices (mac, first_seen, last_seen) SELECT printf('02:00:00:00:%02x:%02x', i / 256, i % 256), '', '' FROM n`); err != nil {
		t.Fatal(err)
	}
	var rows, oldest int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*), min(seq) FROM device_changes`).Scan(&rows, &oldest); err != nil {
		t.Fatal(err)
	}
	if rows != 10000 || oldest != g0+51 {
		t.Errorf("log holds %d rows from %d; want 10000 from %d", rows, oldest, g0+51)
	}
	if macs, gen, gap, err := s.ChangesSince(ctx, g0, 100); err != nil || !gap || macs != nil || gen != g0+10050 {
		t.Errorf("behind the pruned log: %d macs, at %d, gap %v, %v", len(macs), gen, gap, err)
	}
}
