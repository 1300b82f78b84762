package policy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNetworkValidate(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Network)
		valid bool
	}{
		{"example school", func(*Network) {}, true},
		{"no uplink", func(n *Network) { n.Uplink = "" }, false},
		{"interface name too long", func(n *Network) { n.Segments[0].Interface = "a-very-long-ifname" }, false},
		{"no segments", func(n *Network) { n.Segments = nil }, false},
		{"segment name with spaces", func(n *Network) { n.Segments[0].Name = "staff room" }, false},
		{"segment twice", func(n *Network) { n.Segments[1].Name = "staff" }, false},
		{"interface shared", func(n *Network) { n.Segments[1].Interface = "lan10" }, false},
		{"segment on the uplink", func(n *Network) { n.Segments[1].Interface = "wan0" }, false},
		{"IPv6 subnet", func(n *Network) { n.Segments[0].Subnet = netip.MustParsePrefix("2001:db8::/64") }, false},
		{"unknown server", func(n *Network) { n.Segments[0].Servers = []string{"finance"} }, false},
		{"no portal port", func(n *Network) { n.PortalPort = 0 }, false},
		{"no admin address is allowed", func(n *Network) { n.AdminAddr = netip.AddrPort{} }, true},
	}
	for _, c := range cases {
		n := testNetwork()
		c.edit(&n)
		if err := n.Validate(); (err == nil) != c.valid {
			t.Errorf("%s: Validate = %v, want valid=%v", c.name, err, c.valid)
		}
	}
}

func TestDefaultsFollowDesign(t *testing.T) {
	p := netip.MustParsePrefix("10.0.0.0/24")
	g := netip.MustParseAddr("10.0.0.1")
	staff := Defaults("staff", "lan10", p, g, false)
	pupil := Defaults("pupil", "lan20", p, g, false)
	byod := Defaults("byod", "lan30", p, g, false)
	visitor := Defaults("visitor", "lan40", p, g, false)
	other := Defaults("library", "lan50", p, g, false)
	guests := Defaults("guests", "lan60", p, g, true)
	switch {
	case !staff.Internet || len(staff.Servers) != 1 || staff.Servers[0] != "mis" || staff.Isolate || staff.UnknownDevices != UnknownAlert || staff.BlockPrivateRelay:
		t.Errorf("staff: %+v", staff)
	case !pupil.Internet || len(pupil.Servers) != 0 || !pupil.Isolate || pupil.UnknownDevices != UnknownAlert || !pupil.BlockPrivateRelay:
		t.Errorf("pupil: %+v", pupil)
	// "Every device is welcome" on byod (README): no approval gate.
	case !byod.Internet || byod.UnknownDevices != UnknownAllow || byod.RequireApproval() || len(byod.Servers) != 0 || byod.BlockPrivateRelay:
		t.Errorf("byod: %+v", byod)
	case !visitor.Portal || !visitor.Internet || !visitor.Isolate || visitor.RateLimit == 0 || visitor.UnknownDevices != UnknownAllow || !visitor.BlockPrivateRelay:
		t.Errorf("visitor: %+v", visitor)
	case other.Internet || other.Portal || len(other.Servers) != 0 || other.UnknownDevices != UnknownAllow:
		t.Errorf("unknown segment gets defaults: %+v", other)
	case !guests.Portal || !guests.BlockPrivateRelay:
		t.Errorf("a portal segment of another name: %+v", guests)
	}
}

// Only quarantine and deny gate forwarding on approval: allow and alert let
// a stranger through, alert only flags it.
func TestUnknownDevicesModes(t *testing.T) {
	p := netip.MustParsePrefix("10.0.0.0/24")
	g := netip.MustParseAddr("10.0.0.1")
	for _, c := range []struct {
		mode UnknownDevices
		gate bool
	}{{UnknownAllow, false}, {UnknownAlert, false}, {UnknownQuarantine, true}, {UnknownDeny, true}} {
		for _, name := range []string{"staff", "pupil", "byod", "visitor"} {
			s := Defaults(name, "lan10", p, g, false).WithUnknownDevices(c.mode)
			if s.UnknownDevices != c.mode || s.RequireApproval() != c.gate {
				t.Errorf("%s with %s: mode %q, approval gate %v; want %v", name, c.mode, s.UnknownDevices, s.RequireApproval(), c.gate)
			}
		}
	}
	if s := Defaults("pupil", "lan10", p, g, false).WithUnknownDevices(""); s.UnknownDevices != UnknownAlert {
		t.Errorf("an empty choice replaced the default: %q", s.UnknownDevices)
	}
	n := Network{Uplink: "wan0", PortalPort: 1, DNSPort: 2,
		Segments: []SegmentSpec{Defaults("pupil", "lan10", p, g, false).WithUnknownDevices("lockdown")}}
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "lockdown") {
		t.Errorf("Validate with an unknown mode: %v", err)
	}
}

func TestSegmentsWithNamesTheSegmentsInAMode(t *testing.T) {
	n := Network{Segments: []SegmentSpec{
		{Name: "staff", UnknownDevices: UnknownAlert},
		{Name: "byod", UnknownDevices: UnknownQuarantine},
		{Name: "pupil", UnknownDevices: UnknownDeny},
		{Name: "lab", UnknownDevices: UnknownQuarantine},
	}}
	if got := n.SegmentsWith(UnknownQuarantine); !slices.Equal(got, []string{"byod", "lab"}) {
		t.Fatalf("quarantine: %v", got)
	}
	if got := n.SegmentsWith(UnknownAllow); got != nil {
		t.Fatalf("allow: %v", got)
	}
}

// TestValidateRefusesADNSRedirectPortTakenByAnotherService: the second
// DNS guard port must be one no other router UDP service listens on, or
// the redirect would hand other resolvers' queries to it.
func TestValidateRefusesADNSRedirectPortTakenByAnotherService(t *testing.T) {
	n := exampleNetwork()
	if err := n.Validate(); err != nil {
		t.Fatalf("the example network: %v", err)
	}
	for _, p := range []uint16{n.DNSPort, 53, 67} {
		n.DNSRedirectPort = p
		if err := n.Validate(); err == nil {
			t.Errorf("DNS redirect port %d accepted", p)
		}
	}
}
