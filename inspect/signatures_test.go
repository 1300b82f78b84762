package inspect

import (
	"context"
	"maps"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"
)

func TestShippedSignaturesParse(t *testing.T) {
	s, err := DefaultSignatures()
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() == 0 {
		t.Fatal("the shipped file holds no signatures")
	}
	if r, ok := s.portRule(layers.IPProtocolTCP, 853); !ok || r.Class != ClassDoT {
		t.Errorf("tcp/853 = %+v, %v", r, ok)
	}
}

func TestSignaturesRejectBadLinesNamingEach(t *testing.T) {
	in := `# a comment
ja4 vpn tool t13d1516h2_8daaf6152771_02713d6af862  a tool
ja4 vpn tool t13d1516h2_nothex_02713d6af862
name vpnn x example.com
name vpn x exa mple.com
addr vpn x 192.0.2.1/24
port dot dot tcp/0
port dot dot sctp/853
bogus vpn x y
name vpn x
name doh doh:x dns.example.org
name doh doh:x dns.example.org
`
	_, err := ParseSignatures(strings.NewReader(in), "sigs.txt")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"sigs.txt:3: ja4", "sigs.txt:4: class \"vpnn\"", "sigs.txt:6: addr", "host bits",
		"sigs.txt:7: port", "sigs.txt:8: port", "sigs.txt:9: kind \"bogus\"", "sigs.txt:10: want", "sigs.txt:12: name dns.example.org is listed twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "sigs.txt:2:") || strings.Contains(err.Error(), "sigs.txt:11:") {
		t.Errorf("good lines reported:\n%v", err)
	}
}

func TestSignaturesMatch(t *testing.T) {
	s, err := ParseSignatures(strings.NewReader(`name doh doh:acme resolver.acme.example  Acme DNS
addr vpn acmevpn 198.51.100.0/24
`), "t")
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := s.name("eu.resolver.acme.example"); !ok || r.Detail != "doh:acme" {
		t.Errorf("subdomain: %+v %v", r, ok)
	}
	if _, ok := s.name("acme.example"); ok {
		t.Error("a parent of a listed name matched")
	}
	if r, ok := s.addr(netip.MustParseAddr("198.51.100.9")); !ok || r.Class != ClassVPN {
		t.Errorf("addr: %+v %v", r, ok)
	}
}

func FuzzParseSignatures(f *testing.F) {
	f.Add(string(shippedSignatures))
	f.Add("ja4 vpn x t13d1516h2_8daaf6152771_02713d6af862\naddr vpn x ::/0\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSignatures(strings.NewReader(in), "fuzz")
		if err == nil && s == nil {
			t.Fatal("nil signatures without an error")
		}
	})
}

// TestJA4SignatureFromARecordedTool takes curl's JA4 from one recorded
// session and, as a data-file signature, finds curl in another.
func TestJA4SignatureFromARecordedTool(t *testing.T) {
	var first []Finding
	e := NewEngine(Options{})
	if err := e.ReplayFiles(context.Background(), []string{filepath.Join(recordedDir, "doh-curl-cloudflare-name.pcap")}, func(f Finding) { first = append(first, f) }); err != nil {
		t.Fatal(err)
	}
	if len(first) == 0 {
		t.Fatal("no finding to take curl's JA4 from")
	}
	_, ja4, ok := strings.Cut(first[0].Evidence, "ja4=")
	if !ok {
		t.Fatalf("no ja4 in %q", first[0].Evidence)
	}
	sigs, err := ParseSignatures(strings.NewReader("ja4 proxy curl-ja4 "+ja4+" curl 7.88 as built by Debian\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	var got []Finding
	e = NewEngine(Options{Signatures: sigs})
	if err := e.ReplayFiles(context.Background(), []string{filepath.Join(recordedDir, "doh-curl-unlisted-name.pcap")}, func(f Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Detail != "curl-ja4" || got[0].Confidence != Likely || !strings.Contains(got[0].Evidence, "signature line 1") {
		t.Fatalf("findings = %v, want the JA4 signature's", got)
	}
}

// TestLearnedDoHResolver: a name whose traffic had the DoH shape is a
// resolver from then on.
func TestLearnedDoHResolver(t *testing.T) {
	path := filepath.Join(recordedDir, "doh-curl-unlisted-name.pcap")
	e := NewEngine(Options{})
	var got []Finding
	e.opt.Sink = SinkFunc(func(f Finding) { got = append(got, f) })
	if err := e.ReplayFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Detail != "doh:unknown" {
		t.Fatalf("by shape: %v", got)
	}
	if _, ok := e.learnedDoH["dns.example.net"]; !ok {
		t.Fatalf("learned %v", e.learnedDoH)
	}
	learned := maps.Clone(e.learnedDoH)
	e.Reset()
	e.learnedDoH = learned // as in a live engine, which is never reset
	got = nil
	if err := e.ReplayFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Detail != "doh:learned" {
		t.Fatalf("second time: %v", got)
	}
}
