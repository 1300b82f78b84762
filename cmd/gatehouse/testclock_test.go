//go:build !gatehouse_testclock

package main

import (
	"log/slog"
	"testing"
	"time"
)

// TestShippedBuildIgnoresTheTestClock: without the gatehouse_testclock tag
// the daemon's clock is the system's, whatever the environment says.
func TestShippedBuildIgnoresTheTestClock(t *testing.T) {
	t.Setenv("GATEHOUSE_TEST_CLOCK", "2027-06-25T23:59:50+01:00")
	now, err := daemonClock(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(now()); d < -time.Minute || d > time.Minute {
		t.Fatalf("the shipped build's clock reads %v, %v from the system's", now(), d)
	}
}
