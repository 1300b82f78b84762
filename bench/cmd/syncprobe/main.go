// Command syncprobe times the disk flush an acknowledged write waits for,
// on the filesystem that holds -dir: it overwrites 32 KiB at one of 100
// places in a preallocated 4 MiB file (as a commit overwrites a reused
// SQLite WAL: 4-12 pages a DHCP group commit, BenchmarkSaveDHCPWALFrames)
// and times fsync and fdatasync alternately, -n each per round.
//
// Why it exists: SQLite calls fsync where it means fdatasync unless it is
// built with HAVE_FDATASYNC, and mattn/go-sqlite3 does not define it, so
// every COMMIT of the daemon's store is an fsync. Whether building with it
// would shorten the REQUEST-ACK tail (bench/dhcp.sh) depends on the disk;
// this prints the two side by side so that question has a measured answer
// on the machine at hand. It is also the floor of a durable ACK there.
//
// It writes only its own temporary file under -dir and removes it.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", "/var/tmp", "a directory on the filesystem to measure (the daemon's database directory)")
	n := flag.Int("n", 1000, "flushes of each kind per round")
	rounds := flag.Int("rounds", 2, "rounds, each timing fsync then fdatasync")
	flag.Parse()
	if err := run(*dir, *n, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "syncprobe:", err)
		os.Exit(1)
	}
}

func run(dir string, n, rounds int) error {
	if n < 100 || rounds < 1 {
		return fmt.Errorf("-n must be at least 100 and -rounds at least 1")
	}
	f, err := os.CreateTemp(dir, "syncprobe-*.dat")
	if err != nil {
		return fmt.Errorf("create the probe file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Preallocated and flushed first, so that each timed flush has data to
	// write but no block to allocate, as for a WAL that is being reused.
	if _, err := f.Write(make([]byte, 4<<20)); err != nil {
		return fmt.Errorf("preallocate: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush the preallocation: %w", err)
	}
	fd := int(f.Fd())
	buf := make([]byte, 32<<10)
	flushes := []struct {
		name string
		do   func(int) error
	}{{"fsync", unix.Fsync}, {"fdatasync", unix.Fdatasync}}
	fmt.Printf("syncprobe: %s, 32 KiB overwritten then flushed, %d times each per round\n", dir, n)
	for r := 0; r < rounds; r++ {
		for _, fl := range flushes {
			ds := make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				if _, err := f.WriteAt(buf, int64(i%100*len(buf))); err != nil {
					return fmt.Errorf("write: %w", err)
				}
				t := time.Now()
				if err := fl.do(fd); err != nil {
					return fmt.Errorf("%s: %w", fl.name, err)
				}
				ds = append(ds, time.Since(t))
			}
			slices.Sort(ds)
			q := func(p int) string { return fmt.Sprintf("%.3f", float64(ds[len(ds)*p/1000].Microseconds())/1000) }
			fmt.Printf("round %d %-9s p50 %s ms  p90 %s ms  p99 %s ms  p99.9 %s ms  max %.3f ms\n",
				r+1, fl.name, q(500), q(900), q(990), q(999), float64(ds[len(ds)-1].Microseconds())/1000)
		}
	}
	return nil
}
