package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/internal/recordwatch"
	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/policy/querylog"
	"github.com/gatehouse-net/gatehouse/procmem"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

const runUsage = `gatehouse run: run the Gatehouse daemon.

Loads and checks the configuration (a bad file never starts the daemon),
opens the database and applies its migrations, then serves the admin page.
SIGHUP reloads the configuration: a bad file is refused with the reason in
the log and the running configuration is kept; a good one applies
dns.safesearch at once, re-reads inspection's signatures file (a bad one is
refused, each bad line logged, and the signatures in force stay), and logs
which other changed sections take effect at the next restart. SIGINT or SIGTERM stop it; the kernel keeps enforcing.

Flags:
  --config FILE   the configuration file (required)
  --log FORMAT    text or json (default text)

Example:
  gatehouse run --config /etc/gatehouse/gatehouse.yaml
`

func cmdRun(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	logFormat := fs.String("log", "text", "text or json")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(env.stderr, logOptions(nil))
	case "json":
		handler = slog.NewJSONHandler(env.stderr, logOptions(nil))
	default:
		return usagef("unknown --log %q (want text or json)", *logFormat)
	}
	log := slog.New(handler)
	procmem.Prepare(log, defaultMemoryLimit()) // memlimit.go

	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if probs := cfg.HostProblems(); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(env.stderr, p.String())
		}
		return fmt.Errorf("%s names %d thing(s) this machine lacks; not starting", *path, len(probs))
	}

	// One daemon per database, and no restore underneath a running one.
	unlock, err := store.LockDaemon(cfg.Database)
	if err != nil {
		return err
	}
	defer unlock()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return runDaemon(ctx, log, cfg, hup)
}

// daemon is the running product: the configuration in force and the
// components built from it.
type daemon struct {
	log *slog.Logger

	mu  sync.RWMutex
	cfg *config.Config

	hub   *events.Hub
	guard *dnsguard.Guard // set once built; reload re-applies its segment settings
	// sigs is inspection, set once built; reload re-reads its signatures
	// file.
	sigs signatureReloader

	reloads *prometheus.CounterVec
}

// component is one long-running part of the daemon: it runs until its
// context ends.
type component struct {
	name string
	run  func(context.Context) error
}

// restore is one feature putting the kernel state the database holds back
// into the enforcer, before its first Apply, so that a restart neither
// grants nor loses access. It reports how many things it restored.
type restore struct {
	what string
	run  func(context.Context) (int, error)
}

// wiring is what the constructors share: the configuration, the services
// every feature uses, and what each constructor built for the ones after
// it. Each constructor (one per feature, in its own file) builds its parts
// from these, registers its pages, and adds its restore steps and its
// components.
type wiring struct {
	log     *slog.Logger
	cfg     *config.Config
	network policy.Network // the segment defaults, applied to cfg
	store   *store.Store
	hub     *events.Hub
	reg     *prometheus.Registry
	web     *web.Server
	enf     *policy.Enforcer

	portal *captive.Portal
	dhcp   *dhcp.Server
	alerts *alerting
	people *peopleWiring
	radius *radius.Server // nil without radius listeners
	pki    *pki.Authority // the school CA for EAP; nil without a radius auth listener
	site   *inspect.Site
	guard  *dnsguard.Guard
	qlog   *querylog.Log

	recordwatch *recordwatch.Watcher // status for the admin pages (issue 15's overview)

	restores   []restore
	components []component
}

func (w *wiring) run(name string, run func(context.Context) error) {
	w.components = append(w.components, component{name, run})
}

func (w *wiring) restoreStep(what string, run func(context.Context) (int, error)) {
	w.restores = append(w.restores, restore{what, run})
}

// constructors build the daemon, in order: each may use what the ones
// before it built.
var constructors = []func(context.Context, *wiring) error{
	wireAdmin,       // the admin web server and the metrics registry's page
	wirePolicy,      // the enforcer
	wireAlerts,      // findings from every source -> alerts -> the DSL (alert.go); before the sources, which are given its sink
	wirePeople,      // people, groups, the calendar, leavers; device decisions and their restore (people.go)
	wireRules,       // the school's rules, person and group rules resolved by people; the rules page
	wireCaptive,     // the portal, its pages, guest retention and re-admission
	wireDHCP,        // the DHCP server
	wirePKI,         // the school CA, server certificate and onboarding pages, with RADIUS (pki.go)
	wireRADIUS,      // the RADIUS server, when configured (radius.go)
	wireDevices,     // the devices page, acting through people
	wireInspect,     // packet inspection on the configured interfaces
	wireDNS,         // the DNS guard and its query log
	wirePeopleLinks, // what people's revocations reach: leases, Wi-Fi sessions, the DSL's mail
	wireRecordWatch, // the alarm when records are lost or the disk is nearly full (wire_recordwatch.go)
	wireOverview,    // the network manager's overview page (overview.go)
}

