package inspect

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestResolutionsRemembersWhatEachClientWasTold(t *testing.T) {
	r := NewResolutions(ResolutionsConfig{})
	other := netip.MustParseAddr("10.20.0.6")
	a := netip.MustParseAddr("198.51.100.9")
	r.NoteAnswer(pupil, "Dns.Example-Resolver.NET.", "cname edge.example.net 198.51.100.9 2001:db8::9 AAAA", t0)

	if name, ok := r.nameOf(pupil, a, t0.Add(time.Minute)); !ok || name != "dns.example-resolver.net" {
		t.Errorf("nameOf(pupil) = %q, %v", name, ok)
	}
	if name, ok := r.nameOf(pupil, netip.MustParseAddr("2001:db8::9"), t0); !ok || name != "dns.example-resolver.net" {
		t.Errorf("nameOf(pupil, v6) = %q, %v", name, ok)
	}
	if _, ok := r.nameOf(other, a, t0); ok {
		t.Error("another client's lookup must not count")
	}
	if _, ok := r.nameOf(pupil, a, t0.Add(2*time.Hour)); ok {
		t.Error("a lookup older than Keep must not count")
	}
	if !r.looked(pupil, "dns.example-resolver.net", t0) || r.looked(pupil, "edge.example.net", t0) {
		t.Error("looked must know the asked name and only it")
	}
	// An IPv4-mapped client or address is the same host.
	if _, ok := r.nameOf(netip.AddrFrom16(pupil.As16()), netip.AddrFrom16(a.As16()), t0); !ok {
		t.Error("IPv4-mapped forms must match")
	}
}

func TestResolutionsCoverageNeedsWarmup(t *testing.T) {
	r := NewResolutions(ResolutionsConfig{Warmup: 5 * time.Minute, Keep: 30 * time.Minute})
	r.NoteAnswer(pupil, "example.org", "NXDOMAIN", t0)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{time.Minute, false},      // too soon to trust an absence
		{6 * time.Minute, true},   // seen long enough
		{40 * time.Minute, false}, // silent for longer than Keep
	} {
		if got := r.covered(pupil, t0.Add(tc.at)); got != tc.want {
			t.Errorf("covered at +%v = %v, want %v", tc.at, got, tc.want)
		}
	}
	// A client that comes back after a long silence starts its warm-up
	// again.
	r.NoteAnswer(pupil, "example.org", "", t0.Add(2*time.Hour))
	if r.covered(pupil, t0.Add(2*time.Hour+time.Minute)) {
		t.Error("coverage must restart after a silence longer than Keep")
	}
}

func TestResolutionsStayBounded(t *testing.T) {
	const max = 64
	r := NewResolutions(ResolutionsConfig{MaxEntries: max})
	for i := range 10000 {
		c := netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)})
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		r.Note(c, fmt.Sprintf("host%d.example", i), []netip.Addr{a}, t0)
	}
	for name, n := range map[string]int{"addrs": r.addrs.len(), "names": r.names.len(), "clients": r.clients.len()} {
		if n > 2*max {
			t.Errorf("%s holds %d entries, bound is %d", name, n, 2*max)
		}
	}
	// The most recent entries survive.
	last := netip.AddrFrom4([4]byte{10, 20, byte(9999 >> 8), byte(9999 & 0xff)})
	if _, ok := r.nameOf(last, netip.AddrFrom4([4]byte{198, 51, 100, byte(9999 & 0xff)}), t0); !ok {
		t.Error("the newest entry was dropped")
	}
}

// TestResolutionsConcurrentUse feeds one Resolutions from several
// goroutines while others read it, as the DNS guard and the capture
// engines do; run with -race to make it mean something.
func TestResolutionsConcurrentUse(t *testing.T) {
	r := NewResolutions(ResolutionsConfig{MaxEntries: 128})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 500 {
				r.NoteAnswer(pupil, fmt.Sprintf("h%d-%d.example", g, i), fmt.Sprintf("198.51.100.%d", i%250), t0)
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 500 {
				r.nameOf(pupil, netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 250)}), t0)
				r.covered(pupil, t0)
				r.looked(pupil, "h0-1.example", t0)
			}
		}()
	}
	wg.Wait()
}

