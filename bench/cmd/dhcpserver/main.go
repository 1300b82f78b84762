// Command dhcpserver runs Gatehouse's DHCP server (package dhcp over the
// SQLite store, with group commit) on one interface, for bench/dhcp.sh to
// measure with perfdhcp. It is the daemon's DHCP component alone: no admin
// page, policy or DNS guard, so the figures are the DHCP server's own.
//
// It owns nothing beyond this process: the database is the file -db names.
// On SIGUSR1 (and at exit) it writes its counters, active leases included,
// to the -status file, so the script can read them without disturbing a
// measurement: counting leases walks the whole pool.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/procmem"
	"github.com/gatehouse-net/gatehouse/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dhcpserver:", err)
		os.Exit(1)
	}
}

func run() error {
	iface := flag.String("iface", "", "interface to serve (required)")
	relayOnly := flag.Bool("relay-only", false, "serve -iface as a relay interface only (what perfdhcp needs: it always relays) and the segment through it")
	subnet := flag.String("subnet", "", "segment subnet, e.g. 10.50.0.0/16 (required)")
	gateway := flag.String("gateway", "", "router address on the segment (required)")
	rng := flag.String("range", "", "pool as FIRST-LAST (required)")
	trusted := flag.String("trusted-relays", "", "comma-separated prefixes relayed requests are accepted from")
	db := flag.String("db", "", "SQLite database file (required)")
	status := flag.String("status", "", "file to write counters to on SIGUSR1 and at exit")
	lease := flag.Duration("lease", time.Hour, "lease time")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	journalProbe := flag.Bool("journal-probe", false, "measurement only, NOT durable across a crash: ACK once a batch is fdatasynced to a journal file beside -db, write SQLite behind it (journal.go)")
	// The flood limits stay on (checked on every packet) but are raised
	// above what perfdhcp sends: every request comes from one relay
	// address and most from MACs never seen before, which a school's
	// defaults (200 packets/s per interface, 60 new devices a minute)
	// rightly refuse. Kea has no such limits to raise.
	maxInFlight := flag.Int("max-in-flight", 0, "exchanges in flight (0: the server's default)")
	pps := flag.Int("packets-per-second", 10000000, "per-interface packet rate limit")
	newPerMin := flag.Int("new-devices-per-minute", 100000000, "cap on never-seen MACs offered an address per minute")
	flag.Parse()
	if *iface == "" || *subnet == "" || *gateway == "" || *rng == "" || *db == "" {
		flag.Usage()
		return errors.New("missing a required flag")
	}
	pfx, err := netip.ParsePrefix(*subnet)
	if err != nil {
		return fmt.Errorf("-subnet: %w", err)
	}
	gw, err := netip.ParseAddr(*gateway)
	if err != nil {
		return fmt.Errorf("-gateway: %w", err)
	}
	lo, hi, ok := strings.Cut(*rng, "-")
	if !ok {
		return fmt.Errorf("-range %q: want FIRST-LAST", *rng)
	}
	first, err1 := netip.ParseAddr(lo)
	last, err2 := netip.ParseAddr(hi)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("-range: %w", err)
	}
	var relays []netip.Prefix
	if *trusted != "" {
		for _, s := range strings.Split(*trusted, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("-trusted-relays: %w", err)
			}
			relays = append(relays, p)
		}
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The daemon's memory settings (package procmem, as cmd/gatehouse
	// applies them), so that the memory figure is the daemon's: no soft
	// limit, which the daemon sizes for argon2 hashes this process never
	// computes.
	procmem.Prepare(log, 0)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	var leaseStore dhcp.LeaseStore = dhcp.NewSQLStore(st)
	if *journalProbe {
		j, err := newJournalStore(leaseStore, *db+"-probe-journal", log)
		if err != nil {
			return err
		}
		jctx, jstop := context.WithCancel(context.Background())
		jdone := make(chan struct{})
		go func() {
			defer close(jdone)
			j.run(jctx)
		}()
		// Deferred after st.Close, so it runs first: the writes still
		// behind the journal reach the store before it closes. run returns
		// only after srv.Run has, so nothing is journalled after this.
		defer func() {
			jstop()
			<-jdone
			if n := j.failed.Load(); n > 0 {
				fmt.Fprintf(os.Stderr, "dhcpserver: journal probe: %d database writes failed\n", n)
			}
		}()
		leaseStore = j
	}
	seg, relayIfaces := *iface, []string(nil)
	if *relayOnly {
		// Relayed requests are accepted on relay interfaces only; the
		// segment is then one reached through relays (giaddr in its subnet).
		seg, relayIfaces = "", []string{*iface}
	}
	srv, err := dhcp.New(dhcp.Config{
		Segments: []dhcp.Segment{{Name: "bench", Interface: seg, Subnet: pfx, Gateway: gw,
			RangeStart: first, RangeEnd: last, Lease: *lease, NewDevicesPerMinute: *newPerMin}},
		PacketsPerSecond: *pps,
		MaxInFlight:      *maxInFlight,
		Store:            leaseStore,
		TrustedRelays:    relays,
		RelayInterfaces:  relayIfaces,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
		// As the daemon does once every component runs.
		procmem.Release(log)
		fmt.Println("ready")
	case err := <-done:
		return err
	}
	gc := &gcPauses{}
	gc.report() // the passes count from here
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	for {
		select {
		case err := <-done:
			if *status != "" {
				err = errors.Join(err, writeStatus(*status, srv, gc))
			}
			return err
		case <-usr1:
			if *status != "" {
				if err := writeStatus(*status, srv, gc); err != nil {
					return err
				}
			}
		}
	}
}

