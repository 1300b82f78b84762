package captive

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// NeighbourTable finds a client's MAC in the kernel's IPv4 neighbour (ARP)
// table. A client that just sent us a TCP segment has a fresh entry there.
type NeighbourTable struct {
	// Handle is a netlink handle in the router's namespace
	// (netlink.NewHandleAt); nil uses the caller's namespace.
	Handle *netlink.Handle
}

// MACFor returns the link-layer address of ip from an entry that is usable
// (not failed or incomplete).
func (n NeighbourTable) MACFor(ip netip.Addr) (net.HardwareAddr, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("captive: neighbour of %v: only IPv4 is looked up", ip)
	}
	var list []netlink.Neigh
	var err error
	if n.Handle != nil {
		list, err = n.Handle.NeighList(0, netlink.FAMILY_V4)
	} else {
		list, err = netlink.NeighList(0, netlink.FAMILY_V4)
	}
	if err != nil {
		return nil, fmt.Errorf("captive: neighbour of %v: %w", ip, err)
	}
	want := net.IP(ip.AsSlice())
	for _, e := range list {
		if !e.IP.Equal(want) || len(e.HardwareAddr) != 6 {
			continue
		}
		if e.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE|netlink.NUD_NOARP) != 0 {
			continue
		}
		return append(net.HardwareAddr(nil), e.HardwareAddr...), nil
	}
	return nil, fmt.Errorf("captive: neighbour of %v: not in the neighbour table", ip)
}
