package captive

import (
	"context"
	"net/netip"
	"strings"
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
	followUntilAdmitted(t, h, 50, "10.40.0.77", nil,
		events.LeaseGranted{Segment: "visitor", MAC: mac, IP: netip.MustParseAddr("10.40.0.77")})
}

// followUntilAdmitted runs FollowLeases (told the portal's segments, if
// any) over the leases, waits until device n is admitted at ip, and stops
// it: it must return nil.
func followUntilAdmitted(t *testing.T, h *harness, n int, ip string, portalSegments []string, granted ...events.LeaseGranted) {
	t.Helper()
	leases := SubscribeLeases(h.hub)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.FollowLeases(ctx, leases, portalSegments...) }()
	for _, l := range granted {
		events.Publish(h.hub, l)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !h.adm.isAdmitted(macOf(n), ip) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not re-admitted at %s; calls %q", ip, h.adm.Calls())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("FollowLeases = %v", err)
	}
}

// With the portal's segments named, a returning guest is still re-admitted
// on one of them, and a lease on another segment (where no portal gate
// stands) is passed over: no admission there. The leases are handled in
// order, so once the later one is admitted the earlier one was seen.
func TestFollowLeasesOnPortalSegmentsOnly(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(51)
	h.login(ip, h.issue(IssueRequest{Duration: time.Hour, MaxDevices: 1}))
	mac := h.nb[netip.MustParseAddr(ip)]

	followUntilAdmitted(t, h, 51, "10.40.0.78", []string{"visitor"},
		events.LeaseGranted{Segment: "staff", MAC: mac, IP: netip.MustParseAddr("10.20.0.78")},
		events.LeaseGranted{Segment: "visitor", MAC: mac, IP: netip.MustParseAddr("10.40.0.78")})
	// Not even admitted and moved on: the later lease would have
	// evicted that admission again.
	for _, c := range h.adm.Calls() {
		if strings.Contains(c, "10.20.0.78") {
			t.Fatalf("a lease on a segment without the portal reached the admitter: %q", h.adm.Calls())
		}
	}
}
