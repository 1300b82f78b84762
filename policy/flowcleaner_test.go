package policy

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

// gatedFlows is a FlowKiller that waits for its gate before deleting.
type gatedFlows struct {
	gate   chan struct{}
	mu     sync.Mutex
	killed []netip.Addr
}

func (g *gatedFlows) KillFlows(_ context.Context, ip netip.Addr) (int, error) {
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.killed = append(g.killed, ip)
	return 1, nil
}

func (g *gatedFlows) Close() error { return nil }

func (g *gatedFlows) seen() []netip.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]netip.Addr(nil), g.killed...)
}

// Evict and Revoke return once the kernel has the change, not once
// conntrack has been searched; the entries are still deleted after, and
// Close waits for that.
func TestEvictAndRevokeCleanConntrackAfterReturning(t *testing.T) {
	dial := func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			if m.Header.Flags&netlink.Dump != 0 {
				return nil, nil
			}
		}
		return req, nil
	}
	flows := &gatedFlows{gate: make(chan struct{})}
	e, err := New(Options{Flows: flows, testDial: dial}, exampleNetwork(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	visitor := Device{MAC: net.HardwareAddr{2, 0, 0, 0, 0x40, 1}, IP: netip.MustParseAddr("10.40.0.10")}
	leaver := Device{MAC: net.HardwareAddr{2, 0, 0, 0, 0x30, 1}, IP: netip.MustParseAddr("10.30.0.10")}
	if err := e.Admit(ctx, visitor, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	returned := make(chan error, 2)
	go func() { returned <- e.Evict(ctx, visitor) }()
	go func() { returned <- e.Revoke(ctx, leaver) }()
	for range 2 {
		select {
		case err := <-returned:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Evict or Revoke waited for conntrack")
		}
	}
	if got := flows.seen(); len(got) != 0 {
		t.Fatalf("conntrack cleaned before the gate opened: %v", got)
	}
	close(flows.gate)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	got := flows.seen()
	if len(got) != 2 || !(got[0] == visitor.IP || got[1] == visitor.IP) || !(got[0] == leaver.IP || got[1] == leaver.IP) {
		t.Fatalf("conntrack cleaned for %v, want %v and %v", got, visitor.IP, leaver.IP)
	}
}

// An eviction's conntrack cleanup waits (flowCleanupDelay), so that the
// server's reply in flight still reaches the device and the router resets
// the device's next packet; a device admitted again by then keeps its
// entries, which are its own.
func TestEvictionCleanupWaitsAndSparesAReadmittedDevice(t *testing.T) {
	dial := func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			if m.Header.Flags&netlink.Dump != 0 {
				return nil, nil
			}
		}
		return req, nil
	}
	flows := &gatedFlows{gate: make(chan struct{})}
	close(flows.gate)
	e, err := New(Options{Flows: flows, testDial: dial}, exampleNetwork(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	back := Device{MAC: net.HardwareAddr{2, 0, 0, 0, 0x40, 1}, IP: netip.MustParseAddr("10.40.0.10")}
	gone := Device{MAC: net.HardwareAddr{2, 0, 0, 0, 0x40, 2}, IP: netip.MustParseAddr("10.40.0.11")}
	for _, d := range []Device{back, gone} {
		if err := e.Admit(ctx, d, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := e.Evict(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Admit(ctx, back, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := flows.seen(); len(got) != 0 {
		t.Fatalf("conntrack cleaned at once for %v, want after %v", got, flowCleanupDelay)
	}
	// Close does not wait out the delay: it cleans what is due now.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := flows.seen(); len(got) != 1 || got[0] != gone.IP {
		t.Fatalf("conntrack cleaned for %v, want only %v (%v is admitted again)", got, gone.IP, back.IP)
	}
}
