// Package alert turns every source's findings into attributed alerts and
// tells the Designated Safeguarding Lead: email (immediately for high
// severity, a digest for the rest), a signed webhook and RFC 5424 syslog,
// each from a durable outbox in the database with retries and back-off. It
// also owns the DSL's pages: alerts by state, an alert with its evidence and
// a timeline, triage (new -> triaged -> action taken -> closed, with notes),
// "not a concern for this device" suppressions, and the incident log.
//
// The pipeline: every source produces a finding.Finding (inspect through
// the findingstore sink, the others on the event hub); subpackage
// findingstore drops noise (Noise: the router's own addresses, strangers
// where unknown_devices allows them) and stores the rest; the Engine reads
// stored findings in id order after the last one it handled, attributes each
// at its own time (Attributor: RADIUS session, portal session, DHCP lease ->
// device -> owner -> person), folds repeats of one class from one person or
// device into the open alert, and queues notifications for new alerts in the
// same transaction. A crash or a full queue loses nothing: the findings and
// the outbox are rows.
//
// It does not detect anything (inspect, dhcp, captive, dnsguard, radius),
// decide who a person is (people, through the People interface) or speak
// SQL (store).
package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/store"
)

// progressName is where the engine records the last finding it handled.
const progressName = "alert.findings"

// Store is what the engine reads and writes.
type Store interface {
	Records
	FindingsAfter(ctx context.Context, after int64, limit int) ([]store.Finding, error)
	AlertProgress(ctx context.Context, name string) (string, error)
	SetAlertProgress(ctx context.Context, name, value string) error
	FoldFinding(ctx context.Context, progress string, findingID int64, a store.Alert, channels []string, now time.Time) (int64, bool, error)
	Suppressed(ctx context.Context, mac net.HardwareAddr, class string, t time.Time) (bool, error)
}

// Options configure an Engine.
type Options struct {
	Store      Store       // required
	Attributor *Attributor // required
	// Severity overrides DefaultSeverity per class.
	Severity map[string]string
	// Immediate are the channels a new high-severity alert is queued on
	// (email when SMTP and DSL addresses are configured); Every are the
	// channels every new alert is queued on (webhook, syslog). Lower
	// severities reach email through the digest.
	Immediate []string
	Every     []string
	Logger    *slog.Logger
	Now       func() time.Time
	// Poll is how often the engine looks for findings without being poked;
	// default 5s.
	Poll time.Duration
	// Delivered, when set, is poked after notifications were queued.
	Delivered func()
	Metrics   *Metrics // nil: none
}

// Engine folds stored findings into alerts. Run owns its goroutine.
type Engine struct {
	opt  Options
	log  *slog.Logger
	poke chan struct{}

	folded, suppressed, unattributed, errors atomic.Uint64
}

