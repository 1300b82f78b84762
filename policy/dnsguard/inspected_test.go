package dnsguard

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// inspectedLog collects what the guard hands to Config.Queries.
type inspectedLog struct {
	mu  sync.Mutex
	got []Inspected
}

func (l *inspectedLog) add(q Inspected) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, q)
}

// wait waits up to two seconds (the hit log hands cached answers' queries
// on a few milliseconds late) for n queries and returns their names.
func (l *inspectedLog) wait(n int) []Inspected {
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		l.mu.Lock()
		got := slices.Clone(l.got)
		l.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
	}
}

// TestGuardHandsEveryUDPQueryToInspection: inspection no longer reads the
// guard's clients' queries off the wire, so every UDP query with a question
// is handed to Config.Queries, parsed, whatever became of it: forwarded,
// answered from the packed cache (through the hit log), blocked, over the
// client's rate (both ways a refusal is made), in a type the guard has no
// name for; over TCP (which the capture still reads) nothing is handed on.
func TestGuardHandsEveryUDPQueryToInspection(t *testing.T) {
	up := startUpstream(t)
	var log inspectedLog
	_, addr := startGuard(t, Config{Upstreams: []netip.AddrPort{up.addr}, BlockedNames: []string{"nordvpn.com"},
		ClientQPS: 3, Queries: log.add})
	ask(t, addr, pupilClient, "udp", "School.Example", dns.TypeA, false) // forwarded
	ask(t, addr, pupilClient, "udp", "school.example", dns.TypeA, true)  // a packed-cache hit
	ask(t, addr, pupilClient, "udp", "x.nordvpn.com", dns.TypeA, false)  // blocked
	ask(t, addr, staffClient, "udp", "aGVsbG8gd29ybGQ.t.example", 65399, false)
	ask(t, addr, staffClient, "tcp", "tcp.example", dns.TypeA, false)
	// Over the pupil's rate (3 a second, 6 in a burst): REFUSED, from the
	// packed cache and the long way.
	for range 4 {
		ask(t, addr, pupilClient, "udp", "school.example", dns.TypeA, false)
	}
	r := ask(t, addr, pupilClient, "udp", "over.example", dns.TypeTXT, false)
	if r.Rcode != dns.RcodeRefused {
		t.Fatalf("the pupil's query over its rate: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	want := []string{"agvsbg8gd29ybgq.t.example", "over.example", "x.nordvpn.com"}
	for range 6 {
		want = append(want, "school.example")
	}
	slices.Sort(want)
	got := log.wait(len(want))
	var names []string
	for _, q := range got {
		names = append(names, q.Name)
		if q.ClientPort == 0 || q.Time.IsZero() {
			t.Errorf("%+v: want the client's port and a time", q)
		}
		want := "pupil"
		if q.Client == netip.MustParseAddr(staffClient) {
			want = "staff"
		}
		if q.Segment != want {
			t.Errorf("%s from %s handed on for segment %q, want %q", q.Name, q.Client, q.Segment, want)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("handed on %q, want %q", names, want)
	}
	for _, q := range got {
		switch q.Name {
		case "agvsbg8gd29ybgq.t.example":
			if q.Type != 65399 {
				t.Errorf("private-use query handed on as type %d", q.Type)
			}
		case "over.example":
			if q.Type != dns.TypeTXT {
				t.Errorf("TXT query handed on as type %d", q.Type)
			}
		}
	}
}

// TestGuardKeepsRedirectedQueriesFromInspection: queries that come in on
// Config.RedirectedListen (the kernel's redirect of queries to other
// resolvers) are answered exactly as on Listen, from the same caches and
// into the same query log, but none is handed to Config.Queries (the
// capture still reads them), whatever became of it; the same queries on
// the guard's own port still are.
func TestGuardKeepsRedirectedQueriesFromInspection(t *testing.T) {
	up := startUpstream(t)
	var log inspectedLog
	rec := &recorder{}
	g, err := New(Config{Upstreams: []netip.AddrPort{up.addr}, BlockedNames: []string{"nordvpn.com"}, ClientQPS: 3,
		Queries: log.add, Recorder: rec, Segments: []SegmentPolicy{
			{Name: "pupil", Subnet: netip.MustParsePrefix(pupilClient + "/32")},
			{Name: "staff", Subnet: netip.MustParsePrefix(staffClient + "/32")},
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var conns []*net.UDPConn
	for range 2 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	own, redirected := conns[0].LocalAddr().String(), conns[1].LocalAddr().String()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.serve(ctx, conns[:1], conns[1:], nil, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	if r := ask(t, redirected, pupilClient, "udp", "School.Example", dns.TypeA, false); len(r.Answer) == 0 { // forwarded
		t.Fatalf("redirected query not answered: %v", r)
	}
	ask(t, redirected, pupilClient, "udp", "school.example", dns.TypeA, true) // a packed-cache hit
	if r := ask(t, redirected, pupilClient, "udp", "x.nordvpn.com", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("blocked name over the redirected port: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	ask(t, redirected, staffClient, "udp", "aGVsbG8gd29ybGQ.t.example", 65399, false)
	for range 4 {
		ask(t, redirected, pupilClient, "udp", "school.example", dns.TypeA, false)
	}
	if r := ask(t, redirected, pupilClient, "udp", "over.example", dns.TypeTXT, false); r.Rcode != dns.RcodeRefused {
		t.Errorf("the pupil's query over its rate on the redirected port: %s, want REFUSED (the same limit)", dns.RcodeToString[r.Rcode])
	}
	// The staff client asks the guard itself: handed on.
	ask(t, own, staffClient, "udp", "aGVsbG8gd29ybGQ.t.example", 65399, false)
	ask(t, own, staffClient, "udp", "other.example", dns.TypeA, false)
	got := log.wait(3) // waits out the hit log: a third would be one too many
	var names []string
	for _, q := range got {
		names = append(names, q.Name)
	}
	slices.Sort(names)
	if want := []string{"agvsbg8gd29ybgq.t.example", "other.example"}; !slices.Equal(names, want) {
		t.Errorf("handed on %q, want only the queries to the guard's own port %q", names, want)
	}
	rec.mu.Lock()
	logged := len(rec.got)
	rec.mu.Unlock()
	// school (forwarded, cached x5), nordvpn, tunnel name x2, other.
	if logged < 9 {
		t.Errorf("%d queries in the query log, want the redirected ones too (9)", logged)
	}
}
