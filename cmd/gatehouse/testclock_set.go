//go:build gatehouse_testclock

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/policy"
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

// TestCrashEnv, set to 1, makes a test build's daemon exit at once when a
// revocation reaches the kernel: after its database half is committed and
// before anything outside the database is done, the point a crash or a
// power cut would leave a revocation pending for the next start to finish.
const TestCrashEnv = "GATEHOUSE_TEST_CRASH_IN_REVOCATION"

// TestCrashExit is the exit status of that crash.
const TestCrashExit = 75

// crashingKernel exits on a revocation once the daemon runs; before that
// Revoke is the start's restore of devices revoked earlier, not a
// revocation.
type crashingKernel struct {
	people.Kernel
	running func() bool
}

func (k crashingKernel) Revoke(ctx context.Context, ds ...policy.Device) error {
	if !k.running() {
		return k.Kernel.Revoke(ctx, ds...)
	}
	fmt.Fprintln(os.Stderr, "test build: exiting in the middle of a revocation ("+TestCrashEnv+")")
	os.Exit(TestCrashExit)
	return nil
}

func testKernel(k people.Kernel, running func() bool) people.Kernel {
	if os.Getenv(TestCrashEnv) == "1" {
		return crashingKernel{Kernel: k, running: running}
	}
	return k
}
