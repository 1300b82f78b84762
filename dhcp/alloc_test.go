package dhcp

import (
	"context"
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// steadyExchange is a returning client's DISCOVER and REQUEST on a
// welcoming segment: the packets a school's morning is made of once
// every device has been seen before.
func steadyExchange(tb testing.TB) (h *harness, discover, request []byte) {
	h = newHarness(tb, newMemStore(), nil)
	mac := net.HardwareAddr{0x00, 0x1c, 0xb3, 0x12, 0, 1}.String()
	ip := h.dora("v0", mac)
	discover = msg(tb, mac, dhcpv4.MessageTypeDiscover)
	request = msg(tb, mac, dhcpv4.MessageTypeRequest, withRequested(ip.String()), withServerID("10.40.0.1"))
	return h, discover, request
}

// maxDiscoverAllocs bounds the allocations of answering a DISCOVER, reply
// included: 2 when it was set (3 before the parsed request came from a
// pool, 17 with the library's parser, 56 before the reply was encoded
// directly): the reply, which the test keeps (the sockets' senders give
// it back to its pool once it is sent), and the MAC's string form the
// address pool is keyed by.
const maxDiscoverAllocs = 3

// TestDiscoverAllocations fails when answering a returning client's
// DISCOVER allocates more than it did when this bound was set.
func TestDiscoverAllocations(t *testing.T) {
	h, discover, _ := steadyExchange(t)
	ctx := context.Background()
	seg := h.s.byIface["v0"]
	n := testing.AllocsPerRun(200, func() {
		if _, _, ok := h.s.handle(ctx, seg, clientPort, nil, discover); !ok {
			t.Fatal("no offer")
		}
	})
	t.Logf("%.0f allocations per DISCOVER", n)
	if n > maxDiscoverAllocs {
		t.Errorf("%.0f allocations per DISCOVER, bound %d", n, maxDiscoverAllocs)
	}
}

func BenchmarkDiscover(b *testing.B) {
	h, discover, _ := steadyExchange(b)
	ctx := context.Background()
	seg := h.s.byIface["v0"]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := h.s.handle(ctx, seg, clientPort, nil, discover); !ok {
			b.Fatal("no offer")
		}
	}
}

func BenchmarkRequest(b *testing.B) {
	h, _, request := steadyExchange(b)
	ctx := context.Background()
	seg := h.s.byIface["v0"]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := h.s.handle(ctx, seg, clientPort, nil, request); !ok {
			b.Fatal("no ack")
		}
	}
}
