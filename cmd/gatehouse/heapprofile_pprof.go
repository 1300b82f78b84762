//go:build gatehouse_pprof

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// heapProfiler, in a build with -tags gatehouse_pprof, writes a heap
// profile to $GATEHOUSE_HEAP_PROFILE each time the daemon gets SIGUSR1
// (after a GC, so it shows what is live): the way to see what holds the
// daemon's memory on a real school. Release builds leave it out, so the
// router's binary neither carries the profiler nor has a way to be made
// to write files.
func heapProfiler(log *slog.Logger) func(context.Context) error {
	path := os.Getenv("GATEHOUSE_HEAP_PROFILE")
	if path == "" {
		return nil
	}
	return func(ctx context.Context) error {
		return onSignal(ctx, syscall.SIGUSR1, func() {
			runtime.GC()
			if err := writeHeapProfile(path); err != nil {
				log.Error("heap profile", "err", err)
				return
			}
			log.Info("heap profile written", "path", path)
		})
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing the heap profile: %w", err)
	}
	return f.Close()
}
