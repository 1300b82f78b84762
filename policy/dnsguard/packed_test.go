package dnsguard

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/miekg/dns"

	"github.com/gatehouse-net/gatehouse/internal/shared"
)

// dnsPayloads returns the UDP port 53 payloads (queries and answers) of the
// shared captures of DNS traffic: the fuzz targets' real-packet seeds.
func dnsPayloads(t testing.TB) [][]byte {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(shared.Pcaps(t), "dns*.pcap*"))
	sort.Strings(names)
	var out [][]byte
	for _, name := range names {
		fh, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(fh)
		magic, _ := br.Peek(4)
		var src interface {
			ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		}
		var lt layers.LinkType
		if string(magic) == "\x0a\x0d\x0d\x0a" {
			r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			src, lt = r, r.LinkType()
		} else {
			r, err := pcapgo.NewReader(br)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			src, lt = r, r.LinkType()
		}
		for range 200 {
			data, _, err := src.ReadPacketData()
			if err != nil {
				break
			}
			p := gopacket.NewPacket(data, lt, gopacket.Default)
			if u, ok := p.TransportLayer().(*layers.UDP); ok && (u.SrcPort == 53 || u.DstPort == 53) && len(u.Payload) > 0 {
				out = append(out, append([]byte(nil), u.Payload...))
			}
		}
		fh.Close()
	}
	if len(out) < 10 {
		t.Fatalf("only %d DNS packets in the shared captures", len(out))
	}
	return out
}

// FuzzPackedAnswer checks the wire reading and patching the packed cache
// relies on against miekg/dns, from real queries and answers: a query
// parseQuery accepts unpacks to the same question; an answer ttlOffsets
// accepts, patched for a query, unpacks to the same message but for the
// ID, RD, the name's spelling and the TTLs, each aged as asked.
func FuzzPackedAnswer(f *testing.F) {
	pkts := dnsPayloads(f)
	for i, p := range pkts {
		f.Add(p, pkts[(i+1)%len(pkts)], uint16(i), uint8(i%7))
	}
	f.Fuzz(func(t *testing.T, answer, query []byte, id uint16, ageSec uint8) {
		if q, ok := parseQuery(query); ok {
			m := new(dns.Msg)
			if err := m.Unpack(query); err != nil {
				t.Fatalf("parseQuery took a query miekg/dns refuses: %v", err)
			}
			mq := m.Question[0]
			if mq.Qtype != q.qtype || mq.Qclass != q.qclass || m.RecursionDesired != q.rd || m.CheckingDisabled != q.cd {
				t.Fatalf("question %v rd=%v cd=%v, parseQuery %+v", mq, m.RecursionDesired, m.CheckingDisabled, q)
			}
			if o := m.IsEdns0(); (o != nil) != q.edns || (o != nil && (o.UDPSize() != q.udpSize || o.Do() != q.do)) {
				t.Fatalf("EDNS %v, parseQuery %+v", o, q)
			}
		}
		ttls, qend, ok := ttlOffsets(answer, nil)
		if !ok {
			return
		}
		orig := new(dns.Msg)
		if err := orig.Unpack(answer); err != nil {
			return // well-formed framing, nonsense rdata: never packed by miekg/dns
		}
		// A query for the same name, spelled in upper case.
		qname := asciiUpper(answer[headerLen : qend-4])
		wq := wireQuery{qname: qname, rd: id%2 == 0}
		stored := time.Unix(1_700_000_000, 0)
		e := &packedEntry{wire: answer, ttls: ttls, qend: qend, stored: stored}
		out := e.patch(make([]byte, len(answer)), id, &wq, stored.Add(time.Duration(ageSec)*time.Second))
		got := new(dns.Msg)
		if err := got.Unpack(out); err != nil {
			t.Fatalf("patched answer does not unpack: %v", err)
		}
		if got.Id != id || got.RecursionDesired != wq.rd {
			t.Fatalf("id %d rd %v, want %d %v", got.Id, got.RecursionDesired, id, wq.rd)
		}
		if !bytes.Equal(out[headerLen:qend-4], qname) {
			t.Fatal("question not spelled as the client did")
		}
		want := orig.Copy()
		want.Id, want.RecursionDesired = id, wq.rd
		want.Question[0].Name = got.Question[0].Name
		for _, sec := range [][]dns.RR{want.Answer, want.Ns, want.Extra} {
			for _, rr := range sec {
				h := rr.Header()
				if h.Rrtype == dns.TypeOPT {
					continue
				}
				h.Ttl -= min(h.Ttl, uint32(ageSec))
			}
		}
		// Names pointing into the question now carry its new spelling:
		// compare case-insensitively.
		if w, g := bytes.ToLower([]byte(want.String())), bytes.ToLower([]byte(got.String())); !bytes.Equal(w, g) {
			t.Fatalf("patched answer\n%s\nwant\n%s", got, want)
		}
	})
}

