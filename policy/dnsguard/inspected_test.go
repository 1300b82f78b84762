package dnsguard

import (
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
