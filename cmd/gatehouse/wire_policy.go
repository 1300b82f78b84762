package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
)

// The router-side ports the kernel redirects to: visitors' and quarantined
// devices' web traffic goes to the portal, every segment's DNS to the guard.
const (
	portalPort = 8080
	dnsPort    = 53
	// driftCheck is how often the kernel's table is compared with what it
	// should hold.
	driftCheck = 30 * time.Second
)

// policyNetwork turns the configuration into the enforcer's view of the
// router, with DESIGN.md's defaults for each segment.
func policyNetwork(cfg *config.Config) (policy.Network, error) {
	if cfg.Uplink.Interface == "" {
		return policy.Network{}, fmt.Errorf("%s: uplink.interface is required to run: it is where NAT and the internet rules apply", cfg.Path)
	}
	admin, err := netip.ParseAddrPort(cfg.Admin.Listen)
	if err != nil {
		// ":8443" listens on every address; the port is what the input
		// chain protects.
		ap, perr := netip.ParseAddrPort("0.0.0.0" + cfg.Admin.Listen)
		if perr != nil {
			return policy.Network{}, fmt.Errorf("admin.listen %q: %w", cfg.Admin.Listen, err)
		}
		admin = ap
	}
	n := policy.Network{
		Uplink:     cfg.Uplink.Interface,
		Servers:    cfg.Servers,
		AdminAddr:  admin,
		PortalPort: portalPort,
		DNSPort:    dnsPort,

		RelayInterfaces: cfg.DHCPRelay.Interfaces,
	}
	if cfg.Portal.Host != "" {
		n.PortalTLSPort = 443 // the HTTPS portal (see newPortal)
	}
	for _, s := range cfg.Segments {
		spec := policy.Defaults(s.Name, s.Interface, s.Subnet, s.Gateway, s.Portal).
			WithUnknownDevices(policy.UnknownDevices(s.UnknownDevices))
		// A staff default that names a server the school did not
		// configure would make the whole network invalid.
		var servers []string
		for _, name := range spec.Servers {
			if _, ok := cfg.Servers[name]; ok {
				servers = append(servers, name)
			}
		}
		spec.Servers = servers
		spec.BindMACIP = s.MACIPBinding
		n.Segments = append(n.Segments, spec)
	}
	return n, n.Validate()
}

// dnsGuardConfig is the guard's view of the configuration: SafeSearch where
// the school asked for it, Private Relay blocked where the segment defaults
// (n, from policyNetwork) say.
func dnsGuardConfig(cfg *config.Config, n policy.Network) dnsguard.Config {
	gc := dnsguard.Config{
		Listen:       fmt.Sprintf(":%d", dnsPort),
		Upstreams:    cfg.DNS.Upstream,
		BlockedNames: inspect.BypassServiceNames(),
	}
	if cfg.Portal.Host != "" {
		gc.PortalNames = []string{cfg.Portal.Host}
	}
	for _, s := range n.Segments {
		gc.Segments = append(gc.Segments, dnsguard.SegmentPolicy{
			Name:              s.Name,
			Subnet:            s.Subnet,
			SafeSearch:        cfg.DNS.SafeSearch,
			BlockPrivateRelay: s.BlockPrivateRelay,
			Portal:            s.Portal,
		})
	}
	return gc
}

// newEnforcer opens the enforcer; it changes nothing in the kernel until
// Apply.
func newEnforcer(log *slog.Logger, n policy.Network) (*policy.Enforcer, error) {
	return policy.New(policy.Options{}, n, log)
}
