//go:build !gatehouse_testclock

package main

import (
	"log/slog"
	"time"

	"github.com/gatehouse-net/gatehouse/people"
)

// daemonClock is the clock the leavers scheduler reads. Only a test build
// (go build -tags gatehouse_testclock, testclock_set.go) can start it at
// another instant; every other build reads the system's clock.
func daemonClock(*slog.Logger) (func() time.Time, error) { return time.Now, nil }

// testKernel hands the enforcer to people untouched; a test build may make
// it stop the daemon half way through a revocation once running reports
// true (testclock_set.go).
func testKernel(k people.Kernel, _ func() bool) people.Kernel { return k }
