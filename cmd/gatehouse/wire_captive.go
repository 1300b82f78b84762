package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/sitekey"
	"github.com/gatehouse-net/gatehouse/store"
)

// newPortal builds the captive portal on the first portal segment's gateway.
// A configuration without a portal segment still gets one, listening on the
// router only, so reception can issue codes before the visitor VLAN exists.
func newPortal(log *slog.Logger, cfg *config.Config, st *store.Store, hub *events.Hub, enf *policy.Enforcer) (*captive.Portal, error) {
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
		tlsListen = ":443"
	}
	key, err := codeKey(cfg.Database)
	if err != nil {
		return nil, err
	}
	return captive.New(captive.Options{
		CodeKey:    key,
		Store:      st,
		Admitter:   enf,
		Neighbours: captive.NeighbourTable{},
		Hub:        hub,
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

// codeKey is the portal's code-hashing key, derived from the site key kept
// in a 0600 file beside the database (created on first use).
func codeKey(database string) ([]byte, error) {
	k, err := sitekey.Load(sitekey.PathFor(database))
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	return captive.CodeKeyFrom(k), nil
}

// purgeGuestRecords deletes guests' acceptance records and code attempts
// older than the school's retention, at start and then daily.
func purgeGuestRecords(ctx context.Context, log *slog.Logger, portal *captive.Portal, retention time.Duration) error {
	tick := time.NewTicker(24 * time.Hour)
	defer tick.Stop()
	for {
		if _, _, err := portal.Purge(ctx, "scheduler", retention); err != nil && ctx.Err() == nil {
			log.Error("purging old guest records", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// readmitOnLease lets a visitor whose code is still valid back on when
// their phone returns and takes a lease, without the sign-in sheet. sub
// carries events.LeaseGranted; it is made before DHCP starts so no lease is
// missed.
func readmitOnLease(ctx context.Context, log *slog.Logger, sub *events.Subscription, portal *captive.Portal) {
	sub.Run(ctx, func(ctx context.Context, e events.Event) {
		l, ok := e.Data.(dhcp.Lease)
		if !ok || l.MAC == nil {
			return
		}
		if _, err := portal.ReadmitOnLease(ctx, l.MAC, l.IP); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("re-admitting a returning guest", "mac", l.MAC, "ip", l.IP, "err", err)
		}
	})
}
