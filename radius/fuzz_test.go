package radius

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/store"
)

// seedPackets adds the packets radclient sent (testdata/*.bin).
func seedPackets(f *testing.F) {
	f.Helper()
	files, err := filepath.Glob("testdata/*.bin")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed packets in testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// nullSessions keeps nothing: the fuzzer exercises parsing, not SQLite.
type nullSessions struct{}

func (nullSessions) RecordAccounting(_ context.Context, u store.AccountingUpdate) (store.RADIUSSession, error) {
	return store.RADIUSSession{NAS: u.NAS, AcctSessionID: u.AcctSessionID}, nil
}
func (nullSessions) CloseNASSessions(context.Context, string, time.Time, string) (int64, error) {
	return 0, nil
}
func (nullSessions) RADIUSSessions(context.Context, store.SessionFilter) ([]store.RADIUSSession, error) {
	return nil, nil
}
func (nullSessions) RADIUSSession(context.Context, int64) (store.RADIUSSession, error) {
	return store.RADIUSSession{}, store.ErrNotFound
}

// FuzzFrame checks the framing and Message-Authenticator code never panics
// and only passes packets layeh.com/radius can also parse.
func FuzzFrame(f *testing.F) {
	seedPackets(f)
	// answersInline walks the framed attributes itself (inline.go).
	cache := newDeviceCache(&fakeDevices{m: map[string]DeviceInfo{}}, &changingLog{}, 16, 0)
	cache.entries[macKey{2, 0, 0, 0, 0, 1}] = DeviceInfo{Known: true, Approved: true}
	inline := &Server{o: Options{Devices: cache}}
	f.Fuzz(func(t *testing.T, b []byte) {
		pkt, maOff, err := frame(b)
		if err != nil {
			return
		}
		if len(pkt) < headerLen || len(pkt) > maxPacket {
			t.Fatalf("frame passed %d octets", len(pkt))
		}
		p, err := radius.Parse(pkt, []byte("testing123"))
		if err != nil {
			t.Fatalf("frame passed what layeh rejects: %v", err)
		}
		// handle's parse is layeh's, in fewer allocations.
		q := parsePacket(pkt, []byte("testing123"))
		if q.Code != p.Code || q.Identifier != p.Identifier || q.Authenticator != p.Authenticator || len(q.Attributes) != len(p.Attributes) {
			t.Fatalf("parsePacket %+v, radius.Parse %+v", q, p)
		}
		for i, a := range p.Attributes {
			if qa := q.Attributes[i]; qa.Type != a.Type || !bytes.Equal(qa.Attribute, a.Attribute) || (qa.Attribute == nil) != (a.Attribute == nil) {
				t.Fatalf("attribute %d: parsePacket %v %x, radius.Parse %v %x", i, qa.Type, qa.Attribute, a.Type, a.Attribute)
			}
		}
		if inline.answersInline(false, pkt) {
			_, eap := p.Lookup(typeEAPMessage)
			_, mac := ParseMAC(rfc2865.UserName_GetString(p))
			if p.Code != radius.CodeAccessRequest || eap || !mac {
				t.Fatalf("answered inline: %v, EAP %v, User-Name a MAC %v", p.Code, eap, mac)
			}
		}
		if maOff >= 0 {
			_ = validMA(pkt, maOff, []byte("testing123"), nil)
		}
	})
}

// FuzzHandle drives whole requests (Access, Accounting, Status-Server)
// through the decisions with the seeds' secret, so the mutated attributes
// reach the MAB, PAP and accounting parsers.
func FuzzHandle(f *testing.F) {
	seedPackets(f)
	devices := &fakeDevices{m: map[string]DeviceInfo{}}
	devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	s, err := New(Options{
		Clients:  []Client{{Name: "aps", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte("testing123"), RequireMessageAuthenticator: false}},
		Segments: testSegments, Devices: devices, Sessions: nullSessions{}, Identities: newFakeIdentities(nil),
	})
	if err != nil {
		f.Fatal(err)
	}
	c := s.clients[0]
	src := netip.MustParseAddrPort("127.0.0.1:4000")
	f.Fuzz(func(t *testing.T, b []byte) {
		pkt, maOff, err := frame(b)
		if err != nil {
			return
		}
		for _, acct := range []bool{false, true} {
			o := s.handle(context.Background(), acct, c, src, pkt, maOff, false)
			if o.reply == nil {
				continue
			}
			var auth [16]byte
			copy(auth[:], pkt[4:20])
			out, err := encodeResponse(o.reply, radius.Code(pkt[0]), auth, c.Secret, proxyStates(pkt))
			if err != nil {
				continue // an over-long reply is dropped, not sent
			}
			if o.reply.Code != radius.CodeAccountingResponse && out[20] != typeMsgAut {
				t.Fatal("a reply without Message-Authenticator first")
			}
		}
	})
}

// FuzzParseMAC checks every accepted form reads back to the same address.
func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"aabbccddeeff", "AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff", "aabb.ccdd.eeff", "aabbcc-ddeeff", "0A-00-00-00-00-01:Staff", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := ParseMAC(s)
		if ok {
			if len(m) != 6 {
				t.Fatalf("%q gave %d octets", s, len(m))
			}
			for _, form := range []string{m.String(), dashedMAC(m)} {
				if again, ok := ParseMAC(form); !ok || !bytes.Equal(again, m) {
					t.Fatalf("%q -> %v -> %q does not read back", s, m, form)
				}
			}
		}
		ap, _ := splitCalledStation(s)
		if ap != nil && len(ap) != 6 {
			t.Fatalf("%q: AP of %d octets", s, len(ap))
		}
	})
}

