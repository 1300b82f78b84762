package main

import (
	"runtime"

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

// defaultMemoryLimit is the soft limit procmem.Prepare sets unless
// GOMEMLIMIT says otherwise: the base plus room for two argon2 checks per
// core in flight (RADIUS runs one per core, the admin login its own). Without that room a burst of
// logins sits at the limit and the collector runs flat out: two parallel
// checks took 442 ms with a 48 MiB limit, 57 ms with this default (124 MiB
// on two cores) and 68 ms with none (password's BenchmarkVerifyTwoAtOnce,
// whose doc has the commands, on the 2-core development machine), and
// bench/eap.sh's TTLS-PAP logins fell from 340 to 56 ms of CPU each.
func defaultMemoryLimit() int64 {
	return baseMemoryLimit + int64(runtime.NumCPU())*2*password.HashMemory
}
