package inspect

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/gopacket/layers"

	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// Signatures are detections a network manager can add without a release:
// JA4 fingerprints of TLS/QUIC ClientHellos, server names (a name matches
// itself and its subdomains), addresses and prefixes, and port rules. The
// project ships a set (signatures.txt beside this file, DefaultSignatures);
// a school may point the daemon at its own copy, which is validated on
// load and refused, with every bad line named, when it does not parse.
// A running engine takes a new set whole (Engine.SetSignatures,
// Site.ReloadSignatures on the daemon's reload), from its next handshake.
//
// A name, address or JA4 match is a fingerprint: confidence Likely. A port
// rule only ever raises an Attempt, for a client whose SYN to that port
// the server never answers (DoT to a blocked resolver): a port alone is
// never enough once traffic flows, where the real detectors judge.
//
// The file is text, one signature a line, fields separated by blanks:
//
//	# kind  class  detail       value             why (the rest of the line)
//	ja4     vpn    openconnect  t13d1311h2_...    OpenConnect's GnuTLS client
//	name    doh    nextdns      dns.nextdns.io    NextDNS resolver
//	addr    vpn    examplevpn   192.0.2.0/24      a VPN provider's servers
//	port    dot    dot          tcp/853           DNS over TLS
type Signatures struct {
	ja4   map[string]sigRule
	names map[string]sigRule
	addrs []sigPrefix
	ports map[sigPort]sigRule
}

// sigRule is what a signature raises.
type sigRule struct {
	Class, Detail, Why string
	Line               int
}

type sigPrefix struct {
	p netip.Prefix
	r sigRule
}

type sigPort struct {
	proto layers.IPProtocol
	port  uint16
}

//go:embed signatures.txt
var shippedSignatures []byte

// DefaultSignatures parses the set shipped with the project.
func DefaultSignatures() (*Signatures, error) {
	return ParseSignatures(bytes.NewReader(shippedSignatures), "signatures.txt (shipped)")
}

// LoadSignatures reads and validates a signatures file.
func LoadSignatures(path string) (*Signatures, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inspect: signatures: %w", err)
	}
	defer fh.Close()
	return ParseSignatures(fh, path)
}

// maxSignatures bounds a file: the tables are consulted per handshake.
const maxSignatures = 100000

