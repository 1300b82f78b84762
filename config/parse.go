package config

import (
	"cmp"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
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

func (d *decoder) site(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"name": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Site.Name = strings.TrimSpace(s)
			}
		},
		"timezone": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Site.Timezone = s
			}
		},
		"guest_ssid": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Site.GuestSSID = s
			}
		},
	})
	// Checked here so the problem names the line of the bad value; the
	// Location is set in crossChecks, which also covers a missing site.
	if _, err := time.LoadLocation(c.Site.Timezone); err != nil {
		d.at(join(path, "timezone"), "unknown time zone %q; use an IANA name such as Europe/London", c.Site.Timezone)
	}
}

func (d *decoder) admin(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"listen": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Admin.Listen = s
				if err := checkHostPort(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
		"tls": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Admin.TLS = s
				if s != "auto" && s != "files" {
					d.at(p, "must be \"auto\" (self-signed certificate made on first start) or \"files\" (cert_file and key_file), not %q", s)
				}
			}
		},
		"cert_file": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Admin.CertFile = s
			}
		},
		"key_file": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Admin.KeyFile = s
			}
		},
	})
}

// adminFiles resolves the certificate paths once the database path is known,
// since "auto" keeps its pair next to the database.
func (d *decoder) adminFiles(c *Config, dir string) {
	a := &c.Admin
	a.CertFile, a.KeyFile = relTo(dir, a.CertFile), relTo(dir, a.KeyFile)
	switch a.TLS {
	case "files":
		if a.CertFile == "" {
			d.missing("admin.cert_file", "admin", `the certificate file, because admin.tls is "files"`)
		}
		if a.KeyFile == "" {
			d.missing("admin.key_file", "admin", `the private key file, because admin.tls is "files"`)
		}
	case "auto":
		if c.Database == "" {
			return
		}
		dbDir := filepath.Dir(c.Database)
		if a.CertFile == "" {
			a.CertFile = filepath.Join(dbDir, adminCertName)
		}
		if a.KeyFile == "" {
			a.KeyFile = filepath.Join(dbDir, adminKeyName)
		}
	}
	if a.CertFile != "" && a.CertFile == a.KeyFile {
		d.at("admin.key_file", "must differ from admin.cert_file")
	}
}

func (d *decoder) uplink(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"interface": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Uplink.Interface = s
				if err := checkInterfaceName(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
	})
}

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
	var s Segment
	var dhcpRange string
	var dhcpPresent bool
	d.mapping(v, path, map[string]fieldFunc{
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
					n, ok := d.str(p, v)
					if !ok || n == "" {
						return
					}
					dur, err := time.ParseDuration(n)
					switch {
					case err != nil:
						d.at(p, "%q is not a duration; write it like 8h, 90m or 1h30m", n)
					case dur < MinLease:
						d.at(p, "lease %s is shorter than the minimum of %s", dur, MinLease)
					default:
						s.DHCP.Lease = dur
					}
				},
			})
		},
		"portal": func(p string, v *yaml.Node) { s.Portal = d.boolean(p, v, false) },
		"unknown_devices": func(p string, v *yaml.Node) {
			if m, ok := d.str(p, v); ok {
				switch m {
				case UnknownAlert, UnknownQuarantine, UnknownDeny, UnknownAllow:
					s.UnknownDevices = m
				default:
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
	if s.UnknownDevices == "" {
		s.UnknownDevices = DefaultUnknownDevices(s.Name)
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

func (d *decoder) dns(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"upstream": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				ap, err := parseUpstream(s)
				if err != nil {
					d.at(ip, "%v", err)
					return
				}
				c.DNS.Upstream = append(c.DNS.Upstream, ap)
			})
		},
		"safesearch":    func(p string, v *yaml.Node) { c.DNS.SafeSearch = d.boolean(p, v, true) },
		"log_retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.DNS.LogRetention) },
	})
}

// retention reads a period like 30d or 720h into dst.
func (d *decoder) retention(p string, v *yaml.Node, dst *time.Duration) {
	s, ok := d.str(p, v)
	if !ok || s == "" {
		return
	}
	r, err := parseRetention(s)
	if err != nil {
		d.at(p, "%v", err)
		return
	}
	*dst = r
}

// parseRetention takes whole days ("90d") or a Go duration ("720h"); a
// network manager thinks of retention in days.
func parseRetention(s string) (time.Duration, error) {
	var r time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a number of days; write it like 30d", s)
		}
		r = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if r, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a period; write it like 30d or 720h", s)
		}
	}
	if r < MinRetention {
		return 0, fmt.Errorf("retention %s is shorter than a day", s)
	}
	return r, nil
}

// portal reads the captive portal's HTTPS settings and record retention.
func (d *decoder) portal(c *Config, path string, v *yaml.Node) {
	dir := filepath.Dir(d.file)
	file := func(dst *string) fieldFunc {
		return func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				*dst = relTo(dir, s)
			}
		}
	}
	d.mapping(v, path, map[string]fieldFunc{
		"host": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				if !portalHostRe.MatchString(s) {
					d.at(p, "%q is not a host name like wifi.school.example", s)
					return
				}
				c.Portal.Host = s
			}
		},
		"cert_file": file(&c.Portal.CertFile),
		"key_file":  file(&c.Portal.KeyFile),
		"retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.Portal.Retention) },
	})
	set := 0
	for _, f := range []string{c.Portal.Host, c.Portal.CertFile, c.Portal.KeyFile} {
		if f != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		d.at(path, "HTTPS for the portal needs all of host, cert_file and key_file")
	}
}

