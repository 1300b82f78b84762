package main

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/gatehouse-net/gatehouse/password"
)

// baseMemoryLimit is the daemon's share of the Go runtime's soft memory
// limit before logins are counted (see defaultMemoryLimit). Its steady state is well under it (a
// school of 5,000 devices and 2,000 visitors with 8,000 flows in flight
// holds under 40 MiB of Go memory, bench/memory.sh); what the limit
// changes is the aftermath of a spike, such as an argon2 hash (19 MiB) at
// a login: without it the collector's goal stays at twice the peak until
// the next forced collection, two minutes on, and the freed memory stays
// resident with it. It is soft: a daemon that really needs more gets it,
// at the price of more frequent collections.
const baseMemoryLimit = 48 << 20

// defaultMemoryLimit is the soft limit unless GOMEMLIMIT says otherwise:
// the base plus room for two argon2 checks per core in flight (RADIUS runs
// one per core, the admin login its own). Without that room a burst of
// logins sits at the limit and the collector runs flat out: two parallel
// checks took 442 ms with a 48 MiB limit, 57 ms with this default (124 MiB
// on two cores) and 68 ms with none (password's BenchmarkVerifyTwoAtOnce,
// whose doc has the commands, on the 2-core development machine), and
// bench/eap.sh's TTLS-PAP logins fell from 340 to 56 ms of CPU each.
func defaultMemoryLimit() int64 {
	return baseMemoryLimit + int64(runtime.NumCPU())*2*password.HashMemory
}

// defaultGCPercent is the collector's GOGC unless the environment sets
// one. Under the load (8,000 flows in flight) the live heap is
// about 28 MiB; at Go's default of 100 the heap grows to twice that
// before a collection, and the runtime keeps what it grew to mapped, so
// the daemon sat at the 64 MiB budget's edge (61.4 MiB). At 50 the heap
// grows by half before a collection: more frequent, shorter collections
// of a heap this small, for several MiB less resident.
const defaultGCPercent = 50

// setMemoryLimit applies defaultMemoryLimit() and defaultGCPercent when
// the environment sets neither.
func setMemoryLimit(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		log.Info("memory limit from GOMEMLIMIT", "limit", os.Getenv("GOMEMLIMIT"))
		return
	}
	debug.SetMemoryLimit(defaultMemoryLimit())
}

// releaseStartupMemory gives the start-up's transient memory back to the
// kernel once every component is running: the migrations, the first full
// ruleset, the OUI registry's parse and the web's dummy argon2 hash leave
// tens of MB of free heap behind, which the runtime would otherwise keep
// mapped until its goal came down, minutes later; and start-up touched
// nearly every page of the binary, which dropFilePages unmaps so that only
// the pages the running daemon uses are resident (filepages.go).
func releaseStartupMemory(log *slog.Logger) {
	debug.FreeOSMemory()
	cHeapTrim() // cmalloc.go: SQLite's share of the start-up
	n, err := dropFilePages()
	if err != nil {
		log.Warn("memory: file pages left mapped", "err", err)
		return
	}
	log.Debug("memory: start-up's file pages unmapped", "bytes", n)
}