// runDaemon runs until ctx is done. Every signal on hup reloads the
// configuration file.
func runDaemon(ctx context.Context, log *slog.Logger, cfg *config.Config, hup <-chan os.Signal) error {
	network, err := policyNetwork(cfg)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()

	d := &daemon{
		log: log,
		cfg: cfg,
		hub: events.New(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_config_reloads_total",
			Help: "Configuration reloads by outcome.",
		}, []string{"outcome"}),
	}
	w := &wiring{log: log, cfg: cfg, network: network, store: st, hub: d.hub, reg: prometheus.NewRegistry()}
	w.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		events.NewCollector(d.hub),
		d.reloads,
	)
	// Closing the enforcer releases netlink only: the table stays in the
	// kernel, so a stopped or crashed daemon keeps enforcing.
	defer func() {
		if w.enf != nil {
			w.enf.Close()
		}
	}()
	for _, build := range constructors {
		if err := build(ctx, w); err != nil {
			return err
		}
	}
	if p := heapProfiler(log); p != nil {
		w.run("heap profiles", p) // debug builds only (heapprofile_pprof.go)
	}
	d.guard = w.guard
	if w.site != nil {
		d.sigs = w.site
	}

	// What the database holds goes in before the first Apply, so the table
	// is built whole in one batch and nobody admitted, approved or
	// quarantined before a restart changes state, even for a moment.
	for _, r := range w.restores {
		n, err := r.run(ctx)
		if err != nil {
			return fmt.Errorf("restoring %s: %w", r.what, err)
		}
		if n > 0 {
			log.Info("restored", "what", r.what, "count", n)
		}
	}
	if _, _, err := w.enf.Start(ctx); err != nil {
		return fmt.Errorf("policy: bringing the kernel's table in line: %w", err)
	}

	started := func() {
		procmem.Release(log)
		log.Info("gatehouse started", "version", version, "config", cfg.Path, "database", cfg.Database,
			"admin", "https://"+cfg.Admin.Listen, "segments", len(cfg.Segments))
	}
	if err := runComponents(ctx, log, w.components, started, hup, d.reload); err != nil {
		return err
	}
	log.Info("gatehouse stopped")
	return nil
}

// wireAdmin builds the admin web server.
func wireAdmin(_ context.Context, w *wiring) error {
	srv, err := web.New(web.Options{
		Store:      w.store,
		Logger:     w.log.With("component", "web"),
		Site:       w.cfg.Site.Name,
		Listen:     w.cfg.Admin.Listen,
		Auto:       w.cfg.Admin.TLS == "auto",
		CertFile:   w.cfg.Admin.CertFile,
		KeyFile:    w.cfg.Admin.KeyFile,
		Gatherer:   w.reg,
		Registerer: w.reg,
		// Never nil: the daemon always checks the Host header.
		AllowedHosts: append([]string{}, w.cfg.Admin.Hostnames...),
		MetricsFrom:  w.cfg.Admin.MetricsFrom,
		IdleTimeout:  w.cfg.Admin.IdleTimeout,
		Location:     w.cfg.Site.Location,
	})
	if err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	w.web = srv
	w.run("admin page", srv.Run)
	return nil
}

// errStoppedEarly is a component that returned while the daemon was still
// running and gave no reason.
var errStoppedEarly = errors.New("stopped while the daemon was running, without an error")

// runComponents runs every component until ctx ends or one of them stops,
// then stops the rest and waits for them. A component that returns while
// ctx is live stops the daemon with its error, or errStoppedEarly when it
// gave none: a part that quietly stopped (a capture loop, the DHCP server)
// would otherwise leave the school without it and nobody told. started is
// called once every component is launched; each signal on hup calls reload.
func runComponents(ctx context.Context, log *slog.Logger, components []component, started func(), hup <-chan os.Signal, reload func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(components))
	var wg sync.WaitGroup
	for _, c := range components {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errStoppedEarly
			}
			err = fmt.Errorf("%s: %w", c.name, err)
			log.Error("a component stopped; stopping the daemon", "component", c.name, "err", err)
			errc <- err
		}()
	}
	started()

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			reload()
		case err := <-errc:
			runErr = err
			break loop
		}
	}
	cancel()
	wg.Wait()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// reload re-reads the configuration file. A file that fails to load or that
