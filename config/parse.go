package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults for keys the file may leave out.
const (
	DefaultAdminListen = "127.0.0.1:8443"
	DefaultAdminTLS    = "auto"
	DefaultTimezone    = "Local" // the router's own zone
	DefaultRADIUSAuth  = ":1812"
	DefaultRADIUSAcct  = ":1813"
	DefaultCoAPort     = 3799
	DefaultLease       = time.Hour
	MinLease           = time.Minute
	DefaultDNSPort     = 53
	// Retentions: how long the DNS query log, inspection findings and
	// guests' acceptance records are kept before they are purged.
	DefaultDNSLogRetention  = 30 * 24 * time.Hour
	DefaultFindingRetention = 90 * 24 * time.Hour
	DefaultGuestRetention   = 365 * 24 * time.Hour
	MinRetention            = 24 * time.Hour
	adminCertName           = "admin-cert.pem"
	adminKeyName            = "admin-key.pem"
	maxSegmentPrefixBits    = 30 // a /31 or /32 has no room for a gateway and clients
	maxNameLen              = 32
	maxInterfaceNameBytes   = 15 // IFNAMSIZ minus the terminating NUL
)

// Names of segments, servers and RADIUS clients end up in nftables set
// names, rule references and log fields, so they are kept to one plain word.
var nameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// Parse parses and validates a configuration file's contents. name is what
// problems are reported against (normally the file's path) and what relative
// paths in the file are resolved against. On failure the error is an *Error
// listing every problem found.
func Parse(name string, data []byte) (*Config, error) {
	d := &decoder{file: name, lines: map[string]int{}, troubled: map[string]bool{}, misspelt: map[string]bool{}, exact: map[string]bool{}}
	c := &Config{
		Path:    name,
		Site:    Site{Timezone: DefaultTimezone},
		Admin:   Admin{Listen: DefaultAdminListen, TLS: DefaultAdminTLS},
		Servers: map[string]netip.Prefix{},
		DNS:     DNS{SafeSearch: true, LogRetention: DefaultDNSLogRetention},
		Inspect: Inspect{Retention: DefaultFindingRetention},
		Portal:  Portal{Retention: DefaultGuestRetention},
		People:  People{Retention: DefaultPeopleRetention},
		RADIUS:  RADIUS{Auth: DefaultRADIUSAuth, Accounting: DefaultRADIUSAcct},
		lines:   d.lines,
	}
	if len(data) > MaxFileSize {
		d.problemf(0, "", "file is larger than %d bytes; this is not a Gatehouse configuration", MaxFileSize)
	} else if root := d.document(data); root != nil {
		d.config(c, root)
	}
	if len(d.probs) > 0 {
		sortProblems(d.probs)
		return nil, &Error{Problems: d.probs}
	}
	return c, nil
}

func (d *decoder) config(c *Config, root *yaml.Node) {
	root = resolve(root)
	d.lines[""] = root.Line
	if !isNull(root) && root.Kind != yaml.MappingNode {
		d.problemf(root.Line, "", "the file must be a mapping of sections (site, database, segments, ...), not %s", describe(root))
		return
	}
	dir := filepath.Dir(d.file)
	d.mapping(root, "", map[string]fieldFunc{
		"site": func(p string, v *yaml.Node) { d.site(c, p, v) },
		"database": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Database = relTo(dir, s)
			}
		},
		"admin":    func(p string, v *yaml.Node) { d.admin(c, p, v) },
		"uplink":   func(p string, v *yaml.Node) { d.uplink(c, p, v) },
		"segments": func(p string, v *yaml.Node) { d.segments(c, p, v) },
		"servers":  func(p string, v *yaml.Node) { d.servers(c, p, v) },
		"dns":      func(p string, v *yaml.Node) { d.dns(c, p, v) },
		"radius":   func(p string, v *yaml.Node) { d.radius(c, p, v) },
		"inspect":  func(p string, v *yaml.Node) { d.inspect(c, p, v) },
		"alerts":   func(p string, v *yaml.Node) { d.alerts(c, p, v) },
		"dhcp":     func(p string, v *yaml.Node) { d.dhcpRelays(c, p, v) },
		"portal":   func(p string, v *yaml.Node) { d.portal(c, p, v) },
		"people":   func(p string, v *yaml.Node) { d.people(c, p, v) },
	})
	if d.aborted {
		// What was not read cannot be called missing.
		return
	}

	if c.Site.Name == "" {
		d.missing("site.name", "site", "the school's name, shown on the portal and admin pages")
	}
	if c.Database == "" {
		d.missing("database", "", "the path of the SQLite database file")
	}
	if len(c.Segments) == 0 {
		d.missing("segments", "", "at least one segment (name, interface, subnet, gateway)")
	}
	d.adminFiles(c, dir)
	d.crossChecks(c)
}

