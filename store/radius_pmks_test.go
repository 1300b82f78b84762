package store

import (
	"context"
	"testing"
	"time"
)

// TestDeviceChangesAndPMKsFollowTheKeys: every change that decides which
// keys a handshake may match is in the device change log; a key's PMKs are stored
// with it, go with it when it is replaced without an overlap or disabled,
// and an expired old key is purged with its PMKs.
func TestDeviceChangesAndPMKsFollowTheKeys(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	mac := leaseTestMAC(t, "02:00:00:00:00:41")
	gen := func() int64 {
		t.Helper()
		g, err := s.LatestChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	moved := func(what string, f func() error) {
		t.Helper()
		before := gen()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if gen() == before {
			t.Fatalf("%s was not logged in the device change log", what)
		}
	}
	pmks := func(sealed string, ssids ...string) []SealedPMK {
		var out []SealedPMK
		for _, ssid := range ssids {
			out = append(out, SealedPMK{MAC: mac, KeyRef: KeyRef([]byte(sealed)), SSID: ssid, Sealed: []byte("pmk-" + sealed + ssid)})
		}
		return out
	}
	count := func() int {
		t.Helper()
		p, err := s.DevicePMKs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(p)
	}
	moved("approval", func() error { return s.ApproveDevice(ctx, "nm", mac, "staff", "", now) })
	moved("a key", func() error {
		return s.SetDeviceKeyWithPMKs(ctx, "nm", mac, []byte("k1"), pmks("k1", "Staff", "Pupils"), now, time.Time{})
	})
	if err := s.SetDeviceKeyWithPMKs(ctx, "nm", mac, []byte("k9"), pmks("k1", "Staff"), now, time.Time{}); err == nil {
		t.Fatal("another key's PMKs were stored with a key")
	}
	if count() != 2 {
		t.Fatalf("%d PMKs, want 2", count())
	}
	moved("a rotation keeping the old key", func() error {
		return s.SetDeviceKeyWithPMKs(ctx, "nm", mac, []byte("k2"), pmks("k2", "Staff", "Pupils"), now, now.Add(time.Hour))
	})
	if count() != 4 {
		t.Fatalf("%d PMKs during the overlap, want 4", count())
	}
	keys, err := s.MatchableDeviceKeys(ctx, now)
	if err != nil || len(keys) != 2 || string(keys[0].Sealed) != "k2" || !keys[0].Expires.IsZero() || string(keys[1].Sealed) != "k1" || keys[1].Expires.IsZero() {
		t.Fatalf("matchable keys %+v %v; want k2 then k1 with its expiry", keys, err)
	}
	if n, err := s.PurgeExpiredDeviceKeys(ctx, "radius", now); err != nil || n != 0 || count() != 4 {
		t.Fatalf("purge before expiry: %d %v, %d PMKs", n, err, count())
	}
	moved("the purge", func() error {
		n, err := s.PurgeExpiredDeviceKeys(ctx, "radius", now.Add(2*time.Hour))
		if err == nil && n != 1 {
			t.Fatalf("purged %d old keys, want 1", n)
		}
		return err
	})
	if count() != 2 {
		t.Fatalf("%d PMKs after the purge, want k2's 2", count())
	}
	moved("a rotation without overlap", func() error {
		return s.SetDeviceKeyWithPMKs(ctx, "nm", mac, []byte("k3"), pmks("k3", "Staff"), now, time.Time{})
	})
	if p, _ := s.DevicePMKs(ctx); len(p) != 1 || p[0].KeyRef != KeyRef([]byte("k3")) {
		t.Fatalf("PMKs %+v, want only k3's", p)
	}
	moved("a block", func() error {
		return s.DecideDevice(ctx, "nm", mac, DeviceDecision{Approved: true, Blocked: true}, now)
	})
	if keys, _ := s.MatchableDeviceKeys(ctx, now); len(keys) != 0 {
		t.Fatalf("a blocked device's keys are matchable: %+v", keys)
	}
	// The name is in RADIUS's answers (its device cache follows the log).
	moved("a rename", func() error {
		return s.DecideDevice(ctx, "nm", mac, DeviceDecision{Approved: true, Blocked: true, Name: "renamed"}, now)
	})
	// A leaver's keys go with their PMKs.
	p, err := s.CreatePerson(ctx, "test", Person{Kind: "staff", StaffCode: "PMK01", LegalForename: "Pat", LegalSurname: "Key", State: PersonActive}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceOwner(ctx, "nm", mac, p.ID, now); err != nil {
		t.Fatal(err)
	}
	moved("disabling the owner's keys", func() error { _, err := s.DisablePersonKeys(ctx, "people", p.ID, now); return err })
	if count() != 0 {
		t.Fatalf("%d PMKs after the owner's keys were disabled", count())
	}
}
