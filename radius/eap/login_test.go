package eap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// eapClient is a TTLS-PAP supplicant in process: crypto/tls's client over
// the EAP rounds, for a login through the engine without eapol_test.
type eapClient struct {
	flush chan []byte // what the client wrote before it wanted to read
	inbox chan []byte // the server's next flight
	out   []byte
	in    []byte
	done  chan error
	keys  []byte // the MSK the client derives
}

func (c *eapClient) Write(p []byte) (int, error) { c.out = append(c.out, p...); return len(p), nil }
func (c *eapClient) Read(p []byte) (int, error) {
	for len(c.in) == 0 {
		c.flush <- c.out
		c.out = nil
		in, ok := <-c.inbox
		if !ok {
			return 0, net.ErrClosed
		}
		c.in = in
	}
	n := copy(p, c.in)
	c.in = c.in[n:]
	return n, nil
}
func (c *eapClient) Close() error                     { return nil }
func (c *eapClient) LocalAddr() net.Addr              { return eapAddr{} }
func (c *eapClient) RemoteAddr() net.Addr             { return eapAddr{} }
func (c *eapClient) SetDeadline(time.Time) error      { return nil }
func (c *eapClient) SetReadDeadline(time.Time) error  { return nil }
func (c *eapClient) SetWriteDeadline(time.Time) error { return nil }

// ttlsPAPLogin runs one TTLS-PAP login of user through e and returns the
// engine's reply to the last round, the client's MSK and the rounds taken.
func ttlsPAPLogin(ctx context.Context, e *Engine, client, user, password string, mtu int) (Reply, []byte, int, error) {
	c := &eapClient{flush: make(chan []byte), inbox: make(chan []byte), done: make(chan error, 1)}
	go func() {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
		err := tc.Handshake()
		if err == nil {
			var km []byte
			st := tc.ConnectionState()
			km, err = st.ExportKeyingMaterial("ttls keying material", nil, 64)
			c.keys = km
			if err == nil {
				avps := appendAVP(appendAVP(nil, avpUserName, 0, []byte(user)), avpUserPassword, 0, []byte(password))
				_, err = tc.Write(avps)
			}
			if err == nil {
				_, err = tc.Read(make([]byte, 1)) // flushes the AVPs; ends when the login does
				if errors.Is(err, net.ErrClosed) {
					err = nil
				}
			}
		}
		c.done <- err
		close(c.flush)
	}()
	defer func() {
		close(c.inbox)
		for range c.flush {
		}
	}()
	r, rounds, err := drive(ctx, e, c, client, mtu) // peap_login_test.go
	if err != nil {
		return r, nil, rounds, err
	}
	return r, c.keys, rounds, nil
}

func ttlsEngine(t testing.TB) *Engine {
	cert := serverCert(t)
	// A chain the size of a real leaf and CA.
	cert.Certificate = append(cert.Certificate, serverCert(t).Certificate[0], serverCert(t).Certificate[0])
	e, _ := newTestEngine(t, func(o *Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		o.Methods = []string{MethodTTLS}
		o.Now = time.Now
		o.MaxSessions = 1 << 16
		o.CheckPassword = func(_ context.Context, user, pw string) error {
			if user == "amy" && pw == "right" {
				return nil
			}
			return errors.New("wrong password")
		}
	})
	return e
}

// A whole TTLS-PAP login through the engine: the method coroutine carries
// the handshake and the inner login across the rounds, the keys agree, and
// a wrong password is refused.
func TestTTLSPAPLoginInProcess(t *testing.T) {
	e := ttlsEngine(t)
	ctx := context.Background()
	r, msk, rounds, err := ttlsPAPLogin(ctx, e, "ap|1", "amy", "right", 1400)
	if err != nil || r.Outcome != Accept || r.Identity != "amy" {
		t.Fatalf("login: %+v %v", r, err)
	}
	if string(r.MSK) != string(msk) {
		t.Fatalf("MSK %x, the client's %x", r.MSK, msk)
	}
	// Identity, ClientHello, Finished, the AVPs: no round only to
	// acknowledge a fragment at Framed-MTU 1400.
	if rounds != 4 {
		t.Fatalf("%d rounds, want 4", rounds)
	}
	if r, _, _, err := ttlsPAPLogin(ctx, e, "ap|2", "amy", "wrong", 1400); err != nil || r.Outcome != Reject {
		t.Fatalf("wrong password: %+v %v", r, err)
	}
	if _, _, rounds, _ := ttlsPAPLogin(ctx, e, "ap|3", "amy", "right", 0); rounds != 5 {
		t.Fatalf("%d rounds without Framed-MTU, want 5 (one to acknowledge a fragment)", rounds)
	}
}

// BenchmarkTTLSPAPLogin is one full TTLS-PAP login (TLS 1.2, no
// resumption) through the engine: the client's CPU is in the figure too.
func BenchmarkTTLSPAPLogin(b *testing.B) {
	e := ttlsEngine(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r, _, _, err := ttlsPAPLogin(ctx, e, fmt.Sprint("ap|", i), "amy", "right", 1400)
		if err != nil || r.Outcome != Accept {
			b.Fatalf("%+v %v", r, err)
		}
	}
}
