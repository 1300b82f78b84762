package radius

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/store/storetest"
)

func handshakeFor(t *testing.T, pass, ssid string) *Handshake {
	t.Helper()
	m, err := ParseEAPOLKeyMsg2(buildMsg2(t, pass, ssid))
	if err != nil {
		t.Fatal(err)
	}
	h := &Handshake{Msg2: m}
	copy(h.ANonce[:], testANonce)
	return h
}

// loaderWith is a server on r's store and keys, not running: what a
// daemon start sees, with its own clock and segments.
func loaderWith(t *testing.T, r *rig, now time.Time, segs []Segment) (*Server, *PMKTable) {
	t.Helper()
	tab := NewPMKTable()
	srv, err := New(Options{Clients: []Client{{Name: "aps", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret)}}, Segments: segs,
		Devices: r.devices, Sessions: r.st, Keys: r.keys, PMKs: tab, PMKKeys: r.st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return srv, tab
}

// A key's PMKs are derived when the key is set and stored sealed; a start
// loads them without PBKDF2; a rotation's old key stays matchable until its
// overlap ends, then it and its PMKs are purged; an SSID added later is
// derived once and stored.
func TestPMKsAreStoredWithTheKeyAndLoadedWithoutPBKDF2(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	owner := mustMAC("02:00:00:00:00:77")
	if err := r.st.ApproveDevice(ctx, "nm", owner, "staff", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	key1, err := r.keys.Rotate(ctx, "nm", owner)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := r.st.DevicePMKs(ctx)
	if err != nil || len(stored) != len(testSSIDs()) {
		t.Fatalf("stored PMKs %d (%v), want one per SSID (%d)", len(stored), err, len(testSSIDs()))
	}
	clear, _ := PMK(key1, stored[0].SSID)
	if bytes.Contains(stored[0].Sealed, clear) || bytes.Contains(stored[0].Sealed, []byte(key1)) {
		t.Fatal("a PMK is stored in clear")
	}

	srv, tab := loaderWith(t, r, time.Now(), testSegments)
	ld, err := srv.LoadPMKs(ctx)
	if err != nil || ld.Derived != 0 || ld.Keys != 1 || ld.PMKs != 1 {
		t.Fatalf("start: %+v %v; want 1 key, its 1 staff PMK, none derived", ld, err)
	}
	if mac, got, ok := tab.Match("Staff", testAA, testSPA, handshakeFor(t, key1, "Staff"), time.Now()); !ok || got != key1 || mac.String() != owner.String() {
		t.Fatalf("key 1: %v %q %v", mac, got, ok)
	}

	// Rotation keeping the old key for an hour: two valid keys on Staff.
	key2, err := r.keys.RotateKeepingOld(ctx, "nm", owner, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ld, err = srv.LoadPMKs(ctx); err != nil || ld.Derived != 0 || ld.Keys != 2 {
		t.Fatalf("overlap: %+v %v", ld, err)
	}
	for _, k := range []string{key1, key2} {
		if _, got, ok := tab.Match("Staff", testAA, testSPA, handshakeFor(t, k, "Staff"), time.Now()); !ok || got != k {
			t.Fatalf("during the overlap %q does not match", k)
		}
	}
	if _, _, ok := tab.Match("Staff", testAA, testSPA, handshakeFor(t, key1, "Staff"), time.Now().Add(2*time.Hour)); ok {
		t.Fatal("the old key matched after its overlap")
	}

	// Two hours on: the old key and its PMKs are purged.
	later, ltab := loaderWith(t, r, time.Now().Add(2*time.Hour), testSegments)
	if ld, err = later.LoadPMKs(ctx); err != nil || ld.Purged != 1 || ld.Keys != 1 {
		t.Fatalf("after the overlap: %+v %v", ld, err)
	}
	if _, _, ok := ltab.Match("Staff", testAA, testSPA, handshakeFor(t, key2, "Staff"), time.Now()); !ok {
		t.Fatal("the new key does not match after the purge")
	}
	if stored, _ = r.st.DevicePMKs(ctx); len(stored) != len(testSSIDs()) {
		t.Fatalf("%d PMKs stored after the purge, want the new key's %d", len(stored), len(testSSIDs()))
	}
	if log, _ := r.st.AuditSearch(ctx, store.AuditFilter{Kind: "device.keys.purge", Limit: 5}); len(log) != 1 {
		t.Fatalf("purge audited %d times", len(log))
	}

	// An SSID added to staff after the key was set: derived once.
	segs := append([]Segment(nil), testSegments...)
	segs[0].SSIDs = []string{"Staff", "Staff-5G"}
	more, mtab := loaderWith(t, r, time.Now(), segs)
	if ld, err = more.LoadPMKs(ctx); err != nil || ld.Derived != 1 {
		t.Fatalf("new SSID: %+v %v; want it derived", ld, err)
	}
	if _, _, ok := mtab.Match("Staff-5G", testAA, testSPA, handshakeFor(t, key2, "Staff-5G"), time.Now()); !ok {
		t.Fatal("the key does not match on the added SSID")
	}
	if ld, err = more.LoadPMKs(ctx); err != nil || ld.Derived != 0 {
		t.Fatalf("second load: %+v %v; the derived PMK was not stored", ld, err)
	}
}

// The running server learns of a key set in this process at once, and of a
// key set by another process (the command line: another Keyring on the
// same database) from the device change log, without a minute's poll.
func TestRunningServerLearnsOfKeysFromEitherProcess(t *testing.T) {
	ctx := context.Background()
	tab := NewPMKTable()
	r := newRig(t, func(o *Options) { o.PMKs, o.PMKKeys = tab, rigStoreKeys{} })
	owner := mustMAC("02:00:00:00:00:78")
	if err := r.st.ApproveDevice(ctx, "nm", owner, "staff", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitMatch := func(key string) {
		t.Helper()
		h := handshakeFor(t, key, "Staff")
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, _, ok := tab.Match("Staff", testAA, testSPA, h, time.Now()); ok {
				return
			}
		}
		t.Fatalf("the running server never matched key %q", key)
	}
	key, err := r.keys.Rotate(ctx, "nm", owner)
	if err != nil {
		t.Fatal(err)
	}
	waitMatch(key)

	gen, _ := r.st.LatestChange(ctx)
	siteKey := make([]byte, 32)
	siteKey[0] = 7 // newRig's
	cli, err := NewKeyring(siteKey, r.st, testSSIDs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key2, err := cli.Rotate(ctx, "cli", owner)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := r.st.LatestChange(ctx); g <= gen {
		t.Fatalf("device change log at %d after a rotation, was %d", g, gen)
	}
	waitMatch(key2)
}

// BenchmarkStartWith100Keys compares, in one run, what a start costs for
// 100 devices' keys on their segment's SSID: loading the stored PMKs (what
// the server does) against deriving them (what it did before: PBKDF2 per
// key and SSID). Run bounded: -benchtime=5x.
func BenchmarkStartWith100Keys(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir()+"/gatehouse.db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	keys, err := NewKeyring(make([]byte, 32), st, testSSIDs(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		mac := mustMAC(fmt.Sprintf("02:00:00:00:01:%02x", i))
		if err := st.ApproveDevice(ctx, "bench", mac, "staff", "", time.Now()); err != nil {
			b.Fatal(err)
		}
		if _, err := keys.Rotate(ctx, "bench", mac); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(Options{Clients: []Client{{Name: "aps", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret)}},
		Segments: testSegments, Devices: &fakeDevices{m: map[string]DeviceInfo{}}, Keys: keys, PMKs: NewPMKTable(), PMKKeys: st})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("load-stored", func(b *testing.B) {
		for range b.N {
			if ld, err := srv.LoadPMKs(ctx); err != nil || ld.PMKs != 100 || ld.Derived != 0 {
				b.Fatalf("%+v %v", ld, err)
			}
		}
	})
	b.Run("derive", func(b *testing.B) {
		ks, err := st.MatchableDeviceKeys(ctx, time.Now())
		if err != nil || len(ks) != 100 {
			b.Fatal(len(ks), err)
		}
		b.ResetTimer()
		for range b.N {
			for _, k := range ks {
				key, err := keys.Open(k.MAC, k.Sealed)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := PMK(key, "Staff"); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// The PMK refresher follows the device change log with its own position:
// a change to a device holding no key (a DHCP sighting of a new device)
// does not reload the table; a change to one holding a key, made by
// another process (a second Open of the file), does; and so does a gap in the log.
func TestPMKRefresherFollowsTheChangeLog(t *testing.T) {
	ctx := context.Background()
	st, other := storetest.OpenTwice(t) // other: another process's view of the file
	r := &rig{devices: &fakeDevices{m: map[string]DeviceInfo{}}, st: st}
	var err error
	if r.keys, err = NewKeyring(make([]byte, 32), st, testSSIDs(), nil); err != nil {
		t.Fatal(err)
	}
	owner := mustMAC("02:00:00:00:00:79")
	if err := r.st.ApproveDevice(ctx, "nm", owner, "staff", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.keys.Rotate(ctx, "nm", owner); err != nil {
		t.Fatal(err)
	}
	srv, tab := loaderWith(t, r, time.Now(), testSegments)
	pos, err := r.st.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.LoadPMKs(ctx); err != nil || tab.Len() == 0 {
		t.Fatalf("load: %d PMKs, %v", tab.Len(), err)
	}
	// Whatever the load wrote, then nothing: not changed.
	_, pos, err = srv.keysChanged(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	if changed, next, err := srv.keysChanged(ctx, pos); err != nil || changed || next != pos {
		t.Fatalf("no change: changed %v, %d -> %d, %v", changed, pos, next, err)
	}
	if err := r.st.SaveDHCP(ctx, nil, []store.Device{{MAC: mustMAC("02:00:00:00:05:01"), FirstSeen: time.Now(), LastSeen: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	changed, next, err := srv.keysChanged(ctx, pos)
	if err != nil || changed || next <= pos {
		t.Fatalf("a new device without a key: changed %v, %d -> %d, %v", changed, pos, next, err)
	}
	pos = next
	if err := other.DecideDevice(ctx, "cli", owner, store.DeviceDecision{Approved: true, Blocked: true}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if changed, _, err := srv.keysChanged(ctx, pos); err != nil || !changed {
		t.Fatalf("the key holder blocked by another process: changed %v, %v", changed, err)
	}
	if changed, _, err := srv.keysChanged(ctx, pos+1000); err != nil || !changed {
		t.Fatalf("a position ahead of the log (a restored backup): changed %v, %v", changed, err)
	}
}
