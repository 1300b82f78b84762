package testbed

import (
	"net/netip"
	"strings"
	"testing"
)

func TestOptionsDefaultsMatchTheExampleSchool(t *testing.T) {
	o, err := Options{}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Segments) != 4 {
		t.Fatalf("segments %v", o.Segments)
	}
	v := o.Segments[3]
	if v.Name != "visitor" || v.Interface != "gh-visitor" || v.Gateway.String() != "10.40.0.1" ||
		v.ClientAddr.String() != "10.40.0.10" || v.DHCPStart.String() != "10.40.0.50" || v.DHCPEnd.String() != "10.40.1.250" || !v.Portal {
		t.Errorf("visitor defaults: %+v", v)
	}
	if o.DNSRecords["www.example.com."] != netip.MustParseAddr(WebIP) {
		t.Errorf("dns defaults: %v", o.DNSRecords)
	}
}

func TestOptionsRejectBadSegments(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		segs []Segment
		want string
	}{
		{"empty list", []Segment{}, "no segments"},
		{"bad name", []Segment{{Name: "Staff", Subnet: p("10.1.0.0/24")}}, "name"},
		{"reserved name", []Segment{{Name: "router", Subnet: p("10.1.0.0/24")}}, "reserved"},
		{"repeated name", []Segment{{Name: "a", Subnet: p("10.1.0.0/24")}, {Name: "a", Subnet: p("10.2.0.0/24")}}, "repeated"},
		{"long interface", []Segment{{Name: "a", Interface: "sixteen-chars-xx", Subnet: p("10.1.0.0/24")}}, "15 characters"},
		{"dot interface", []Segment{{Name: "a", Interface: "..", Subnet: p("10.1.0.0/24")}}, "15 characters"},
		{"uplink interface", []Segment{{Name: "a", Interface: "wan0", Subnet: p("10.1.0.0/24")}}, "reserved or repeated"},
		{"no subnet", []Segment{{Name: "a"}}, "IPv4 prefix"},
		{"outside ten", []Segment{{Name: "a", Subnet: p("192.168.1.0/24")}}, "outside 10.0.0.0/8"},
		{"mgmt overlap", []Segment{{Name: "a", Subnet: p("10.99.0.0/16")}}, "management"},
		{"overlap", []Segment{{Name: "a", Subnet: p("10.1.0.0/16")}, {Name: "b", Subnet: p("10.1.2.0/24")}}, "overlaps segment a"},
		{"gateway outside", []Segment{{Name: "a", Subnet: p("10.1.0.0/24"), Gateway: a("10.2.0.1")}}, "gateway"},
		{"client is broadcast", []Segment{{Name: "a", Subnet: p("10.1.0.0/24"), ClientAddr: a("10.1.0.255")}}, "client address"},
		{"client is gateway", []Segment{{Name: "a", Subnet: p("10.1.0.0/24"), ClientAddr: a("10.1.0.1")}}, "equals the gateway"},
		{"small subnet needs a range", []Segment{{Name: "a", Subnet: p("10.1.0.0/28")}}, "dhcp start"},
		{"vlan out of range", []Segment{{Name: "a", VLAN: 4095, Subnet: p("10.1.0.0/24")}}, "vlan"},
		{"repeated vlan", []Segment{{Name: "a", VLAN: 20, Subnet: p("10.1.0.0/24")}, {Name: "b", Subnet: p("10.2.0.0/24")}}, "vlan 20"},
		{"reversed range", []Segment{{Name: "a", Subnet: p("10.1.0.0/24"), DHCPStart: a("10.1.0.200"), DHCPEnd: a("10.1.0.100")}}, "reversed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Options{Segments: tc.segs}.normalize()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestOptionsRejectBadDNSRecords(t *testing.T) {
	for name, addr := range map[string]netip.Addr{
		"":         netip.MustParseAddr(WebIP),
		"v6.test.": netip.MustParseAddr("2001:db8::1"),
		"none":     {},
	} {
		if _, err := (Options{DNSRecords: map[string]netip.Addr{name: addr}}).normalize(); err == nil {
			t.Errorf("record %q -> %v accepted", name, addr)
		}
	}
}

func TestStaleNameParsing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		id     string
		pid    string
		ourOwn bool
	}{
		{"gh123x0abc-router", "gh123x0abc", "123", true},
		{"gh123x0abc-staff", "gh123x0abc", "123", true},
		{"gh-staff", "", "", false},
		{"gh123xZZZZ-router", "", "", false},
		{"ghost", "", "", false},
		{"cni-1234", "", "", false},
		{"gh-pol-97212162", "", "", false},
		{"gh1x0000", "", "", false},
	} {
		m := nsNameRE.FindStringSubmatch(tc.name)
		if (m != nil) != tc.ourOwn {
			t.Errorf("%s: matched %v, want %v", tc.name, m != nil, tc.ourOwn)
			continue
		}
		if m != nil && (m[1] != tc.id || m[2] != tc.pid) {
			t.Errorf("%s: id %s pid %s", tc.name, m[1], m[2])
		}
	}
}