// writeStatus replaces the status file atomically, so a reader never sees
// half of it.
func writeStatus(path string, srv *dhcp.Server, gc *gcPauses) error {
	now := time.Now()
	active := 0
	for _, l := range srv.Leases() {
		if l.Active(now) {
			active++
		}
	}
	m := srv.Metrics()
	// Every dropped_* counter is written, so bench/dhcp.sh can say per
	// reason where the datagrams the server read but did not answer went.
	body := fmt.Sprintf("active_leases %d\nreceived %d\noffers %d\nacks %d\nnaks %d\ndropped_overload %d\ndropped_rate_limited %d\ndropped_new_mac_limited %d\ndropped_malformed %d\ndropped_unsupported %d\ndropped_wrong_segment %d\ndropped_relay_untrusted %d\nrecords_dropped %d\npool_exhausted %d\ncommit_batches %d\nleases_committed %d\ncommit_errors %d\n",
		active, m.Received.Load(), m.Offers.Load(), m.Acks.Load(), m.Naks.Load(), m.Overload.Load(), m.RateLimited.Load(), m.NewMACLimited.Load(),
		m.Malformed.Load(), m.Unsupported.Load(), m.WrongSegment.Load(), m.RelayUntrusted.Load(), m.RecordsDropped.Load(), m.PoolExhausted.Load(),
		m.CommitBatches.Load(), m.LeasesCommitted.Load(), m.CommitErrors.Load())
	// The stage histograms since the last status, so each of the
	// script's passes gets its own (see dhcp.Timings).
	body += srv.Timings().Report()
	body += gc.report()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// gcPauses reports the collector's stop-the-world pauses since its last
// report (runtime/metrics), beside the server's stage timings: a pause
// stops every stage at once.
type gcPauses struct {
	last []uint64 // bucket counts at the last report
}

func (g *gcPauses) report() string {
	s := []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return ""
	}
	h := s[0].Value.Float64Histogram()
	var n uint64
	var max, total float64
	for i, c := range h.Counts {
		if i < len(g.last) {
			c -= g.last[i]
		}
		if c == 0 {
			continue
		}
		n += c
		hi := h.Buckets[i+1]
		if math.IsInf(hi, 1) {
			hi = h.Buckets[i]
		}
		max = hi
		total += float64(c) * hi
	}
	g.last = slices.Clone(h.Counts)
	return fmt.Sprintf("t_gc_pause n=%d total_us<=%.0f max_us<=%.0f\n", n, total*1e6, max*1e6)
}
