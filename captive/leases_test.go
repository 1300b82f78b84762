package captive

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/events"
)

// A granted lease on the hub re-admits a returning guest at the new
// address; the follower stops with its context.
func TestFollowLeasesReadmitsAReturningGuest(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	h.login(ip, h.issue(IssueRequest{Duration: time.Hour, MaxDevices: 1}))
	mac := h.nb[netip.MustParseAddr(ip)]

	leases := SubscribeLeases(h.hub)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.FollowLeases(ctx, leases) }()
	events.Publish(h.hub, events.LeaseGranted{Segment: "visitor", MAC: mac, IP: netip.MustParseAddr("10.40.0.77")})
	deadline := time.Now().Add(10 * time.Second)
	for !h.adm.isAdmitted(macOf(50), "10.40.0.77") {
		if time.Now().After(deadline) {
			t.Fatalf("not re-admitted at the lease's address; calls %q", h.adm.Calls())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("FollowLeases = %v", err)
	}
}
