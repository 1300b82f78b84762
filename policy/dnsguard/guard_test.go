package dnsguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeUpstream is the school's filtering resolver: fixed answers, counted
// queries, and a record of the EDNS0 it was sent.
type fakeUpstream struct {
	addr    netip.AddrPort
	queries atomic.Int64
	mu      sync.Mutex
	lastOPT *dns.OPT
	ports   map[string]bool // client addresses seen over UDP
}

func startUpstream(t *testing.T) *fakeUpstream { return startUpstreamTB(t) }

func startUpstreamTB(t testing.TB) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{}
	// The UDP port the kernel picks may be taken over TCP by another
	// process on a shared machine: pick again a few times.
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 20 {
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	u.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	h := dns.HandlerFunc(u.serve)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return u
}

func (u *fakeUpstream) serve(w dns.ResponseWriter, r *dns.Msg) {
	u.queries.Add(1)
	u.mu.Lock()
	u.lastOPT = r.IsEdns0()
	if a, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		if u.ports == nil {
			u.ports = map[string]bool{}
		}
		u.ports[a.String()] = true
	}
	u.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	a := func(ip string) {
		rr, _ := dns.NewRR(fmt.Sprintf("%s 300 IN A %s", q.Name, ip))
		m.Answer = append(m.Answer, rr)
	}
	switch strings.ToLower(q.Name) {
	case "school.example.":
		a("192.0.2.10")
	case "forcesafesearch.google.com.":
		a("192.0.2.20")
	case "strict.bing.com.":
		a("192.0.2.21")
	case "www.google.com.":
		a("192.0.2.99")
	case "big.example.":
		for i := range 60 {
			a(fmt.Sprintf("192.0.2.%d", i+1))
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	if o := r.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), o.Do())
	}
	_ = w.WriteMsg(m)
}

type recorder struct {
	mu  sync.Mutex
	got []Query
}

func (r *recorder) Record(q Query) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, q)
}

func (r *recorder) last() Query {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[len(r.got)-1]
}

// Clients come from different loopback addresses, each standing for a segment.
const (
	pupilClient   = "127.0.0.2"
	staffClient   = "127.0.0.3"
	visitorClient = "127.0.0.4"
)

func startGuard(t *testing.T, cfg Config) (*Guard, string) { return startGuardTB(t, cfg) }

func startGuardTB(t testing.TB, cfg Config) (*Guard, string) {
	t.Helper()
	if cfg.Segments == nil {
		cfg.Segments = []SegmentPolicy{
			{Name: "pupil", Subnet: netip.MustParsePrefix(pupilClient + "/32"), SafeSearch: true, BlockPrivateRelay: true},
			{Name: "staff", Subnet: netip.MustParsePrefix(staffClient + "/32")},
			{Name: "visitor", Subnet: netip.MustParsePrefix(visitorClient + "/32"), BlockPrivateRelay: true},
		}
	}
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.ServeConns(ctx, pc, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeConns: %v", err)
		}
	})
	return g, pc.LocalAddr().String()
}

func ask(t *testing.T, server, from, proto, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, true)
	}
	var local net.Addr
	if proto == "udp" {
		local = &net.UDPAddr{IP: net.ParseIP(from)}
	} else {
		local = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c := &dns.Client{Net: proto, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("ask %s over %s: %v", name, proto, err)
	}
	return r
}

func answers(m *dns.Msg) string {
	var s []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			s = append(s, v.A.String())
		case *dns.CNAME:
			s = append(s, "cname "+v.Target)
		}
	}
	return strings.Join(s, " ")
}