// TestEngineLearnsAnswersFromTheWire shows a DNS answer seen in the capture
// becoming evidence for a later handshake without SNI.
func TestEngineLearnsAnswersFromTheWire(t *testing.T) {
	var got []Finding
	e := collect(Options{}, &got)
	resolver := netip.MustParseAddr("192.0.2.53")
	q := dnsMessage(t, 0x1234, "dns.nextdns.io", false, nil)
	a := dnsMessage(t, 0x1234, "dns.nextdns.io", true, []netip.Addr{server})
	for i, p := range []pktSpec{
		{src: pupil, dst: resolver, sport: 50000, dport: 53, udp: true, payload: q},
		{src: resolver, dst: pupil, sport: 53, dport: 50000, udp: true, payload: a, srcMAC: macRouter, dstMAC: macClient},
	} {
		b := frame(t, p)
		e.HandlePacket(b, ci(t0.Add(time.Duration(i)*time.Millisecond), len(b)))
	}
	if name, ok := e.res.nameOf(pupil, server, t0); !ok || name != "dns.nextdns.io" {
		t.Fatalf("nameOf after a DNS answer on the wire = %q, %v", name, ok)
	}
	got = got[:0] // the query to an outside resolver is a finding of its own
	playOn(t, e, false, 443, tlsConversation(t, tlsHello(t, "", "h2"), 0, 0, 0))
	if len(got) != 1 || got[0].Class != ClassDoH || got[0].Detail != "doh:nextdns" {
		t.Fatalf("findings = %v, want doh:nextdns from the resolved name", got)
	}
}

// TestResetKeepsSharedResolutions: replay resets an engine between files,
// which must forget what it learnt itself but not what other engines and
// the DNS guard share with it.
func TestResetKeepsSharedResolutions(t *testing.T) {
	shared := NewResolutions(ResolutionsConfig{})
	withShared, private := NewEngine(Options{Resolutions: shared}), NewEngine(Options{})
	for _, e := range []*Engine{withShared, private} {
		e.NoteResolution(pupil, "example.org", []netip.Addr{server}, t0)
		e.Reset()
	}
	if _, ok := shared.nameOf(pupil, server, t0); !ok {
		t.Error("Reset cleared a shared Resolutions")
	}
	if _, ok := private.res.nameOf(pupil, server, t0); ok {
		t.Error("Reset kept a private Resolutions")
	}
}

// The engine's copy of a lookup the guard has just noted changes nothing;
// a new address for the name, or the same lookup a while later, does.
func TestResolutionsNotingAgainWithinTheGrain(t *testing.T) {
	r := NewResolutions(ResolutionsConfig{})
	client := netip.MustParseAddr("10.1.0.5")
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	r.NoteAnswer(client, "Example.ORG.", "192.0.2.1 cname x.example.org", t0)
	r.note(client, "example.org", []netip.Addr{a1}, t0.Add(-3*time.Millisecond), true)
	if n, ok := r.nameOf(client, a1, t0); !ok || n != "example.org" {
		t.Fatalf("nameOf %v = %q, %v", a1, n, ok)
	}
	r.note(client, "example.org", []netip.Addr{a1, a2}, t0.Add(10*time.Millisecond), true)
	if n, ok := r.nameOf(client, a2, t0); !ok || n != "example.org" {
		t.Fatalf("an address first given within the grain was not noted: %q, %v", n, ok)
	}
	later := t0.Add(2 * time.Second)
	r.Note(client, "example.org", []netip.Addr{a1}, later)
	r.mu.Lock()
	got := r.names.cur[nameKey{client, "example.org"}]
	r.mu.Unlock()
	if !got.Equal(later) {
		t.Fatalf("noted again after the grain: the name's time is %v, want %v", got, later)
	}
}

func TestNoteAnswerFields(t *testing.T) {
	r := NewResolutions(ResolutionsConfig{})
	client := netip.MustParseAddr("10.1.0.6")
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	r.NoteAnswer(client, "v6.example", "  AAAA\t2001:db8::1  cname 1e100.net 198.51.100.7\n", t0)
	for _, a := range []string{"2001:db8::1", "198.51.100.7"} {
		if n, ok := r.nameOf(client, netip.MustParseAddr(a), t0); !ok || n != "v6.example" {
			t.Errorf("nameOf %s = %q, %v", a, n, ok)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { r.NoteAnswer(client, "v6.example", "2001:db8::1 198.51.100.7", t0) }); allocs != 0 {
		t.Errorf("NoteAnswer of a lookup just noted allocates %v times", allocs)
	}
}
