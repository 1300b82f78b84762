package config

// Decoding of the configuration file's segments, named server subnets and the dhcp relay section.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatehouse-net/gatehouse/policy"
	"gopkg.in/yaml.v3"
)

func (d *decoder) segments(c *Config, path string, v *yaml.Node) {
	d.list(path, v, func(_ int, p string, item *yaml.Node) {
		if isNull(resolve(item)) {
			d.at(p, "empty entry; a segment needs name, interface, subnet and gateway")
			return
		}
		c.Segments = append(c.Segments, d.segment(p, item))
	})
}

func (d *decoder) segment(path string, v *yaml.Node) Segment {
	s := Segment{MACIPBinding: true}
	var dhcpRange string
	var dhcpPresent bool
	d.mapping(v, path, map[string]fieldFunc{
		"mac_ip_binding": func(p string, v *yaml.Node) { s.MACIPBinding = d.boolean(p, v, true) },
		"name": func(p string, v *yaml.Node) {
			if n, ok := d.str(p, v); ok && n != "" {
				s.Name = n
				if err := checkName(n); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
		"vlan": func(p string, v *yaml.Node) {
			if id, ok := d.integer(p, v); ok {
				if id < 1 || id > 4094 {
					d.at(p, "VLAN id %d is out of range 1..4094", id)
				} else {
					s.VLAN = id
				}
			}
		},
		"interface": func(p string, v *yaml.Node) {
			if n, ok := d.str(p, v); ok && n != "" {
				s.Interface = n
				if err := checkInterfaceName(n); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
		"subnet": func(p string, v *yaml.Node) {
			if n, ok := d.str(p, v); ok && n != "" {
				pfx, err := parsePrefix(n, true)
				if err == nil && pfx.Bits() > maxSegmentPrefixBits {
					err = fmt.Errorf("%s is too small for a segment: it needs room for a gateway and clients (/%d at most)", n, maxSegmentPrefixBits)
				}
				if err != nil {
					d.at(p, "%v", err)
					return
				}
				s.Subnet = pfx
			}
		},
		"gateway": func(p string, v *yaml.Node) {
			if n, ok := d.str(p, v); ok && n != "" {
				a, err := parseAddr4(n)
				if err != nil {
					d.at(p, "%v", err)
					return
				}
				s.Gateway = a
			}
		},
		"dhcp": func(p string, v *yaml.Node) {
			dhcpPresent = true
			s.DHCP.Lease = DefaultLease
			d.mapping(v, p, map[string]fieldFunc{
				"range": func(p string, v *yaml.Node) {
					if r, ok := d.str(p, v); ok {
						dhcpRange = r
						if r != "" {
							s.DHCP.RangeStart, s.DHCP.RangeEnd = d.dhcpRange(p, r)
						}
					}
				},
				"lease": func(p string, v *yaml.Node) {
					d.duration(p, v, &s.DHCP.Lease, MinLease, "lease", "8h, 90m or 1h30m")
				},
				"rapid_commit": func(p string, v *yaml.Node) { s.DHCP.RapidCommit = d.boolean(p, v, false) },
				"new_devices_per_minute": func(p string, v *yaml.Node) {
					if n, ok := d.integer(p, v); ok {
						if n < 1 || n > 100000 {
							d.at(p, "must be from 1 to 100000, not %d", n)
							return
						}
						s.DHCP.NewDevicesPerMinute = n
					}
				},
			})
		},
		"portal": func(p string, v *yaml.Node) { s.Portal = d.boolean(p, v, false) },
		"ssids": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, n string) {
				// IEEE 802.11 limits an SSID to 32 octets.
				if n == "" || len(n) > 32 {
					d.at(ip, "SSID %q must be 1 to 32 bytes long", n)
					return
				}
				if slices.Contains(s.SSIDs, n) {
					d.at(ip, "SSID %q is already listed for this segment", n)
					return
				}
				s.SSIDs = append(s.SSIDs, n)
			})
		},
		"unknown_devices": func(p string, v *yaml.Node) {
			if m, ok := d.str(p, v); ok {
				if u := policy.UnknownDevices(m); u != "" && u.Valid() {
					s.UnknownDevices = u
				} else {
					d.at(p, "%q is not a mode; use alert, quarantine, deny or allow", m)
				}
			}
		},
	})
	if resolve(v) == nil || resolve(v).Kind != yaml.MappingNode {
		return s // already reported as not a mapping
	}

	for _, r := range []struct {
		field string
		set   bool
	}{{"name", s.Name != ""}, {"interface", s.Interface != ""}, {"subnet", s.Subnet.IsValid()}, {"gateway", s.Gateway.IsValid()}} {
		f := join(path, r.field)
		if !r.set {
			d.missing(f, path, "every segment needs name, interface, subnet and gateway")
		}
	}
	if dhcpPresent && dhcpRange == "" {
		d.missing(join(path, "dhcp.range"), join(path, "dhcp"), "the pool of addresses to hand out, like 10.10.0.50-10.10.3.250")
	}

	if s.Subnet.IsValid() && s.Gateway.IsValid() {
		gp := join(path, "gateway")
		switch {
		case !s.Subnet.Contains(s.Gateway):
			d.at(gp, "%s is outside the segment's subnet %s", s.Gateway, s.Subnet)
		case s.Gateway == s.Subnet.Addr():
			d.at(gp, "%s is the subnet's network address; the gateway must be a host address", s.Gateway)
		case s.Gateway == broadcast(s.Subnet):
			d.at(gp, "%s is the subnet's broadcast address; the gateway must be a host address", s.Gateway)
		}
	}
	if s.Subnet.IsValid() && s.DHCP.RangeStart.IsValid() {
		rp := join(path, "dhcp.range")
		start, end := s.DHCP.RangeStart, s.DHCP.RangeEnd
		network, bcast := s.Subnet.Addr(), broadcast(s.Subnet)
		for _, e := range []struct {
			which string
			a     netip.Addr
		}{{"start", start}, {"end", end}} {
			switch {
			case !s.Subnet.Contains(e.a):
				d.at(rp, "range %s %s is outside the segment's subnet %s", e.which, e.a, s.Subnet)
			case e.a == network:
				d.at(rp, "range %s %s is the subnet's network address", e.which, e.a)
			case e.a == bcast:
				d.at(rp, "range %s %s is the subnet's broadcast address", e.which, e.a)
			}
		}
		if s.Gateway.IsValid() && start.Compare(s.Gateway) <= 0 && s.Gateway.Compare(end) <= 0 {
			d.at(rp, "range %s-%s contains the gateway %s; clients would be handed the router's address", start, end, s.Gateway)
		}
	}
	return s
}

// dhcpRange parses "start-end". Start after end is reported here; where the
// range sits in the subnet is checked by the caller.
func (d *decoder) dhcpRange(path, r string) (netip.Addr, netip.Addr) {
	a, b, ok := strings.Cut(r, "-")
	if !ok {
		d.at(path, "%q must be a range start-end, like 10.10.0.50-10.10.3.250", r)
		return netip.Addr{}, netip.Addr{}
	}
	start, err1 := parseAddr4(strings.TrimSpace(a))
	end, err2 := parseAddr4(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		for _, err := range []error{err1, err2} {
			if err != nil {
				d.at(path, "range: %v", err)
			}
		}
		return netip.Addr{}, netip.Addr{}
	}
	if start.Compare(end) > 0 {
		d.at(path, "range start %s is after its end %s", start, end)
		return netip.Addr{}, netip.Addr{}
	}
	return start, end
}

func (d *decoder) servers(c *Config, path string, v *yaml.Node) {
	v = resolve(v)
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		d.at(path, "must be a mapping of names to subnets, like \"mis: 10.5.0.0/24\", not %s", describe(v))
		return
	}
	ps := d.pairs(v, path, 0)
	if len(ps) > maxMapLen {
		d.at(path, "has %d entries; at most %d are allowed", len(ps), maxMapLen)
		return
	}
	keyLine := map[string]int{}
	for _, p := range ps {
		if !d.visit(p.key.Line) {
			return
		}
		if p.key.Kind != yaml.ScalarNode {
			d.problemf(p.key.Line, path, "names must be plain words, not %s", describe(p.key))
			continue
		}
		name := p.key.Value
		fp := join(path, name)
		if prev, dup := keyLine[name]; dup {
			d.problemf(p.key.Line, fp, "duplicate server name; already set on line %d", prev)
			continue
		}
		keyLine[name] = p.key.Line
		d.lines[fp] = p.key.Line
		if err := checkName(name); err != nil {
			d.at(fp, "%v", err)
			continue
		}
		s, ok := d.str(fp, p.value)
		if !ok {
			continue
		}
		pfx, err := parsePrefix(s, false)
		if err != nil {
			d.at(fp, "%v", err)
			continue
		}
		c.Servers[name] = pfx
	}
}