func TestGuardAnswersPerSegment(t *testing.T) {
	up := startUpstream(t)
	rec := &recorder{}
	// What inspection is told: the last answer per client and name.
	var told sync.Map
	_, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, Recorder: rec,
		BlockedNames: []string{"dns.nextdns.io", "nordvpn.com"},
		Answers: func(client netip.Addr, name, answer string, _ time.Time) {
			told.Store(client.String()+" "+name, answer)
		}})
	cases := []struct {
		name, from, proto, q string
		rcode                int
		answer               string
		action               Action
	}{
		{"forwards over udp", staffClient, "udp", "school.example", dns.RcodeSuccess, "192.0.2.10", Forwarded},
		{"forwards over tcp", staffClient, "tcp", "SCHOOL.example", dns.RcodeSuccess, "192.0.2.10", Cached},
		{"passes NXDOMAIN through", staffClient, "udp", "nowhere.example", dns.RcodeNameError, "", Forwarded},
		{"google SafeSearch on pupil", pupilClient, "udp", "www.google.com", dns.RcodeSuccess, "cname forcesafesearch.google.com. 192.0.2.20", SafeSearch},
		{"google country domain", pupilClient, "tcp", "google.co.uk", dns.RcodeSuccess, "cname forcesafesearch.google.com. 192.0.2.20", SafeSearch},
		{"bing SafeSearch", pupilClient, "udp", "www.bing.com", dns.RcodeSuccess, "cname strict.bing.com. 192.0.2.21", SafeSearch},
		{"youtube restricted", pupilClient, "udp", "m.youtube.com", dns.RcodeNameError, "cname restrict.youtube.com.", SafeSearch},
		{"duckduckgo safe", pupilClient, "udp", "duckduckgo.com", dns.RcodeNameError, "cname safe.duckduckgo.com.", SafeSearch},
		{"no SafeSearch on staff", staffClient, "udp", "www.google.com", dns.RcodeSuccess, "192.0.2.99", Forwarded},
		{"DoH canary on every segment", staffClient, "udp", "use-application-dns.net", dns.RcodeNameError, "", Canary},
		{"private relay on pupil", pupilClient, "udp", "mask.icloud.com", dns.RcodeNameError, "", Relay},
		{"private relay h2 on visitor", visitorClient, "udp", "mask-h2.icloud.com", dns.RcodeNameError, "", Relay},
		{"private relay allowed on staff", staffClient, "udp", "mask.icloud.com", dns.RcodeNameError, "", Forwarded},
		{"blocked DoH name and subdomains", staffClient, "udp", "abc.dns.nextdns.io", dns.RcodeNameError, "", Blocked},
		{"blocked VPN name", pupilClient, "tcp", "nordvpn.com", dns.RcodeNameError, "", Blocked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ask(t, addr, c.from, c.proto, c.q, dns.TypeA, false)
			if r.Rcode != c.rcode || answers(r) != c.answer {
				t.Errorf("got %s %q, want %s %q", dns.RcodeToString[r.Rcode], answers(r), dns.RcodeToString[c.rcode], c.answer)
			}
			q := rec.last()
			if q.Action != c.action || q.Name != strings.ToLower(c.q) || q.Client.String() != c.from {
				t.Errorf("recorded %+v, want action %s for %s from %s", q, c.action, c.q, c.from)
			}
			if a, ok := told.Load(c.from + " " + strings.ToLower(c.q)); !ok || a != q.Answer {
				t.Errorf("Answers was told %q (%v), want the recorded %q", a, ok, q.Answer)
			}
		})
	}
}

func TestGuardCachesWithinTTLAndBounds(t *testing.T) {
	up := startUpstream(t)
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	g, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, Now: clock, CacheSize: 2})

	ask(t, addr, staffClient, "udp", "school.example", dns.TypeA, false)
	advance(100 * time.Second)
	r := ask(t, addr, staffClient, "udp", "school.example", dns.TypeA, false)
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("upstream asked %d times, want 1 (second from cache)", n)
	}
	if ttl := r.Answer[0].Header().Ttl; ttl != 200 {
		t.Fatalf("cached TTL %d, want 300-100", ttl)
	}
	advance(201 * time.Second)
	ask(t, addr, staffClient, "udp", "school.example", dns.TypeA, false)
	if n := up.queries.Load(); n != 2 {
		t.Fatalf("upstream asked %d times after TTL ran out, want 2", n)
	}
	for _, name := range []string{"a.example", "b.example", "c.example"} {
		ask(t, addr, staffClient, "udp", name, dns.TypeA, false)
	}
	if n := g.cache.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want its bound 2", n)
	}
	if s := g.Stats(); s.CacheHits != 1 || s.Queries != 6 {
		t.Fatalf("stats %+v, want 1 hit of 6 queries", s)
	}
}

