package policy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func benchDevice(i int, subnet byte) Device {
	return Device{
		MAC: net.HardwareAddr{0x02, subnet, 0, byte(i >> 16), byte(i >> 8), byte(i)},
		IP:  netip.AddrFrom4([4]byte{10, subnet, byte(i >> 8), byte(i)}),
	}
}

// loadSchool records 5,000 approved devices and 2,000 admitted visitors.
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
	_, fd := newNS(b)
	e := newEnforcer(b, fd, testNetwork(), time.Now)
	loadSchool(b, e)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		b.Fatal(err)
	}
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
