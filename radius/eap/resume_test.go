package eap

import (
	"testing"
	"time"
)

// The table of resumable logins: a ticket resumes only the method it was
// issued for, only until it expires, and the table never holds more than
// MaxResumable bindings however many logins bind tickets.
func TestResumableLoginsAreBoundedAndExpire(t *testing.T) {
	e, clk := newTestEngine(t, func(o *Options) { o.MaxResumable = 3; o.ResumeLifetime = time.Minute })
	ref := func(i byte) [16]byte { return [16]byte{i} }
	e.bind(&tickets{issued: [][16]byte{ref(1)}}, "amy", TypePEAP)
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
	e.bind(&tickets{issued: [][16]byte{ref(9)}}, "", TypePEAP)
	if _, ok := e.boundLogin(ref(9), TypePEAP); ok {
		t.Fatal("a ticket bound to nobody resumed")
	}
	clk.Advance(2 * time.Minute)
	if _, ok := e.boundLogin(ref(1), TypePEAP); ok {
		t.Fatal("an expired binding resumed")
	}
	for i := byte(10); i < 50; i++ {
		e.bind(&tickets{issued: [][16]byte{ref(i)}}, "bob", TypeTTLS)
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
	e.bindTickets(cfg, &tickets{}, TypeTTLS)
	if !cfg.SessionTicketsDisabled {
		t.Fatal("tickets still issued with resumption off")
	}
}
