// Package findingstore takes findings from every source (the inspect
// engines through ForSegment; the DHCP server, the portal, the DNS query log
// and RADIUS through Offer, the finding.Sink each is given at construction,
// never through the event hub, whose bounded queues drop for a subscriber
// that falls behind), drops the ones that are noise, stores the rest
// in batches and purges old ones.
//
// It owns the hand-off between the packet path and the database: an engine
// calls HandleFinding from its capture goroutine, which normally only puts
// the finding on a bounded queue; Run, owned by the caller, drains the
// queue and writes batches through package store, then calls
// Options.Stored so the alert pipeline reads the new rows from the
// database (where nothing is lost once written).
//
// The queue never drops a finding. What may be left out is decided before
// it, on purpose and counted: noise (Options.Ignore) and a flooding
// client's repeats (the per-client budget). A finding that passed both and
// meets a full queue is written to the database at once by the caller's
// goroutine (Stats.Spilled): back-pressure on the source rather than loss.
// The budget bounds how often that can happen, and a capture goroutine
// held up by it makes the kernel's packet ring shed packets (counted
// there) rather than this package shed findings.
//
// It does not classify traffic (inspect), attribute findings to people or
// alert anyone (alert), or speak SQL (store).
package findingstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/internal/batch"
	"github.com/gatehouse-net/gatehouse/internal/clientbudget"
	"github.com/gatehouse-net/gatehouse/store"
)

// Defaults for the zero Options fields.
const (
	DefaultQueue      = 4096
	DefaultBatch      = 256
	DefaultFlushEvery = time.Second
	DefaultPurgeEvery = time.Hour
)

// purgeActor is who the audit log names for retention purges.
const purgeActor = "inspect-retention"

// Store is the part of the store a Sink writes to.
type Store interface {
	InsertFindings(ctx context.Context, fs []store.Finding) error
	PurgeFindings(ctx context.Context, actor string, before time.Time) (int64, error)
}

// Options configure a Sink. Store is required.
type Options struct {
	Store Store
	// Stored, when set, is called after each batch was written, so the
	// alert pipeline picks the new rows up at once.
	Stored func()
	// Ignore, when set, is asked about every finding before it is queued;
	// a non-empty reason drops it (the router's own addresses, an
	// unapproved-device finding on a segment that welcomes strangers) and
	// counts it as ignored.
	Ignore func(finding.Finding) string
	Logger *slog.Logger
	// Queue bounds the findings waiting to be written; default DefaultQueue.
	Queue int
	// Batch is the most findings one transaction writes; default
	// DefaultBatch. A partial batch is written after FlushEvery.
	Batch      int
	FlushEvery time.Duration
	// Retention is how long findings are kept; default
	// store.DefaultFindingRetention. Purges run at start and then every
	// PurgeEvery (default DefaultPurgeEvery).
	Retention  time.Duration
	PurgeEvery time.Duration
	// SegmentOf names the segment of a finding from HandleFinding, for
	// example from its source address; nil leaves it empty. Findings that
	// come through ForSegment carry that segment instead.
	SegmentOf func(finding.Finding) string
	// ClientBudget is how many findings of one client (MAC, else
	// address) are stored a minute before only the unusual ones are (see
	// budget); 0 means DefaultClientBudget, negative turns the bound off.
	ClientBudget int
	// ClientTable bounds the clients the budget tracks; 0 means
	// DefaultClientTable.
	ClientTable int
	// Now is the clock for retention and the budget; nil means time.Now.
	Now func() time.Time
}

// Stats are the sink's counters.
type Stats struct {
	Received uint64 // findings handed in
	Ignored  uint64 // of those, dropped as noise by Options.Ignore
	// Dropped is findings lost because the queue was full: always 0 now
	// that a full queue spills to a direct write; kept so the metric and
	// its dashboards keep their name.
	Dropped uint64
	// Spilled are findings that met a full queue and were written at
	// once by the source's goroutine (back-pressure).
	Spilled     uint64
	Stored      uint64 // written to the database (queued and spilled)
	WriteErrors uint64 // findings in batches that failed to be written
	Purged      uint64 // rows deleted by retention
	// OverBudget are findings not stored because their client went over
	// its budget for the minute with nothing new (a flood).
	OverBudget uint64
}