// portalHostRe is a fully qualified name, as a certificate names it.
var portalHostRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$`)

func (d *decoder) radius(c *Config, path string, v *yaml.Node) {
	listen := func(dst *string) fieldFunc {
		return func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				*dst = s
				if err := checkHostPort(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		}
	}
	dir := filepath.Dir(d.file)
	d.mapping(v, path, map[string]fieldFunc{
		"auth":       listen(&c.RADIUS.Auth),
		"accounting": listen(&c.RADIUS.Accounting),
		"clients": func(p string, v *yaml.Node) {
			d.list(p, v, func(_ int, ip string, item *yaml.Node) {
				if isNull(resolve(item)) {
					d.at(ip, "empty entry; a RADIUS client needs name, address and secret_file")
					return
				}
				rc := d.radiusClient(ip, item)
				rc.SecretFile = relTo(dir, rc.SecretFile)
				c.RADIUS.Clients = append(c.RADIUS.Clients, rc)
			})
		},
	})
}

func (d *decoder) radiusClient(path string, v *yaml.Node) RADIUSClient {
	rc := RADIUSClient{CoAPort: DefaultCoAPort}
	d.mapping(v, path, map[string]fieldFunc{
		"name": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				rc.Name = s
				if err := checkName(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
		"address": func(p string, v *yaml.Node) {
			s, ok := d.str(p, v)
			if !ok || s == "" {
				return
			}
			// A single access point is naturally written as its address.
			if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
				rc.Address = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
				return
			}
			pfx, err := parsePrefix(s, false)
			if err != nil {
				d.at(p, "%v", err)
				return
			}
			rc.Address = pfx
		},
		"secret_file": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				rc.SecretFile = s
			}
		},
		"coa_port": func(p string, v *yaml.Node) {
			if port, ok := d.integer(p, v); ok {
				if port < 1 || port > 65535 {
					d.at(p, "port %d is out of range 1..65535", port)
				} else {
					rc.CoAPort = port
				}
			}
		},
	})
	if r := resolve(v); r == nil || r.Kind != yaml.MappingNode {
		return rc
	}
	for _, r := range []struct {
		field string
		set   bool
	}{{"name", rc.Name != ""}, {"address", rc.Address.IsValid()}, {"secret_file", rc.SecretFile != ""}} {
		f := join(path, r.field)
		if !r.set {
			d.missing(f, path, "every RADIUS client needs name, address and secret_file")
		}
	}
	return rc
}

func (d *decoder) inspect(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"interfaces": func(p string, v *yaml.Node) {
			seen := map[string]string{}
			d.strList(p, v, func(ip, s string) {
				if s == "" {
					d.at(ip, "interface name is empty")
					return
				}
				if err := checkInterfaceName(s); err != nil {
					d.at(ip, "%v", err)
					return
				}
				if prev, dup := seen[s]; dup {
					d.at(ip, "interface %q is already listed at %s", s, prev)
					return
				}
				seen[s] = ip
				c.Inspect.Interfaces = append(c.Inspect.Interfaces, s)
			})
		},
		"retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.Inspect.Retention) },
	})
}

// dhcpRelays reads the top-level dhcp section: where relayed requests from
// L3 switches arrive and which relays are trusted to send them.
func (d *decoder) dhcpRelays(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
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

func (d *decoder) alerts(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"smtp": func(p string, v *yaml.Node) {
			d.mapping(v, p, map[string]fieldFunc{
				"server": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok && s != "" {
						c.Alerts.SMTP.Server = s
						if err := checkHostPort(s); err != nil {
							d.at(p, "%v", err)
						}
					}
				},
				"from": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok && s != "" {
						c.Alerts.SMTP.From = s
						if err := checkEmail(s); err != nil {
							d.at(p, "%v", err)
						}
					}
				},
			})
		},
		"dsl": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				if err := checkEmail(s); err != nil {
					d.at(ip, "%v", err)
					return
				}
				c.Alerts.DSL = append(c.Alerts.DSL, s)
			})
		},
		"webhook": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Alerts.Webhook = s
				if err := checkWebhook(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
	})
}

// crossChecks are the checks that compare fields with each other.
func (d *decoder) crossChecks(c *Config) {
	if c.Site.Location == nil {
		// Only reached with a valid zone when no problem was recorded for
		// it; a Config is returned only when there are no problems at all.
		if loc, err := time.LoadLocation(c.Site.Timezone); err == nil {
			c.Site.Location = loc
		}
	}

	names := map[string]int{}
	vlans := map[int]int{}
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

// checkEmail accepts bare addresses only: they are used as SMTP envelope
// addresses, where a display name has no place.
func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("%q is not an email address", s)
	}
	if a.Name != "" || a.Address != s {
		return fmt.Errorf("%q must be a bare email address like dsl@school.example, without a name or <>", s)
	}
	return nil
}

func checkWebhook(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an http:// or https:// URL", s)
	}
	return nil
}
