package main

import (
	"context"
	"fmt"
	"syscall"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/dhcp/devicesweb"
	"github.com/gatehouse-net/gatehouse/policy"
)

// dhcpSegments are the DHCP server's segments: every configured segment
// with a pool, doing with unknown devices what its policy spec (n, in the
// configuration's order) says. portalAPI is the RFC 8908 address handed
// out in option 114 on portal segments.
func dhcpSegments(cfg *config.Config, n policy.Network, portalAPI string) []dhcp.Segment {
	var segs []dhcp.Segment
	for i, c := range cfg.Segments {
		if !c.DHCP.Enabled() {
			continue
		}
		s := dhcp.Segment{
			Name:       c.Name,
			Interface:  c.Interface,
			Subnet:     c.Subnet,
			Gateway:    c.Gateway,
			RangeStart: c.DHCP.RangeStart,
			RangeEnd:   c.DHCP.RangeEnd,
			Lease:      c.DHCP.Lease,
			Unknown:    n.Segments[i].UnknownDevices,

			RapidCommit:         c.DHCP.RapidCommit,
			NewDevicesPerMinute: c.DHCP.NewDevicesPerMinute,
		}
		if c.Portal {
			s.PortalURI = portalAPI
		}
		segs = append(segs, s)
	}
	return segs
}

// wireDHCP builds the DHCP server for every segment that has a pool; its
// bindings are restored before the enforcer starts.
func wireDHCP(_ context.Context, w *wiring) error {
	oui, err := dhcp.LoadOUI(dhcp.DebianOUIPath)
	if err != nil {
		w.log.Warn("the IEEE OUI registry could not be read; using the built-in table", "path", dhcp.DebianOUIPath, "err", err)
		oui = dhcp.BuiltinOUI()
	}
	srv, err := dhcp.New(dhcp.Config{
		Segments: dhcpSegments(w.cfg, w.network, w.portal.APIURL()),
		Store:    dhcp.NewSQLStore(w.store),
		Events:   w.hub,
		Findings: w.alerts.findings(),
		Enforcer: w.enf,
		Binder:   faultBinder(w.enf),
		OUI:      oui,
		Logger:   w.log.With("component", "dhcp"),
		// Relayed requests are served only from relays the school named.
		RelayInterfaces: w.cfg.DHCPRelay.Interfaces,
		TrustedRelays:   w.cfg.DHCPRelay.Trusted,
		DeviceRetention: w.cfg.DHCPRelay.DeviceRetention,
		// 0 keeps the server's default.
		PacketsPerSecond: w.cfg.DHCPRelay.PacketsPerSecond,
	})
	if err != nil {
		return err
	}
	w.dhcp = srv
	w.reg.MustRegister(dhcp.NewCollector(srv.Metrics()))
	w.restoreStep("MAC-address bindings", srv.Restore)
	w.run("dhcp", srv.Run)
	// SIGUSR2 logs the stage latency histograms (dhcp.Timings) since the
	// last such report: a busy morning's slow ACKs split into queueing,
	// commit and binding without a profiler (bench/dhcp.sh sends it after
	// each of its passes).
	w.run("dhcp stage timings", func(ctx context.Context) error {
		return onSignal(ctx, syscall.SIGUSR2, srv.LogTimings)
	})
	return nil
}

// wireDevices registers the devices page; approving, blocking and
// revoking on it go through people, which owns what they mean.
func wireDevices(_ context.Context, w *wiring) error {
	if err := devicesweb.Register(w.web, w.store, devicesweb.Options{
		Segments:              w.dhcp.Segments(),
		Devices:               w.people.svc,
		OnReservationsChanged: w.dhcp.ReloadReservations,
		Logger:                w.log.With("component", "devices"),
	}); err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	return nil
}
