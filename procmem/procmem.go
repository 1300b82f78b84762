// Package procmem owns the process's memory footprint: the Go collector's
// settings, the C heap's arenas (SQLite's) and the executable's resident
// file pages. It is what makes a Go daemon with SQLite inside fit a
// router's memory budget (issue 17, bench/memory.sh), and it is shared so
// that a benchmark harness that stands for the daemon (bench/cmd/dhcpserver)
// runs with the daemon's settings and its memory figure is the daemon's.
//
// It does not own how much memory any component uses, nor the daemon's
// limit itself: the caller computes that (cmd/gatehouse adds room for its
// password hashes) and passes it in.
//
// The order matters: Prepare before the first SQLite connection and before
// start-up work, Release once start-up is over.
package procmem

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// GCPercent is the collector's GOGC unless the environment sets one. Under
// the load (8,000 flows in flight) the daemon's live heap is about
// 28 MiB; at Go's default of 100 the heap grows to twice that before a
// collection, and the runtime keeps what it grew to mapped, so the daemon
// sat at the 64 MiB budget's edge (61.4 MiB). At 50 the heap grows by half
// before a collection: more frequent, shorter collections of a heap this
// small, for several MiB less resident.
const GCPercent = 50

// Prepare applies the collector's settings (GCPercent, and limit as the
// soft memory limit; 0 leaves the runtime's default, none), unless the
// environment's GOGC or GOMEMLIMIT says otherwise, makes the C heap one
// arena and asks for small file mappings. It must run before SQLite's
// first connection for the arena setting to cover it.
func Prepare(log *slog.Logger, limit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	switch {
	case os.Getenv("GOMEMLIMIT") != "":
		log.Info("memory limit from GOMEMLIMIT", "limit", os.Getenv("GOMEMLIMIT"))
	case limit > 0:
		debug.SetMemoryLimit(limit)
	}
	cHeapOneArena()                             // cmalloc.go
	if err := smallFileMappings(); err != nil { // filepages.go
		log.Warn("memory: file pages stay in 2 MiB mappings", "err", err)
	}
}

// Release gives the start-up's transient memory back to the kernel once
// every component is running: the migrations, the first full ruleset, the
// OUI registry's parse and the web's dummy argon2 hash leave tens of MB of
// free heap behind, which the runtime would otherwise keep mapped until its
// goal came down, minutes later; and start-up touched nearly every page of
// the binary, which dropFilePages unmaps so that only the pages the
// running process uses are resident (filepages.go).
func Release(log *slog.Logger) {
	debug.FreeOSMemory()
	cHeapTrim() // cmalloc.go: SQLite's share of the start-up
	n, err := dropFilePages()
	if err != nil {
		log.Warn("memory: file pages left mapped", "err", err)
		return
	}
	log.Debug("memory: start-up's file pages unmapped", "bytes", n)
}
