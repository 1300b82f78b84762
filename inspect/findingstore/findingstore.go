// Package findingstore takes findings from the inspect engines, stores them
// in batches, publishes each on the event hub and purges old ones.
//
// It owns the hand-off between the packet path and the database: the
// engine calls HandleFinding from its capture goroutine, which only puts
// the finding on a bounded queue (a full queue drops it and counts the
// drop, so a slow disk never stalls capture); Run, owned by the caller,
// drains the queue, writes batches through package store and publishes
// events.FindingRaised with the inspect.Finding as Data.
//
// It does not classify traffic (inspect), attribute findings to people or
// alert anyone (alert), or speak SQL (store).
package findingstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/inspect"
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

// Options configure a Sink. Store is required.
type Options struct {
	Store *store.Store
	// Hub, when set, gets an events.FindingRaised for every finding, after
	// the batch holding it was written (or failed to be).
	Hub    *events.Hub
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
	SegmentOf func(inspect.Finding) string
	// Now is the clock for retention; nil means time.Now.
	Now func() time.Time
}

// Stats are the sink's counters.
type Stats struct {
	Received    uint64 // findings handed in
	Dropped     uint64 // of those, dropped because the queue was full
	Stored      uint64 // written to the database
	WriteErrors uint64 // findings in batches that failed to be written
	Purged      uint64 // rows deleted by retention
}

type item struct {
	f       inspect.Finding
	segment string
}

// Sink is an inspect.Sink that stores and publishes findings. HandleFinding
// and ForSegment's sinks are safe for concurrent use by several engines.
type Sink struct {
	opt Options
	log *slog.Logger
	q   chan item

	received, dropped, stored, writeErrors, purged atomic.Uint64
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
	return &Sink{opt: opt, log: log, q: make(chan item, opt.Queue)}, nil
}

// HandleFinding queues f without blocking; a full queue drops it.
func (s *Sink) HandleFinding(f inspect.Finding) {
	seg := ""
	if s.opt.SegmentOf != nil {
		seg = s.opt.SegmentOf(f)
	}
	s.enqueue(item{f, seg})
}

func (s *Sink) enqueue(it item) {
	s.received.Add(1)
	select {
	case s.q <- it:
	default:
		s.dropped.Add(1)
	}
}

// ForSegment returns a sink for the engine capturing one segment's
// interface: its findings are stored with that segment.
func (s *Sink) ForSegment(segment string) inspect.Sink {
	return inspect.SinkFunc(func(f inspect.Finding) { s.enqueue(item{f, segment}) })
}

// SegmentByPrefix returns a SegmentOf function that names the segment whose
// subnet holds the finding's source address.
func SegmentByPrefix(subnets map[string]netip.Prefix) func(inspect.Finding) string {
	return func(f inspect.Finding) string {
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
	return Stats{
		Received:    s.received.Load(),
		Dropped:     s.dropped.Load(),
		Stored:      s.stored.Load(),
		WriteErrors: s.writeErrors.Load(),
		Purged:      s.purged.Load(),
	}
}

// shutdownGrace bounds the final flush after ctx is done, so that findings
// raised just before a shutdown are kept without holding the shutdown up.
const shutdownGrace = 5 * time.Second

// Run writes queued findings until ctx is done, then writes what is still
// queued and returns nil. It purges expired findings at start and every
// PurgeEvery. Write failures are logged and counted, never fatal: the
// findings are still published.
func (s *Sink) Run(ctx context.Context) error {
	flush := time.NewTicker(s.opt.FlushEvery)
	defer flush.Stop()
	purge := time.NewTicker(s.opt.PurgeEvery)
	defer purge.Stop()
	s.purge(ctx)

	batch := make([]item, 0, s.opt.Batch)
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
			defer cancel()
			for {
				select {
				case it := <-s.q:
					batch = append(batch, it)
					if len(batch) == s.opt.Batch {
						batch = s.write(final, batch)
					}
				default:
					s.write(final, batch)
					return nil
				}
			}
		case it := <-s.q:
			batch = append(batch, it)
			if len(batch) == s.opt.Batch {
				batch = s.write(ctx, batch)
			}
		case <-flush.C:
			batch = s.write(ctx, batch)
		case <-purge.C:
			s.purge(ctx)
		}
	}
}

// write stores and publishes batch and returns it emptied for reuse.
func (s *Sink) write(ctx context.Context, batch []item) []item {
	if len(batch) == 0 {
		return batch
	}
	rows := make([]store.Finding, len(batch))
	for i, it := range batch {
		f := it.f
		rows[i] = store.Finding{
			At: f.Time, Segment: it.segment, SrcIP: f.SrcIP, SrcMAC: f.SrcMAC,
			DstIP: f.DstIP, DstPort: f.DstPort, Proto: f.Proto,
			Class: f.Class, Detail: f.Detail, Evidence: f.Evidence,
		}
		if rows[i].At.IsZero() {
			rows[i].At = s.opt.Now()
		}
	}
	if err := s.opt.Store.InsertFindings(ctx, rows); err != nil {
		s.writeErrors.Add(uint64(len(rows)))
		s.log.Error("findingstore: write findings", "count", len(rows), "err", err)
	} else {
		s.stored.Add(uint64(len(rows)))
	}
	if s.opt.Hub != nil {
		for _, it := range batch {
			s.opt.Hub.Publish(events.Event{Kind: events.FindingRaised, At: it.f.Time, Data: it.f})
		}
	}
	clear(batch)
	return batch[:0]
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
