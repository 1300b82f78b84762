package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
)

// Network is what the enforcer needs to know about the router. The caller fills
// it from the configuration file, so this package does not depend on its format.
type Network struct {
	// Uplink is the interface towards the internet; traffic leaving it is
	// masqueraded.
	Uplink   string
	Segments []SegmentSpec
	// Servers are the named subnets that segments and rules can refer to
	// (the configuration's "servers:", e.g. "mis").
	Servers map[string]netip.Prefix
	// AdminAddr is where the admin pages listen. Its port is refused on every
	// segment and on the uplink; only loopback and other (management)
	// interfaces reach it.
	AdminAddr netip.AddrPort
	// PortalPort is the router's captive portal port: visitors' and
	// quarantined devices' tcp/80 is redirected there.
	PortalPort uint16
	// DNSPort is the DNS guard's port on the router; every segment's port 53
	// traffic, whatever resolver it was sent to, is redirected there.
	DNSPort uint16
	// DNSRedirectPort, when set, is a second DNS guard port on the router:
	// a segment's UDP port 53 traffic to an address other than a segment's
	// gateway (another resolver, e.g. 8.8.8.8) is redirected there
	// instead of to DNSPort, so that the guard can tell it from queries
	// sent to it (NAT leaves no per-datagram original destination). 0
	// redirects everything to DNSPort. TCP always goes to DNSPort.
	DNSRedirectPort uint16
	// PortalTLSPort is the portal's HTTPS port on the router, 0 when it has
	// none.
	PortalTLSPort uint16
	// RelayInterfaces carry relayed DHCP (from L3 switches); the DHCP port
	// is open on them besides the segments.
	RelayInterfaces []string
}

// SegmentSpec is one segment (VLAN) and its built-in defaults.
type SegmentSpec struct {
	Name      string
	Interface string
	Subnet    netip.Prefix
	Gateway   netip.Addr
	// Portal means nothing but the portal until a device is admitted
	// (the visitor segment).
	Portal bool
	// Internet allows forwarding to the uplink.
	Internet bool
	// Servers are names from Network.Servers this segment may reach.
	Servers []string
	// Isolate drops forwarding between two clients of this segment.
	Isolate bool
	// UnknownDevices is what the segment does with a device nobody
	// approved; the zero value is UnknownAllow. Quarantine and deny
	// forward only approved MACs (RequireApproval).
	UnknownDevices UnknownDevices
	// BindMACIP forwards only source MAC and address pairs the router
	// bound (Enforcer.Bind: DHCP leases and reservations) or admitted;
	// anything else is dropped before any meter or quota.
	BindMACIP bool
	// RateLimit caps each client's traffic, in bytes per second in each
	// direction; 0 means no cap.
	RateLimit uint64
	// BlockPrivateRelay has the DNS guard refuse the names of Apple's
	// iCloud Private Relay, which would carry the segment's web traffic
	// past the school's filtering. The enforcer does not use it; it is
	// here because it is one of the segment's defaults.
	BlockPrivateRelay bool
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,23}$`)

// Validate reports the first reason the enforcer could not build a table for n.
func (n Network) Validate() error {
	if err := checkIface(n.Uplink); err != nil {
		return fmt.Errorf("policy: uplink: %w", err)
	}
	if len(n.Segments) == 0 {
		return fmt.Errorf("policy: no segments")
	}
	for name, p := range n.Servers {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("policy: server %q: need an IPv4 prefix, got %v", name, p)
		}
	}
	if n.PortalPort == 0 || n.DNSPort == 0 {
		return fmt.Errorf("policy: portal port %d and DNS port %d must both be set", n.PortalPort, n.DNSPort)
	}
	// The router's other UDP services; the TCP ones (admin, portal) do
	// not share the redirect port's protocol.
	if p := n.DNSRedirectPort; p != 0 && (p == n.DNSPort || p == 53 || p == 67) {
		return fmt.Errorf("policy: DNS redirect port %d is already one of the router's UDP ports", p)
	}
	var names, ifaces []string
	for i, s := range n.Segments {
		if !nameRE.MatchString(s.Name) {
			return fmt.Errorf("policy: segment %d: name %q must match %s", i, s.Name, nameRE)
		}
		if slices.Contains(names, s.Name) {
			return fmt.Errorf("policy: segment %q defined twice", s.Name)
		}
		if err := checkIface(s.Interface); err != nil {
			return fmt.Errorf("policy: segment %q: %w", s.Name, err)
		}
		if s.Interface == n.Uplink || slices.Contains(ifaces, s.Interface) {
			return fmt.Errorf("policy: segment %q: interface %q already used", s.Name, s.Interface)
		}
		if !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() {
			return fmt.Errorf("policy: segment %q: need an IPv4 subnet, got %v", s.Name, s.Subnet)
		}
		if !s.UnknownDevices.Valid() {
			return fmt.Errorf("policy: segment %q: unknown devices %q: want allow, alert, quarantine or deny", s.Name, s.UnknownDevices)
		}
		for _, srv := range s.Servers {
			if _, ok := n.Servers[srv]; !ok {
				return fmt.Errorf("policy: segment %q: unknown server %q", s.Name, srv)
			}
		}
		names = append(names, s.Name)
		ifaces = append(ifaces, s.Interface)
	}
	return nil
}

func checkIface(name string) error {
	if name == "" || len(name) >= 16 {
		return fmt.Errorf("interface name %q must be 1-15 bytes", name)
	}
	return nil
}
