package inspect

import (
	"fmt"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// inspectDNS looks at queries for names that give a bypass away (VPN and
// DoH service names, DNSCrypt certificate lookups) and feeds the tunnel
// tracker. Each query is usually its own UDP flow, so the per-domain state
// lives in the tracker, not in the flow.
func (e *Engine) inspectDNS(f *flow, dir int, b []byte) {
	if err := e.dns.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		e.stats.Malformed++
		if dir == dirC2S {
			e.finish(f)
		}
		return
	}
	if dir == dirS2C {
		e.learnAnswer(f)
		return
	}
	if e.dns.QR || len(e.dns.Questions) == 0 {
		return
	}
	q := e.dns.Questions[0]
	// A view of the decoder's buffer, valid for this call: what keeps the
	// name (the tunnel tracker's table, evidence) copies it.
	name := strings.ToLower(strings.TrimSuffix(bytesView(q.Name), "."))
	e.dnsQuery(f, name, q.Type)
}

// dnsQuery judges one query for name (lower case, no trailing dot) on f:
// the checks every query gets, whether the engine read it off the wire or
// the router's DNS guard handed it over (GuardQuery).
func (e *Engine) dnsQuery(f *flow, name string, qtype layers.DNSType) {
	switch {
	case strings.HasPrefix(name, "2.dnscrypt-cert."):
		e.raiseAs(f, Likely, ClassDoH, "dnscrypt", "DNS query for a DNSCrypt resolver certificate "+name)
		return
	}
	if p, ok := lookupSuffix(vpnNames, name); ok {
		e.raiseAs(f, Likely, ClassVPN, p, "DNS query for a VPN service name "+name)
		return
	}
	if p, ok := lookupSuffix(dohNames, name); ok && dohOnlyName(name) {
		e.raiseAs(f, Likely, ClassDoH, "doh:"+p, "DNS query for a DNS-over-HTTPS resolver name "+name)
		return
	}
	if ev := e.dnsTun.query(name, qtype); ev != "" {
		e.raiseAs(f, Likely, ClassTunnel, "dns-tunnel", ev)
	}
}

// dnsTunnelTracker keeps per-domain counters bounded in number; when full
// it starts over, which only delays detection of a tunnel.
type dnsTunnelTracker struct {
	max  int
	doms map[string]*domStat
}

type domStat struct {
	uniques  map[uint64]struct{}
	encoded  int // queries with a long, encoded-looking subdomain
	odd      int // NULL/TXT/PRIVATE-type queries with a long subdomain
	reported bool
}

func newDNSTunnelTracker(max int) *dnsTunnelTracker {
	return &dnsTunnelTracker{max: max, doms: make(map[string]*domStat)}
}

// query records one query and returns evidence once the domain looks like
// a tunnel endpoint.
func (t *dnsTunnelTracker) query(name string, qtype layers.DNSType) string {
	dom, sub := splitRegistered(name)
	if sub == "" || strings.HasPrefix(sub, "_") {
		return ""
	}
	longest := ""
	for rest := sub; ; {
		l := rest
		i := strings.IndexByte(rest, '.')
		if i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		}
		if len(l) > len(longest) {
			longest = l
		}
		if i < 0 {
			break
		}
	}
	enc := encodedLabel(longest)
	// One label this long and this random carries data: 52 characters of
	// base32/64 is 32+ bytes.
	if len(longest) >= 52 && enc {
		return fmt.Sprintf("DNS query with a %d-character encoded label under %s (entropy %.1f bits/char)", len(longest), dom, entropy([]byte(longest)))
	}
	st := t.doms[dom]
	if st == nil {
		if len(t.doms) >= t.max {
			clear(t.doms)
		}
		st = &domStat{uniques: make(map[uint64]struct{})}
		t.doms[strings.Clone(dom)] = st // dom may be a view of a packet
	}
	if st.reported {
		return ""
	}
	if len(st.uniques) < 256 {
		st.uniques[fnv64a(sub)] = struct{}{}
	}
	if enc && len(longest) >= 16 {
		st.encoded++
	}
	switch qtype {
	case layers.DNSTypeNULL, layers.DNSTypeTXT, 65399 /* private use, iodine */ :
		if len(sub) >= 8 {
			st.odd++
		}
	}
	switch {
	case st.odd >= 5 && len(st.uniques) >= 5:
		st.reported = true
		return fmt.Sprintf("%d NULL/TXT queries for %d distinct subdomains of %s", st.odd, len(st.uniques), dom)
	case st.encoded >= 10 && len(st.uniques) >= 10:
		st.reported = true
		return fmt.Sprintf("%d queries with encoded labels for %d distinct subdomains of %s", st.encoded, len(st.uniques), dom)
	}
	return ""
}

// splitRegistered splits a name into a registered domain (the last two
// labels, three under common two-level public suffixes) and the rest.
// Both are parts of name: every DNS query on a segment comes this way.
func splitRegistered(name string) (dom, sub string) {
	last := strings.LastIndexByte(name, '.')
	if last < 0 {
		return name, "" // one label
	}
	second := strings.LastIndexByte(name[:last], '.')
	if second < 0 {
		return name, "" // two labels
	}
	cut := second
	if last-second-1 <= 3 && len(name)-last-1 == 2 {
		// co.uk, com.au, ac.jp ...: three labels make the domain.
		if cut = strings.LastIndexByte(name[:second], '.'); cut < 0 {
			return name, ""
		}
	}
	return name[cut+1:], name[:cut]
}

// fnv64a is FNV-1a (hash/fnv's New64a) of s, without a hasher to allocate.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// bytesView is b as a string without copying, for a call that does not
// keep it (or copies what it keeps): b must not change meanwhile.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// encodedLabel reports a label that looks like base32/base64/hex output:
// mixed letters and digits with high character entropy.
func encodedLabel(l string) bool {
	if len(l) < 12 {
		return false
	}
	digits, letters := 0, 0
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters++
		case c == '-' || c == '_' || c == '+' || c == '/' || c == '=' || c == '*':
		default:
			return true // raw bytes in a label: certainly not a host name
		}
	}
	if letters == 0 {
		return false
	}
	return entropy([]byte(l)) >= 3.5 && (digits > 0 || len(l) >= 24)
}

// dohOnlyName reports names whose only purpose is encrypted DNS; looking
// them up is the first step of switching a browser or phone to it. Shared
// names (one.one.one.one also answers plain DNS) are left to the TLS check.
func dohOnlyName(name string) bool {
	return strings.HasPrefix(name, "doh.") || strings.HasPrefix(name, "dns.") ||
		strings.Contains(name, "cloudflare-dns.com") || strings.HasPrefix(name, "dot.")
}

// learnAnswer records what a DNS response told the flow's client, so that
// later connections can be judged by the name behind their address.
func (e *Engine) learnAnswer(f *flow) {
	if !e.dns.QR || len(e.dns.Questions) == 0 || e.dns.OpCode != layers.DNSOpCodeQuery {
		return
	}
	var buf [16]netip.Addr
	addrs := buf[:0]
	for _, rr := range e.dns.Answers {
		if (rr.Type == layers.DNSTypeA || rr.Type == layers.DNSTypeAAAA) && len(addrs) < len(buf) {
			if a, ok := netip.AddrFromSlice(rr.IP); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
	}
	// The name is lent from the decoder's buffer: Resolutions copies it
	// only when it keeps it, which a lookup it has just been told of by
	// the DNS guard it is not.
	e.res.note(f.client, bytesView(e.dns.Questions[0].Name), addrs, f.last, true)
}
