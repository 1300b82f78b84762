package captive

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/events"
)

// waitNext waits (bounded) until the expiry watcher has scanned and sleeps
// until want: the test's clock is injected, so this is how it knows the
// watcher saw the database as it is now.
func waitNext(t *testing.T, p *Portal, want time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p.ends.mu.Lock()
		next := p.ends.next
		p.ends.mu.Unlock()
		if next.Equal(want) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the expiry watcher never slept until %v", want)
}

// nextEnded polls (bounded) for the next SessionEnded: Drain only, as the
// test also checks that nothing is queued.
func nextEnded(t *testing.T, sub *events.Subscription[events.SessionEnded], pending *[]events.SessionEnded) events.SessionEnded {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(*pending) == 0 && time.Now().Before(deadline) {
		*pending = append(*pending, sub.Drain()...)
		if len(*pending) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if len(*pending) == 0 {
		t.Fatal("no SessionEnded")
	}
	e := (*pending)[0]
	*pending = (*pending)[1:]
	return e
}

// TestAnExpiredCodesDevicesAreReported: when a code's time runs out, each
// device signed in with it is reported ended ("expired", at the code's
// end); an extension moves that, a revocation or a device still admitted
// by another code is not reported as expired, and a daemon that starts
// after a code ran out reports it too.
func TestAnExpiredCodesDevicesAreReported(t *testing.T) {
	h := newHarness(t, Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := events.Subscribe[events.SessionEnded](h.hub, "test ended", 100)
	var pending []events.SessionEnded

	issue := func() (int64, string) {
		out, err := Issue(ctx, h.st, "web:frontdesk", IssueRequest{Duration: time.Hour, Now: h.clock.Now()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out[0].Voucher.ID, out[0].Code
	}
	a, codeA := issue()
	b, codeB := issue()
	c, codeC := issue()
	ip1, ip2, ip3 := h.device(1), h.device(2), h.device(3)
	for _, l := range []struct{ ip, code string }{{ip1, codeA}, {ip2, codeB}, {ip3, codeC}} {
		if res := h.login(l.ip, l.code); res.StatusCode != 303 {
			t.Fatalf("login %s: %d", l.ip, res.StatusCode)
		}
	}
	done := make(chan error, 1)
	go func() { done <- h.p.ReportExpiries(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	waitNext(t, h.p, ht0.Add(time.Hour))

	// A is extended, B revoked; device 3 also signs in with a second code
	// D, so C's end does not end it.
	if _, err := h.p.Extend(ctx, "web:frontdesk", a, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.p.Revoke(ctx, "web:frontdesk", b); err != nil {
		t.Fatal(err)
	}
	if e := nextEnded(t, ended, &pending); e.Reason != "revoked" || e.VoucherID != b {
		t.Fatalf("revoke published %+v", e)
	}
	h.clock.Advance(30 * time.Minute)
	d, codeD := issue()
	if res := h.login(ip3, codeD); res.StatusCode != 303 {
		t.Fatalf("login with D: %d", res.StatusCode)
	}
	waitNext(t, h.p, ht0.Add(time.Hour)) // C's end

	h.clock.Advance(45 * time.Minute) // past C's and B's first end
	h.p.ends.poke()
	waitNext(t, h.p, ht0.Add(90*time.Minute)) // D's end
	if got := ended.Drain(); len(got) != 0 {
		t.Fatalf("reported %+v; the extended code's device, the revoked code's and the device still on D are not expired", got)
	}

	h.clock.Advance(time.Hour) // past A's new end and D's
	h.p.ends.poke()
	got := map[int64]events.SessionEnded{}
	for range 2 {
		e := nextEnded(t, ended, &pending)
		got[e.VoucherID] = e
	}
	if e := got[a]; e.Reason != "expired" || e.Source != events.SourcePortal || e.MAC.String() != macOf(1) || !e.At.Equal(ht0.Add(2*time.Hour)) {
		t.Fatalf("A's end reported as %+v", e)
	}
	if e := got[d]; e.Reason != "expired" || e.MAC.String() != macOf(3) || !e.At.Equal(ht0.Add(90*time.Minute)) {
		t.Fatalf("D's end reported as %+v", e)
	}
	_ = c
	cancel()
	<-done
	stopped = true

	// A daemon started after those ends reports them: their devices may
	// still hold the sessions they had.
	h.clock.Advance(3 * time.Hour)
	p2, err := New(Options{Store: h.st, Admitter: h.adm, Neighbours: h.nb, Hub: h.hub, Now: h.clock.Now, PortalURL: "http://" + portalHost})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- p2.ReportExpiries(ctx2) }()
	defer func() { cancel2(); <-done2 }()
	got = map[int64]events.SessionEnded{}
	for range 2 {
		e := nextEnded(t, ended, &pending)
		got[e.VoucherID] = e
	}
	if got[a].Reason != "expired" || got[d].Reason != "expired" {
		t.Fatalf("after a restart: %+v", got)
	}
	time.Sleep(50 * time.Millisecond)
	if more := ended.Drain(); len(more) != 0 {
		t.Fatalf("after a restart also reported %+v", more)
	}
}
