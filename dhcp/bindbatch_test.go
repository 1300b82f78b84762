package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// A batch's leases are bound in one BindMany call before any of their
// callbacks runs; each callback learns its own lease's outcome (one
// refused binding fails that lease alone) and the commit's.
func TestCommitBatchBindsItsLeasesInOneCall(t *testing.T) {
	st := newMemStore()
	b := &fakeBinder{bound: map[string]time.Time{}, failMAC: "02:00:00:00:00:03"}
	var m Metrics
	c := newCommitter(st, b, &m, &Timings{}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	const n = 8
	type outcome struct {
		i            int
		err, bindErr error
		boundBefore  int // pairs in the binder when the callback ran
	}
	got := make(chan outcome, n)
	until := time.Now().Add(time.Hour)
	for i := range n {
		mac := net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}
		ip := netip.AddrFrom4([4]byte{10, 40, 0, byte(10 + i)})
		l := Lease{Segment: "visitor", IP: ip, MAC: mac, State: StateBound, Start: time.Now(), Expires: until}
		var bind *policy.Binding
		if i != 5 { // a lease without a binding (no binder for it) shares the batch
			bind = &policy.Binding{Device: policy.Device{MAC: mac, IP: ip}, Until: until}
		}
		// Queued before the committer runs: one batch holds them all.
		if err := c.commitThen(ctx, []Lease{l}, nil, bind, func(err, bindErr error) {
			b.mu.Lock()
			k := len(b.bound)
			b.mu.Unlock()
			got <- outcome{i, err, bindErr, k}
		}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx, stop) }()
	for range n {
		o := <-got
		if o.err != nil {
			t.Errorf("lease %d: commit: %v", o.i, o.err)
		}
		if (o.bindErr != nil) != (o.i == 3) {
			t.Errorf("lease %d: binding outcome %v", o.i, o.bindErr)
		}
		if o.boundBefore != n-2 {
			t.Errorf("lease %d: callback ran with %d of %d pairs bound", o.i, o.boundBefore, n-2)
		}
	}
	close(stop)
	<-done
	if len(b.batches) != 1 || len(b.batches[0]) != n-1 || b.calls != 0 {
		t.Errorf("BindMany calls %d (want 1 of %d pairs), Bind calls %d (want 0)", len(b.batches), n-1, b.calls)
	}

	// A batch that is not durable was bound while it committed (the
	// binding and the fsync overlap); its callback hears that the commit
	// failed, so that it takes the binding back (see
	// TestFailedCommitTakesItsBindingBack) and sends no ACK.
	st.mu.Lock()
	st.fail = errors.New("disk full")
	st.mu.Unlock()
	b2 := &fakeBinder{bound: map[string]time.Time{}}
	c = newCommitter(st, b2, &m, &Timings{}, slog.New(slog.DiscardHandler))
	errc := make(chan error, 1)
	mac := net.HardwareAddr{2, 0, 0, 0, 1, 1}
	ip := netip.MustParseAddr("10.40.1.1")
	if err := c.commitThen(ctx, []Lease{{Segment: "visitor", IP: ip, MAC: mac, State: StateBound, Expires: until}}, nil,
		&policy.Binding{Device: policy.Device{MAC: mac, IP: ip}, Until: until}, func(err, bindErr error) {
			if err == nil {
				t.Error("the failed commit reported success")
			}
			errc <- bindErr
		}); err != nil {
		t.Fatal(err)
	}
	stop, done = make(chan struct{}), make(chan struct{})
	go func() { defer close(done); c.run(ctx, stop) }()
	if bindErr := <-errc; bindErr != nil {
		t.Errorf("binding outcome %v, want the binding made", bindErr)
	}
	close(stop)
	<-done
}

// panickyBinder's BindMany panics; its Bind panics for one MAC alone.
type panickyBinder struct {
	*fakeBinder
	bad string
}

func (b panickyBinder) Bind(ctx context.Context, d policy.Device, until time.Time) error {
	if d.MAC.String() == b.bad {
		panic("bad lease")
	}
	return b.fakeBinder.Bind(ctx, d, until)
}

func (b panickyBinder) BindMany(context.Context, []policy.Binding) []error {
	panic("bad batch")
}

