package dhcp

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
)

// Segment is what the server needs to know to serve one segment.
type Segment struct {
	Name string
	// Interface is the router's interface on the segment. Empty for a
	// segment reached only through relays.
	Interface  string
	Subnet     netip.Prefix
	Gateway    netip.Addr   // option 3
	ServerID   netip.Addr   // option 54; zero means Gateway
	DNS        []netip.Addr // option 6; empty means Gateway (the router's DNS guard)
	DomainName string       // option 15; empty leaves it out
	RangeStart netip.Addr
	RangeEnd   netip.Addr
	Lease      time.Duration
	// PortalURI is the RFC 8908 API URI sent as option 114; only portal
	// segments set it, every other segment leaves the option out.
	PortalURI string
	// Unknown is what the segment does with a device nobody approved
	// (segments[].unknown_devices): allow or "" leases it, alert leases it
	// and raises a finding, quarantine leases it into the quarantine set and
	// raises one, deny answers nothing and raises one.
	Unknown policy.UnknownDevices
	// RapidCommit answers a DISCOVER carrying option 80 with an ACK at once
	// (RFC 4039). Off by default: one forged packet then takes an address
	// for a whole lease, instead of an offer that lapses in seconds.
	RapidCommit bool
	// NewDevicesPerMinute caps the MACs never seen before that may be offered
	// an address per minute; 0 means DefaultNewDevicesPerMinute.
	NewDevicesPerMinute int
}

func (s Segment) serverID() netip.Addr {
	if s.ServerID.IsValid() {
		return s.ServerID
	}
	return s.Gateway
}

func (s Segment) dns() []netip.Addr {
	if len(s.DNS) > 0 {
		return s.DNS
	}
	return []netip.Addr{s.Gateway}
}

func (s Segment) validate() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("segment without a name")
	case !s.Subnet.IsValid() || !s.Subnet.Addr().Is4():
		return fmt.Errorf("segment %s: subnet %v is not IPv4", s.Name, s.Subnet)
	case s.Subnet.Bits() > 30:
		return fmt.Errorf("segment %s: subnet %v too small for a pool", s.Name, s.Subnet)
	case !s.Gateway.Is4() || !s.Subnet.Contains(s.Gateway):
		return fmt.Errorf("segment %s: gateway %v outside %v", s.Name, s.Gateway, s.Subnet)
	case !s.Subnet.Contains(s.RangeStart) || !s.Subnet.Contains(s.RangeEnd):
		return fmt.Errorf("segment %s: range %v-%v outside %v", s.Name, s.RangeStart, s.RangeEnd, s.Subnet)
	case s.RangeEnd.Less(s.RangeStart):
		return fmt.Errorf("segment %s: range %v-%v reversed", s.Name, s.RangeStart, s.RangeEnd)
	case s.Lease < time.Minute:
		return fmt.Errorf("segment %s: lease %v shorter than a minute", s.Name, s.Lease)
	case s.ServerID.IsValid() && !s.ServerID.Is4():
		return fmt.Errorf("segment %s: server id %v is not IPv4", s.Name, s.ServerID)
	}
	for _, d := range s.DNS {
		if !d.Is4() {
			return fmt.Errorf("segment %s: dns %v is not IPv4", s.Name, d)
		}
	}
	switch s.Unknown {
	case "", policy.UnknownAllow, policy.UnknownAlert, policy.UnknownQuarantine, policy.UnknownDeny:
	default:
		return fmt.Errorf("segment %s: unknown devices %q is not allow, alert, quarantine or deny", s.Name, s.Unknown)
	}
	if s.NewDevicesPerMinute < 0 {
		return fmt.Errorf("segment %s: new devices per minute %d is negative", s.Name, s.NewDevicesPerMinute)
	}
	if len(s.PortalURI) > 255 {
		return fmt.Errorf("segment %s: portal URI longer than 255 bytes", s.Name)
	}
	return nil
}

// PoolSize is how many addresses the segment's range holds, RangeStart to
// RangeEnd inclusive (what the overview page measures use against); 0 for a
// range that is not IPv4 or runs backwards.
func (s Segment) PoolSize() int {
	if !s.RangeStart.Is4() || !s.RangeEnd.Is4() || s.RangeEnd.Less(s.RangeStart) {
		return 0
	}
	return int(ip4u(s.RangeEnd)-ip4u(s.RangeStart)) + 1
}
