package captive

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestNeighbourTableFindsOneEntry looks addresses up in a testbed router's
// neighbour table: an entry on the visitor segment is found by the single
// get and by the whole-table fallback alike; a missing one, an incomplete
// one and an IPv6 address are not.
func TestNeighbourTableFindsOneEntry(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	rh, err := s.OpenNS(s.RouterNS())
	if err != nil {
		t.Fatal(err)
	}
	defer rh.Close()
	h, err := vnl.NewHandleAt(rh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	seg, _ := s.Segment("visitor")
	link, err := h.LinkByName(seg.Interface)
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x02, 0x42, 0, 0, 0, 0x77}
	for _, e := range []vnl.Neigh{
		{IP: net.ParseIP("10.40.0.77"), HardwareAddr: mac, State: vnl.NUD_PERMANENT},
		{IP: net.ParseIP("10.40.0.78"), State: vnl.NUD_INCOMPLETE},
	} {
		e.LinkIndex, e.Family = link.Attrs().Index, vnl.FAMILY_V4
		if err := h.NeighAdd(&e); err != nil {
			t.Fatalf("add %v: %v", e.IP, err)
		}
	}
	nt := NeighbourTable{NetNS: int(rh)}
	// A table that keeps its sockets answers the same, round after round
	// on the same sockets, failed lookups in between included.
	pooled := NewNeighbourTable(int(rh))
	defer pooled.Close()
	for round, table := range []NeighbourTable{nt, pooled, pooled, pooled} {
		got, err := table.MACFor(netip.MustParseAddr("10.40.0.77"))
		if err != nil || got.String() != mac.String() {
			t.Fatalf("round %d: MACFor(10.40.0.77) = %v, %v; want %v", round, got, err, mac)
		}
		for _, ip := range []string{"10.40.0.79", "10.40.0.78", "fd00::1"} {
			if got, err := table.MACFor(netip.MustParseAddr(ip)); err == nil {
				t.Errorf("round %d: MACFor(%s) = %v, want an error", round, ip, got)
			}
		}
	}
	if len(pooled.conns) == 0 {
		t.Error("the pooled table kept no socket")
	}

	// The fallback for kernels without single gets reads the same entry.
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: int(rh)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	all, err := dumpNeighbours(c)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range all {
		if e.ip == netip.MustParseAddr("10.40.0.77") {
			found = append(found, e.mac.String())
		}
	}
	if strings.Join(found, ",") != mac.String() {
		t.Fatalf("whole-table dump has %q for 10.40.0.77, want %v", found, mac)
	}
}
