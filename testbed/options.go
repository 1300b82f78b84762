package testbed

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Fixed parts of the topology. Tests compare against these, and Config
// writes them into the Gatehouse configuration.
const (
	UplinkInterface   = "wan0"    // router side of the uplink
	InternetInterface = "isp0"    // internet side of the uplink
	ClientInterface   = "eth0"    // the interface in every client and the mgmt namespace
	MgmtInterface     = "gh-mgmt" // router side of the management network

	RouterUplinkIP = "198.51.100.1" // on wan0, /24
	InternetLinkIP = "198.51.100.2" // on isp0, /24; the router's default gateway
	UplinkPrefix   = "198.51.100.0/24"

	ResolverIP    = "203.0.113.53" // the school's filtering resolver (DNS on :53 UDP and TCP)
	WebIP         = "203.0.113.80" // web server: HTTP :80, HTTPS :443 with a self-signed certificate
	FakeServerNet = "192.0.2.0/24" // local route in the internet namespace: any address here can be bound

	MgmtNet      = "10.99.0.0/24"
	MgmtRouterIP = "10.99.0.1"  // admin listen address in Config
	MgmtClientIP = "10.99.0.10" // the access point / admin workstation
	AdminPort    = 8443
)

// Segment describes one school segment: a veth between the router and a
// client namespace. Zero fields take the defaults documented on each.
type Segment struct {
	Name      string       // lower-case letters and digits, at most 12 characters
	VLAN      int          // written to the config only (the testbed has no 802.1Q); default 10 × position
	Interface string       // router-side interface; default "gh-"+Name, at most 15 characters
	Subnet    netip.Prefix // must lie in 10.0.0.0/8 (the internet routes that back to the router)
	Gateway   netip.Addr   // router address; default the subnet's first host

	// ClientAddr is the client's static address; default the subnet base + 10.
	ClientAddr netip.Addr
	// Unconfigured leaves the client interface up with no address and no
	// route, so a DHCP client can configure it.
	Unconfigured bool

	DHCPStart, DHCPEnd netip.Addr    // default base+50 .. broadcast-5
	Lease              time.Duration // default one hour
	Portal             bool          // captive portal segment (written to the config)
	// UnknownDevices is written to the config as the segment's
	// unknown_devices; empty leaves it out (the segment's default).
	UnknownDevices string
}

// Options configure a School. The zero value gives the default school.
type Options struct {
	// Segments default to DefaultSegments().
	Segments []Segment
	// DNSRecords maps names to the A record the resolver returns; names not
	// in the map get NXDOMAIN, known names asked for other types get an
	// empty NOERROR answer. Default DefaultDNSRecords(). Keys may be written
	// with or without the trailing dot, in any case.
	DNSRecords map[string]netip.Addr
	// IPv6 keeps IPv6 enabled in the namespaces. By default it is off, so
	// segments carry no router solicitations, DAD or MLD chatter: the
	// school network is IPv4, and captures in tests stay predictable.
	IPv6 bool
	// Logger receives server errors; default discards.
	Logger *slog.Logger
}

// DefaultSegments returns the four built-in segments of the example
// configuration (../shared/gatehouse.example.yaml beside the repository), with testbed
// interface names.
func DefaultSegments() []Segment {
	return []Segment{
		{Name: "staff", VLAN: 10, Subnet: netip.MustParsePrefix("10.10.0.0/22"), Lease: 8 * time.Hour},
		{Name: "pupil", VLAN: 20, Subnet: netip.MustParsePrefix("10.20.0.0/21"), Lease: 8 * time.Hour},
		{Name: "byod", VLAN: 30, Subnet: netip.MustParsePrefix("10.30.0.0/22"), Lease: 4 * time.Hour},
		{Name: "visitor", VLAN: 40, Subnet: netip.MustParsePrefix("10.40.0.0/23"), Lease: time.Hour, Portal: true},
	}
}

// DefaultDNSRecords returns the resolver's default names: a few ordinary
// sites and the operating systems' connectivity-check hosts, all pointing at
// the web server.
func DefaultDNSRecords() map[string]netip.Addr {
	web := netip.MustParseAddr(WebIP)
	m := map[string]netip.Addr{}
	for _, n := range []string{
		"www.example.com",
		"example.com",
		"www.example.org",
		"captive.apple.com",
		"www.apple.com",
		"connectivitycheck.gstatic.com",
		"clients3.google.com",
		"www.msftconnecttest.com",
		"www.msftncsi.com",
		"detectportal.firefox.com",
	} {
		m[n] = web
	}
	return m
}

var segmentName = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// reserved reports the namespace roles that segment names must not shadow.
func reserved(name string) bool {
	return name == "router" || name == "internet" || name == "mgmt"
}

