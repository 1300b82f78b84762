package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// portalAPIURI is the RFC 8908 API address handed out in DHCP option 114 on
// portal segments: the portal on the segment's own gateway.
func portalAPIURI(seg config.Segment) string {
	return fmt.Sprintf("http://%s:%d/api/captive", seg.Gateway, portalPort)
}

var approvalModes = map[string]dhcp.Approval{
	config.UnknownAlert:      dhcp.ApprovalAlert,
	config.UnknownQuarantine: dhcp.ApprovalQuarantine,
	config.UnknownDeny:       dhcp.ApprovalDeny,
	config.UnknownAllow:      dhcp.ApprovalNone,
}

// quarantiner lets the DHCP server put a stranger into the kernel's
// quarantine set.
type quarantiner struct{ enf *policy.Enforcer }

func (q quarantiner) Quarantine(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	return q.enf.Quarantine(ctx, policy.Device{MAC: mac, IP: ip})
}

// newDHCP builds the DHCP server for every segment that has a pool.
func newDHCP(log *slog.Logger, cfg *config.Config, st *store.Store, hub *events.Hub, enf *policy.Enforcer) (*dhcp.Server, error) {
	oui, err := dhcp.LoadOUI(dhcp.DebianOUIPath)
	if err != nil {
		log.Warn("the IEEE OUI registry could not be read; using the built-in table", "path", dhcp.DebianOUIPath, "err", err)
		oui = dhcp.BuiltinOUI()
	}
	var segs []dhcp.Segment
	for _, s := range cfg.Segments {
		if !s.DHCP.Enabled() {
			continue
		}
		uri := ""
		if s.Portal {
			uri = portalAPIURI(s)
		}
		segs = append(segs, dhcp.FromConfig(s, uri, approvalModes[s.UnknownDevices]))
	}
	return dhcp.New(dhcp.Config{
		Segments: segs,
		Store:    dhcp.NewSQLStore(st),
		Events:   hub,
		Enforcer: quarantiner{enf},
		OUI:      oui,
		Logger:   log.With("component", "dhcp"),
	})
}