// Sink is an inspect.Sink that stores and publishes findings. HandleFinding
// and ForSegment's sinks are safe for concurrent use by several engines.
type Sink struct {
	opt      Options
	log      *slog.Logger
	w        *batch.Writer[finding.Finding]
	bud      *clientbudget.Budget[string] // nil when the bound is off
	budLimit int

	received, ignored, purged, overBudget, spilled, spillStored, spillFailed atomic.Uint64
}

// New returns a sink; call Run to start writing.
func New(opt Options) (*Sink, error) {
	if opt.Store == nil {
		return nil, errors.New("findingstore: new: Options.Store is nil")
	}
	if opt.Queue <= 0 {
		opt.Queue = DefaultQueue
	}
	if opt.Batch <= 0 {
		opt.Batch = DefaultBatch
	}
	if opt.FlushEvery <= 0 {
		opt.FlushEvery = DefaultFlushEvery
	}
	if opt.Retention <= 0 {
		opt.Retention = store.DefaultFindingRetention
	}
	if opt.PurgeEvery <= 0 {
		opt.PurgeEvery = DefaultPurgeEvery
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Sink{opt: opt, log: log}
	if opt.ClientBudget >= 0 {
		limit, table := opt.ClientBudget, opt.ClientTable
		if limit == 0 {
			limit = DefaultClientBudget
		}
		if table <= 0 {
			table = DefaultClientTable
		}
		s.bud, s.budLimit = clientbudget.New[string](limit, DefaultClientKinds, table), limit
	}
	var err error
	s.w, err = batch.New(batch.Options[finding.Finding]{
		Name: "findings", Write: s.write, Purge: s.purge,
		Queue: opt.Queue, Size: opt.Batch, FlushEvery: opt.FlushEvery, PurgeEvery: opt.PurgeEvery,
		ShutdownGrace: shutdownGrace, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("findingstore: %w", err)
	}
	return s, nil
}

// HandleFinding queues f; when the queue is full it writes f to the
// database before returning (back-pressure, never a drop). A finding
// without a segment gets one from Options.SegmentOf.
func (s *Sink) HandleFinding(f finding.Finding) {
	if f.Segment == "" && s.opt.SegmentOf != nil {
		f.Segment = s.opt.SegmentOf(f)
	}
	s.received.Add(1)
	if s.opt.Ignore != nil {
		if why := s.opt.Ignore(f); why != "" {
			s.ignored.Add(1)
			s.log.Debug("findingstore: ignored", "finding", f.String(), "why", why)
			return
		}
	}
	if s.bud != nil {
		if keep, first := s.bud.Allow(clientKey(f), kindOf(f), s.opt.Now()); !keep {
			s.overBudget.Add(1)
			if first {
				s.log.Warn("findingstore: a device went over its finding budget; only new kinds of finding are stored for the rest of the minute",
					"mac", f.SrcMAC, "ip", f.SrcIP, "segment", f.Segment, "class", f.Class, "budget_per_minute", s.budLimit)
			}
			return
		}
	}
	if s.w.TryOffer(f) {
		return
	}
	s.spill(f)
}

// Offer is HandleFinding, making the sink the finding.Sink every source
// is given at construction.
func (s *Sink) Offer(f finding.Finding) { s.HandleFinding(f) }

// spill writes one finding that met a full queue, in the caller's
// goroutine, so the queue never loses what passed the budget.
func (s *Sink) spill(f finding.Finding) {
	s.spilled.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), spillTimeout)
	defer cancel()
	if err := s.write(ctx, []finding.Finding{f}); err != nil {
		s.spillFailed.Add(1)
		s.log.Error("findingstore: write a finding that met a full queue", "finding", f.String(), "err", err)
		return
	}
	s.spillStored.Add(1)
}

