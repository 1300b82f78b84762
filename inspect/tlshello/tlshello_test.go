package tlshello

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/inspect/internal/pcapseed"
)

// clientHelloBytes captures the first flight crypto/tls sends for cfg.
func clientHelloBytes(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
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
		if _, ok := handshakeDone(buf); ok || err != nil {
			return buf
		}
	}
}

// handshakeDone reports whether buf holds a whole first handshake message.
func handshakeDone(buf []byte) ([]byte, bool) {
	m, _, err := RecordHandshake(buf, nil)
	return m, err == nil
}

func TestParseRecordReadsSNIALPNAndVersion(t *testing.T) {
	raw := clientHelloBytes(t, &tls.Config{ServerName: "Example.ORG", NextProtos: []string{"h2", "http/1.1"}})
	var ch ClientHello
	if _, err := ch.ParseRecord(raw, nil); err != nil {
		t.Fatalf("ParseRecord: %v", err)
	}
	if string(ch.SNI) != "Example.ORG" {
		t.Errorf("SNI = %q", ch.SNI)
	}
	if len(ch.ALPN) != 2 || string(ch.ALPN[0]) != "h2" || !ch.HasALPN("http/1.1") {
		t.Errorf("ALPN = %q", ch.ALPN)
	}
	if ch.Version != 0x0304 {
		t.Errorf("Version = %#x, want TLS 1.3 from supported_versions", ch.Version)
	}
	if ch.HasECH || ch.HasESNI {
		t.Error("crypto/tls without ECH config must not show ECH")
	}
	ja4 := ch.JA4(false)
	parts := strings.Split(ja4, "_")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "t13d") || !strings.HasSuffix(parts[0], "h2") || len(parts[1]) != 12 || len(parts[2]) != 12 {
		t.Errorf("JA4 = %q", ja4)
	}
	if ch.JA4(true)[0] != 'q' {
		t.Error("QUIC JA4 must start with q")
	}
}

func TestParseRecordWaitsForTheRestOfTheHello(t *testing.T) {
	raw := clientHelloBytes(t, &tls.Config{ServerName: "example.org"})
	var ch ClientHello
	for _, n := range []int{0, 3, 5, 9, len(raw) / 2, len(raw) - 1} {
		if _, err := ch.ParseRecord(raw[:n], nil); err != ErrShort {
			t.Errorf("first %d bytes: err = %v, want ErrShort", n, err)
		}
	}
}

func TestParseRecordJoinsFragmentedRecords(t *testing.T) {
	raw := clientHelloBytes(t, &tls.Config{ServerName: "split.example"})
	body := raw[5:]
	// Re-frame the handshake message as two records.
	half := len(body) / 2
	var split []byte
	split = append(split, 0x16, 3, 1, byte(half>>8), byte(half))
	split = append(split, body[:half]...)
	rest := len(body) - half
	split = append(split, 0x16, 3, 1, byte(rest>>8), byte(rest))
	split = append(split, body[half:]...)
	var ch ClientHello
	if _, err := ch.ParseRecord(split, nil); err != nil {
		t.Fatalf("ParseRecord: %v", err)
	}
	if string(ch.SNI) != "split.example" {
		t.Errorf("SNI = %q", ch.SNI)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	var ch ClientHello
	for name, b := range map[string][]byte{
		"http":         []byte("GET / HTTP/1.1\r\n\r\n"),
		"server hello": {0x16, 3, 3, 0, 4, 2, 0, 0, 0},
		"bad lengths":  {0x16, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0},
	} {
		if _, err := ch.ParseRecord(b, nil); err == nil || err == ErrShort {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestIsGREASE(t *testing.T) {
	for _, v := range []uint16{0x0a0a, 0x1a1a, 0xfafa} {
		if !IsGREASE(v) {
			t.Errorf("%#x should be GREASE", v)
		}
	}
	for _, v := range []uint16{0x0a1a, 0x1301, 0xfe0d} {
		if IsGREASE(v) {
			t.Errorf("%#x is not GREASE", v)
		}
	}
}

func TestJA4IgnoresGREASEAndOrder(t *testing.T) {
	a := ClientHello{Version: 0x0304, CipherSuites: []uint16{0x1301, 0x1302}, Extensions: []uint16{0x000a, 0x002b}, SNI: []byte("x")}
	b := ClientHello{Version: 0x0304, CipherSuites: []uint16{0x2a2a, 0x1302, 0x1301}, Extensions: []uint16{0x3a3a, 0x002b, 0x000a}, SNI: []byte("x")}
	if a.JA4(false) != b.JA4(false) {
		t.Errorf("%s != %s", a.JA4(false), b.JA4(false))
	}
	if got := a.JA4(false)[:10]; got != "t13d020200" {
		t.Errorf("JA4 a = %s", got)
	}
}

// FuzzClientHello parses arbitrary bytes as the start of a TLS stream, a
// bare handshake message and a server flight.
func FuzzClientHello(f *testing.F) {
	f.Add(clientHelloBytes(f, &tls.Config{ServerName: "seed.example", NextProtos: []string{"h2"}}))
	for _, p := range pcapseed.Read(pcapseed.Dir(f), 12) {
		if len(p.Payload) > 5 && p.Payload[0] == 0x16 {
			f.Add(p.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ch ClientHello
		if _, err := ch.ParseRecord(b, nil); err == nil {
			ch.JA4(false)
		}
		if err := ch.Parse(b); err == nil {
			ch.JA4(true)
		}
		var sf ServerFlight
		sf.ParseServerFlight(b, nil)
	})
}

// A fingerprint is taken of every handshake: it must not allocate.
func TestAppendJA4DoesNotAllocate(t *testing.T) {
	var ch ClientHello
	if _, err := ch.ParseRecord(clientHelloBytes(t, &tls.Config{ServerName: "example.com", NextProtos: []string{"h2", "http/1.1"}}), nil); err != nil {
		t.Fatal(err)
	}
	var buf [JA4Len]byte
	if n := testing.AllocsPerRun(100, func() { ch.AppendJA4(buf[:0], false) }); n != 0 {
		t.Errorf("AppendJA4 allocates %v times", n)
	}
	if got := string(ch.AppendJA4(buf[:0], false)); got != ch.JA4(false) || len(got) != JA4Len {
		t.Errorf("AppendJA4 %q, JA4 %q", got, ch.JA4(false))
	}
}
