package querylog

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/store"
)

// discard is a Sink that keeps nothing, so the benchmark times Record
// and not a database.
type discard struct{}

func (discard) InsertDNSQueries(context.Context, []store.DNSQuery) error { return nil }
func (discard) PurgeDNSQueries(context.Context, string, time.Time) (int64, error) {
	return 0, nil
}

// BenchmarkRecord is one cached lookup handed to the log as the guard's hit
// log hands them on: a hub with no subscriber of lookups (as the daemon
// runs), the writer draining. "one client" is dnsperf's case (one address,
// past its budget within the first second); "many clients" stores every
// lookup.
func BenchmarkRecord(b *testing.B) {
	for _, bc := range []struct {
		name    string
		clients int
	}{{"one client", 1}, {"many clients", 4096}} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := New(Options{Sink: discard{}, Events: events.New(), Queue: 1 << 16, ClientBudget: 1 << 30 / bc.clients})
			if bc.clients == 1 {
				l, err = New(Options{Sink: discard{}, Events: events.New(), Queue: 1 << 16})
			}
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			qs := make([]dnsguard.Query, bc.clients)
			for i := range qs {
				qs[i] = dnsguard.Query{Time: time.Now(), Client: netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)}),
					MAC: net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}, Segment: "pupil", Name: "www.example.com",
					Type: "A", Answer: "203.0.113.80", Action: dnsguard.Cached}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				l.Record(qs[i%len(qs)])
			}
			b.StopTimer()
			cancel()
			<-done
			st := l.Stats()
			if st.Recorded != uint64(b.N) || st.Written+st.OverBudget+st.Dropped != uint64(b.N) {
				b.Fatalf("stats %+v after %d records", st, b.N)
			}
		})
	}
}
