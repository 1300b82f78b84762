package captive

import (
	"context"
	"testing"
	"time"
)

// The daily purge runs at once when it starts, so a router that restarts
// every night still purges, and returns when the daemon stops.
func TestPurgeDailyPurgesAtStartAndStopsWithItsContext(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	code := h.issue(IssueRequest{Duration: 90 * 24 * time.Hour, MaxDevices: 0})
	h.login(ip, code)
	h.clock.Advance(40 * 24 * time.Hour)
	h.login(ip, code)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.PurgeDaily(ctx, 30*24*time.Hour) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := h.st.GuestAcceptances(context.Background(), time.Time{}, h.clock.Now().Add(time.Hour))
		if err == nil && len(left) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old acceptance was not purged at start: %d left, %v", len(left), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("PurgeDaily = %v", err)
	}
}
