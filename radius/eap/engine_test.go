package eap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
)

func serverCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "radius.test"}, DNSNames: []string{"radius.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newTestEngine(t testing.TB, mod func(*Options)) (*Engine, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(time.Unix(1_800_000_000, 0))
	o := Options{
		TLS:           &tls.Config{Certificates: []tls.Certificate{serverCert(t)}},
		CheckPassword: func(context.Context, string, string) error { return errors.New("no") },
		Now:           clk.Now,
	}
	if mod != nil {
		mod(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, clk
}

func identity(id byte, name string) []byte {
	return Packet{Code: CodeResponse, ID: id, Type: TypeIdentity, Data: []byte(name)}.Marshal()
}

func TestPacketRoundTripAndSplit(t *testing.T) {
	p := Packet{Code: CodeRequest, ID: 7, Type: TypeTTLS, Data: bytes.Repeat([]byte{0xab}, 600)}
	b := p.Marshal()
	q, err := Parse(b)
	if err != nil || q.Code != p.Code || q.ID != 7 || q.Type != TypeTTLS || !bytes.Equal(q.Data, p.Data) {
		t.Fatalf("%+v %v", q, err)
	}
	parts := slices.Collect(SplitMessage(b))
	if len(parts) != 3 || len(parts[0]) != 253 || !bytes.Equal(bytes.Join(parts, nil), b) {
		t.Fatalf("split into %d parts", len(parts))
	}
	for _, bad := range [][]byte{nil, {1, 2, 0}, {2, 1, 0, 9, 1}, {3, 1, 0, 5, 0}, {9, 1, 0, 4}, {2, 1, 0, 4}} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(% x) accepted", bad)
		}
	}
}