// normalize fills defaults and checks the options. It never modifies o.
func (o Options) normalize() (Options, error) {
	n := Options{Logger: o.Logger, IPv6: o.IPv6}
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	segs := o.Segments
	if segs == nil {
		segs = DefaultSegments()
	}
	if len(segs) == 0 {
		return n, errors.New("testbed: options: no segments")
	}
	mgmt := netip.MustParsePrefix(MgmtNet)
	tenNet := netip.MustParsePrefix("10.0.0.0/8")
	names := map[string]bool{}
	vlans := map[int]bool{}
	ifaces := map[string]bool{UplinkInterface: true, MgmtInterface: true, "lo": true}
	for i, s := range segs {
		if !segmentName.MatchString(s.Name) {
			return n, fmt.Errorf("testbed: options: segment %d: name %q: want 1-12 lower-case letters and digits, starting with a letter", i, s.Name)
		}
		if reserved(s.Name) || names[s.Name] {
			return n, fmt.Errorf("testbed: options: segment name %q is reserved or repeated", s.Name)
		}
		names[s.Name] = true
		if s.VLAN == 0 {
			s.VLAN = 10 * (i + 1)
		}
		if s.VLAN < 1 || s.VLAN > 4094 || vlans[s.VLAN] {
			return n, fmt.Errorf("testbed: options: segment %s: vlan %d is out of 1-4094 or repeated", s.Name, s.VLAN)
		}
		vlans[s.VLAN] = true
		if s.Interface == "" {
			s.Interface = "gh-" + s.Name
		}
		if len(s.Interface) > 15 || strings.ContainsAny(s.Interface, "/ \t\n:") || s.Interface == "." || s.Interface == ".." {
			return n, fmt.Errorf("testbed: options: segment %s: interface name %q: at most 15 characters, no '/', ':' or spaces", s.Name, s.Interface)
		}
		if ifaces[s.Interface] {
			return n, fmt.Errorf("testbed: options: segment %s: interface name %q is reserved or repeated", s.Name, s.Interface)
		}
		ifaces[s.Interface] = true
		if !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() {
			return n, fmt.Errorf("testbed: options: segment %s: subnet %v: want an IPv4 prefix", s.Name, s.Subnet)
		}
		s.Subnet = s.Subnet.Masked()
		if s.Subnet.Bits() > 28 || s.Subnet.Bits() < 8 {
			return n, fmt.Errorf("testbed: options: segment %s: subnet %v: want a prefix length between /8 and /28", s.Name, s.Subnet)
		}
		if !contains(tenNet, s.Subnet) {
			return n, fmt.Errorf("testbed: options: segment %s: subnet %v is outside 10.0.0.0/8", s.Name, s.Subnet)
		}
		if s.Subnet.Overlaps(mgmt) {
			return n, fmt.Errorf("testbed: options: segment %s: subnet %v overlaps the management network %v", s.Name, s.Subnet, mgmt)
		}
		for _, p := range n.Segments {
			if p.Subnet.Overlaps(s.Subnet) {
				return n, fmt.Errorf("testbed: options: segment %s: subnet %v overlaps segment %s (%v)", s.Name, s.Subnet, p.Name, p.Subnet)
			}
		}
		base := s.Subnet.Addr()
		bcast := broadcast(s.Subnet)
		if !s.Gateway.IsValid() {
			s.Gateway = base.Next()
		}
		if !s.ClientAddr.IsValid() {
			s.ClientAddr = offset(base, 10)
		}
		if !s.DHCPStart.IsValid() {
			s.DHCPStart = offset(base, 50)
		}
		if !s.DHCPEnd.IsValid() {
			s.DHCPEnd = offset(bcast, -5)
		}
		if s.Lease == 0 {
			s.Lease = time.Hour
		}
		for _, a := range []struct {
			what string
			addr netip.Addr
		}{{"gateway", s.Gateway}, {"client address", s.ClientAddr}, {"dhcp start", s.DHCPStart}, {"dhcp end", s.DHCPEnd}} {
			if !s.Subnet.Contains(a.addr) || a.addr == base || a.addr == bcast {
				return n, fmt.Errorf("testbed: options: segment %s: %s %v is not a host address in %v", s.Name, a.what, a.addr, s.Subnet)
			}
		}
		if s.ClientAddr == s.Gateway {
			return n, fmt.Errorf("testbed: options: segment %s: client address equals the gateway %v", s.Name, s.Gateway)
		}
		if s.DHCPEnd.Less(s.DHCPStart) {
			return n, fmt.Errorf("testbed: options: segment %s: dhcp range %v-%v is reversed", s.Name, s.DHCPStart, s.DHCPEnd)
		}
		if s.Lease < 0 {
			return n, fmt.Errorf("testbed: options: segment %s: negative lease %v", s.Name, s.Lease)
		}
		n.Segments = append(n.Segments, s)
	}
	recs := o.DNSRecords
	if recs == nil {
		recs = DefaultDNSRecords()
	}
	n.DNSRecords = make(map[string]netip.Addr, len(recs))
	for name, addr := range recs {
		fq := fqdn(name)
		if fq == "." || !addr.Is4() {
			return n, fmt.Errorf("testbed: options: dns record %q -> %v: want a name and an IPv4 address", name, addr)
		}
		n.DNSRecords[fq] = addr
	}
	return n, nil
}

// fqdn lower-cases a DNS name and adds the trailing dot.
func fqdn(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func contains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func offset(a netip.Addr, d int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v = uint32(int64(v) + int64(d))
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
