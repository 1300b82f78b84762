package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// approvals is what the DHCP server does, at a lease, with a device nobody
// approved on a segment in each of policy's modes.
var approvals = map[policy.UnknownDevices]dhcp.Approval{
	policy.UnknownAllow:      dhcp.ApprovalNone,
	policy.UnknownAlert:      dhcp.ApprovalAlert,
	policy.UnknownQuarantine: dhcp.ApprovalQuarantine,
	policy.UnknownDeny:       dhcp.ApprovalDeny,
}

// quarantiner lets the DHCP server put a stranger into the kernel's
// quarantine set.
type quarantiner struct{ enf *policy.Enforcer }

func (q quarantiner) Quarantine(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	return q.enf.Quarantine(ctx, policy.Device{MAC: mac, IP: ip})
}

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

// newDHCP builds the DHCP server for every segment that has a pool;
// portalAPI is the RFC 8908 address handed out in option 114 on portal
// segments.
func newDHCP(log *slog.Logger, cfg *config.Config, n policy.Network, st *store.Store, hub *events.Hub, enf *policy.Enforcer, portalAPI string) (*dhcp.Server, error) {
	oui, err := dhcp.LoadOUI(dhcp.DebianOUIPath)
	if err != nil {
		log.Warn("the IEEE OUI registry could not be read; using the built-in table", "path", dhcp.DebianOUIPath, "err", err)
		oui = dhcp.BuiltinOUI()
	}
	var segs []dhcp.Segment
	for i, s := range cfg.Segments {
		if !s.DHCP.Enabled() {
			continue
		}
		uri := ""
		if s.Portal {
			uri = portalAPI
		}
		// policyNetwork keeps the configuration's order.
		segs = append(segs, dhcp.FromConfig(s, uri, approvals[n.Segments[i].UnknownDevices]))
	}
	return dhcp.New(dhcp.Config{
		Segments: segs,
		Store:    dhcp.NewSQLStore(st),
		Events:   hub,
		Enforcer: quarantiner{enf},
		Binder:   binder{enf},
		OUI:      oui,
		Logger:   log.With("component", "dhcp"),
		// Relayed requests are served only from relays the school named.
		RelayInterfaces: cfg.DHCPRelay.Interfaces,
		TrustedRelays:   cfg.DHCPRelay.Trusted,
	})
}

// leaseHolders answers the DNS guard's "which device has this address".
type leaseHolders struct{ srv *dhcp.Server }

func (l leaseHolders) MAC(ip netip.Addr) net.HardwareAddr { return l.srv.MACFor(ip) }