func TestFragmentsReassembleToTheMessage(t *testing.T) {
	msg := make([]byte, 2500)
	rand.Read(msg)
	var f fragmenter
	f.start(msg, 1000)
	var r reassembler
	var got []byte
	for i := 0; ; i++ {
		d, last := f.next()
		fr, err := parseTLSFrame(d[eapHeader:])
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (fr.flags&flagLength == 0 || fr.total != 2500) {
			t.Fatalf("first fragment flags %#x total %d", fr.flags, fr.total)
		}
		if last != (fr.flags&flagMore == 0) {
			t.Fatal("M flag disagrees with last")
		}
		m, complete, err := r.add(fr)
		if err != nil {
			t.Fatal(err)
		}
		if complete {
			got = m
			break
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("reassembled message differs")
	}
	// More than announced, or more than the bound, is refused.
	var r2 reassembler
	if _, _, err := r2.add(tlsFrame{flags: flagLength | flagMore, total: 10, data: make([]byte, 8)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r2.add(tlsFrame{data: make([]byte, 8)}); err == nil {
		t.Fatal("fragments beyond the announced length accepted")
	}
	var r3 reassembler
	for i := 0; ; i++ {
		_, _, err := r3.add(tlsFrame{flags: flagMore, data: make([]byte, 1000)})
		if err != nil {
			break
		}
		if i > maxTLSMessage/1000 {
			t.Fatal("unbounded reassembly")
		}
	}
}

func TestSessionTableBoundsReplaysAndExpiry(t *testing.T) {
	e, clk := newTestEngine(t, func(o *Options) { o.MaxSessions = 3; o.MaxPerClient = 2; o.Timeout = 10 * time.Second })
	ctx := context.Background()
	start := func(client string) (Reply, error) {
		return e.Handle(ctx, Request{Client: client, Message: identity(1, "anonymous@school.example")})
	}
	r1, err := start("ap|a")
	if err != nil || r1.Outcome != Challenge || len(r1.State) != 16 {
		t.Fatalf("%+v %v", r1, err)
	}
	if p, _ := Parse(r1.Message); p.Type != TypeTTLS || !bytes.Equal(p.Data, []byte{flagStart}) {
		t.Fatalf("first request %+v, want TTLS start", p)
	}
	// The same client starting over twice more: its oldest is dropped.
	start("ap|a")
	start("ap|a")
	if n := e.InProgress(); n != 2 {
		t.Fatalf("%d logins, want 2 for one client", n)
	}
	if r, _ := e.Handle(ctx, Request{Client: "ap|a", State: r1.State, Message: Packet{Code: CodeResponse, ID: 2, Type: TypeNak, Data: []byte{TypeTLS}}.Marshal()}); r.Outcome != Reject {
		t.Fatalf("the evicted login answered %+v", r)
	}
	start("ap|b")
	if _, err := start("ap|c"); !errors.Is(err, ErrOverload) {
		t.Fatalf("fourth login: %v, want overload", err)
	}
	clk.Advance(11 * time.Second)
	if _, err := start("ap|c"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := e.InProgress(); n != 1 {
		t.Fatalf("%d logins after expiry, want 1", n)
	}
}

func TestRetransmittedRoundGetsTheSameAnswer(t *testing.T) {
	e, _ := newTestEngine(t, func(o *Options) {
		o.NTHash = func(context.Context, string) ([16]byte, bool, error) { return [16]byte{}, false, nil }
	})
	ctx := context.Background()
	first, err := e.Handle(ctx, Request{Client: "c", Message: identity(5, "x")})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Parse(first.Message)
	nak := Packet{Code: CodeResponse, ID: p.ID, Type: TypeNak, Data: []byte{TypeTTLS}}.Marshal()
	a, err := e.Handle(ctx, Request{Client: "c", State: first.State, Message: nak})
	if err != nil || a.Outcome != Challenge {
		t.Fatalf("%+v %v", a, err)
	}
	b, err := e.Handle(ctx, Request{Client: "c", State: first.State, Message: nak})
	if err != nil || !bytes.Equal(a.Message, b.Message) {
		t.Fatalf("replay: %x vs %x (%v)", a.Message, b.Message, err)
	}
	// A response to an older request is dropped.
	old := Packet{Code: CodeResponse, ID: p.ID - 1, Type: TypeNak, Data: []byte{TypeTTLS}}.Marshal()
	if _, err := e.Handle(ctx, Request{Client: "c", State: first.State, Message: old}); !errors.Is(err, ErrStale) {
		t.Fatalf("stale response: %v", err)
	}
	// A NAK for nothing we offer ends the login.
	q, _ := Parse(a.Message)
	if r, _ := e.Handle(ctx, Request{Client: "c", State: first.State, Message: Packet{Code: CodeResponse, ID: q.ID, Type: TypeNak, Data: []byte{TypeMD5}}.Marshal()}); r.Outcome != Reject {
		t.Fatalf("NAK to MD5: %+v", r)
	}
}

// captured reads the EAP packets eapol_test exchanged with the server
// (testdata/eapol_test-*.hex, taken from its RADIUS dumps).
func captured(t testing.TB) [][]byte {
	t.Helper()
	files, _ := filepath.Glob("testdata/eapol_test-*.hex")
	if len(files) == 0 {
		t.Fatal("no captured packets in testdata")
	}
	var out [][]byte
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			b, err := hex.DecodeString(l)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		fh.Close()
	}
	return out
}

func TestCapturedPacketsParse(t *testing.T) {
	for _, b := range captured(t) {
		p, err := Parse(b)
		if err != nil {
			t.Fatalf("% x: %v", b[:min(len(b), 16)], err)
		}
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatal("re-encoding differs")
		}
		if p.Type == TypeTLS || p.Type == TypeTTLS || p.Type == TypePEAP {
			if _, err := parseTLSFrame(p.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// helloConn captures what a TLS client writes (its ClientHello) and
// never answers.
type helloConn struct {
	net.Conn
	wrote chan []byte
}

func (c helloConn) Write(p []byte) (int, error) {
	c.wrote <- append([]byte(nil), p...)
	return len(p), nil
}
func (c helloConn) Read([]byte) (int, error) { return 0, io.EOF }

func clientHello(t *testing.T) []byte {
	t.Helper()
	c := helloConn{wrote: make(chan []byte, 1)}
	if err := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}).Handshake(); err == nil {
		t.Fatal("a handshake with nobody succeeded")
	}
	return <-c.wrote
}

// A login abandoned mid-handshake leaves its method (a coroutine parked
// in the TLS server's read) behind; the session's expiry and the
// engine's Close must end it, or every abandoned login leaks one.
func TestAbandonedLoginsEndTheirMethod(t *testing.T) {
	e, clk := newTestEngine(t, func(o *Options) { o.Timeout = 10 * time.Second; o.MaxSessions = 100 })
	ctx := context.Background()
	hello := clientHello(t)
	const n = 20
	for i := range n {
		client := fmt.Sprintf("ap|%d", i)
		r, err := e.Handle(ctx, Request{Client: client, Message: identity(1, "anonymous@school.example")})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := Parse(r.Message)
		resp := Packet{Code: CodeResponse, ID: p.ID, Type: TypeTTLS, Data: append([]byte{0}, hello...)}.Marshal()
		r, err = e.Handle(ctx, Request{Client: client, State: r.State, Message: resp})
		if err != nil || r.Outcome != Challenge {
			t.Fatalf("ClientHello answered %+v, %v", r, err)
		}
		if q, _ := Parse(r.Message); len(q.Data) < 50 {
			t.Fatalf("no server flight: %x", q.Data)
		}
	}
	if got := methodsRunning(); got != n {
		t.Fatalf("%d methods waiting, want %d", got, n)
	}
	clk.Advance(11 * time.Second)
	// The next round sweeps the table.
	if _, err := e.Handle(ctx, Request{Client: "ap|x", Message: identity(1, "anonymous@school.example")}); err != nil {
		t.Fatal(err)
	}
	if n := e.InProgress(); n != 1 {
		t.Fatalf("%d logins after expiry, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for methodsRunning() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d methods still waiting after their logins expired", methodsRunning())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Their coroutines wait for other logins, a bounded few (conn.go's
	// runners); Close ends those too.
	if got := runnersAlive(); got == 0 || got > maxIdleRunners {
		t.Fatalf("%d method runners kept, want some, at most %d", got, maxIdleRunners)
	}
	e.Close()
	for deadline := time.Now().Add(5 * time.Second); runnersAlive() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d method runners left after Close", runnersAlive())
		}
	}
}

// runnersAlive counts the method coroutines, running a method or idle.
func runnersAlive() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "eap.newRunner.func1(")
}

// methodsRunning counts the goroutines in a TTLS method.
func methodsRunning() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "eap.(*Engine).runTTLS(")
}

