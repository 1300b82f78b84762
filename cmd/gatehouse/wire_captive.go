package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/sitekey"
	"github.com/gatehouse-net/gatehouse/store"
)

// newPortal builds the captive portal on the first portal segment's gateway.
// A configuration without a portal segment still gets one, listening on the
// router only, so reception can issue codes before the visitor VLAN exists.
func newPortal(log *slog.Logger, cfg *config.Config, st *store.Store, hub *events.Hub, findings finding.Sink, enf *policy.Enforcer) (*captive.Portal, error) {
	host := "127.0.0.1"
	for _, s := range cfg.Segments {
		if s.Portal {
			host = s.Gateway.String()
			break
		}
	}
	base := fmt.Sprintf("http://%s:%d", host, portalPort)
	var tlsListen string
	if cfg.Portal.Host != "" {
		// Intercepted web traffic still arrives over HTTP on portalPort
		// and is sent on to the HTTPS portal, whose name the certificate
		// (and the school's resolver) vouch for.
		base = "https://" + cfg.Portal.Host
		tlsListen = fmt.Sprintf(":%d", config.PortalTLSPort)
	}
	key, err := codeKey(cfg.Database)
	if err != nil {
		return nil, err
	}
	return captive.New(captive.Options{
		CodeKey:    key,
		Store:      st,
		Admitter:   enf,
		Neighbours: faultNeighbours(captive.NewNeighbourTable(0)), // its idle netlink sockets live as long as the daemon
		Bound:      func(mac net.HardwareAddr, ip netip.Addr) bool { return enf.Bound(policy.Device{MAC: mac, IP: ip}) },
		Hub:        hub,
		Findings:   findings,
		Logger:     log,
		Location:   cfg.Site.Location,
		School:     cfg.Site.Name,
		SSID:       cfg.Site.GuestSSID,
		PortalURL:  base,
		// Every address: the kernel redirects visitors' web traffic to
		// the port on whichever router address it arrived at.
		Listen:    fmt.Sprintf(":%d", portalPort),
		TLSListen: tlsListen,
		CertFile:  cfg.Portal.CertFile,
		KeyFile:   cfg.Portal.KeyFile,
	})
}

// wireCaptive builds the portal and its admin pages; the guest admissions
// the database holds are restored before the enforcer starts.
func wireCaptive(_ context.Context, w *wiring) error {
	portal, err := newPortal(w.log, w.cfg, w.store, w.hub, w.alerts.findings(), w.enf)
	if err != nil {
		return err
	}
	if err := captive.RegisterAdminPages(w.web, portal); err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	w.portal = portal
	w.restoreStep("guest admissions", portal.Restore)
	w.run("captive portal", portal.Run)
	w.run("guest record retention", func(ctx context.Context) error { return portal.PurgeDaily(ctx, w.cfg.Portal.Retention) })
	// A returning guest is re-admitted only where a portal gate stands, so
	// only leases on those segments are looked up; with none, nothing is.
	var gated []string
	for _, s := range w.cfg.Segments {
		if s.Portal {
			gated = append(gated, s.Name)
		}
	}
	if len(gated) > 0 {
		// Made now, before DHCP starts, so that no lease is missed.
		leases := captive.SubscribeLeases(w.hub)
		w.run("guest re-admission", func(ctx context.Context) error { return portal.FollowLeases(ctx, leases, gated...) })
	}
	// Each code's end is published, so the RADIUS server disconnects its
	// devices' Wi-Fi sessions (radius.FollowVisitorCodes).
	w.run("guest code expiry", portal.ReportExpiries)
	return nil
}

// codeKey is the portal's code-hashing key, derived from the site key kept
// in a 0600 file beside the database (created on first use).
func codeKey(database string) ([]byte, error) {
	k, err := sitekey.Load(sitekey.PathFor(database))
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	return captive.CodeKeyFrom(k), nil
}