// FuzzTunnelPassword checks the salt encryption round-trips and that
// decoding arbitrary attributes never panics.
func FuzzTunnelPassword(f *testing.F) {
	f.Add([]byte("k7dm-3xqa-9wpe-fh4t"), []byte{0x80, 1})
	f.Add([]byte(""), []byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, pw, salt []byte) {
		secret, auth := []byte("testing123"), bytes.Repeat([]byte{7}, 16)
		_, _, _ = radius.TunnelPassword(pw, secret, auth)
		if len(pw) > 240 || len(salt) != 2 {
			return
		}
		salt[0] |= 0x80
		a, err := radius.NewTunnelPassword(pw, salt, secret, auth)
		if err != nil {
			t.Fatal(err)
		}
		got, gotSalt, err := radius.TunnelPassword(a, secret, auth)
		if err != nil || !bytes.Equal(got, pw) || !bytes.Equal(gotSalt, salt) {
			t.Fatalf("round trip: %q %x %v", got, gotSalt, err)
		}
	})
}

func TestParseMACForms(t *testing.T) {
	for _, s := range []string{"aabbccddeeff", "AABBCCDDEEFF", "AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff", "aabb.ccdd.eeff", "aabbcc-ddeeff"} {
		if m, ok := ParseMAC(s); !ok || m.String() != "aa:bb:cc:dd:ee:ff" {
			t.Errorf("%q: %v %v", s, m, ok)
		}
	}
	for _, s := range []string{"", "aabbccddeef", "aa-bb:cc-dd-ee-ff", "aabbccddeefg", "a-abbccddeeff", "amy", "aa:bb:cc:dd:ee:ff:00"} {
		if m, ok := ParseMAC(s); ok {
			t.Errorf("%q accepted as %v", s, m)
		}
	}
	for _, tc := range []struct{ in, ap, ssid string }{
		{"0A-00-00-00-00-01:Staff", "0a:00:00:00:00:01", "Staff"},
		{"0a0000000001:My SSID:x", "0a:00:00:00:00:01", "My SSID:x"},
		{"0A-00-00-00-00-01", "0a:00:00:00:00:01", ""},
		{"not a mac", "", ""},
	} {
		ap, ssid := splitCalledStation(tc.in)
		got := ""
		if ap != nil {
			got = ap.String()
		}
		if got != tc.ap || ssid != tc.ssid {
			t.Errorf("%q: %q %q", tc.in, got, ssid)
		}
	}
}

