package eap

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// proved is tk with the credential version "v1" of who noted, as the inner
// login notes it before checking the password.
func proved(who string, refs ...[16]byte) *tickets {
	return &tickets{issued: refs, cred: credential{user: who, version: "v1", ok: true}}
}

// The table of resumable logins: a ticket resumes only the method it was
// issued for, only until it expires, and the table never holds more than
// MaxResumable bindings however many logins bind tickets.
func TestResumableLoginsAreBoundedAndExpire(t *testing.T) {
	e, clk := newTestEngine(t, func(o *Options) { o.MaxResumable = 3; o.ResumeLifetime = time.Minute })
	ref := func(i byte) [16]byte { return [16]byte{i} }
	e.bind(proved("amy", ref(1)), "amy", TypePEAP)
	if b, ok := e.boundLogin(ref(1), TypePEAP); !ok || b.identity != "amy" {
		t.Fatalf("bound ticket: %+v, %v", b, ok)
	}
	if _, ok := e.boundLogin(ref(1), TypeTTLS); ok {
		t.Fatal("a PEAP ticket resumed a TTLS login")
	}
	if _, ok := e.boundLogin(ref(2), TypePEAP); ok {
		t.Fatal("an unbound ticket resumed")
	}
	e.bind(&tickets{}, "amy", TypePEAP) // a login that issued no ticket binds nothing
	e.bind(proved("", ref(9)), "", TypePEAP)
	e.bind(&tickets{issued: [][16]byte{ref(8)}}, "amy", TypePEAP) // no credential noted
	e.bind(proved("bob", ref(7)), "amy", TypePEAP)                // noted for someone else
	for _, r := range []byte{7, 8} {
		if _, ok := e.boundLogin(ref(r), TypePEAP); ok {
			t.Fatalf("ticket %d bound without amy's credential version", r)
		}
	}
	if _, ok := e.boundLogin(ref(9), TypePEAP); ok {
		t.Fatal("a ticket bound to nobody resumed")
	}
	clk.Advance(2 * time.Minute)
	if _, ok := e.boundLogin(ref(1), TypePEAP); ok {
		t.Fatal("an expired binding resumed")
	}
	for i := byte(10); i < 50; i++ {
		e.bind(proved("bob", ref(i)), "bob", TypeTTLS)
		if n := len(e.bound); n > 3 {
			t.Fatalf("%d bindings held, bound is 3", n)
		}
	}
	if _, ok := e.boundLogin(ref(49), TypeTTLS); !ok {
		t.Fatal("the latest binding was dropped")
	}
}

// ResumeLifetime < 0 turns tickets off for the tunnelled methods.
func TestResumptionCanBeTurnedOff(t *testing.T) {
	e, _ := newTestEngine(t, func(o *Options) { o.ResumeLifetime = -1 })
	cfg := e.base.Clone()
	e.bindTickets(context.Background(), cfg, &tickets{}, TypeTTLS)
	if !cfg.SessionTicketsDisabled {
		t.Fatal("tickets still issued with resumption off")
	}
}

// Without a way to tell a changed password, nothing is resumable.
func TestResumptionNeedsCredentialVersions(t *testing.T) {
	e, _ := newTestEngine(t, nil)
	cfg := e.base.Clone()
	e.bindTickets(context.Background(), cfg, &tickets{}, TypeTTLS)
	if !cfg.SessionTicketsDisabled {
		t.Fatal("tickets issued with no CredentialVersion")
	}
}

// tunnelHandshake runs one TLS handshake of a tunnelled method under e's
// ticket rules (bindTickets, and handshake's DidResume rule), the client
// resuming from cache when it can. Loopback TCP, not net.Pipe: a TLS 1.3
// server writes its tickets in its first flight, which an unbuffered pipe
// would deadlock on.
func tunnelHandshake(t *testing.T, e *Engine, method byte, cache tls.ClientSessionCache, version uint16) *tickets {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := e.base.Clone()
	tk := &tickets{}
	e.bindTickets(context.Background(), cfg, tk, method)
	var (
		wg     sync.WaitGroup
		srvErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			srvErr = err
			return
		}
		defer c.Close()
		srv := tls.Server(c, cfg)
		if srvErr = srv.Handshake(); srvErr != nil {
			return
		}
		if !srv.ConnectionState().DidResume {
			tk.resumed, tk.cred = nil, credential{}
		}
		// One octet of data: reading it, a TLS 1.3 client takes its ticket.
		_, srvErr = srv.Write([]byte{0})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cli := tls.Client(c, &tls.Config{ServerName: "radius.test", InsecureSkipVerify: true, ClientSessionCache: cache,
		MinVersion: version, MaxVersion: version})
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cli, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	if cli.ConnectionState().DidResume != (tk.resumed != nil) {
		t.Fatalf("client resumed %v, engine resumed %v", cli.ConnectionState().DidResume, tk.resumed != nil)
	}
	return tk
}

// A password changed or reset after a login makes that login's tickets
// unresumable: the next login runs the inner login in full (and fails
// there with the old password). A change while the inner login is under
// way leaves its binding stale as well.
func TestResumptionEndsWhenThePasswordChanges(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			var mu sync.Mutex
			current := "v1"
			setPassword := func(v string) { mu.Lock(); current = v; mu.Unlock() }
			e, _ := newTestEngine(t, func(o *Options) {
				o.CredentialVersion = func(_ context.Context, user string) (string, error) {
					if user != "amy" {
						return "", errors.New("nobody of that name")
					}
					mu.Lock()
					defer mu.Unlock()
					return current, nil
				}
			})
			ctx := context.Background()
			cache := tls.NewLRUClientSessionCache(4)
			login := func() *tickets { // a full login by amy
				tk := tunnelHandshake(t, e, TypeTTLS, cache, v)
				if tk.resumed != nil {
					t.Fatal("resumed where a full login was due")
				}
				if len(tk.issued) == 0 {
					t.Fatal("no ticket issued")
				}
				e.noteCredential(ctx, tk, "amy")
				return tk
			}
			resumes := func() bool {
				tk := tunnelHandshake(t, e, TypeTTLS, cache, v)
				if tk.resumed == nil {
					return false
				}
				if tk.resumed.identity != "amy" {
					t.Fatalf("resumed %q", tk.resumed.identity)
				}
				e.bind(tk, "amy", TypeTTLS) // as runTTLS does
				return true
			}

			e.bind(login(), "amy", TypeTTLS)
			if !resumes() {
				t.Fatal("the same password: not resumed")
			}
			setPassword("v2") // reset by the network manager
			held := len(e.bound)
			if resumes() {
				t.Fatal("resumed after the password was reset")
			}
			if n := len(e.bound); n != held-1 {
				t.Fatalf("%d bindings held after a stale one was offered, want %d", n, held-1)
			}
			// That full login, with the new password, is resumable again.
			e.bind(login(), "amy", TypeTTLS)
			if !resumes() {
				t.Fatal("the new password's login: not resumed")
			}
			// Changed between noting the version and the login's success
			// (a new device: nothing to resume).
			cache = tls.NewLRUClientSessionCache(4)
			tk := login()
			setPassword("v3")
			e.bind(tk, "amy", TypeTTLS)
			if resumes() {
				t.Fatal("a binding taken across a password change resumed")
			}
		})
	}
}
