package inspect

import (
	"fmt"
	"strings"

	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// DNS-over-HTTPS to a resolver that is on no list has no name to give it
// away, but it has a shape: an HTTP/2 connection carrying small requests,
// each answered by a small response. Ordinary HTTP/2 to a web server
// sooner or later sends a response bigger than any DNS answer. The shape
// alone is not enough (chatty APIs look alike), so it is only watched for
// where something else already points at DNS: a handshake without a server
// name to an address the client never resolved, a server name the client
// never looked up through the school's resolver although its lookups are
// otherwise seen, or a server name that says "dns" or "doh".
const (
	// dohMaxQuery and dohMaxAnswer bound the TLS records of a DoH
	// exchange: an HTTP/2 HEADERS+DATA pair carrying one DNS message,
	// padded as RFC 8467 recommends (queries to 128 bytes, answers to 468).
	dohMaxQuery  = 700
	dohMaxAnswer = 1400
	// dohTurns is how many request/response turns it takes, counting the
	// first turn after the handshake, which carries session tickets and
	// HTTP/2 settings. A server name that speaks of DNS needs fewer; one
	// oversized answer (DNSSEC, a long TXT) is forgiven only after many.
	dohTurns        = 4
	dohTurnsDNSName = 3
	dohTurnsLarge   = 8
	// dohInspectFactor stretches the inspection limits of a watched flow:
	// eight turns with their ACKs do not fit in the default 40 packets.
	dohInspectFactor = 4
)

// Why a flow is watched for the DoH shape.
const (
	dohWhyNone uint8 = iota
	dohWhyNoSNI
	dohWhyUnresolved
	dohWhyDNSName
)

// dohShape follows the application-data records of a watched TLS flow.
type dohShape struct {
	watch   bool
	started bool  // the client has sent its first application-data record
	lastDir uint8 // direction of the previous record
	exch    uint8 // server records following client records
	large   uint8 // records too big for one DNS message
	maxQ    uint16
	maxA    uint16
}

// record takes one TLS record header. Records before the client's first
// application-data record (its Finished under TLS 1.3) are the handshake,
// whose encrypted certificate records are large by nature.
func (s *dohShape) record(dir int, typ uint8, l uint16) {
	if !s.watch || typ != 23 {
		return
	}
	if !s.started {
		if dir == dirC2S {
			s.started = true
			s.lastDir = dirC2S
		}
		return
	}
	limit := dohMaxQuery
	if dir == dirS2C {
		limit = dohMaxAnswer
	}
	if int(l) > limit {
		// One oversized answer (DNSSEC, a long TXT) is tolerated; web
		// content is not.
		s.large++
		if s.large > 1 {
			s.watch = false
		}
		return
	}
	if dir == dirS2C {
		s.maxA = max(s.maxA, l)
		if s.lastDir == dirC2S && s.exch < 255 {
			s.exch++
		}
	} else {
		s.maxQ = max(s.maxQ, l)
	}
	s.lastDir = uint8(dir)
}

// armDoH starts watching an undecided TLS flow that offers HTTP/2 for the
// DoH shape when there is reason to.
func (e *Engine) armDoH(f *flow, h *tlshello.ClientHello, sni string) {
	if !h.HasALPN("h2") {
		return
	}
	_, resolvedAddr := e.res.nameOf(f.client, f.server, f.last)
	why := dohWhyNone
	switch {
	case dnsLikeName(sni):
		why = dohWhyDNSName
	case resolvedAddr:
		return // the client was given this address by a lookup
	case sni == "":
		why = dohWhyNoSNI
	case e.res.covered(f.client, f.last) && !e.res.looked(f.client, sni, f.last):
		why = dohWhyUnresolved
	default:
		return
	}
	f.tlsRecs.doh.watch = true
	f.dohWhy = why
	f.dohSNI = sni
}

// dnsLikeName reports a server name whose host part (what comes before
// the registered domain) names DNS: dns.example.net, doh.example.org,
// rdns.example.com. The registered domain itself is not looked at, so that
// hosts under dynamic-DNS providers (x.duckdns.org) do not count.
func dnsLikeName(name string) bool {
	_, sub := splitRegistered(name)
	for sub != "" {
		label, rest, _ := strings.Cut(sub, ".")
		if strings.Contains(label, "dns") || strings.HasPrefix(label, "doh") {
			return true
		}
		sub = rest
	}
	return false
}

// checkDoHShape raises doh:unknown once a watched flow has shown enough
// small request/response turns.
func (e *Engine) checkDoHShape(f *flow) {
	s := &f.tlsRecs.doh
	need := dohTurns
	if f.dohWhy == dohWhyDNSName {
		need = dohTurnsDNSName
	}
	if s.large > 0 {
		need = dohTurnsLarge
	}
	if !s.watch || int(s.exch) < need {
		return
	}
	var why string
	switch f.dohWhy {
	case dohWhyNoSNI:
		why = "TLS without SNI, ALPN h2, to an address the client never resolved"
	case dohWhyUnresolved:
		why = "TLS with ALPN h2 under sni=" + f.dohSNI + ", a name the client never looked up through the school's resolver"
	default:
		why = "TLS with ALPN h2 under sni=" + f.dohSNI + ", a name for a DNS service"
	}
	if f.dohWhy != dohWhyNoSNI {
		e.learnDoH(f.dohSNI)
	}
	e.raiseAs(f, Likely, ClassDoH, "doh:unknown", fmt.Sprintf("%s; %d small request/response turns (requests up to %d bytes, answers up to %d), the shape of DNS-over-HTTPS",
		why, s.exch, s.maxQ, s.maxA))
}
