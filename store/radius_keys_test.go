package store

import (
	"context"
	"testing"
	"time"
)

// TestSealedDeviceKeysListsOnlyApprovedUnblockedDevicesWithAKey: the list a
// 4-way handshake is matched against leaves out blocked, unapproved and
// keyless devices.
func TestSealedDeviceKeysListsOnlyApprovedUnblockedDevicesWithAKey(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	ok := leaseTestMAC(t, "02:00:00:00:00:31")
	blocked := leaseTestMAC(t, "02:00:00:00:00:32")
	keyless := leaseTestMAC(t, "02:00:00:00:00:33")
	unapproved := leaseTestMAC(t, "02:00:00:00:00:34")
	for _, m := range []string{ok.String(), blocked.String(), keyless.String()} {
		if err := s.ApproveDevice(ctx, "nm", leaseTestMAC(t, m), "staff", "", now); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DecideDevice(ctx, "nm", unapproved, DeviceDecision{}, now); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{ok.String(), blocked.String(), unapproved.String()} {
		if err := s.SetDeviceKey(ctx, "nm", leaseTestMAC(t, m), []byte("sealed-"+m), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DecideDevice(ctx, "nm", blocked, DeviceDecision{Approved: true, Blocked: true}, now); err != nil {
		t.Fatal(err)
	}
	got, err := s.SealedDeviceKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].MAC.String() != ok.String() || got[0].Segment != "staff" || string(got[0].Sealed) != "sealed-"+ok.String() {
		t.Fatalf("SealedDeviceKeys = %+v, want only %s on staff", got, ok)
	}
}
