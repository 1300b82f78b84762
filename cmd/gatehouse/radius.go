package main

// Construction of the RADIUS server from the configuration.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/radius/eap"
	"github.com/gatehouse-net/gatehouse/radius/radiusweb"
	"github.com/gatehouse-net/gatehouse/sitekey"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// radiusSegments converts the configuration's segments, with the
// unknown-device mode policy settled for each (policyNetwork keeps the
// configuration's order).
func radiusSegments(cfg *config.Config, n policy.Network) []radius.Segment {
	var out []radius.Segment
	for i, s := range cfg.Segments {
		out = append(out, radius.Segment{Name: s.Name, VLAN: s.VLAN, SSIDs: s.SSIDs,
			Unknown: n.Segments[i].UnknownDevices, Portal: s.Portal})
	}
	return out
}

// radiusClients reads each client's secret file.
func radiusClients(cfg *config.Config) ([]radius.Client, error) {
	var out []radius.Client
	for _, c := range cfg.RADIUS.Clients {
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("radius client %s: reading its secret: %w", c.Name, err)
		}
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return nil, fmt.Errorf("radius client %s: %s is empty", c.Name, c.SecretFile)
		}
		out = append(out, radius.Client{Name: c.Name, Prefix: c.Address, Secret: []byte(secret), CoAPort: c.CoAPort,
			RequireMessageAuthenticator: c.RequireMessageAuthenticator, Segment: c.Segment})
	}
	return out, nil
}

// openKeyring loads (or makes) the site key beside the database.
func openKeyring(cfg *config.Config, st *store.Store) (*radius.Keyring, error) {
	key, err := sitekey.Load(sitekey.PathFor(cfg.Database))
	if err != nil {
		return nil, err
	}
	// A key's PMKs are derived, when it is set, for every SSID a segment
	// serves (hostapd's wpa_psk_radius=3 matches them).
	var ssids []string
	for _, s := range cfg.Segments {
		ssids = append(ssids, s.SSIDs...)
	}
	return radius.NewKeyring(key, st, ssids, nil)
}

// wireRADIUS adds the RADIUS server, when the configuration has listeners.
func wireRADIUS(_ context.Context, w *wiring) error {
	rs, run, err := newRADIUS(w.log, w.cfg, w.network, w.store, w.hub, w.alerts.findings(), w.reg, w.web, people.RADIUSIdentities{Service: w.people.svc},
		people.RADIUSDeviceEnds{Service: w.people.svc}, radiusEAP(w.cfg, w.pki, w.people.svc), w.people.svc)
	if err != nil {
		return err
	}
	w.radius = rs
	if run != nil {
		w.run("radius", run)
		// A revoked visitor code's devices lose their Wi-Fi session as
		// well as their admission (the portal publishes each eviction).
		codes := events.Subscribe[events.SessionEnded](w.hub, "radius: visitor codes", 0)
		w.run("radius: visitor codes", func(ctx context.Context) error { return rs.FollowVisitorCodes(ctx, codes) })
	}
	return nil
}

// newRADIUS builds the RADIUS server, its metrics and its pages, and
// returns the component that runs it; nil (and no component) when the
// configuration has no radius listeners.
func newRADIUS(log *slog.Logger, cfg *config.Config, n policy.Network, st *store.Store, hub *events.Hub, findings finding.Sink, reg prometheus.Registerer, srv *web.Server, ids radius.Identities, ends radius.DeviceEnds, eapOpts *eap.Options, approver radiusweb.Approver) (*radius.Server, func(context.Context) error, error) {
	if cfg.RADIUS.Auth == "" && cfg.RADIUS.Accounting == "" {
		return nil, nil, nil
	}
	clients, err := radiusClients(cfg)
	if err != nil {
		return nil, nil, err
	}
	keys, err := openKeyring(cfg, st)
	if err != nil {
		return nil, nil, err
	}
	rs, err := radius.New(radius.Options{
		AuthAddr: cfg.RADIUS.Auth, AcctAddr: cfg.RADIUS.Accounting,
		Clients: clients, Segments: radiusSegments(cfg, n),
		// A device's access ends with its owner's (people's departures).
		Devices: radius.StoreDevices{Store: st, Ends: ends}, Sessions: st, Keys: keys, Auditor: st, Events: hub, Findings: findings,
		// hostapd's wpa_psk_radius=3: a stranger's MAC is matched to a
		// device's personal key from the 4-way handshake.
		PMKs: radius.NewPMKTable(), PMKKeys: st,
		// PAP logins are people's usernames and Wi-Fi passwords.
		Identities:      ids,
		EAP:             eapOpts,
		InterimInterval: cfg.RADIUS.InterimInterval,
		Logger:          log.With("component", "radius"),
	})
	if err != nil {
		return nil, nil, err
	}
	reg.MustRegister(rs.Collector())
	var segs, ssids []string
	for _, s := range cfg.Segments {
		segs = append(segs, s.Name)
		ssids = append(ssids, s.SSIDs...)
	}
	wo := radiusweb.Options{RADIUS: rs, Sessions: st, Keys: keys, Segments: segs, SSIDs: ssids, Logger: log.With("component", "radiusweb")}
	if approver != nil {
		// The devices API approves through people, as the devices page does.
		wo.Devices, wo.Approver = st, approver
		wo.ApproverErrors = radiusweb.ApproverErrors{UnknownOwner: people.ErrUnknownPerson, OwnerRevoked: people.ErrOwnerRevoked}
	}
	if err := radiusweb.Register(srv, wo); err != nil {
		return nil, nil, fmt.Errorf("admin page: %w", err)
	}
	return rs, rs.Run, nil
}