// A BindMany that panics costs only the panicking lease its ACK: the
// finisher binds the batch's leases one by one and drops the callback of
// the one whose Bind panics, as it drops a callback that panics.
func TestBindManyPanicFallsBackToEachLease(t *testing.T) {
	st := newMemStore()
	b := panickyBinder{fakeBinder: &fakeBinder{bound: map[string]time.Time{}}, bad: "02:00:00:00:00:01"}
	var m Metrics
	c := newCommitter(st, b, &m, &Timings{}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	got := make(chan int, 3)
	for i := range 3 {
		mac := net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}
		ip := netip.AddrFrom4([4]byte{10, 40, 0, byte(10 + i)})
		if err := c.commitThen(ctx, []Lease{{Segment: "visitor", IP: ip, MAC: mac, State: StateBound, Expires: until}}, nil,
			&policy.Binding{Device: policy.Device{MAC: mac, IP: ip}, Until: until}, func(err, bindErr error) {
				if err != nil || bindErr != nil {
					t.Errorf("lease %d: %v, %v", i, err, bindErr)
				}
				got <- i
			}); err != nil {
			t.Fatal(err)
		}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); c.run(ctx, stop) }()
	close(stop)
	<-done
	close(got)
	var called []int
	for i := range got {
		called = append(called, i)
	}
	if fmt.Sprint(called) != "[0 2]" || b.calls != 2 || m.Panics.Load() != 2 {
		t.Errorf("callbacks %v, Bind calls %d, panics %d; want [0 2], 2, 2", called, b.calls, m.Panics.Load())
	}
}

// The binding is made while the lease commits; when the commit fails, no
// ACK leaves and the kernel is put back as the pool is: a new client's
// pair is unbound, a renewing client's pair is bound again until its
// previous lease's end, which is still on disk.
func TestFailedCommitTakesItsBindingBack(t *testing.T) {
	st := newMemStore()
	b := &fakeBinder{bound: map[string]time.Time{}}
	h := newHarness(t, st, func(c *Config) { c.Binder = b })
	sent := make(chan []byte, 4)
	lt := func(out []byte, _ netip.AddrPort) { sent <- out }
	exchange := func(req []byte) {
		t.Helper()
		if _, _, ok := h.s.exchange(context.Background(), h.s.byIface["v0"], clientPort, nil, req, lt); ok {
			t.Fatal("a REQUEST answered before its commit")
		}
	}
	waitErrors := func(n uint64) {
		t.Helper()
		h.eventually(func() bool { return h.s.metrics.CommitErrors.Load() >= n }, "the commit failed")
		// The callback runs after the commit error is counted.
		time.Sleep(50 * time.Millisecond)
	}

	const fresh = "00:1c:b3:00:cc:01"
	offer, _ := h.send("v0", clientPort, msg(t, fresh, dhcpv4.MessageTypeDiscover))
	ip := addr4(offer.YourIPAddr)
	st.setFail(errDisk)
	exchange(msg(t, fresh, dhcpv4.MessageTypeRequest, withRequested(ip.String()), withServerID("10.40.0.1")))
	waitErrors(1)
	if b.has(fresh, ip) {
		t.Error("a lease that failed to commit is still bound")
	}
	if len(b.batches) != 1 {
		t.Errorf("BindMany calls %d, want 1 (the binding overlaps the commit)", len(b.batches))
	}
	select {
	case out := <-sent:
		t.Fatalf("ACK sent although the commit failed: %x", out)
	default:
	}

	st.setFail(nil)
	const renewing = "00:1c:b3:00:cc:02"
	rip := h.dora("v0", renewing)
	b.mu.Lock()
	before := b.bound[renewing+"/"+rip.String()]
	b.mu.Unlock()
	h.clk.Advance(20 * time.Minute)
	st.setFail(errDisk)
	exchange(msg(t, renewing, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(rip.AsSlice())))
	waitErrors(2)
	b.mu.Lock()
	after, ok := b.bound[renewing+"/"+rip.String()]
	b.mu.Unlock()
	if !ok || !after.Equal(before) {
		t.Errorf("renewal that failed to commit left the binding until %v (bound %v), want its previous lease's end %v", after, ok, before)
	}
}
