package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/alert"
	"github.com/gatehouse-net/gatehouse/alert/alertweb"
	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/alert/findingstore"
	"github.com/gatehouse-net/gatehouse/alert/findingsweb"
	"github.com/gatehouse-net/gatehouse/alert/flowlog"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/people/peopleweb"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// alertPurgeActor is who the audit log names for alert retention purges.
const alertPurgeActor = "alert-retention"

// alerting is the alert pipeline as the daemon runs it: the findings sink
// every source feeds, the engine that folds findings into alerts, the
// outbox that notifies, the digest and retention. The sources (DHCP, the
// portal, RADIUS, the DNS query log) are given the sink itself as their
// Options.Findings, not a hub subscription: the hub drops for a subscriber
// that falls behind, and the sink does not (see findingstore).
type alerting struct {
	log    *slog.Logger
	st     *store.Store
	sink   *findingstore.Sink
	flows  *flowlog.Log // the flow log the alert timeline shows
	engine *alert.Engine
	outbox *alert.Outbox
	digest *alert.Digest // nil without email
	retain time.Duration
}

// wireAlerts builds the alert pipeline, which every source's findings feed.
func wireAlerts(_ context.Context, w *wiring) error {
	a, err := newAlerting(w.log, w.cfg, w.network, w.store, w.web, w.reg)
	if err != nil {
		return err
	}
	w.alerts = a
	w.components = append(w.components, a.components()...)
	return nil
}