func asciiUpper(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// hitRig is a guard serving on loopback with one name already cached,
// and a query for it.
func hitRig(t testing.TB) (*udpWorker, []byte, netip.AddrPort) {
	up := startUpstreamTB(t)
	g, addr := startGuardTB(t, Config{Upstreams: []netip.AddrPort{up.addr}, Recorder: discardRecorder{},
		// The limit is checked on every hit, as in the daemon, at a rate
		// this one client never reaches.
		ClientQPS: 1 << 30, Answers: func(netip.Addr, string, string, time.Time) {}})
	m := new(dns.Msg)
	m.SetQuestion("School.Example.", dns.TypeA)
	m.SetEdns0(1232, false)
	c := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(pupilClient)}}}
	if _, _, err := c.Exchange(m, addr); err != nil {
		t.Fatal(err)
	}
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	// The worker answers into a socket of its own, to a client socket
	// that nobody reads (the kernel drops what does not fit).
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(pupilClient)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	w := g.newUDPWorker(conn, false)
	from := netip.MustParseAddrPort(sink.LocalAddr().String())
	if !w.fast(pkt, nil, from) {
		t.Fatal("the cached name was not answered from the packed cache")
	}
	return w, pkt, from
}

type discardRecorder struct{}

func (discardRecorder) Record(Query) {}

// A cached hit is answered (patched, recorded, told to inspection, sent)
// without a single allocation. AllocsPerRun counts, it does not time.
func TestPackedHitAllocatesNothing(t *testing.T) {
	w, pkt, from := hitRig(t)
	hits := w.g.Stats().CacheHits
	allocs := testing.AllocsPerRun(200, func() {
		if !w.fast(pkt, nil, from) {
			t.Fatal("miss")
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per cached hit, want 0", allocs)
	}
	if got := w.g.Stats().CacheHits - hits; got < 200 {
		t.Errorf("%d hits counted for 200+ answers", got)
	}
}

// BenchmarkPackedHit is the guard's work per cached answer (its socket
// write included), with allocations.
func BenchmarkPackedHit(b *testing.B) {
	w, pkt, from := hitRig(b)
	b.ReportAllocs()
	for b.Loop() {
		w.fast(pkt, nil, from)
	}
}

// BenchmarkPackedAnswer is the user-space part of a batched cached answer
// (parse, view, cache lookup, limit, patch, hit note) without the socket,
// the part the batched loop spends per query between its system calls.
func BenchmarkPackedAnswer(b *testing.B) {
	w, pkt, from := hitRig(b)
	now := w.g.now()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := w.answer(pkt, nil, from, w.out[:0], now); !ok {
			b.Fatal("miss")
		}
		if w.nnotes == len(w.notes) {
			w.settle()
		}
	}
	w.settle()
}

func TestPackedHitsKeepIDSpellingTTLAndPolicy(t *testing.T) {
	up := startUpstream(t)
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	rec := &recorder{}
	g, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, Now: clock, Recorder: rec, BlockedNames: []string{"nordvpn.com"}})
	askID := func(from, name string, id uint16, rd bool) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Id, m.RecursionDesired = id, rd
		c := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g.flushHits() // cached answers are recorded off their path
		return r
	}
	for _, name := range []string{"school.example.", "www.google.com.", "nordvpn.com."} {
		askID(pupilClient, name, 1, true)
	}
	hits := g.Stats().CacheHits
	mu.Lock()
	now = now.Add(42 * time.Second)
	mu.Unlock()
	upBefore := up.queries.Load()

	r := askID(pupilClient, "ScHoOl.ExAmPlE.", 0xbeef, false)
	if r.Id != 0xbeef || r.RecursionDesired || r.Question[0].Name != "ScHoOl.ExAmPlE." || answers(r) != "192.0.2.10" || r.Answer[0].Header().Ttl != 300-42 {
		t.Errorf("cached answer: %v", r)
	}
	if q := rec.last(); q.Action != Cached || q.Name != "school.example" || q.Answer != "192.0.2.10" || q.Client.String() != pupilClient {
		t.Errorf("recorded %+v", q)
	}
	// SafeSearch and the block list still apply to a pupil's cached
	// answers, and to nobody else's.
	if r := askID(pupilClient, "www.google.com.", 7, true); answers(r) != "cname forcesafesearch.google.com. 192.0.2.20" || rec.last().Action != SafeSearch {
		t.Errorf("pupil, cached google: %q (%s)", answers(r), rec.last().Action)
	}
	if r := askID(pupilClient, "nordvpn.com.", 8, true); r.Rcode != dns.RcodeNameError || rec.last().Action != Blocked {
		t.Errorf("pupil, cached blocked name: %s (%s)", dns.RcodeToString[r.Rcode], rec.last().Action)
	}
	if up.queries.Load() != upBefore {
		t.Errorf("the upstream was asked %d times for cached names", up.queries.Load()-upBefore)
	}
	if r := askID(staffClient, "www.google.com.", 9, true); answers(r) != "192.0.2.99" {
		t.Errorf("staff after a pupil's SafeSearch answer: %q", answers(r))
	}
	if s := g.Stats(); s.CacheHits-hits < 2 || s.Blocked != 2 || s.SafeSearch != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestPackedCacheFollowsPolicyChanges(t *testing.T) {
	up := startUpstream(t)
	g, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	pupil := SegmentPolicy{Name: "pupil", Subnet: netip.MustParsePrefix(pupilClient + "/32")}
	for range 2 {
		if r := ask(t, addr, pupilClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("before the rule: %s", dns.RcodeToString[r.Rcode])
		}
	}
	blocked := pupil
	blocked.BlockedNames = []string{"school.example"}
	if err := g.SetSegments([]SegmentPolicy{blocked}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := ask(t, addr, pupilClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
			t.Fatalf("cached name after a rule blocked it: %s", dns.RcodeToString[r.Rcode])
		}
	}
	if err := g.SetSegments([]SegmentPolicy{pupil}); err != nil {
		t.Fatal(err)
	}
	if r := ask(t, addr, pupilClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("blocked answer outlived its rule: %s", dns.RcodeToString[r.Rcode])
	}
}

