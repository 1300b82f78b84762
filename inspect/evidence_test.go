package inspect

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// tlsHello returns the ClientHello record crypto/tls sends for sni (none
// when empty) offering alpn. maxVersion 0 means TLS 1.3.
func tlsHello(t testing.TB, sni string, alpn ...string) []byte {
	t.Helper()
	return tlsHelloVersion(t, sni, 0, alpn...)
}

func tlsHelloVersion(t testing.TB, sni string, maxVersion uint16, alpn ...string) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	cfg := &tls.Config{ServerName: sni, NextProtos: alpn, InsecureSkipVerify: true, MaxVersion: maxVersion}
	go func() {
		tc := tls.Client(c, cfg)
		tc.SetDeadline(time.Now().Add(2 * time.Second))
		tc.Handshake()
		c.Close()
	}()
	s.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	for {
		n, err := s.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if _, _, herr := tlshello.RecordHandshake(buf, nil); herr == nil {
			return buf
		}
		if err != nil {
			t.Fatalf("reading ClientHello: %v", err)
		}
	}
}

// tlsRecord returns a TLS record of type typ with n bytes of body.
func tlsRecord(typ byte, n int, seed uint64) []byte {
	return append([]byte{typ, 3, 3, byte(n >> 8), byte(n)}, randomBytes(n, seed)...)
}

// tlsConversation is a TLS 1.3 connection as seen on the wire: hello, the
// server's flight with a large encrypted certificate, the client's
// Finished, then turns request/response pairs of application data.
func tlsConversation(t testing.TB, hello []byte, turns, qLen, aLen int) []conv {
	flight := append(tlsRecord(22, 90, 1), tlsRecord(20, 1, 2)...)
	flight = append(flight, tlsRecord(23, 2900, 3)...)
	flight = append(flight, tlsRecord(23, 80, 4)...)
	msgs := []conv{{true, hello}, {false, flight}, {true, append(tlsRecord(20, 1, 5), tlsRecord(23, 53, 6)...)}}
	for i := range turns {
		msgs = append(msgs, conv{true, tlsRecord(23, qLen, uint64(100+i))}, conv{false, tlsRecord(23, aLen, uint64(200+i))})
	}
	return msgs
}

