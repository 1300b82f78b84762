package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/alert"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/people/peopleweb"
	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/policy/ruledb"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
)

// peopleWiring is the people service and what the daemon connects to it.
type peopleWiring struct {
	svc *people.Service
	// started is set once the enforcer's table is in the kernel: before
	// that a change to people needs no Sync (the first Apply reads them).
	started atomic.Bool
	// radius is set once the RADIUS server is built (after people, since
	// the portal and DHCP come between); until then revocations have only
	// the kernel's backstop.
	radius atomic.Pointer[radius.Server]
	// mailer is the alerts' mailer, set once alerting is built, for the
	// leavers preview (to the network manager and alerts.dsl).
	mailer atomic.Pointer[alert.Mailer]
	// dhcp is set once the DHCP server is built, to release a revoked
	// device's leases.
	dhcp atomic.Pointer[dhcp.Server]
}

// ReleaseMAC gives a revoked device's addresses back to the DHCP pools.
func (w *peopleWiring) ReleaseMAC(ctx context.Context, mac net.HardwareAddr) error {
	if srv := w.dhcp.Load(); srv != nil {
		return srv.ReleaseMAC(ctx, mac)
	}
	return nil
}

// SendMailTo mails the leavers preview through the alerts' mailer (its
// server and From; people chooses the recipients).
func (w *peopleWiring) SendMailTo(ctx context.Context, to []string, subject, body string) error {
	m := w.mailer.Load()
	if m == nil {
		return people.ErrNoMailer
	}
	return m.SendMailTo(ctx, to, subject, body)
}

// Disconnect ends a device's live Wi-Fi sessions through the RADIUS server
// (an error names every access point that did not acknowledge).
func (w *peopleWiring) Disconnect(ctx context.Context, mac net.HardwareAddr) error {
	srv := w.radius.Load()
	if srv == nil {
		return nil
	}
	return radius.MACDisconnector{Server: srv, Actor: "people"}.Disconnect(ctx, mac)
}

// MoveSegment moves a device's live Wi-Fi sessions to another segment's
// VLAN through the RADIUS server (CoA, or Disconnect where the access
// point refuses it).
func (w *peopleWiring) MoveSegment(ctx context.Context, mac net.HardwareAddr, segment string) error {
	srv := w.radius.Load()
	if srv == nil {
		return nil
	}
	return radius.MACReauthorizer{Server: srv, Actor: "people"}.MoveSegment(ctx, mac, segment)
}

// newPeople builds the people service from the configuration and the
// enforcer's view of the network. enf may be nil (the command line), in
// which case revocations wait for the daemon.
func newPeople(log *slog.Logger, cfg *config.Config, network policy.Network, st *store.Store, hub *events.Hub, enf *policy.Enforcer) (*peopleWiring, error) {
	w := &peopleWiring{}
	opts := people.Options{
		Store:      st,
		Hub:        hub,
		Logger:     log,
		Location:   cfg.Site.Location,
		MaxLeavers: cfg.People.MaxLeavers,
		Grace:      cfg.People.Grace,
		Retention:  cfg.People.Retention,
		NoticeDays: cfg.People.NoticeDays,
		// The T-14 preview goes to the network manager and the DSL.
		NetworkManagers:    cfg.People.LeaversPreviewTo,
		DSL:                cfg.Alerts.DSL,
		QuarantineSegments: network.SegmentsWith(policy.UnknownQuarantine),
	}
	if enf != nil {
		opts.Kernel = testKernel(enf, w.started.Load)
		opts.Disconnector = w
		opts.Reauthorizer = w
		opts.Mailer = w
		opts.Leases = w
		// A revoked person's personal Wi-Fi keys and EAP-TLS client
		// certificates stop working (radius and pki keep them).
		opts.Credentials = people.CredentialSet{radius.PersonKeys{Store: st, Actor: "people"}, pki.PersonCertificates{Store: st, Actor: "people"}}
		rules := ruledb.Source{Store: st}
		opts.OnChange = func(ctx context.Context) error {
			if !w.started.Load() {
				return nil
			}
			if err := enf.LoadRules(ctx, rules, w.svc); err != nil {
				return err
			}
			_, err := enf.Sync(ctx)
			return err
		}
	}
	now, err := daemonClock(log)
	if err != nil {
		return nil, err
	}
	opts.Now = now
	sealer, err := ntSealer(cfg)
	if err != nil {
		return nil, err
	}
	opts.NTHashes = sealer
	svc, err := people.New(opts)
	if err != nil {
		return nil, err
	}
	w.svc = svc
	if enf != nil {
		if err := clearStaleNTHashes(context.Background(), svc); err != nil {
			return nil, err
		}
	}
	return w, svc.Load(context.Background())
}