// spillTimeout bounds one direct write: the database's own busy wait
// decides most of it.
const spillTimeout = 10 * time.Second

// ForSegment returns the inspect.Sink for the engine capturing one
// segment's interface: its findings become finding.Findings of that
// segment. This is the one place inspect's own type is converted, so
// package inspect keeps importing nothing of Gatehouse.
func (s *Sink) ForSegment(segment string) inspect.Sink {
	return inspect.SinkFunc(func(f inspect.Finding) { s.HandleFinding(FromInspect(f, segment)) })
}

// FromInspect converts an inspection finding.
func FromInspect(f inspect.Finding, segment string) finding.Finding {
	return finding.Finding{Time: f.Time, Source: finding.SourceInspect, Class: f.Class, Segment: segment,
		SrcIP: f.SrcIP, SrcMAC: f.SrcMAC, DstIP: f.DstIP, DstPort: f.DstPort, Proto: f.Proto,
		Detail: f.Detail, Evidence: f.Evidence, Confidence: string(f.Confidence)}
}

// SegmentByPrefix returns a SegmentOf function that names the segment whose
// subnet holds the finding's source address.
func SegmentByPrefix(subnets map[string]netip.Prefix) func(finding.Finding) string {
	return func(f finding.Finding) string {
		a := f.SrcIP.Unmap()
		for name, p := range subnets {
			if p.Contains(a) {
				return name
			}
		}
		return ""
	}
}

// Stats returns the counters so far.
func (s *Sink) Stats() Stats {
	w := s.w.Stats()
	return Stats{
		Received:    s.received.Load(),
		Ignored:     s.ignored.Load(),
		Dropped:     w.Dropped,
		Spilled:     s.spilled.Load(),
		Stored:      w.Written + s.spillStored.Load(),
		WriteErrors: w.Failed + s.spillFailed.Load(),
		Purged:      s.purged.Load(),
		OverBudget:  s.overBudget.Load(),
	}
}

// shutdownGrace bounds the final flush after ctx is done, so that findings
// raised just before a shutdown are kept without holding the shutdown up.
const shutdownGrace = 5 * time.Second

// Run writes queued findings until ctx is done, then writes what is still
// queued and returns nil. It purges expired findings at start and every
// PurgeEvery. Write failures are logged and counted, never fatal: the
// findings are still published.
func (s *Sink) Run(ctx context.Context) error { return s.w.Run(ctx) }

// write stores one batch.
func (s *Sink) write(ctx context.Context, batch []finding.Finding) error {
	rows := make([]store.Finding, len(batch))
	for i, f := range batch {
		rows[i] = store.Finding{
			At: f.Time, Source: f.Source, Segment: f.Segment, SrcIP: f.SrcIP, SrcMAC: f.SrcMAC,
			DstIP: f.DstIP, DstPort: f.DstPort, Proto: f.Proto,
			Class: f.Class, Detail: f.Detail, Evidence: f.Evidence, Confidence: f.Confidence,
		}
		if rows[i].At.IsZero() {
			rows[i].At = s.opt.Now()
		}
	}
	if err := s.opt.Store.InsertFindings(ctx, rows); err != nil {
		return err
	}
	if s.opt.Stored != nil {
		s.opt.Stored()
	}
	return nil
}

func (s *Sink) purge(ctx context.Context) {
	n, err := s.opt.Store.PurgeFindings(ctx, purgeActor, s.opt.Now().Add(-s.opt.Retention))
	s.purged.Add(uint64(n))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Error("findingstore: purge expired findings", "err", err)
	case n > 0:
		s.log.Info("findingstore: purged expired findings", "count", n, "retention", s.opt.Retention)
	}
}