// dhcpRelays reads the top-level dhcp section: where relayed requests from
// L3 switches arrive and which relays are trusted to send them.
func (d *decoder) dhcpRelays(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"device_retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.DHCPRelay.DeviceRetention) },
		"packets_per_second": func(p string, v *yaml.Node) {
			if n, ok := d.integer(p, v); ok {
				if n < 1 || n > 10000000 {
					d.at(p, "must be from 1 to 10000000, not %d", n)
					return
				}
				c.DHCPRelay.PacketsPerSecond = n
			}
		},
		"relay_interfaces": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				if err := checkInterfaceName(s); err != nil {
					d.at(ip, "%v", err)
					return
				}
				c.DHCPRelay.Interfaces = append(c.DHCPRelay.Interfaces, s)
			})
		},
		"trusted_relays": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
					c.DHCPRelay.Trusted = append(c.DHCPRelay.Trusted, netip.PrefixFrom(a, 32))
					return
				}
				pfx, err := parsePrefix(s, true)
				if err != nil {
					d.at(ip, "%v", err)
					return
				}
				c.DHCPRelay.Trusted = append(c.DHCPRelay.Trusted, pfx)
			})
		},
	})
}

func (d *decoder) serverOrder(c *Config) []string {
	var names []string
	for name := range c.Servers {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(d.lines["servers."+a], d.lines["servers."+b]), cmp.Compare(a, b))
	})
	return names
}