// scheduledImports turns the configuration's imports into people's, each
// reading its own source.
func scheduledImports(cfg *config.Config) []people.ScheduledImport {
	var out []people.ScheduledImport
	for _, im := range cfg.People.Imports {
		out = append(out, people.ScheduledImport{Name: im.Name, At: im.At,
			Read: func(ctx context.Context) (people.Batch, error) {
				src, err := importSource(im)
				if err != nil {
					return people.Batch{}, err
				}
				return src.Read(ctx)
			}})
	}
	return out
}

// importSource turns one configured import into people's source. It runs
// at each read, so a rotated LDAP password file is read afresh.
func importSource(im config.PeopleImport) (people.Source, error) {
	src := people.Source{Name: im.Name, OneRoster: im.OneRoster, Files: im.Files}
	if im.LDAP != nil {
		o, err := ldapOptions(im.LDAP)
		if err != nil {
			return people.Source{}, err
		}
		src.LDAP = &o
	}
	return src, nil
}

// ldapFields are the people fields config.LDAPAttributeKeys name ("kind"
// is the kind attribute, not a field).
var ldapFields = map[string]people.Field{
	"upn": people.FUPN, "admission_number": people.FAdmissionNo, "staff_code": people.FStaffCode, "title": people.FTitle,
	"forename": people.FForename, "surname": people.FSurname, "preferred_forename": people.FPreferred,
	"year_group": people.FYear, "reg_group": people.FReg, "role": people.FRole, "username": people.FUsername, "email": people.FEmail,
}

// ldapOptions turns an import's ldap section into people's options: the
// bind password and CA read from their files, the attribute map and the
// kind values as configured (people's defaults for the rest).
func ldapOptions(l *config.PeopleLDAP) (people.LDAPOptions, error) {
	o := people.LDAPOptions{URL: l.URL, BaseDN: l.BaseDN, Filter: l.Filter, BindDN: l.BindDN, StartTLS: l.StartTLS,
		PupilValues: l.PupilValues, StaffValues: l.StaffValues}
	if l.PasswordFile != "" {
		pw, err := os.ReadFile(l.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("LDAP password: %w", err)
		}
		o.Password = strings.TrimSpace(string(pw))
	}
	if l.CAFile != "" {
		pool, err := loadCAs(l.CAFile)
		if err != nil {
			return o, fmt.Errorf("LDAP ca_file: %w", err)
		}
		o.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	for k, attr := range l.Attributes {
		if k == "kind" {
			o.KindAttribute = attr
			continue
		}
		f, ok := ldapFields[k]
		if !ok {
			return o, fmt.Errorf("LDAP attributes: %q is not a field", k)
		}
		if o.Attributes == nil {
			o.Attributes = map[people.Field]string{}
		}
		o.Attributes[f] = attr
	}
	return o, nil
}

// run is the people component: the leavers scheduler (which first finishes
// revocations a restart interrupted and catches up on departures missed
// while the router was off) and the scheduled imports.
func (w *peopleWiring) run(ctx context.Context, cfg *config.Config) error {
	// Components start once the enforcer's table is in the kernel.
	w.started.Store(true)
	// The imports stop with the leavers scheduler, so a scheduler that
	// fails is reported at once rather than waiting for the daemon to end.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.svc.RunImports(ctx, scheduledImports(cfg)) }()
	err := w.svc.Run(ctx, time.Minute)
	cancel()
	return errors.Join(err, <-errc)
}

// wirePeople builds the people service over the enforcer, registers its
// pages, and restores device decisions before the enforcer starts.
func wirePeople(_ context.Context, w *wiring) error {
	ppl, err := newPeople(w.log, w.cfg, w.network, w.store, w.hub, w.enf)
	if err != nil {
		return err
	}
	w.people = ppl
	if err := peopleweb.Register(w.web, ppl.svc, w.log.With("component", "people")); err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	w.restoreStep("device decisions", func(ctx context.Context) (int, error) {
		a, b, q, err := ppl.svc.Restore(ctx, time.Now())
		return a + b + q, err
	})
	w.run("people", func(ctx context.Context) error { return ppl.run(ctx, w.cfg) })
	return nil
}

// wirePeopleLinks connects people's revocations to what was built after
// people: the DHCP server (leases released), the RADIUS server (live
// sessions disconnected) and the alerts' mailer (the leavers preview).
func wirePeopleLinks(_ context.Context, w *wiring) error {
	w.people.dhcp.Store(w.dhcp)
	if w.radius != nil {
		w.people.radius.Store(w.radius)
	}
	if w.alerts != nil && w.alerts.digest != nil {
		w.people.mailer.Store(w.alerts.digest.Mailer)
	}
	return nil
}
