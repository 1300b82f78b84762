// Package flowlog keeps the flow log the DSL's timeline reads: a bounded
// summary of each inspected flow (device, start and end, the far end and
// the name it was looked up by, bytes, the class it raised). The inspect
// engines report flows through Options.OnFlow (inspect imports nothing of
// Gatehouse, so the conversion is here, at the edge); Log bounds them per
// client, writes them in batches through package store and purges them
// after their retention.
//
// Unlike findings, flow summaries may be left out under load, and that is
// counted: a client over its per-minute budget (a scan, a flood of crafted
// packets) and a full queue both drop, never block the capture goroutine.
// The findings the same flows raise take the lossless path (findingstore).
//
// It does not classify traffic (inspect), render the timeline (alertweb)
// or speak SQL (store).
package flowlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/internal/batch"
	"github.com/gatehouse-net/gatehouse/internal/clientbudget"
	"github.com/gatehouse-net/gatehouse/store"
)

// Defaults of the zero Options fields.
const (
	DefaultClientBudget = 600 // flow reports per client and minute
	DefaultClientTable  = 4096
	DefaultQueue        = 8192
	DefaultBatch        = 512
)

// purgeActor is who the audit log names for retention purges.
const purgeActor = "flowlog-retention"

// Store is what the log writes to.
type Store interface {
	SaveFlows(ctx context.Context, fs []store.Flow) error
	PurgeFlows(ctx context.Context, actor string, before time.Time) (int64, error)
}

// Options configure a Log. Store is required.
type Options struct {
	Store Store
	// ClientBudget is how many flow reports of one client (MAC, else
	// address) are kept a minute; 0 means DefaultClientBudget.
	ClientBudget int
	// ClientTable bounds the clients the budget tracks; 0 means
	// DefaultClientTable.
	ClientTable int
	// Retention is how long flows are kept; 0 means
	// store.DefaultFlowRetention.
	Retention  time.Duration
	PurgeEvery time.Duration // 0: an hour
	Queue      int           // 0: DefaultQueue
	Batch      int           // 0: DefaultBatch
	FlushEvery time.Duration // 0: a second
	Logger     *slog.Logger
	Now        func() time.Time // nil: time.Now
}

// Stats are the log's counters.
type Stats struct {
	Received   uint64 // flow reports handed in
	OverBudget uint64 // left out: their client went over its budget
	Dropped    uint64 // left out: the queue was full
	Stored     uint64 // written
	Failed     uint64 // in batches the database refused
	Purged     uint64
}

// Log is the flow log. ForSegment's callbacks are safe for concurrent use.
type Log struct {
	opt Options
	log *slog.Logger
	w   *batch.Writer[store.Flow]

	budget *clientbudget.Budget[string]

	received, overBudget, purged atomic.Uint64
}

// New returns a log; Run writes it.
func New(opt Options) (*Log, error) {
	if opt.Store == nil {
		return nil, errors.New("flowlog: new: Options.Store is nil")
	}
	if opt.ClientBudget <= 0 {
		opt.ClientBudget = DefaultClientBudget
	}
	if opt.ClientTable <= 0 {
		opt.ClientTable = DefaultClientTable
	}
	if opt.Retention <= 0 {
		opt.Retention = store.DefaultFlowRetention
	}
	if opt.PurgeEvery <= 0 {
		opt.PurgeEvery = time.Hour
	}
	if opt.Queue <= 0 {
		opt.Queue = DefaultQueue
	}
	if opt.Batch <= 0 {
		opt.Batch = DefaultBatch
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Flows have no kinds: over the budget only classified ones are kept.
	l := &Log{opt: opt, log: log, budget: clientbudget.New[string](opt.ClientBudget, 0, opt.ClientTable)}
	var err error
	l.w, err = batch.New(batch.Options[store.Flow]{Name: "flow log", Write: opt.Store.SaveFlows, Purge: l.purge,
		Queue: opt.Queue, Size: opt.Batch, FlushEvery: opt.FlushEvery, PurgeEvery: opt.PurgeEvery, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("flowlog: %w", err)
	}
	return l, nil
}

// ForSegment returns the inspect.Options.OnFlow callback of the engine
// capturing one segment.
func (l *Log) ForSegment(segment string) func(inspect.FlowRecord) {
	return func(r inspect.FlowRecord) { l.Handle(FromInspect(r, segment)) }
}

// FromInspect converts an engine's flow report.
func FromInspect(r inspect.FlowRecord, segment string) store.Flow {
	return store.Flow{Start: r.Start, Last: r.Last, Ended: r.Ended, Segment: segment, MAC: r.ClientMAC,
		Client: r.Client, ClientPort: r.ClientPort, Server: r.Server, ServerPort: r.ServerPort, Proto: r.Proto, Name: r.Name, Class: r.Class,
		BytesOut: r.BytesOut, BytesIn: r.BytesIn, PacketsOut: r.PacketsOut, PacketsIn: r.PacketsIn}
}

// Handle queues one flow report without blocking, unless its client is
// over its budget for the minute or the queue is full (both counted).
func (l *Log) Handle(f store.Flow) {
	l.received.Add(1)
	if !l.within(f) {
		l.overBudget.Add(1)
		return
	}
	l.w.Offer(f)
}

// within counts f against its client's budget. A classified flow (one a
// finding came from) is always kept: it is what the DSL looks for.
func (l *Log) within(f store.Flow) bool {
	key := f.Client.String()
	if len(f.MAC) > 0 {
		key = f.MAC.String()
	}
	if f.Class != "" {
		l.budget.Count(key, l.opt.Now())
		return true
	}
	keep, _ := l.budget.Allow(key, "", l.opt.Now())
	return keep
}

// Clients is how many clients the budget tracks now.
func (l *Log) Clients() int { return l.budget.Clients() }

// Run writes queued flows and purges until ctx is done.
func (l *Log) Run(ctx context.Context) error { return l.w.Run(ctx) }

func (l *Log) purge(ctx context.Context) {
	n, err := l.opt.Store.PurgeFlows(ctx, purgeActor, l.opt.Now().Add(-l.opt.Retention))
	l.purged.Add(uint64(n))
	switch {
	case err != nil && ctx.Err() == nil:
		l.log.Error("flowlog: purge expired flows", "err", err)
	case n > 0:
		l.log.Info("flowlog: purged expired flows", "count", n, "retention", l.opt.Retention)
	}
}

// Stats returns the counters so far.
func (l *Log) Stats() Stats {
	w := l.w.Stats()
	return Stats{Received: l.received.Load(), OverBudget: l.overBudget.Load(), Dropped: w.Dropped, Stored: w.Written, Failed: w.Failed,
		Purged: l.purged.Load()}
}