// dnsMessage builds a DNS query, or a response giving addrs, for name.
func dnsMessage(t testing.TB, id uint16, name string, response bool, addrs []netip.Addr) []byte {
	t.Helper()
	d := &layers.DNS{ID: id, QR: response, RD: true, RA: response,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	for _, a := range addrs {
		d.Answers = append(d.Answers, layers.DNSResourceRecord{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 60, IP: a.AsSlice()})
	}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// lookup is one DNS guard answer fed to the engine before the flow.
type lookup struct {
	name string
	addr netip.Addr // invalid: a lookup that gave no address
	ago  time.Duration
}

// TestDNSEvidenceJudgesHandshakes runs TLS conversations from the pupil
// to the server after the lookups the DNS guard reported for the pupil.
func TestDNSEvidenceJudgesHandshakes(t *testing.T) {
	// Enough of the pupil's lookups, long enough ago, that what is
	// missing was not looked up through the school's resolver.
	routine := []lookup{{"www.bbc.co.uk", netip.MustParseAddr("198.51.100.80"), 30 * time.Minute}}
	tor := "www.q4cyamnc6mtokjurvdclt.com"
	for _, tc := range []struct {
		name          string
		lookups       []lookup
		conv          []conv
		class, detail string // "" = no finding
	}{
		// (a) a handshake without SNI judged by the name behind its address
		{"no SNI to an address resolved from a DoH name", []lookup{{"doh.mullvad.net", server, time.Minute}},
			tlsConversation(t, tlsHello(t, "", "h2"), 0, 0, 0), ClassDoH, "doh:mullvad"},
		{"no SNI to an address resolved from a VPN name", []lookup{{"api.nordvpn.com", server, time.Minute}},
			tlsConversation(t, tlsHello(t, "", "http/1.1"), 0, 0, 0), ClassVPN, "nordvpn"},
		{"no SNI to an address resolved from an ordinary name", []lookup{{"www.example.com", server, time.Minute}},
			tlsConversation(t, tlsHello(t, "", "http/1.1"), 0, 0, 0), "", ""},
		{"SNI wins over the resolved name", []lookup{{"api.nordvpn.com", server, time.Minute}},
			tlsConversation(t, tlsHello(t, "www.example.com", "h2"), 0, 0, 0), "", ""},

		// (b) no SNI, HTTP/2, an address never resolved, the DoH shape
		{"no-SNI DoH shape", nil, tlsConversation(t, tlsHello(t, "", "h2"), 6, 150, 300), ClassDoH, "doh:unknown"},
		{"no-SNI DoH shape to a resolved address", []lookup{{"api.example.com", server, time.Minute}},
			tlsConversation(t, tlsHello(t, "", "h2"), 6, 150, 300), "", ""},
		{"no-SNI web shape", nil, tlsConversation(t, tlsHello(t, "", "h2"), 6, 150, 9000), "", ""},
		{"no-SNI too few turns", nil, tlsConversation(t, tlsHello(t, "", "h2"), 2, 150, 300), "", ""},
		{"no-SNI without HTTP/2", nil, tlsConversation(t, tlsHello(t, "", "http/1.1"), 6, 150, 300), "", ""},
		{"no-SNI large requests", nil, tlsConversation(t, tlsHello(t, "", "h2"), 6, 1200, 300), "", ""},

		// (2) SNI the covered client never looked up, with the DoH shape
		{"unresolved SNI with DoH shape", routine,
			tlsConversation(t, tlsHello(t, "resolver.example.org", "h2"), 6, 150, 300), ClassDoH, "doh:unknown"},
		{"looked-up SNI with DoH shape", append([]lookup{{"resolver.example.org", server, time.Minute}}, routine...),
			tlsConversation(t, tlsHello(t, "resolver.example.org", "h2"), 6, 150, 300), "", ""},
		{"asked-for SNI resolved elsewhere", append([]lookup{{"resolver.example.org", netip.Addr{}, time.Minute}}, routine...),
			tlsConversation(t, tlsHello(t, "resolver.example.org", "h2"), 6, 150, 300), "", ""},
		{"unresolved SNI without coverage", nil,
			tlsConversation(t, tlsHello(t, "resolver.example.org", "h2"), 6, 150, 300), "", ""},
		{"unresolved SNI with coverage too fresh", []lookup{{"www.bbc.co.uk", netip.MustParseAddr("198.51.100.80"), time.Minute}},
			tlsConversation(t, tlsHello(t, "resolver.example.org", "h2"), 6, 150, 300), "", ""},
		{"unresolved SNI with web shape", routine,
			tlsConversation(t, tlsHello(t, "resolver.example.org", "h2"), 6, 150, 9000), "", ""},
		{"DNS-like SNI with DoH shape", nil,
			tlsConversation(t, tlsHello(t, "dns.some-resolver.example", "h2"), 3, 150, 300), ClassDoH, "doh:unknown"},
		{"DNS-like registered domain is not enough", nil,
			tlsConversation(t, tlsHello(t, "home.duckdns.org", "h2"), 3, 150, 300), "", ""},

		// (3) Tor over TLS 1.3: random SNI, no ALPN, never looked up
		{"tor TLS 1.3 random SNI", nil, tlsConversation(t, tlsHello(t, tor), 0, 0, 0), ClassTor, "tor"},
		{"tor-like SNI with ALPN is a browser", nil, tlsConversation(t, tlsHello(t, tor, "h2"), 0, 0, 0), "", ""},
		{"tor-like SNI looked up", []lookup{{tor, server, time.Minute}}, tlsConversation(t, tlsHello(t, tor), 0, 0, 0), "", ""},
		{"tor-like SNI over TLS 1.2 waits for the certificate", nil,
			tlsConversation(t, tlsHelloVersion(t, tor, tls.VersionTLS12), 0, 0, 0), "", ""},
		{"short random SNI with coverage", routine, tlsConversation(t, tlsHello(t, "www.k3xv7.com"), 0, 0, 0), ClassTor, "tor"},
		{"short random SNI without coverage", nil, tlsConversation(t, tlsHello(t, "www.k3xv7.com"), 0, 0, 0), "", ""},
		{"short word SNI with coverage", routine, tlsConversation(t, tlsHello(t, "www.garden.com"), 0, 0, 0), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Finding
			res := NewResolutions(ResolutionsConfig{})
			for _, l := range tc.lookups {
				var addrs []netip.Addr
				if l.addr.IsValid() {
					addrs = append(addrs, l.addr)
				}
				res.Note(pupil, l.name, addrs, t0.Add(-l.ago))
			}
			playOn(t, collect(Options{Resolutions: res}, &got), false, 443, tc.conv)
			if tc.class == "" {
				if len(got) != 0 {
					t.Errorf("findings = %v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Class != tc.class || got[0].Detail != tc.detail {
				t.Fatalf("findings = %v, want one %s/%s", got, tc.class, tc.detail)
			}
			if got[0].SrcIP != pupil || got[0].DstIP != server || got[0].SrcMAC.String() != macClient.String() {
				t.Errorf("finding endpoints = %s (%s) -> %s", got[0].SrcIP, got[0].SrcMAC, got[0].DstIP)
			}
		})
	}
}

// TestUnrecognisedTunnelToAResolvedVPNName gives up on an opaque UDP flow
// and then judges it by the name the pupil looked up for its server.
func TestUnrecognisedTunnelToAResolvedVPNName(t *testing.T) {
	var opaque []conv
	for i := range 45 {
		opaque = append(opaque, conv{i%2 == 0, randomBytes(40+i, uint64(i))})
	}
	for _, tc := range []struct {
		name   string
		lookup string
		want   string
	}{
		{"vpn name", "gw-uk3.windscribe.net", "windscribe"},
		{"remote-access name", "relay7.net.anydesk.com", "anydesk"},
		{"ordinary name", "game.example.net", ""},
		{"no lookup", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Finding
			e := collect(Options{}, &got)
			if tc.lookup != "" {
				e.NoteResolution(pupil, tc.lookup, []netip.Addr{server}, t0)
			}
			playOn(t, e, true, 40000, opaque)
			if tc.want == "" {
				if len(got) != 0 {
					t.Errorf("findings = %v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Detail != tc.want {
				t.Fatalf("findings = %v, want one %s", got, tc.want)
			}
		})
	}
}

func TestTorSNIShapes(t *testing.T) {
	for _, tc := range []struct {
		sni          string
		label        bool // www.<base32 4..25>.com/.net
		strong, weak bool
	}{
		{"www.q4cyamnc6mtokjurvdclt.com", true, true, true},
		{"www.k3xv7.com", true, false, true},
		{"www.bcdf.net", true, false, true},
		{"www.garden.com", true, false, false},
		{"www.2345.com", true, false, false},
		{"www.bbc.com", false, false, false},
		{"www.example-site.com", false, false, false},
		{"www.abcdefghijklmnopqrstuvwxyz.com", false, false, false},
		{"www.k3xv7.org", false, false, false},
		{"mail.k3xv7.com", false, false, false},
		{"www.k3x.v7.com", false, false, false},
	} {
		label, ok := torSNILabel(tc.sni)
		if ok != tc.label {
			t.Errorf("torSNILabel(%q) ok = %v, want %v", tc.sni, ok, tc.label)
			continue
		}
		if !ok {
			continue
		}
		if got := randomBase32Label(label); got != tc.strong {
			t.Errorf("%q strong = %v, want %v", tc.sni, got, tc.strong)
		}
		if got := weakRandomLabel(label) || randomBase32Label(label); got != tc.weak {
			t.Errorf("%q weak = %v, want %v", tc.sni, got, tc.weak)
		}
	}
}

func TestDNSLikeName(t *testing.T) {
	for name, want := range map[string]bool{
		"dns.example.net":        true,
		"rdns.faelix.net":        true,
		"fi.doh.dns.snopyta.org": true,
		"doh-de.example.org":     true,
		"example.net":            false,
		"dnsexample.net":         false, // the registered domain itself
		"home.duckdns.org":       false,
		"www.example.co.uk":      false,
		"":                       false,
	} {
		if got := dnsLikeName(name); got != want {
			t.Errorf("dnsLikeName(%q) = %v, want %v", name, got, want)
		}
	}
}
