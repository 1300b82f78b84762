package inspect

import "sort"

// BypassServiceNames lists the DNS names of services whose only use on a
// school network is getting round the filter: DNS-over-HTTPS resolvers and
// VPN services. The DNS guard answers them NXDOMAIN so that the apps fail
// early, while this package still flags any attempt that uses an address
// directly. Each name covers its subdomains.
func BypassServiceNames() []string {
	out := make([]string, 0, len(dohNames)+len(vpnNames))
	for name := range dohNames {
		out = append(out, name)
	}
	for name := range vpnNames {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
