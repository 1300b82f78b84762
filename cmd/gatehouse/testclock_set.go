//go:build gatehouse_testclock

package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"
)

// TestClockEnv names the instant (RFC 3339) at which a test build's clock
// starts when the daemon starts; it then runs forward in real time. The
// end-to-end leaver test starts the daemon shortly before a person's T0
// this way, since the daemon has no other way to be told the time.
const TestClockEnv = "GATEHOUSE_TEST_CLOCK"

// daemonClock is the leavers scheduler's clock: in this build, the system's
// clock shifted so that it read $GATEHOUSE_TEST_CLOCK at start (the
// system's clock when that is unset). The shift is logged with both
// readings, so a test can tell when a shifted instant falls in real time.
func daemonClock(log *slog.Logger) (func() time.Time, error) {
	v := os.Getenv(TestClockEnv)
	if v == "" {
		return time.Now, nil
	}
	start, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", TestClockEnv, v, err)
	}
	base := time.Now()
	log.Warn("test clock: the leavers scheduler runs on a shifted clock", "clock", start.Format(time.RFC3339Nano), "real", base.UTC().Format(time.RFC3339Nano))
	return func() time.Time { return start.Add(time.Since(base)) }, nil
}
