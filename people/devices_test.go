package people

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/gatehouse-net/gatehouse/store"
)

// TestWithdrawingApprovalEndsTheLiveSession: withdrawing a device's
// approval (the device page's "unapprove", the API) ends its live RADIUS
// session and releases its lease, as blocking does, so that its next MAB
// gets its segment's unknown_devices answer instead of keeping the
// approved segment's VLAN until it next signs in. Decisions that change
// nothing about its access (a name, a repeat) cut nothing, and neither
// does lifting a block (the block already cut it). An access point that
// does not acknowledge is reported, with the decision saved and the
// kernel's backstop applied.
func TestWithdrawingApprovalEndsTheLiveSession(t *testing.T) {
	ctx := context.Background()
	k := newFakeKernel()
	rad := &fakeRADIUS{}
	leases := &fakeLeases{}
	s, _ := newService(t, sampleNow, Options{Kernel: k, Disconnector: rad, Leases: leases})
	mac := net.HardwareAddr{0x3c, 0x22, 0xfb, 9, 8, 7}
	decide := func(dec store.DeviceDecision) {
		t.Helper()
		if committed, err := s.Decide(ctx, "web:nm", mac, dec); err != nil || !committed {
			t.Fatalf("decide %+v: committed %v, %v", dec, committed, err)
		}
	}
	cuts := func(want int) {
		t.Helper()
		d, r := rad.disconnected(), leases.released()
		if len(d) != want || len(r) != want {
			t.Fatalf("disconnects %v, lease releases %v; want %d of each", d, r, want)
		}
		for _, m := range append(d, r...) {
			if m != mac.String() {
				t.Fatalf("disconnects %v, lease releases %v: another device was cut", d, r)
			}
		}
	}

	decide(store.DeviceDecision{Approved: true, Name: "laptop"})
	decide(store.DeviceDecision{Approved: true, Name: "staff laptop"})
	cuts(0)

	decide(store.DeviceDecision{Approved: false, Name: "staff laptop"})
	cuts(1)
	k.mu.Lock()
	calls := slices.Clone(k.calls)
	k.mu.Unlock()
	if !slices.Contains(calls, "unapprove "+mac.String()) {
		t.Fatalf("kernel calls %v: the approval is still in the kernel", calls)
	}
	log, err := s.st.AuditSearch(ctx, store.AuditFilter{Kind: "device.update", Limit: 10})
	if err != nil || len(log) != 3 || log[0].Actor != "web:nm" {
		t.Fatalf("audit of the decisions: %+v %v", log, err)
	}

	// Already unapproved: nothing more to cut.
	decide(store.DeviceDecision{Approved: false, Name: "old laptop"})
	cuts(1)

	// A block cuts; lifting it without the approval cuts nothing more.
	decide(store.DeviceDecision{Approved: true, Name: "old laptop"})
	decide(store.DeviceDecision{Approved: true, Blocked: true, Name: "old laptop"})
	cuts(2)
	decide(store.DeviceDecision{Approved: false, Blocked: false, Name: "old laptop"})
	cuts(2)

	// The access point does not acknowledge: the withdrawal is saved and
	// in the kernel, and the failure is the caller's to show.
	decide(store.DeviceDecision{Approved: true, Name: "old laptop"})
	rad.fail = errors.New("radius: switch did not acknowledge ending session 1: timeout")
	committed, err := s.Decide(ctx, "web:nm", mac, store.DeviceDecision{Approved: false, Name: "old laptop"})
	if !committed || err == nil {
		t.Fatalf("unacknowledged disconnect: committed %v, err %v; want saved and reported", committed, err)
	}
	// Only the NAS's confirmation is missing, and the error says that
	// (the page must not say the change waits for a restart).
	var unconfirmed *SessionNotEndedError
	if !errors.As(err, &unconfirmed) || !errors.Is(err, rad.fail) {
		t.Fatalf("unacknowledged disconnect: %v; want a SessionNotEndedError wrapping the NAS's", err)
	}
	cuts(3)
	if d, err := s.st.DeviceByMAC(ctx, mac); err != nil || d.Approved {
		t.Fatalf("device after a withdrawal the NAS did not acknowledge: %+v %v", d, err)
	}
	k.mu.Lock()
	last := k.calls[len(k.calls)-1]
	k.mu.Unlock()
	if last != "unapprove "+mac.String() {
		t.Fatalf("last kernel call %q: the backstop did not withdraw the approval", last)
	}
}
