package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/dhcp/devicesweb"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
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

// wireDHCP builds the DHCP server for every segment that has a pool.
// binder keeps the kernel's MAC-address bindings in step with the leases.
type binder struct{ enf *policy.Enforcer }

func (b binder) Bind(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, until time.Time) error {
	return b.enf.Bind(ctx, policy.Device{MAC: mac, IP: ip}, until)
}

func (b binder) Unbind(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	return b.enf.Unbind(ctx, policy.Device{MAC: mac, IP: ip})
}

// restoreBindings binds the active leases and the reservations the database
// holds before the enforcer's first Apply, so the table is built whole and a
// restart neither cuts a device off nor rewrites its element.
func restoreBindings(ctx context.Context, st *store.Store, enf *policy.Enforcer, now time.Time) (int, error) {
	ls, err := st.DHCPLeases(ctx)
	if err != nil {
		return 0, fmt.Errorf("restore bindings: %w", err)
	}
	n := 0
	for _, l := range ls {
		if l.State != string(dhcp.StateBound) || l.MAC == nil || !now.Before(l.Expires) {
			continue
		}
		if err := enf.Bind(ctx, policy.Device{MAC: l.MAC, IP: l.IP}, l.Expires); err != nil {
			return n, fmt.Errorf("restore binding of %v/%v: %w", l.MAC, l.IP, err)
		}
		n++
	}
	rs, err := st.DHCPReservations(ctx)
	if err != nil {
		return n, fmt.Errorf("restore bindings: %w", err)
	}
	for _, r := range rs {
		if err := enf.Bind(ctx, policy.Device{MAC: r.MAC, IP: r.IP}, time.Time{}); err != nil {
			return n, fmt.Errorf("restore binding of reservation %v/%v: %w", r.MAC, r.IP, err)
		}
		n++
	}
	return n, nil
}

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
		Binder:   faultBinder(binder{w.enf}),
		OUI:      oui,
		Logger:   w.log.With("component", "dhcp"),
		// Relayed requests are served only from relays the school named.
		RelayInterfaces: w.cfg.DHCPRelay.Interfaces,
		TrustedRelays:   w.cfg.DHCPRelay.Trusted,
		DeviceRetention: w.cfg.DHCPRelay.DeviceRetention,
	})
	if err != nil {
		return err
	}
	w.dhcp = srv
	w.reg.MustRegister(dhcp.NewCollector(srv.Metrics()))
	w.restoreStep("MAC-address bindings", func(ctx context.Context) (int, error) {
		return restoreBindings(ctx, w.store, w.enf, time.Now())
	})
	w.run("dhcp", srv.Run)
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