func TestPackedAnswerForAdmittedVisitorIsNotAnsweredToOthers(t *testing.T) {
	up := startUpstream(t)
	var mu sync.Mutex
	admitted := map[netip.Addr]bool{netip.MustParseAddr(visitorClient): true}
	other := "127.0.0.5"
	_, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr},
		Admitted: func(ip netip.Addr, _ net.HardwareAddr) bool { mu.Lock(); defer mu.Unlock(); return admitted[ip] },
		Segments: []SegmentPolicy{{Name: "visitor", Subnet: netip.MustParsePrefix("127.0.0.4/31"), Portal: true}}})
	for range 2 {
		if r := ask(t, addr, visitorClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("admitted visitor: %s", dns.RcodeToString[r.Rcode])
		}
	}
	if r := ask(t, addr, other, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("a visitor not admitted got the cached answer: %s", dns.RcodeToString[r.Rcode])
	}
	mu.Lock()
	delete(admitted, netip.MustParseAddr(visitorClient))
	mu.Unlock()
	if r := ask(t, addr, visitorClient, "udp", "school.example", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("an evicted visitor still got the cached answer: %s", dns.RcodeToString[r.Rcode])
	}
}

func TestWireHelpers(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeAAAA)
	m.SetEdns0(1400, true)
	b, _ := m.Pack()
	q, ok := parseQuery(b)
	if !ok || q.qtype != dns.TypeAAAA || !q.edns || q.udpSize != 1400 || !q.do || !q.rd {
		t.Fatalf("parseQuery %+v %v", q, ok)
	}
	b[2] |= 0x80 // a response is not a query
	if _, ok := parseQuery(b); ok {
		t.Fatal("parseQuery took a response")
	}
	out := refusedWire(make([]byte, 0, 512), append([]byte(nil), b[:headerLen+len(q.qname)+4]...), len(q.qname))
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil || r.Rcode != dns.RcodeRefused || !r.Response || len(r.Question) != 1 {
		t.Fatalf("refusedWire: %v %v", r, err)
	}
	// IPv6: the same in6_pktinfo carries the address both ways.
	v6 := netip.MustParseAddr("2001:db8::1")
	if got := destination(sourceOOB(make([]byte, 64), v6)); got != v6 {
		t.Errorf("IPV6_PKTINFO round trip %v -> %v", v6, got)
	}
	// IPv4: the answer's source goes in ipi_spec_dst.
	oob := sourceOOB(make([]byte, 64), netip.MustParseAddr("10.1.2.3"))
	if !bytes.Contains(oob, []byte{10, 1, 2, 3}) || len(oob) != 32 {
		t.Errorf("IP_PKTINFO control message % x", oob)
	}
}