// The server's first TLS 1.2 flight with a chain of three small
// certificates (about 1,250 octets here, like a real leaf and CA) goes in one request when the NAS's Framed-MTU allows
// it, and in two (the second after an acknowledgement) under the default
// 1,000 or a configured fragment size.
func TestFramedMTUSetsTheFragmentSize(t *testing.T) {
	hello := clientHello(t)
	cert := serverCert(t)
	cert.Certificate = append(cert.Certificate, serverCert(t).Certificate[0], serverCert(t).Certificate[0])
	for _, c := range []struct {
		name      string
		configure int
		mtu       int
		fragments bool
	}{
		{"Framed-MTU 1400", 0, 1400, false},
		{"no Framed-MTU", 0, 0, true},
		{"Framed-MTU 1400, fragment size 1000 configured", 1000, 1400, true},
		{"Framed-MTU 9000", 0, 9000, false},
		{"Framed-MTU 600", 0, 600, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, _ := newTestEngine(t, func(o *Options) {
				o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
				o.FragmentSize = c.configure
			})
			ctx := context.Background()
			r, err := e.Handle(ctx, Request{Client: "ap|a", Message: identity(1, "anonymous@school.example"), MTU: c.mtu})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := Parse(r.Message)
			resp := Packet{Code: CodeResponse, ID: p.ID, Type: TypeTTLS, Data: append([]byte{0}, hello...)}.Marshal()
			if r, err = e.Handle(ctx, Request{Client: "ap|a", State: r.State, Message: resp, MTU: c.mtu}); err != nil || r.Outcome != Challenge {
				t.Fatalf("%+v %v", r, err)
			}
			q, _ := Parse(r.Message)
			f, err := parseTLSFrame(q.Data)
			if err != nil {
				t.Fatal(err)
			}
			if more := f.flags&flagMore != 0; more != c.fragments {
				t.Fatalf("first fragment of %d octets (total %d): more fragments %v, want %v", len(f.data), f.total, more, c.fragments)
			}
			if c.mtu > 0 && len(q.Marshal()) > min(c.mtu, 1400) {
				t.Fatalf("EAP packet of %d octets for Framed-MTU %d", len(q.Marshal()), c.mtu)
			}
		})
	}
}