// names things this machine lacks is refused, and the configuration in force
// stays.
func (d *daemon) reload() {
	d.mu.RLock()
	path := d.cfg.Path
	d.mu.RUnlock()
	cfg, err := config.Load(path)
	if err == nil {
		err = hostProblems(cfg)
	}
	if err != nil {
		d.reloads.WithLabelValues("refused").Inc()
		d.log.Error("configuration reload refused; keeping the running configuration", "config", path, "err", err)
		return
	}
	old := d.currentConfig()
	if filepath.Clean(cfg.Database) != filepath.Clean(old.Database) {
		d.reloads.WithLabelValues("refused").Inc()
		d.log.Error("configuration reload refused: the database path cannot change while running; restart instead", "config", path)
		return
	}
	applied, restart := reloadPlan(old, cfg)
	if len(applied) > 0 && d.guard != nil {
		network, err := policyNetwork(cfg)
		if err == nil {
			err = d.guard.SetSegments(dnsGuardConfig(cfg, network).Segments)
		}
		if err != nil {
			d.reloads.WithLabelValues("refused").Inc()
			d.log.Error("configuration reload refused: the DNS guard would not take it; keeping the running configuration", "config", path, "err", err)
			return
		}
	}
	d.reloadSignatures(cfg.Inspect.Signatures)
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.reloads.WithLabelValues("applied").Inc()
	events.Publish(d.hub, events.ConfigReloaded{Path: path, Applied: applied, Restart: restart, At: time.Now()})
	d.log.Info("configuration reloaded", "config", path, "applied", applied)
	if len(restart) > 0 {
		d.log.Warn("these changes take effect at the next restart", "sections", restart)
	}
}

// signatureReloader is inspection as a reload sees it (inspect.Site).
type signatureReloader interface {
	ReloadSignatures(path string) (*inspect.Signatures, error)
}

// reloadSignatures re-reads inspection's signatures file (the shipped set
// when path is ""), so a network manager's edited copy takes effect on
// SIGHUP. A file that does not validate leaves the signatures in force,
// and the log names every bad line; the rest of the reload goes on.
func (d *daemon) reloadSignatures(path string) {
	if d.sigs == nil {
		return
	}
	shown := path
	if shown == "" {
		shown = "(shipped)"
	}
	sigs, err := d.sigs.ReloadSignatures(path)
	if err != nil {
		d.log.Error("inspection signatures reload refused; keeping the signatures in force", "signatures", shown, "err", err)
		return
	}
	d.log.Info("inspection signatures reloaded", "signatures", shown, "count", sigs.Len())
}

// hostProblems is every problem cfg.HostProblems finds, in one error (one
// line each), or nil.
func hostProblems(cfg *config.Config) error {
	probs := cfg.HostProblems()
	if len(probs) == 0 {
		return nil
	}
	lines := make([]string, len(probs))
	for i, p := range probs {
		lines[i] = p.String()
	}
	return fmt.Errorf("%d thing(s) this machine lacks: %s", len(probs), strings.Join(lines, "; "))
}

// reloadPlan compares the running configuration with a new one and says
// which changed sections a reload applies now (the DNS guard's per-segment
// settings) and which need a restart (everything the kernel table, the
// sockets and the components were built from).
func reloadPlan(old, cfg *config.Config) (applied, restart []string) {
	if old.DNS.SafeSearch != cfg.DNS.SafeSearch {
		applied = append(applied, "dns.safesearch")
	}
	if old.Inspect.Signatures != cfg.Inspect.Signatures {
		applied = append(applied, "inspect.signatures")
	}
	for _, c := range []struct {
		section  string
		old, new any
	}{
		// The zone is compared by name: two loads of one zone are
		// different values.
		{"site", [3]string{old.Site.Name, old.Site.Timezone, old.Site.GuestSSID}, [3]string{cfg.Site.Name, cfg.Site.Timezone, cfg.Site.GuestSSID}},
		{"admin", old.Admin, cfg.Admin},
		{"uplink", old.Uplink, cfg.Uplink},
		{"segments", old.Segments, cfg.Segments},
		{"servers", old.Servers, cfg.Servers},
		{"dns.upstream", old.DNS.Upstream, cfg.DNS.Upstream},
		{"dns.log_retention", old.DNS.LogRetention, cfg.DNS.LogRetention},
		{"radius", old.RADIUS, cfg.RADIUS},
		{"inspect", inspectBesidesSignatures(old.Inspect), inspectBesidesSignatures(cfg.Inspect)},
		{"dhcp", old.DHCPRelay, cfg.DHCPRelay},
		{"portal", old.Portal, cfg.Portal},
		{"alerts", old.Alerts, cfg.Alerts},
		{"people", old.People, cfg.People},
	} {
		if !reflect.DeepEqual(c.old, c.new) {
			restart = append(restart, c.section)
		}
	}
	return applied, restart
}

// inspectBesidesSignatures is the inspect section less what a reload
// applies (the signatures file).
func inspectBesidesSignatures(c config.Inspect) config.Inspect {
	c.Signatures = ""
	return c
}

func (d *daemon) currentConfig() *config.Config {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.cfg
}