// The hit log is bounded: a full buffer drops and counts, and a Recorder
// that panics on a cached answer is recovered off the path as on it.
func TestHitLogIsBoundedAndSurvivesPanics(t *testing.T) {
	g, err := New(Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}, Recorder: panicRecorder{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &packedEntry{name: "panic.example", action: Forwarded}
	for range hitLogSize + 5 {
		g.hitLog.add(hitNote{at: time.Now(), client: netip.MustParseAddr("10.0.0.1"), e: e})
	}
	if s := g.Stats(); s.LogDropped != 5 {
		t.Errorf("dropped %d past a buffer of %d, want 5", s.LogDropped, hitLogSize)
	}
	g.flushHits()
	if s := g.Stats(); s.Panics != hitLogSize {
		t.Errorf("%d panics recovered, want %d", s.Panics, hitLogSize)
	}
	g.hitLog.add(hitNote{client: netip.MustParseAddr("10.0.0.1"), e: e})
	if s := g.Stats(); s.LogDropped != 5 {
		t.Errorf("the buffer was not emptied by the flush: %+v", s)
	}
}

type panicRecorder struct{}

func (panicRecorder) Record(Query) { panic("injected") }

// The batched loop answers a hit without allocating too: recvmmsg of the
// query, the patch, sendmmsg of the answer.
func TestBatchedHitAllocatesNothing(t *testing.T) {
	w, pkt, _ := hitRig(t)
	b, err := newBatchIO(w.conn)
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(pupilClient)}, w.conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	reply := make([]byte, 512)
	got := 0
	round := func() {
		if _, err := client.Write(pkt); err != nil {
			t.Fatal(err)
		}
		n, err := b.recv()
		if err != nil || n != 1 {
			t.Fatalf("recv %d, %v", n, err)
		}
		p, oob, from, _ := b.datagram(0)
		ans, ok := w.answer(p, oob, from, b.slot(), w.g.now())
		if !ok || ans == nil {
			t.Fatal("miss")
		}
		b.queue(ans, 0, oob)
		b.flush(w.conn)
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err = client.Read(reply); err != nil {
			t.Fatal(err)
		}
	}
	round()
	if r := new(dns.Msg); r.Unpack(reply[:got]) != nil || answers(r) != "192.0.2.10" {
		t.Fatalf("batched answer %v", r)
	}
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Errorf("%.1f allocations per batched hit, want 0", allocs)
	}
}