func TestGeneratedKeysAndQRPayload(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 19 || seen[k] {
			t.Fatalf("key %q", k)
		}
		seen[k] = true
		for _, c := range k {
			if c != '-' && !bytes.ContainsRune([]byte(keyAlphabet), c) {
				t.Fatalf("key %q has %q", k, c)
			}
		}
	}
	if got := WiFiQR(`Staff;"Wi:Fi"`, `a\b`); got != `WIFI:T:WPA;S:Staff\;\"Wi\:Fi\";P:a\\b;;` {
		t.Fatal(got)
	}
}

// parseMACBefore is ParseMAC as it was before parseMAC6 (separators found
// and removed, then 12 hex digits read): the reference the allocation-free
// parser must agree with on every input.
func parseMACBefore(s string) (net.HardwareAddr, bool) {
	var sep byte
	var groups []int
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == ':' || c == '.' {
			if sep != 0 && c != sep {
				return nil, false
			}
			sep = c
			groups = append(groups, i)
		}
	}
	hex := s
	if sep != 0 {
		hex = strings.ReplaceAll(s, string(sep), "")
		if !validLayout(len(s), groups) {
			return nil, false
		}
	}
	if len(hex) != 12 {
		return nil, false
	}
	mac := make(net.HardwareAddr, 6)
	for i := range 6 {
		hi, ok1 := nibble(hex[2*i])
		lo, ok2 := nibble(hex[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		mac[i] = hi<<4 | lo
	}
	return mac, true
}

// validLayout accepts separators every 2 (17 characters), every 4
// (14 characters) or once in the middle (13 characters).
func validLayout(n int, at []int) bool {
	switch {
	case n == 17 && len(at) == 5:
		for i, p := range at {
			if p != 2+3*i {
				return false
			}
		}
		return true
	case n == 14 && len(at) == 2:
		return at[0] == 4 && at[1] == 9
	case n == 13 && len(at) == 1:
		return at[0] == 6
	}
	return false
}

// ParseMAC agrees with the parser it replaced on random strings of MAC
// lengths over hex digits, separators and a few others, and on the
// vendor forms with one character changed; and allocates only the result.
func TestParseMACMatchesTheOldParser(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789abcdefABCDEFg-:._ "
	check := func(s string) {
		t.Helper()
		want, wok := parseMACBefore(s)
		got, ok := ParseMAC(s)
		if ok != wok || !bytes.Equal(got, want) {
			t.Fatalf("%q: %v %v, the old parser %v %v", s, got, ok, want, wok)
		}
	}
	forms := []string{"aabbccddeeff", "AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff", "aabb.ccdd.eeff", "aabbcc-ddeeff", "a0b1.c2d3.e4f5"}
	for _, f := range forms {
		check(f)
		for i := range len(f) {
			for _, c := range []byte(alphabet) {
				b := []byte(f)
				b[i] = c
				check(string(b))
			}
		}
	}
	for range 200000 {
		n := 10 + rng.IntN(10)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
	if a := testing.AllocsPerRun(100, func() { parseMAC6("AA-BB-CC-DD-EE-FF") }); a != 0 {
		t.Fatalf("parseMAC6 allocates %v times", a)
	}
}

// decryptUserPassword (isMAB's allocation-free decryption) agrees with
// layeh.com/radius's UserPassword on every value, secret and
// authenticator: the same refusals, the same plaintext.
func FuzzDecryptUserPassword(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), []byte("secret"), []byte("0123456789abcdef"))
	f.Add(make([]byte, 32), []byte("s"), make([]byte, 16))
	f.Add(make([]byte, 15), []byte("s"), make([]byte, 16))
	f.Add(make([]byte, 144), []byte("s"), make([]byte, 16))
	f.Add(make([]byte, 16), []byte{}, make([]byte, 16))
	f.Fuzz(func(t *testing.T, a, secret, auth []byte) {
		want, err := radius.UserPassword(a, secret, auth)
		var buf [maxUserPassword]byte
		n, ok := decryptUserPassword(&buf, a, secret, auth)
		if ok != (err == nil) {
			t.Fatalf("ok %v, layeh's error %v", ok, err)
		}
		if ok && !bytes.Equal(buf[:n], want) {
			t.Fatalf("plaintext %x, layeh's %x", buf[:n], want)
		}
	})
}
