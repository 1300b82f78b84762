package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/policy/querylog"
	"github.com/gatehouse-net/gatehouse/policy/ruledb"
	"github.com/gatehouse-net/gatehouse/policy/rulesweb"
)

// The router-side ports the kernel redirects to: visitors' and quarantined
// devices' web traffic goes to the portal, every segment's DNS to the guard
// (queries to other resolvers to its second port). Package config owns
// them, so that check-config refuses a listener that would take one.
const (
	portalPort      = config.PortalPort
	dnsPort         = config.GuardPort
	dnsRedirectPort = config.GuardRedirectPort
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
		// Queries to other resolvers reach the guard on a port of their own.
		DNSRedirectPort: dnsRedirectPort,

		RelayInterfaces: cfg.DHCPRelay.Interfaces,
	}
	if cfg.Portal.Host != "" {
		n.PortalTLSPort = config.PortalTLSPort // the HTTPS portal (see newPortal)
	}
	for _, s := range cfg.Segments {
		spec := policy.Defaults(s.Name, s.Interface, s.Subnet, s.Gateway, s.Portal).
			WithUnknownDevices(s.UnknownDevices)
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
		Listen: fmt.Sprintf(":%d", dnsPort),
		// The segments' queries to other resolvers (policyNetwork's
		// DNSRedirectPort).
		RedirectedListen: fmt.Sprintf(":%d", n.DNSRedirectPort),
		Upstreams:        cfg.DNS.Upstream,
		BlockedNames:     inspect.BypassServiceNames(),
		ClientQPS:        cfg.DNS.ClientQPS,
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

// wirePolicy opens the enforcer (it changes nothing in the kernel until
// runDaemon starts it, after every restore step).
func wirePolicy(_ context.Context, w *wiring) error {
	enf, err := policy.New(policy.Options{}, w.network, w.log)
	if err != nil {
		return err
	}
	w.enf = enf
	w.run("policy", func(ctx context.Context) error { return enf.Run(ctx, driftCheck) })
	return nil
}

// wireRules puts the school's rules in force, with the people directory
// resolving person and group rules to devices, and registers the rules
// page.
func wireRules(ctx context.Context, w *wiring) error {
	rules := ruledb.Source{Store: w.store}
	dir := w.people.svc
	if err := w.enf.LoadRules(ctx, rules, dir); err != nil {
		w.log.Error("the school's rules could not all be put in force; the built-in defaults are", "err", err)
	}
	if err := rulesweb.Register(w.web, rulesweb.Options{
		Store:      w.store,
		Network:    w.network,
		Logger:     w.log.With("component", "rules"),
		NotInForce: w.enf.NotInForce,
		OnChange: func(ctx context.Context) error {
			if err := w.enf.LoadRules(ctx, rules, dir); err != nil {
				return err
			}
			_, err := w.enf.Sync(ctx)
			return err
		},
	}); err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	return nil
}

// wireDNS builds the DNS guard every segment is forced through and its
// query log. The guard names the device behind each address from the DHCP
// leases and tells packet inspection what each client was answered.
func wireDNS(_ context.Context, w *wiring) error {
	qlog, err := querylog.New(querylog.Options{Sink: w.store, Events: w.hub, Findings: w.alerts.findings(), Retention: w.cfg.DNS.LogRetention, Logger: w.log.With("component", "querylog")})
	if err != nil {
		return err
	}
	gc := dnsGuardConfig(w.cfg, w.network)
	gc.Recorder = faultRecorder(qlog)
	gc.Clients = w.dhcp
	gc.Answers = w.site.NoteAnswer
	// Its queries are judged as read (wireInspect leaves them out of the
	// capture): one parse per query, the guard's.
	gateways := map[string]netip.Addr{}
	for _, s := range w.cfg.Segments {
		gateways[s.Name] = s.Gateway
	}
	gc.Queries = guardQueries(w.site, gateways)
	// Visitors resolve only the portal's and the OS probes' names until admitted.
	gc.Admitted = w.enf.Admitted
	guard, err := dnsguard.New(gc, w.log.With("component", "dnsguard"))
	if err != nil {
		return err
	}
	w.guard = guard
	w.qlog = qlog
	w.reg.MustRegister(hardeningCollectors(guard, qlog, w.store)...)
	w.run("dns guard", guard.Serve)
	w.run("dns query log", qlog.Run)
	return nil
}

// guardQueries hands the guard's queries to inspection, converting them
// here, at the edge, so that neither package imports the other. The guard
// is named by the address each segment's clients ask it at, its gateway
// (gateways, by segment name): the one the capture would have seen the
// query sent to.
func guardQueries(site *inspect.Site, gateways map[string]netip.Addr) func(dnsguard.Inspected) {
	return func(q dnsguard.Inspected) {
		site.NoteQuery(q.Segment, inspect.GuardQuery{Time: q.Time, Client: q.Client, ClientPort: q.ClientPort, MAC: q.MAC,
			Server: gateways[q.Segment], Name: q.Name, Type: q.Type})
	}
}