// Forwarded UDP queries share an upstream socket, each answer reaching
// the query it belongs to, and the socket is replaced every upstreamUses
// queries so the source port keeps changing.
func TestForwardedQueriesShareRotatingUpstreamSockets(t *testing.T) {
	up := startUpstream(t)
	_, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, CacheSize: -1, ClientQPS: -1})
	const n = 3 * upstreamUses
	var wg sync.WaitGroup
	errs := make(chan string, n)
	// 16 clients at once, each asking in turn: many queries share a
	// socket at the same time, without a burst the kernel would drop.
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Timeout: 10 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(staffClient)}}}
			for i := w; i < n; i += 16 {
				name, want := "school.example.", "192.0.2.10"
				if i%2 == 1 {
					name, want = "www.google.com.", "192.0.2.99"
				}
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				r, _, err := c.Exchange(m, addr)
				if err != nil {
					errs <- err.Error()
					return
				}
				if got := answers(r); got != want {
					errs <- name + " answered " + got + " " + dns.RcodeToString[r.Rcode]
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	up.mu.Lock()
	ports := len(up.ports)
	up.mu.Unlock()
	if ports < 3 || ports > n/10 {
		t.Errorf("%d queries came from %d upstream sockets, want about %d", n, ports, n/upstreamUses)
	}
}

type countRecorder struct{ n int }

func (r *countRecorder) Record(Query) { r.n++ }

// Every cached hit is recorded; inspection is told of an answer to a
// client again only once the second since it was last told has passed.
func TestHitLogTellsAnswersOncePerClientAndSecond(t *testing.T) {
	rec := &countRecorder{}
	told := map[netip.Addr]int{}
	g, err := New(Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}, Recorder: rec,
		Answers: func(client netip.Addr, _, _ string, _ time.Time) { told[client]++ }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &packedEntry{name: "often.example", summary: "192.0.2.7", action: Forwarded}
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for _, n := range []hitNote{{at: t0, client: a, e: e}, {at: t0.Add(100 * time.Millisecond), client: a, e: e},
		{at: t0.Add(200 * time.Millisecond), client: b, e: e}, {at: t0.Add(300 * time.Millisecond), client: a, e: e},
		{at: t0.Add(1500 * time.Millisecond), client: a, e: e}} {
		g.hitLog.add(n)
	}
	g.flushHits()
	if rec.n != 5 {
		t.Errorf("%d hits recorded, want all 5", rec.n)
	}
	if told[a] != 3 || told[b] != 1 {
		t.Errorf("Answers told %v; want a 3 times (first, after b, after the second), b once", told)
	}
}

// A query that was handed the last use of an upstream socket keeps it
// until its exchange ends, even when the next query retires the socket
// before the first has sent anything: closing it then answered a healthy
// upstream's query SERVFAIL.
func TestRetiredUpstreamSocketServesTheQueriesHoldingIt(t *testing.T) {
	up := startUpstream(t)
	g, err := New(Config{Upstreams: []netip.AddrPort{up.addr}, CacheSize: -1, ClientQPS: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.closePools)
	ctx := t.Context()
	p := g.pool(up.addr)
	held, err := p.sock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range upstreamUses - 1 {
		s, err := p.sock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s != held {
			t.Fatal("a socket was replaced before its uses ran out")
		}
		s.release()
	}
	q := new(dns.Msg)
	q.SetQuestion("school.example.", dns.TypeA)
	// The next query finds the socket used up and retires it.
	if r, err := p.exchangeUDP(ctx, q, 5*time.Second); err != nil || answers(r) != "192.0.2.10" {
		t.Fatalf("query on the new socket: %v %v", r, err)
	}
	r, err := held.exchange(ctx, q, 5*time.Second)
	if err != nil || answers(r) != "192.0.2.10" {
		t.Fatalf("query holding the retired socket: %v %v", r, err)
	}
	held.release()
	held.mu.Lock()
	closed := held.closed
	held.mu.Unlock()
	if !closed {
		t.Error("the retired socket stayed open after its last query")
	}
}

// TestPackedCacheSets holds the packed cache to its bound and its choices:
// a key stored again replaces its entry, a full set gives up the entry
// stored longest ago, an expired entry is not answered, and readers see
// whole entries while a writer fills the sets (go test -race).
func TestPackedCacheSets(t *testing.T) {
	c := newPackedCache(16) // two sets of eight
	if len(c.sets) != 2 {
		t.Fatalf("%d sets for 16 entries", len(c.sets))
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	key := func(i int) []byte { return []byte{byte(i >> 8), byte(i), 'k'} }
	put := func(i int, at time.Time) *packedEntry {
		e := &packedEntry{stored: at, expires: at.Add(time.Hour), name: string(key(i))}
		c.put(key(i), e)
		return e
	}
	for i := range 200 {
		put(i, t0.Add(time.Duration(i)*time.Second))
	}
	if n := c.len(); n != 16 {
		t.Errorf("%d entries after 200 puts into 16 ways", n)
	}
	now := t0.Add(300 * time.Second)
	found := 0
	for i := 184; i < 200; i++ {
		if c.get(key(i), now) != nil {
			found++
		}
	}
	// The newest eight of each set are the ones kept; the newest 16 keys
	// spread over the two sets by hash, so at least eight are among them.
	if found < 8 {
		t.Errorf("%d of the 16 newest keys kept", found)
	}
	if e := c.get(key(199), now); e == nil || e.name != string(key(199)) {
		t.Fatalf("newest key: %+v", e)
	}
	again := put(199, now)
	if c.get(key(199), now) != again || c.len() != 16 {
		t.Errorf("a key stored again: got %p want %p, %d entries", c.get(key(199), now), again, c.len())
	}
	if c.get(key(199), now.Add(2*time.Hour)) != nil {
		t.Error("an expired entry was answered")
	}
	if c.get([]byte("absent"), now) != nil {
		t.Error("an absent key was answered")
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 64 {
					if e := c.get(key(i), now); e != nil && e.name != string(key(i)) {
						t.Errorf("key %d answered with %q", i, e.name)
						return
					}
				}
			}
		}()
	}
	for r := range 50 {
		for i := range 64 {
			put(i, now.Add(time.Duration(r)*time.Millisecond))
		}
	}
	close(stop)
	wg.Wait()
}