func TestGuardPassesEDNS0AndTruncates(t *testing.T) {
	up := startUpstream(t)
	_, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}})

	r := ask(t, addr, staffClient, "udp", "school.example", dns.TypeA, true)
	up.mu.Lock()
	opt := up.lastOPT
	up.mu.Unlock()
	if opt == nil || opt.UDPSize() != 1232 || !opt.Do() {
		t.Fatalf("upstream saw OPT %v, want the client's size 1232 and DO", opt)
	}
	if o := r.IsEdns0(); o == nil || !o.Do() {
		t.Fatalf("client got OPT %v, want the upstream's with DO", o)
	}

	// 60 A records do not fit in 512 bytes: a plain UDP client is told to
	// retry over TCP, where it gets them all.
	r = ask(t, addr, staffClient, "udp", "big.example", dns.TypeA, false)
	if !r.Truncated {
		t.Fatalf("plain UDP answer of %d records not truncated", len(r.Answer))
	}
	r = ask(t, addr, staffClient, "tcp", "big.example", dns.TypeA, false)
	if r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("TCP answer truncated=%v with %d records, want all 60", r.Truncated, len(r.Answer))
	}
}

func TestGuardServfailWhenUpstreamDown(t *testing.T) {
	// A port that was just free: nothing answers there.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	rec := &recorder{}
	g, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{dead}, Timeout: 300 * time.Millisecond, Recorder: rec})
	for _, proto := range []string{"udp", "tcp"} {
		r := ask(t, addr, staffClient, proto, "school.example", dns.TypeA, false)
		if r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("%s: rcode %s, want SERVFAIL", proto, dns.RcodeToString[r.Rcode])
		}
		if a := rec.last().Action; a != Failed {
			t.Fatalf("%s: recorded %s, want %s", proto, a, Failed)
		}
	}
	// SafeSearch needs the upstream too, and says so rather than answering
	// a CNAME that leads nowhere.
	if r := ask(t, addr, pupilClient, "udp", "www.google.com", dns.TypeA, false); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("SafeSearch with upstream down: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if s := g.Stats(); s.ServFail != 3 {
		t.Fatalf("stats %+v, want 3 SERVFAILs", s)
	}
}

func TestGuardRejectsMalformedQueries(t *testing.T) {
	up := startUpstream(t)
	_, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	two := new(dns.Msg)
	two.SetQuestion("a.example.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	b, err := two.Pack()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer to a two-question query: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil || r.Rcode != dns.RcodeFormatError {
		t.Fatalf("answer %v (%v), want FORMERR", r, err)
	}
	if up.queries.Load() != 0 {
		t.Fatal("malformed query was forwarded")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no upstream":        {},
		"upstream port 0":    {Upstreams: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 0)}},
		"segment w/o subnet": {Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}, Segments: []SegmentPolicy{{Name: "x"}}},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestGuardSegmentBlocksChangeWhileServing(t *testing.T) {
	up := startUpstream(t)
	g, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	segs := []SegmentPolicy{
		{Name: "pupil", Subnet: netip.MustParsePrefix(pupilClient + "/32"), BlockedNames: []string{"School.Example."}},
		{Name: "staff", Subnet: netip.MustParsePrefix(staffClient + "/32")},
	}
	if err := g.SetSegments(segs); err != nil {
		t.Fatalf("SetSegments: %v", err)
	}
	if r := ask(t, addr, pupilClient, "udp", "www.school.example", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
		t.Fatalf("pupil: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if r := ask(t, addr, staffClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("staff: %s, want an answer", dns.RcodeToString[r.Rcode])
	}
	if err := g.SetSegments([]SegmentPolicy{{Name: "broken"}}); err == nil {
		t.Fatal("SetSegments accepted a segment without a subnet")
	}
	segs[0].BlockedNames = nil
	if err := g.SetSegments(segs); err != nil {
		t.Fatalf("SetSegments: %v", err)
	}
	if r := ask(t, addr, pupilClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("pupil after the rule ended: %s, want an answer", dns.RcodeToString[r.Rcode])
	}
}

func TestUpstreamsAreReachedThroughTheConfiguredDialer(t *testing.T) {
	up := startUpstream(t)
	var mu sync.Mutex
	var dialled []string
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		dialled = append(dialled, network+" "+address)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	_, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, CacheSize: -1, Dial: dial})
	for _, c := range []struct{ proto, name, want string }{
		{"udp", "school.example", "192.0.2.10"},
		{"tcp", "school.example", "192.0.2.10"},
	} {
		if got := answers(ask(t, addr, staffClient, c.proto, c.name, dns.TypeA, false)); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s over %s: %q", c.name, c.proto, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"udp " + up.addr.String(), "tcp " + up.addr.String()}
	if strings.Join(dialled, ",") != strings.Join(want, ",") {
		t.Fatalf("dialled %v, want %v", dialled, want)
	}
}
