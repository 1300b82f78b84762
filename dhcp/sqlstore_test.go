package dhcp

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/store/storetest"
)

// waitStatus polls until mac's status is want: the in-memory copy follows
// the database within statusInline, so this settles quickly; the bound
// only keeps a broken copy from hanging the test.
func waitStatus(t *testing.T, s *SQLStore, mac net.HardwareAddr, want DeviceStatus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.DeviceStatus(context.Background(), mac)
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s is %+v, want %+v", mac, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeviceStatusFollowsEveryWriter checks that the in-memory device
// states stay correct whoever writes the devices table: the server's own
// sightings (at once), people's decisions, the purges, and a writer in
// another process that only speaks SQL.
func TestDeviceStatusFollowsEveryWriter(t *testing.T) {
	ctx := context.Background()
	path := storetest.Path(t)
	st := storetest.OpenPath(t, path)
	s := NewSQLStore(st)
	now := time.Now()
	a := hw(t, "02:00:00:00:00:0a")
	b := hw(t, "02:00:00:00:00:0b")

	if got, err := s.DeviceStatus(ctx, a); err != nil || got != (DeviceStatus{}) {
		t.Fatalf("unknown device: %+v, %v", got, err)
	}
	// The server's own sighting: known to the very next lookup.
	if err := s.SaveBatch(ctx, nil, []Device{{MAC: a, FirstSeen: now, LastSeen: now, Segment: "pupil"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.DeviceStatus(ctx, a); got != (DeviceStatus{Known: true}) {
		t.Fatalf("after the sighting: %+v, want known", got)
	}
	// A person approves a, and approves b before it ever arrives.
	if err := st.DecideDevice(ctx, "admin", a, store.DeviceDecision{Approved: true}, now); err != nil {
		t.Fatal(err)
	}
	if err := st.DecideDevice(ctx, "admin", b, store.DeviceDecision{Approved: true}, now); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, a, DeviceStatus{Known: true, Approved: true})
	waitStatus(t, s, b, DeviceStatus{Known: true, Approved: true})
	// A sighting does not undo an approval.
	if err := s.SaveBatch(ctx, nil, []Device{{MAC: a, FirstSeen: now, LastSeen: now, Segment: "pupil"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.DeviceStatus(ctx, a); got != (DeviceStatus{Known: true, Approved: true}) {
		t.Fatalf("after a second sighting: %+v", got)
	}
	// Another process blocks a with plain SQL (the sqlite3 shell, the CLI).
	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`UPDATE devices SET blocked = 1, approved = 0 WHERE mac = ?`, a.String()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, a, DeviceStatus{Known: true, Blocked: true})
	// The stale purge forgets b (never seen, recorded long ago).
	if n, err := st.PurgeStaleDevices(ctx, "scheduler", now.Add(time.Hour), now); err != nil || n == 0 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	waitStatus(t, s, b, DeviceStatus{})
	waitStatus(t, s, a, DeviceStatus{Known: true, Blocked: true}) // blocked devices are kept

	// More changes than the log keeps, made while nobody looked: the copy
	// notices the gap and reloads.
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10100 { // the log keeps 10,000
		if _, err := tx.Exec(`INSERT INTO devices (mac, first_seen, last_seen, approved) VALUES (?, '', '', 1)`,
			fmt.Sprintf("02:00:00:01:%02x:%02x", i>>8, i&0xff)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec(`UPDATE devices SET blocked = 0 WHERE mac = ?`, a.String()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, a, DeviceStatus{Known: true})
	waitStatus(t, s, hw(t, "02:00:00:01:00:07"), DeviceStatus{Known: true, Approved: true})
	waitStatus(t, s, hw(t, "02:00:00:01:23:27"), DeviceStatus{Known: true, Approved: true})
}

// TestFirstLookupAfterAQuietSpellSeesTheDecision checks the bound the
// background refresh must not loosen: a device blocked by another process
// while the segment was quiet is refused by the very first lookup that
// comes statusInline later (a leaver's laptop asking again after their
// revocation must not be answered from the copy of before it).
func TestFirstLookupAfterAQuietSpellSeesTheDecision(t *testing.T) {
	ctx := context.Background()
	path := storetest.Path(t)
	st := storetest.OpenPath(t, path)
	s := NewSQLStore(st)
	now := time.Now()
	a := hw(t, "02:00:00:00:00:0c")
	if err := st.DecideDevice(ctx, "admin", a, store.DeviceDecision{Approved: true}, now); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, a, DeviceStatus{Known: true, Approved: true})

	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for round := range 3 {
		blocked := round%2 == 0
		if _, err := other.Exec(`UPDATE devices SET blocked = ?, approved = ? WHERE mac = ?`, blocked, !blocked, a.String()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(statusInline + 50*time.Millisecond) // the quiet spell
		got, err := s.DeviceStatus(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if want := (DeviceStatus{Known: true, Approved: !blocked, Blocked: blocked}); got != want {
			t.Fatalf("round %d: the first lookup after the change answered %+v, want %+v", round, got, want)
		}
	}
}