// newAlerting builds the pipeline and registers its pages and metrics.
func newAlerting(log *slog.Logger, cfg *config.Config, n policy.Network, st *store.Store, srv *web.Server, reg prometheus.Registerer) (*alerting, error) {
	log = log.With("component", "alerts")
	metrics := alert.NewMetrics(st.OutboxDepth)
	subnets := map[string]netip.Prefix{}
	noise := &alert.Noise{UnknownDevices: map[string]policy.UnknownDevices{}}
	for i, s := range cfg.Segments {
		subnets[s.Name] = s.Subnet
		// The mode in force, defaults included (policyNetwork keeps the
		// configuration's order).
		noise.UnknownDevices[s.Name] = n.Segments[i].UnknownDevices
		noise.OwnIPs = append(noise.OwnIPs, s.Gateway)
		if s.Interface != "" {
			if ifc, err := net.InterfaceByName(s.Interface); err == nil && len(ifc.HardwareAddr) > 0 {
				noise.OwnMACs = append(noise.OwnMACs, ifc.HardwareAddr)
			}
		}
	}
	if cfg.Uplink.Interface != "" {
		if ifc, err := net.InterfaceByName(cfg.Uplink.Interface); err == nil && len(ifc.HardwareAddr) > 0 {
			noise.OwnMACs = append(noise.OwnMACs, ifc.HardwareAddr)
		}
	}
	a := &alerting{log: log, st: st, retain: cfg.Alerts.Retention}
	if a.retain <= 0 {
		a.retain = config.DefaultAlertRetention
	}

	link := func(id int64) string {
		base := cfg.Alerts.Link
		if base == "" {
			base = "https://" + cfg.Admin.Listen
		}
		return base + alertweb.Link(id)
	}
	channels := map[string]alert.Channel{}
	var immediate, every []string
	if s := cfg.Alerts.SMTP; s.Server != "" && s.From != "" && len(cfg.Alerts.DSL) > 0 {
		pw := ""
		if s.PasswordFile != "" {
			b, err := os.ReadFile(s.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("alerts.smtp.password_file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		var tlsCfg *tls.Config
		if s.CAFile != "" {
			pool, err := loadCAs(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("alerts.smtp.ca_file: %w", err)
			}
			host, _, _ := net.SplitHostPort(s.Server)
			tlsCfg = &tls.Config{ServerName: host, RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		m, err := alert.NewMailer(alert.MailOptions{Server: s.Server, From: s.From, To: cfg.Alerts.DSL, StartTLS: s.StartTLS, TLS: tlsCfg,
			Username: s.Username, Password: pw, Link: link, Location: cfg.Site.Location, Site: cfg.Site.Name})
		if err != nil {
			return nil, err
		}
		channels[store.ChannelEmail], channels[store.ChannelDigest] = m, m
		immediate = append(immediate, store.ChannelEmail)
		sched := alert.DefaultSchedule
		sched.Location = cfg.Site.Location
		if cfg.Alerts.Digest != "" {
			if sched, err = alert.ParseSchedule(cfg.Alerts.Digest, cfg.Site.Location); err != nil {
				return nil, err
			}
		}
		a.digest = &alert.Digest{Store: st, Schedule: sched, Mailer: m, Logger: log}
	} else {
		log.Warn("no email for the DSL: alerts.smtp.server, alerts.smtp.from and alerts.dsl are needed; alerts are still stored and shown")
	}
	if cfg.Alerts.Webhook != "" {
		var secret []byte
		if cfg.Alerts.WebhookSecretFile != "" {
			b, err := os.ReadFile(cfg.Alerts.WebhookSecretFile)
			if err != nil {
				return nil, fmt.Errorf("alerts.webhook_secret_file: %w", err)
			}
			secret = []byte(strings.TrimSpace(string(b)))
		} else {
			log.Warn("alerts.webhook has no webhook_secret_file: its signature uses an empty key")
		}
		channels[store.ChannelWebhook] = &alert.Webhook{URL: cfg.Alerts.Webhook, Secret: secret, Link: link}
		every = append(every, store.ChannelWebhook)
	}
	if sl := cfg.Alerts.Syslog; sl.Server != "" {
		s := &alert.Syslog{Server: sl.Server, Link: link}
		if sl.TLS {
			host, _, _ := net.SplitHostPort(sl.Server)
			s.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
			if sl.CAFile != "" {
				pool, err := loadCAs(sl.CAFile)
				if err != nil {
					return nil, fmt.Errorf("alerts.syslog.ca_file: %w", err)
				}
				s.TLS.RootCAs = pool
			}
		}
		channels[store.ChannelSyslog] = s
		every = append(every, store.ChannelSyslog)
	}

	var err error
	if a.outbox, err = alert.NewOutbox(alert.OutboxOptions{Store: st, Channels: channels, Logger: log, Metrics: metrics}); err != nil {
		return nil, err
	}
	if a.digest != nil {
		a.digest.Queued = a.outbox.Poke
	}
	attributor := &alert.Attributor{Records: st, Sessions: alert.StoreSessions{Store: st}, People: alert.StorePeople{Store: st}}
	if a.engine, err = alert.New(alert.Options{Store: st, Attributor: attributor, Severity: cfg.Alerts.Severity,
		Immediate: immediate, Every: every, Logger: log, Delivered: a.outbox.Poke, Metrics: metrics}); err != nil {
		return nil, err
	}
	if a.sink, err = findingstore.New(findingstore.Options{Store: st, Retention: cfg.Inspect.Retention, Logger: log,
		Stored: a.engine.Poke, Ignore: noise.Ignore, SegmentOf: findingstore.SegmentByPrefix(subnets)}); err != nil {
		return nil, err
	}
	if a.flows, err = flowlog.New(flowlog.Options{Store: st, Retention: cfg.Inspect.FlowRetention, Logger: log}); err != nil {
		return nil, err
	}
	reg.MustRegister(findingstore.NewCollector(a.sink), metrics)
	findingsweb.Register(srv, st, log)
	if err := alertweb.Register(srv, alertweb.Options{Store: st, Location: cfg.Site.Location, Logger: log, NamedPersonPath: peopleweb.NamedPersonPath}); err != nil {
		return nil, fmt.Errorf("admin page: %w", err)
	}
	return a, nil
}

// findings is the finding.Sink each source is constructed with.
func (a *alerting) findings() finding.Sink { return a.sink }

// components are the pipeline's parts, each a component of the daemon of
// its own, so that one that stops stops the daemon (runComponents) instead
// of leaving the rest running without it.
func (a *alerting) components() []component {
	cs := []component{
		{"findings", a.sink.Run},
		{"flow log", a.flows.Run},
		{"alert engine", a.engine.Run},
		{"alert outbox", a.outbox.Run},
		{"alert retention", a.purge},
	}
	if a.digest != nil {
		cs = append(cs, component{"alert digest", a.digest.Run})
	}
	return cs
}

func (a *alerting) purge(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := a.st.PurgeAlerts(ctx, alertPurgeActor, time.Now().Add(-a.retain))
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("alerts: purge closed alerts past retention", "err", err)
		case n > 0:
			a.log.Info("alerts: purged closed alerts past retention", "count", n, "retention", a.retain)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// loadCAs reads PEM certificates to trust.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
