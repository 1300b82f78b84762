package policy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func benchDevice(i int, subnet byte) Device {
	return Device{
		MAC: net.HardwareAddr{0x02, subnet, 0, byte(i >> 16), byte(i >> 8), byte(i)},
		IP:  netip.AddrFrom4([4]byte{10, subnet, byte(i >> 8), byte(i)}),
	}
}

// loadSchool records 5,000 approved devices and 2,000 admitted visitors.
// appliedSchool is an enforcer in a namespace of its own with the full
// school table (loadSchool) applied in the kernel.
func appliedSchool(b *testing.B) *Enforcer {
	_, fd := newNS(b)
	e := newEnforcer(b, fd, testNetwork(), time.Now)
	loadSchool(b, e)
	if err := e.Apply(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}

func loadSchool(b *testing.B, e *Enforcer) {
	ctx := context.Background()
	for i := range 5000 {
		if err := e.Approve(ctx, benchDevice(i, 30)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 2000 {
		if err := e.Admit(ctx, benchDevice(i, 40), time.Now().Add(8*time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyFullRuleset times building the whole table with 5,000
// approved devices and 2,000 admitted visitors in one transaction.
func BenchmarkApplyFullRuleset(b *testing.B) {
	_, fd := newNS(b)
	e := newEnforcer(b, fd, testNetwork(), time.Now)
	loadSchool(b, e)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := e.Apply(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmitEvict times single admissions and evictions against the full
// table and reports their median and 99th percentile.
func BenchmarkAdmitEvict(b *testing.B) {
	e := appliedSchool(b)
	ctx := context.Background()
	var admits, evicts []time.Duration
	i := 0
	for b.Loop() {
		d := benchDevice(3000+i%1000, 40)
		i++
		t0 := time.Now()
		if err := e.Admit(ctx, d, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := e.Evict(ctx, d); err != nil {
			b.Fatal(err)
		}
		admits = append(admits, t1.Sub(t0))
		evicts = append(evicts, time.Since(t1))
	}
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), name+"-p99-µs")
	}
	report("admit", admits)
	report("evict", evicts)
	b.Log(fmt.Sprintf("%d admit/evict pairs", len(admits)))
}

// BenchmarkEvictDropsConnection measures what an eviction is for: from the
// call to Evict until an admitted visitor's open TCP connection through the
// router stops carrying data, with the full table of loadSchool. The
// visitor ping-pongs one byte at a time with a server in the fake internet
// (each round trip a few tens of microseconds on the veths); the drop is
// the first round trip that fails: the deny chain refuses the visitor's
// packet and answers it with a reset, which kills the visitor's socket.
//
// The router refuses whichever packet of the connection comes first after
// the commit and answers it with a reset in the other end's name: the
// visitor's next byte (the visitor is reset), or the server's echo of a
// byte sent just before (the server is reset; the visitor's socket only
// fails when its TCP retransmits that byte, after its 200 ms minimum
// retransmission timeout, and sees the reset then). The connection carries
// nothing from the first refusal on.
//
// It reports the median and 99th percentile of four times from the call:
// Evict's own return; the connection dropped, the kernel's receive
// timestamp of the first of those resets at either end (rstWatch: it does
// not depend on when any of the benchmark's goroutines next run); the
// visitor's own reset alone; and the visitor's goroutine seeing its
// connection fail, which adds the wait for a CPU to wake it. And the CPU
// time Evict itself used: on a loaded machine the gap between it and the
// return is time spent waiting for a CPU.
func BenchmarkEvictDropsConnection(b *testing.B) {
	s := newSchool(b)
	e := newEnforcer(b, s.router, testNetwork(), time.Now)
	loadSchool(b, e)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		b.Fatal(err)
	}
	echoServer(b, s.internet, "198.51.100.2:443")
	visitor := Device{MAC: net.HardwareAddr{0x02, 0, 0, 0, 0x40, 0x0a}, IP: netip.MustParseAddr("10.40.0.10")}
	server := netip.MustParseAddr("198.51.100.2")
	atVisitor := newRSTWatch(b, s.visitor, "eth0", server, true)
	// The router answers the server in its uplink address's name, from
	// the port masquerading gave the visitor's (its own, when free).
	atServer := newRSTWatch(b, s.internet, "eth0", netip.Addr{}, false)
	var drops, returns, refusals, visitorResets, cpus []time.Duration
	for b.Loop() {
		if err := e.Admit(ctx, visitor, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		c, err := dialFrom(b, s.visitor, "198.51.100.2:443")
		if err != nil {
			b.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		one := []byte{'x'}
		if _, err := c.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(one); err != nil {
			b.Fatal(err)
		}
		dropped := make(chan time.Time, 1)
		go func() {
			buf := []byte{'x'}
			for {
				if _, err := c.Write(buf); err != nil {
					dropped <- time.Now()
					return
				}
				if _, err := c.Read(buf); err != nil {
					dropped <- time.Now()
					return
				}
			}
		}()
		time.Sleep(2 * time.Millisecond) // the ping-pong is going
		// Evict does its work on the caller's goroutine: on a thread of
		// its own, the thread's CPU time is Evict's.
		runtime.LockOSThread()
		cpu0 := threadCPU(b)
		t0 := time.Now()
		if err := e.Evict(ctx, visitor); err != nil {
			b.Fatal(err)
		}
		returns = append(returns, time.Since(t0))
		cpus = append(cpus, threadCPU(b)-cpu0)
		runtime.UnlockOSThread()
		select {
		case at := <-dropped:
			drops = append(drops, at.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatal("the connection still carried data 10 s after Evict")
		}
		port := uint16(c.LocalAddr().(*net.TCPAddr).Port)
		v, err := atVisitor.next(port, t0, 10*time.Second)
		if err != nil {
			b.Fatalf("the visitor's reset: %v", err)
		}
		first := v
		// The server is reset only when the refused packet was its own.
		sv, serr := atServer.next(port, t0, 20*time.Millisecond)
		if serr == nil && sv.Before(first) {
			first = sv
		}

		visitorResets = append(visitorResets, v.Sub(t0))
		refusals = append(refusals, first.Sub(t0))
		c.Close()
	}
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(ds[min(len(ds)-1, len(ds)*99/100)].Microseconds()), name+"-p99-µs")
	}
	report("evict-refused", refusals)
	report("evict-visitor-reset", visitorResets)
	report("evict-seen", drops)
	report("evict-return", returns)
	report("evict-cpu", cpus)
}

// threadCPU is the calling thread's CPU time so far.
func threadCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBindMany times what the DHCP server's group commit asks of the
// enforcer: BindMany of 32 leases the kernel has not seen ("new", a morning's
// first DORAs) or already holds with an earlier end ("renew"), against the
// full table of loadSchool. It reports the wall time and the process's CPU
// time per binding (the kernel's work and the batcher goroutine's count
// too); allocs/op are per batch of 32.
func BenchmarkBindMany(b *testing.B) {
	const batch = 32
	for _, renew := range []bool{false, true} {
		name := "new"
		if renew {
			name = "renew"
		}
		b.Run(name, func(b *testing.B) {
			e := appliedSchool(b)
			ctx := context.Background()
			bs := make([]Binding, batch)
			fill := func(round int) {
				for j := range bs {
					bs[j] = Binding{Device: benchDevice(j, 20), Until: time.Now().Add(time.Hour + time.Duration(round)*time.Second)}
				}
			}
			bind := func() {
				for j, err := range e.BindMany(ctx, bs) {
					if err != nil {
						b.Fatalf("pair %d: %v", j, err)
					}
				}
			}
			round := 0
			if renew {
				fill(round)
				bind()
			}
			b.ReportAllocs()
			cpu0 := processCPU(b)
			var paused time.Duration
			for b.Loop() {
				round++
				fill(round)
				bind()
				if !renew {
					// Out of the measurement: the pairs go again, so
					// that the next round's are new to the kernel.
					b.StopTimer()
					c := processCPU(b)
					for _, x := range bs {
						if err := e.Unbind(ctx, x.Device); err != nil {
							b.Fatal(err)
						}
					}
					paused += processCPU(b) - c
					b.StartTimer()
				}
			}
			n := float64(round * batch)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/binding")
			b.ReportMetric(float64((processCPU(b)-cpu0-paused).Nanoseconds())/n, "cpu-ns/binding")
		})
	}
}

// processCPU is the process's CPU time so far, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