// missing reports a required field that is absent, on the line of the
// nearest enclosing section the file has.
func (d *decoder) missing(field, parent, what string) {
	if d.explained(field) {
		return
	}
	line, ok := d.lines[field]
	for p := parent; !ok; {
		line, ok = d.lines[p]
		if p == "" {
			break
		}
		if i := strings.LastIndexAny(p, ".["); i >= 0 {
			p = p[:i]
		} else {
			p = ""
		}
	}
	d.problemf(line, field, "required: %s", what)
}

func relTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// crossChecks are the checks that compare fields with each other.
func (d *decoder) crossChecks(c *Config) {
	d.eapChecks(c)
	d.portChecks(c)
	if c.Site.Location == nil {
		// Only reached with a valid zone when no problem was recorded for
		// it; a Config is returned only when there are no problems at all.
		if loc, err := time.LoadLocation(c.Site.Timezone); err == nil {
			c.Site.Location = loc
		}
	}

	names := map[string]int{}
	vlans := map[int]int{}
	ssids := map[string]int{}
	ifaces := map[string]string{}
	if c.Uplink.Interface != "" {
		ifaces[c.Uplink.Interface] = "uplink.interface"
	}
	for i, s := range c.Segments {
		p := fmt.Sprintf("segments[%d]", i)
		if s.Name != "" {
			if j, dup := names[s.Name]; dup {
				d.at(p+".name", "segment name %q is already used by segments[%d]", s.Name, j)
			} else {
				names[s.Name] = i
			}
		}
		if s.VLAN != 0 {
			if j, dup := vlans[s.VLAN]; dup {
				d.at(p+".vlan", "VLAN %d is already used by segments[%d] (%s)", s.VLAN, j, c.Segments[j].Name)
			} else {
				vlans[s.VLAN] = i
			}
		}
		for _, n := range s.SSIDs {
			if j, dup := ssids[n]; dup {
				d.at(p+".ssids", "SSID %q is already served by segments[%d] (%s); a request for it could not tell which VLAN", n, j, c.Segments[j].Name)
			} else {
				ssids[n] = i
			}
		}
		if s.Interface != "" {
			if other, dup := ifaces[s.Interface]; dup {
				d.at(p+".interface", "interface %q is already used by %s", s.Interface, other)
			} else {
				ifaces[s.Interface] = p + ".interface"
			}
		}
		if !s.Subnet.IsValid() {
			continue
		}
		for j := range i {
			o := c.Segments[j]
			if o.Subnet.IsValid() && o.Subnet.Overlaps(s.Subnet) {
				d.at(p+".subnet", "%s overlaps segments[%d].subnet %s (%s)", s.Subnet, j, o.Subnet, o.Name)
			}
		}
	}

	// Servers are reported in file order, not map order.
	for _, name := range d.serverOrder(c) {
		pfx := c.Servers[name]
		fp := "servers." + name
		if _, clash := names[name]; clash {
			d.at(fp, "name %q is also a segment's name; rules could not tell them apart", name)
		}
		for j, s := range c.Segments {
			if s.Subnet.IsValid() && s.Subnet.Overlaps(pfx) {
				d.at(fp, "%s overlaps segments[%d].subnet %s (%s); a server subnet must be outside every segment", pfx, j, s.Subnet, s.Name)
			}
		}
	}

	clientNames := map[string]int{}
	for i, rc := range c.RADIUS.Clients {
		p := fmt.Sprintf("radius.clients[%d]", i)
		if rc.Name != "" {
			if j, dup := clientNames[rc.Name]; dup {
				d.at(p+".name", "client name %q is already used by radius.clients[%d]", rc.Name, j)
			} else {
				clientNames[rc.Name] = i
			}
		}
		if !rc.Address.IsValid() {
			continue
		}
		for j := range i {
			if o := c.RADIUS.Clients[j]; o.Address.IsValid() && o.Address.Overlaps(rc.Address) {
				d.at(p+".address", "%s overlaps radius.clients[%d].address %s; a request could match either client's secret", rc.Address, j, o.Address)
			}
		}
	}

	if len(c.Alerts.DSL) > 0 && c.Alerts.SMTP.Server == "" {
		d.missing("alerts.smtp.server", "alerts", "a mail relay (host:port) to send the DSL notifications through, because alerts.dsl lists addresses")
	}
	if c.Alerts.SMTP.Server != "" && c.Alerts.SMTP.From == "" {
		d.missing("alerts.smtp.from", "alerts.smtp", "the sender address, because alerts.smtp.server is set")
	}
}

