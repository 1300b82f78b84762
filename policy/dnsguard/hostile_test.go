package dnsguard

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The DNS attacks of issue 13: an open resolver for the uplink side, a
// flood that pushes real lookups out of the log, tunnelling before the
// portal admits a visitor, and a panic that stops DNS for the school.

func TestClientsOutsideEverySegmentAreRefused(t *testing.T) {
	up := startUpstream(t)
	rec := &recorder{}
	g, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, Recorder: rec, Local: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	// 127.0.0.9 is in no segment, like 203.0.113.9 on the uplink side;
	// 127.0.0.1 stands for the router itself.
	if r := ask(t, addr, "127.0.0.9", "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeRefused {
		t.Errorf("a client outside every segment: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if g.Stats().Outside != 1 || rec.count() != 0 {
		t.Errorf("outside = %d, recorded %d; want 1 and nothing recorded", g.Stats().Outside, rec.count())
	}
	if r := ask(t, addr, staffClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("a staff client: %s, want an answer", dns.RcodeToString[r.Rcode])
	}
}

func TestPerClientRateLimitKeepsOthersAnswered(t *testing.T) {
	up := startUpstream(t)
	rec := &recorder{}
	clock := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	g, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, Recorder: rec, ClientQPS: 5, Now: func() time.Time { return clock }})
	refused := 0
	for range 30 {
		if r := ask(t, addr, pupilClient, "udp", "school.example", dns.TypeA, false); r.Rcode == dns.RcodeRefused {
			refused++
		}
	}
	if refused != 20 { // a burst of 10, the clock stands still
		t.Errorf("%d of 30 refused, want 20", refused)
	}
	g.flushHits() // cached answers are recorded off their path, a few ms later
	if n := rec.count(); n != 10 {
		t.Errorf("%d queries recorded, want the 10 answered", n)
	}
	if r := ask(t, addr, staffClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("another client while one floods: %s", dns.RcodeToString[r.Rcode])
	}
	if g.Stats().Limited != 20 {
		t.Errorf("limited = %d, want 20", g.Stats().Limited)
	}
}

func TestClientLimiterTableIsBounded(t *testing.T) {
	l := newClientLimiter(5, 100)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)})
		l.allow(a, now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.size(); n > 100 {
		t.Errorf("table holds %d clients, bound is 100", n)
	}
	// A flooding client keeps its empty bucket while others come and go.
	flood := netip.MustParseAddr("10.20.99.99")
	for range 20 {
		l.allow(flood, now)
	}
	if l.allow(flood, now) {
		t.Error("an exhausted client was let through")
	}
}

func TestVisitorsResolveOnlyPortalNamesBeforeAdmission(t *testing.T) {
	up := startUpstream(t)
	rec := &recorder{}
	var admitted sync.Map // read by the serving goroutines, written here
	_, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, Recorder: rec, PortalNames: []string{"portal.school.example"},
		Admitted: func(ip netip.Addr, _ net.HardwareAddr) bool { _, ok := admitted.Load(ip); return ok },
		Segments: []SegmentPolicy{
			{Name: "visitor", Subnet: netip.MustParsePrefix(visitorClient + "/32"), Portal: true},
			{Name: "staff", Subnet: netip.MustParsePrefix(staffClient + "/32")},
		}})
	if r := ask(t, addr, visitorClient, "udp", "tunnel.school.example", dns.TypeA, false); r.Rcode != dns.RcodeNameError || rec.last().Action != NotAdmitted {
		t.Errorf("before admission, a name the portal does not need: %s (%s), want NXDOMAIN", dns.RcodeToString[r.Rcode], rec.last().Action)
	}
	if r := ask(t, addr, visitorClient, "udp", "connectivitycheck.gstatic.com", dns.TypeA, false); r.Rcode == dns.RcodeNameError && rec.last().Action == NotAdmitted {
		t.Error("before admission, Android's probe name was refused")
	}
	if r := ask(t, addr, staffClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("staff (no portal): %s", dns.RcodeToString[r.Rcode])
	}
	admitted.Store(netip.MustParseAddr(visitorClient), true)
	if r := ask(t, addr, visitorClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("after admission: %s, want an answer", dns.RcodeToString[r.Rcode])
	}
}

// panicLookup panics for one address: a bug one query can reach.
type panicLookup struct{ ip netip.Addr }

func (p panicLookup) MACFor(ip netip.Addr) net.HardwareAddr {
	if ip == p.ip {
		panic("injected: MAC lookup of " + ip.String())
	}
	return nil
}

func TestPanicWhileAnsweringIsRecovered(t *testing.T) {
	up := startUpstream(t)
	g, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, Clients: panicLookup{netip.MustParseAddr(pupilClient)}})
	if r := ask(t, addr, pupilClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("the panicking query: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if g.Stats().Panics != 1 {
		t.Errorf("panics = %d, want 1", g.Stats().Panics)
	}
	if r := ask(t, addr, staffClient, "tcp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("the next client: %s, want an answer", dns.RcodeToString[r.Rcode])
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}