// ParseSignatures reads signatures from r; name is used in errors, which
// list every bad line as "name:line: what is wrong".
func ParseSignatures(r io.Reader, name string) (*Signatures, error) {
	s := &Signatures{ja4: map[string]sigRule{}, names: map[string]sigRule{}, ports: map[sigPort]sigRule{}}
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	line, count := 0, 0
	bad := func(format string, args ...any) {
		if len(errs) < 50 {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
		}
	}
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if count++; count > maxSignatures {
			bad("more than %d signatures", maxSignatures)
			break
		}
		if len(f) < 4 {
			bad("want \"kind class detail value [why]\", got %d field(s)", len(f))
			continue
		}
		kind, class, detail, value := f[0], f[1], f[2], f[3]
		r := sigRule{Class: class, Detail: detail, Why: strings.Join(f[4:], " "), Line: line}
		if !slices.Contains(Classes, class) {
			bad("class %q is not one of %s", class, strings.Join(Classes, ", "))
			continue
		}
		if !sigWord(detail) {
			bad("detail %q: use letters, digits, '-', '_', '.' or ':' (at most 64)", detail)
			continue
		}
		var dup bool
		switch kind {
		case "ja4":
			if !validJA4(value) {
				bad("ja4 %q is not a JA4 fingerprint (like t13d1516h2_8daaf6152771_02713d6af862)", value)
				continue
			}
			_, dup = s.ja4[value]
			s.ja4[value] = r
		case "name":
			n := strings.TrimSuffix(strings.ToLower(value), ".")
			if !validName(n) {
				bad("name %q is not a DNS name", value)
				continue
			}
			_, dup = s.names[n]
			s.names[n] = r
		case "addr":
			p, err := netip.ParsePrefix(value)
			if err != nil {
				a, aerr := netip.ParseAddr(value)
				if aerr != nil {
					bad("addr %q is neither an address nor a prefix", value)
					continue
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p.Masked() != p {
				bad("addr %q has host bits set (did you mean %s?)", value, p.Masked())
				continue
			}
			s.addrs = append(s.addrs, sigPrefix{p, r})
		case "port":
			proto, num, ok := strings.Cut(value, "/")
			n, err := strconv.ParseUint(num, 10, 16)
			var ip layers.IPProtocol
			switch proto {
			case "tcp":
				ip = layers.IPProtocolTCP
			case "udp":
				ip = layers.IPProtocolUDP
			default:
				ok = false
			}
			if !ok || err != nil || n == 0 {
				bad("port %q: want tcp/N or udp/N with N in 1..65535", value)
				continue
			}
			k := sigPort{ip, uint16(n)}
			_, dup = s.ports[k]
			s.ports[k] = r
		default:
			bad("kind %q is not one of ja4, name, addr, port", kind)
			continue
		}
		if dup {
			bad("%s %s is listed twice", kind, value)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s:%d: %w", name, line+1, err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("inspect: signatures: %w", errors.Join(errs...))
	}
	return s, nil
}

// Len returns how many signatures s holds.
func (s *Signatures) Len() int {
	if s == nil {
		return 0
	}
	return len(s.ja4) + len(s.names) + len(s.addrs) + len(s.ports)
}

func sigWord(w string) bool {
	if w == "" || len(w) > 64 {
		return false
	}
	for _, c := range w {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return false
		}
	}
	return true
}

// validJA4 checks the JA4 shape: a 10-character prefix (transport, TLS
// version, SNI flag, two counts, ALPN chars) and two 12-hex-digit hashes.
func validJA4(s string) bool {
	a, rest, ok := strings.Cut(s, "_")
	if !ok || len(a) != 10 {
		return false
	}
	b, c, ok := strings.Cut(rest, "_")
	if !ok || len(b) != 12 || len(c) != 12 {
		return false
	}
	if a[0] != 't' && a[0] != 'q' && a[0] != 'd' || a[3] != 'd' && a[3] != 'i' {
		return false
	}
	for _, ch := range a[4:8] {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	for _, ch := range b + c {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return false
		}
	}
	return true
}

func validName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// name returns the rule for a server name or its closest listed parent.
func (s *Signatures) name(n string) (sigRule, bool) {
	if s == nil || len(s.names) == 0 {
		return sigRule{}, false
	}
	for n != "" {
		if r, ok := s.names[n]; ok {
			return r, true
		}
		_, n, _ = strings.Cut(n, ".")
	}
	return sigRule{}, false
}

func (s *Signatures) addr(a netip.Addr) (sigRule, bool) {
	if s == nil {
		return sigRule{}, false
	}
	a = a.Unmap()
	for _, p := range s.addrs {
		if p.p.Contains(a) {
			return p.r, true
		}
	}
	return sigRule{}, false
}

func (s *Signatures) portRule(proto layers.IPProtocol, port uint16) (sigRule, bool) {
	if s == nil {
		return sigRule{}, false
	}
	r, ok := s.ports[sigPort{proto, port}]
	return r, ok
}

// judgeSignatures applies the data-file signatures to a ClientHello the
// built-in lists did not settle.
func (e *Engine) judgeSignatures(f *flow, h *tlshello.ClientHello, isQUIC bool, sni string, ev func(string) string) bool {
	s := e.sigs.Load()
	if s == nil {
		return false
	}
	var buf [tlshello.JA4Len]byte
	if len(s.ja4) == 0 {
		// JA4 hashes; skip them when no signature needs one.
	} else if r, ok := s.ja4[string(h.AppendJA4(buf[:0], isQUIC))]; ok {
		e.raiseAs(f, Likely, r.Class, r.Detail, ev(fmt.Sprintf("ClientHello with the JA4 fingerprint of %s (signature line %d)", r.Why, r.Line)))
		return true
	}
	if r, ok := s.name(sni); ok && sni != "" {
		e.raiseAs(f, Likely, r.Class, r.Detail, ev(fmt.Sprintf("handshake to a listed name: %s (signature line %d)", r.Why, r.Line)))
		return true
	}
	if r, ok := s.addr(f.server); ok {
		e.raiseAs(f, Likely, r.Class, r.Detail, ev(fmt.Sprintf("handshake to a listed address: %s (signature line %d)", r.Why, r.Line)))
		return true
	}
	return false
}