func parsePrefix(s string, v4only bool) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a subnet in CIDR form like 10.10.0.0/22", s)
	}
	if v4only && !pfx.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s is not an IPv4 subnet; segments are IPv4 (DHCPv4)", s)
	}
	if m := pfx.Masked(); m != pfx {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set; did you mean %s?", s, m)
	}
	return pfx, nil
}

func parseAddr4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s is not an IPv4 address", s)
	}
	return a, nil
}

// parseUpstream accepts an IP address with or without a port.
func parseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("%q: port 0 is not a port", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), DefaultDNSPort), nil
	}
	return netip.AddrPort{}, fmt.Errorf("%q is not an IP address (or ip:port); upstream resolvers are given by address, not name", s)
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= ^uint32(0) >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

var hostRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// checkHostPort accepts host:port where host may be empty (all addresses),
// an IP address or a host name.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q must be host:port, like 127.0.0.1:8443 or :8443", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q must be a number 1..65535", s, port)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !hostRe.MatchString(host) || len(host) > 253 {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	return nil
}

// checkInterfaceName applies the kernel's rules for interface names, so that
// a name that could never exist is reported by check-config on any machine.
func checkInterfaceName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("interface name is empty")
	case len(s) > maxInterfaceNameBytes:
		return fmt.Errorf("interface name %q is longer than %d bytes", s, maxInterfaceNameBytes)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a valid interface name", s)
	case strings.ContainsAny(s, "/: \t\n\r\v\f"):
		return fmt.Errorf("interface name %q contains '/', ':' or white space", s)
	}
	return nil
}

func checkName(s string) error {
	if len(s) > maxNameLen || !nameRe.MatchString(s) {
		return fmt.Errorf("%q must be one word of letters, digits, '-' or '_', starting with a letter, at most %d long", s, maxNameLen)
	}
	return nil
}

// duration reads a Go duration of at least min into dst; an empty value
// leaves dst (its default) as it is. what names the field in the problem
// ("lease"), example shows how to write one ("8h or 90m").
func (d *decoder) duration(p string, v *yaml.Node, dst *time.Duration, min time.Duration, what, example string) {
	n, ok := d.str(p, v)
	if !ok || n == "" {
		return
	}
	dur, err := time.ParseDuration(n)
	switch {
	case err != nil:
		d.at(p, "%q is not a duration; write it like %s", n, example)
	case dur < min:
		d.at(p, "%s %s is shorter than the minimum of %s", what, dur, min)
	default:
		*dst = dur
	}
}
