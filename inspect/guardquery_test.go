package inspect

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// guardAddr is the router's address its DNS guard answers a segment from.
var guardAddr = netip.MustParseAddr("10.20.0.1")

// guardQueries are what a pupil sends the guard, bypass-looking and not:
// an iodine-style stream of NULL queries for encoded subdomains, one long
// encoded label, a DNSCrypt certificate, a VPN and a DoH resolver name, and
// ordinary lookups.
func guardQueries() []GuardQuery {
	var qs []GuardQuery
	add := func(name string, typ layers.DNSType) {
		qs = append(qs, GuardQuery{Time: t0.Add(time.Duration(len(qs)) * time.Millisecond), Client: pupil, ClientPort: uint16(40000 + len(qs)),
			MAC: macClient, Server: guardAddr, Name: name, Type: uint16(typ)})
	}
	add("www.bbc.co.uk", layers.DNSTypeA)
	for i := range 12 {
		add(fmt.Sprintf("0%cr7vq2x4k9mz3tb8.t.pirate.sea", 'a'+i), layers.DNSTypeNULL)
	}
	add("h4sicn03k2qaa3rlc3qudhh0aavjycxwakjhmzqxnjy0yjm0y2q4ndblzjk1zme5.exfil.example", layers.DNSTypeA)
	add("2.dnscrypt-cert.example.net", layers.DNSTypeTXT)
	add("api.nordvpn.com", layers.DNSTypeA)
	add("doh.mullvad.net", layers.DNSTypeA)
	add("www.example.com", layers.DNSTypeAAAA)
	return qs
}

// guardQueryFrame is q as the capture saw it before the guard handed it
// over: a datagram from the client's MAC to port 53 of the guard.
func guardQueryFrame(t *testing.T, q GuardQuery) []byte {
	d := &layers.DNS{ID: q.ClientPort, RD: true,
		Questions: []layers.DNSQuestion{{Name: []byte(q.Name), Type: layers.DNSType(q.Type), Class: layers.DNSClassIN}}}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	return frame(t, pktSpec{src: q.Client, dst: q.Server, udp: true, sport: q.ClientPort, dport: 53, payload: buf.Bytes()})
}

// TestGuardQueryJudgedAsCaptured: a query the DNS guard hands over
// (Engine.GuardQuery) raises exactly what the same query read off the wire
// raised, with the same thresholds and repeat window: the iodine-style
// tunnel (a bypass-looking query to the guard) is still flagged, naming
// the client, its MAC and the guard, once the capture no longer carries
// the query. Without the hand-off nothing is flagged: the test fails on a
// daemon that filters the guard's queries out but forgets to hand them on.
func TestGuardQueryJudgedAsCaptured(t *testing.T) {
	opt := Options{InsideSubnets: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}
	var wire, handed []Finding
	we := collect(opt, &wire)
	he := collect(opt, &handed)
	for _, q := range guardQueries() {
		b := guardQueryFrame(t, q)
		we.HandlePacket(b, ci(q.Time, len(b)))
		he.GuardQuery(q)
	}
	if len(wire) == 0 {
		t.Fatal("the wire path flagged nothing: the scenario tests nothing")
	}
	tunnels := 0
	for _, f := range handed {
		if f.Class == ClassTunnel {
			tunnels++
			if f.SrcIP != pupil || f.SrcMAC.String() != macClient.String() || f.DstIP != guardAddr || f.DstPort != 53 || f.Proto != "udp" {
				t.Errorf("tunnel finding does not name the client and the guard: %v", f)
			}
		}
	}
	if tunnels == 0 {
		t.Errorf("a tunnel through the guard was not flagged from the handed-over queries: %v", handed)
	}
	if len(handed) != len(wire) {
		t.Fatalf("handed over: %d findings, off the wire: %d\nhanded: %v\nwire: %v", len(handed), len(wire), handed, wire)
	}
	for i := range wire {
		w, h := wire[i], handed[i]
		if w.Class != h.Class || w.Detail != h.Detail || w.Evidence != h.Evidence || w.Confidence != h.Confidence ||
			w.SrcIP != h.SrcIP || w.DstIP != h.DstIP || w.DstPort != h.DstPort || !w.Time.Equal(h.Time) {
			t.Errorf("finding %d: handed over %v, off the wire %v", i, h, w)
		}
	}
}

// TestGuardQueryDoesNotAllocateForAnOrdinaryName: the hand-over is on the
// guard's path (the hit log's flush) for every query a school asks.
func TestGuardQueryDoesNotAllocateForAnOrdinaryName(t *testing.T) {
	e := NewEngine(Options{InsideSubnets: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}})
	q := GuardQuery{Time: t0, Client: pupil, ClientPort: 40000, MAC: macClient, Server: guardAddr, Name: "www.example.com", Type: 1}
	e.GuardQuery(q) // the registered domain's tunnel counters
	if n := testing.AllocsPerRun(100, func() { e.GuardQuery(q) }); n != 0 {
		t.Errorf("%v allocations per handed-over query", n)
	}
}

// BenchmarkGuardQuery is the hand-over's cost per ordinary query, which
// the daemon pays for every query the guard reads.
func BenchmarkGuardQuery(b *testing.B) {
	e := NewEngine(Options{InsideSubnets: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}})
	q := GuardQuery{Time: t0, Client: pupil, ClientPort: 40000, MAC: macClient, Server: guardAddr, Name: "www.example.com", Type: 1}
	b.ReportAllocs()
	for b.Loop() {
		e.GuardQuery(q)
	}
}
