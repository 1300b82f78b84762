package dnsguard

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// fakeWriter captures an answer without a socket, for fuzzing the handler.
type fakeWriter struct {
	remote net.Addr
	got    *dns.Msg
}

func (w *fakeWriter) LocalAddr() net.Addr         { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr        { return w.remote }
func (w *fakeWriter) WriteMsg(m *dns.Msg) error   { w.got = m; return nil }
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fakeWriter) Close() error                { return nil }
func (w *fakeWriter) TsigStatus() error           { return nil }
func (w *fakeWriter) TsigTimersOnly(bool)         {}
func (w *fakeWriter) Hijack()                     {}

// FuzzServeDNS feeds the handler any message that unpacks; it must always
// answer and never panic.
func FuzzServeDNS(f *testing.F) {
	up := startUpstreamTB(f)
	g, err := New(Config{Upstreams: []netip.AddrPort{up.addr}, BlockedNames: []string{"vpn.example"},
		Segments: []SegmentPolicy{{Name: "pupil", Subnet: netip.MustParsePrefix("127.0.0.0/8"), SafeSearch: true, BlockPrivateRelay: true}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"www.google.com.", "use-application-dns.net.", "a.vpn.example.", "mask.icloud.com.", "school.example."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.SetEdns0(4096, true)
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(b); err != nil {
			return
		}
		w := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5000}}
		g.ServeDNS(w, req)
		if w.got == nil {
			t.Fatal("no answer")
		}
		if w.got.Id != req.Id {
			t.Fatalf("answer id %d for query %d", w.got.Id, req.Id)
		}
	})
}

// BenchmarkGuard measures queries answered per second over UDP from the cache
// and forwarded with the cache off.
func BenchmarkGuard(b *testing.B) {
	up := startUpstreamTB(b)
	for _, c := range []struct {
		name  string
		cache int
	}{{"cached", 0}, {"forwarded", -1}} {
		b.Run(c.name, func(b *testing.B) {
			_, addr := startGuardTB(b, Config{Upstreams: []netip.AddrPort{up.addr}, CacheSize: c.cache})
			conn, err := net.Dial("udp4", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			dc := &dns.Conn{Conn: conn}
			m := new(dns.Msg)
			m.SetQuestion("school.example.", dns.TypeA)
			for b.Loop() {
				if err := dc.WriteMsg(m); err != nil {
					b.Fatal(err)
				}
				if _, err := dc.ReadMsg(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}
