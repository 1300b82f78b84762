//go:build !gatehouse_pprof

package main

import (
	"context"
	"log/slog"
)

// heapProfiler is nil in a release build; see heapprofile_pprof.go for the
// debug build's.
func heapProfiler(*slog.Logger) func(context.Context) error { return nil }