// New checks opt and returns an engine.
func New(opt Options) (*Engine, error) {
	if opt.Store == nil || opt.Attributor == nil || opt.Attributor.Records == nil {
		return nil, errors.New("alert: new: Options.Store and Options.Attributor (with Records) are required")
	}
	for class, sv := range opt.Severity {
		if !ValidSeverity(sv) {
			return nil, fmt.Errorf("alert: new: class %q has severity %q (want high, medium or low)", class, sv)
		}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Poll <= 0 {
		opt.Poll = 5 * time.Second
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Engine{opt: opt, log: log, poke: make(chan struct{}, 1)}, nil
}

// Poke tells the engine new findings were stored. It never blocks.
func (e *Engine) Poke() {
	select {
	case e.poke <- struct{}{}:
	default:
	}
}

// Severity returns the severity of class.
func (e *Engine) Severity(class string) string {
	if sv, ok := e.opt.Severity[class]; ok {
		return sv
	}
	if sv, ok := DefaultSeverity[class]; ok {
		return sv
	}
	return store.SeverityMedium
}

// Run folds findings until ctx is done.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.opt.Poll)
	defer t.Stop()
	for {
		if err := e.Drain(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("alert: folding findings", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.poke:
		case <-t.C:
		}
	}
}

// Drain folds every stored finding after the last one handled.
func (e *Engine) Drain(ctx context.Context) error {
	p, err := e.opt.Store.AlertProgress(ctx, progressName)
	if err != nil {
		return err
	}
	var last int64
	if p != "" {
		if last, err = strconv.ParseInt(p, 10, 64); err != nil {
			return fmt.Errorf("alert: progress %q: %w", p, err)
		}
	}
	for {
		fs, err := e.opt.Store.FindingsAfter(ctx, last, 256)
		if err != nil {
			return err
		}
		if len(fs) == 0 {
			return nil
		}
		queued := false
		for _, f := range fs {
			created, err := e.fold(ctx, f)
			if err != nil {
				e.errors.Add(1)
				return err // retried from the same finding on the next round
			}
			queued = queued || created
			last = f.ID
		}
		if queued && e.opt.Delivered != nil {
			e.opt.Delivered()
		}
	}
}

// fold handles one finding: suppressed, or attributed and folded into an
// alert. It reports whether a new alert (and its notifications) was made.
func (e *Engine) fold(ctx context.Context, f store.Finding) (bool, error) {
	now := e.opt.Now()
	if e.opt.Metrics != nil {
		e.opt.Metrics.Findings.WithLabelValues(f.Class).Inc()
	}
	at, err := e.opt.Attributor.Attribute(ctx, f.SrcIP, f.SrcMAC, f.At)
	if err != nil {
		// Keep going with what we know: a finding is never lost because a
		// lookup failed.
		e.log.Warn("alert: attribution incomplete", "finding", f.ID, "err", err)
	}
	mac := f.SrcMAC
	if len(mac) == 0 {
		mac = at.MAC
	}
	sup, err := e.opt.Store.Suppressed(ctx, mac, f.Class, f.At)
	if err != nil {
		return false, err
	}
	if sup {
		e.suppressed.Add(1)
		return false, e.opt.Store.SetAlertProgress(ctx, progressName, strconv.FormatInt(f.ID, 10))
	}
	if at.By == ByNobody {
		e.unattributed.Add(1)
	}
	sv := e.Severity(f.Class)
	a := store.Alert{
		Key:          rollupKey(f, at, mac),
		Class:        f.Class,
		Severity:     sv,
		FirstSeen:    f.At,
		Segment:      f.Segment,
		SrcIP:        f.SrcIP,
		SrcMAC:       mac,
		DeviceName:   at.DeviceName,
		Hostname:     at.Hostname,
		Manufacturer: at.Manufacturer,
		PersonName:   at.Person.Name,
		PersonGroup:  personGroup(at.Person),
		Room:         at.Room,
		AccessPoint:  at.AccessPoint,
		SSID:         at.SSID,
		Visitor:      at.Visitor,
		AttributedBy: at.By,
		Destination:  destination(f),
		Detail:       f.Detail,
		Evidence:     f.Evidence,
	}
	channels := append([]string(nil), e.opt.Every...)
	if sv == store.SeverityHigh {
		channels = append(channels, e.opt.Immediate...)
	}
	_, created, err := e.opt.Store.FoldFinding(ctx, progressName, f.ID, a, channels, now)
	if err != nil {
		return false, err
	}
	e.folded.Add(1)
	if created && e.opt.Metrics != nil {
		e.opt.Metrics.Alerts.WithLabelValues(sv).Inc()
	}
	return created && len(channels) > 0, nil
}

// rollupKey is who and what: repeats of one class from one person (when
// known), else one device, else one address fold into the open alert.
// Site-wide findings (a full pool, code guessing) fold per segment.
func rollupKey(f store.Finding, at Attribution, mac net.HardwareAddr) string {
	who := ""
	switch {
	case at.Person.Name != "":
		who = "person:" + at.Person.Name + "|" + personGroup(at.Person)
	case at.Visitor != "":
		who = "visitor:" + at.Visitor
	case len(mac) > 0:
		who = "mac:" + mac.String()
	case f.SrcIP.IsValid():
		who = "ip:" + f.SrcIP.String()
	default:
		who = "segment:" + f.Segment
	}
	return f.Class + "|" + who
}

func personGroup(p Person) string {
	switch {
	case p.Group != "" && p.Role != "":
		return p.Group + ", " + p.Role
	case p.Group != "":
		return p.Group
	}
	return p.Role
}

// destination is what was attempted: the far end and the name, when known.
func destination(f store.Finding) string {
	d := ""
	if f.DstIP.IsValid() {
		d = netip.AddrPortFrom(f.DstIP, f.DstPort).String()
		if f.Proto != "" {
			d += "/" + f.Proto
		}
	}
	return d
}

// Stats are the engine's counters.
type Stats struct {
	Folded, Suppressed, Unattributed, Errors uint64
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats {
	return Stats{e.folded.Load(), e.suppressed.Load(), e.unattributed.Load(), e.errors.Load()}
}

// FindingOf converts a stored finding back to the shared type (for pages
// and tests).
func FindingOf(f store.Finding) finding.Finding {
	return finding.Finding{Time: f.At, Source: f.Source, Class: f.Class, Segment: f.Segment, SrcIP: f.SrcIP, SrcMAC: f.SrcMAC,
		DstIP: f.DstIP, DstPort: f.DstPort, Proto: f.Proto, Detail: f.Detail, Evidence: f.Evidence, Confidence: f.Confidence}
}
