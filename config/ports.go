package config

// The ports Gatehouse listens on without being told to, and the check that
// no configured listener takes one of them.

import (
	"net"
	"strconv"
)

// The router-side ports the daemon itself listens on, on every address.
// They are fixed rather than configured because the kernel's rules redirect
// the segments' traffic to them; a configured listener (admin.listen,
// radius.auth, radius.accounting) on one of them would keep the daemon
// from starting with a bind error, so check-config refuses it first.
const (
	// PortalPort (TCP) is where visitors' and quarantined devices'
	// intercepted web traffic reaches the captive portal.
	PortalPort = 8080
	// PortalTLSPort (TCP) is the HTTPS portal, served when portal.host is
	// set.
	PortalTLSPort = 443
	// GuardPort (UDP and TCP) is every segment's DNS, at the DNS guard.
	GuardPort = 53
	// GuardRedirectPort (UDP) is the DNS guard's second port, where the
	// kernel sends the segments' queries to other resolvers (8.8.8.8 and
	// the like): the guard answers them as on GuardPort but does not hand
	// them to inspection, whose capture reads them already. 5353-5355 are
	// mDNS and LLMNR, so it sits clear of them.
	GuardRedirectPort = 5392
	// DHCPServerPort (UDP) is the DHCP server's.
	DHCPServerPort = 67
)

// portChecks reports a configured listener on a port the daemon keeps for
// itself, and RADIUS authentication and accounting on one address.
func (d *decoder) portChecks(c *Config) {
	udp := map[int]string{
		GuardPort:         "the DNS guard's (every segment's DNS)",
		GuardRedirectPort: "the DNS guard's (queries redirected from other resolvers)",
		DHCPServerPort:    "the DHCP server's",
	}
	tcp := map[int]string{
		GuardPort:  "the DNS guard's (DNS over TCP)",
		PortalPort: "the captive portal's",
	}
	if c.Portal.Host != "" {
		tcp[PortalTLSPort] = "the HTTPS captive portal's (portal.host is set)"
	}
	check := func(path, addr string, taken map[int]string, example string) {
		if _, n, ok := listenPort(addr); ok {
			if owner, clash := taken[n]; clash {
				d.at(path, "port %d is %s; choose another, such as %s", n, owner, example)
			}
		}
	}
	check("admin.listen", c.Admin.Listen, tcp, ":8443")
	check("radius.auth", c.RADIUS.Auth, udp, ":1812")
	check("radius.accounting", c.RADIUS.Accounting, udp, ":1813")

	ah, ap, aok := listenPort(c.RADIUS.Auth)
	ch, cp, cok := listenPort(c.RADIUS.Accounting)
	// An empty host listens on every address, so it meets any other.
	if aok && cok && ap == cp && (ah == ch || ah == "" || ch == "") {
		d.at("radius.accounting", "%s is also radius.auth (%s); accounting needs a port of its own, such as :1813", c.RADIUS.Accounting, c.RADIUS.Auth)
	}
}

// listenPort splits a host:port that checkHostPort accepted; ok is false
// for anything else, which is reported where it was decoded.
func listenPort(addr string) (host string, port int, ok bool) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, false
	}
	return host, n, true
}
