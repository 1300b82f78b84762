// Package querylog is the DNS guard's Recorder: it takes every lookup off the
// serving path through a bounded queue, writes them to the database in
// batches (one transaction each), purges rows older than the school's
// retention on an interval, and, when given an event hub, publishes each
// lookup as a "dns.query" event for inspection and alerting.
//
// It never blocks the DNS path: when the queue is full a record is dropped,
// counted and logged (at most once a minute). Each client's routine lookups
// are stored up to a budget a minute; lookups the guard acted on always are,
// so a flood cannot push the first and the unusual out of the log. It does not own the table or its SQL (package store) or decide
// what a lookup means (the guard decides, subscribers judge).
package querylog

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/store"
)

// EventKind is the kind of the event published for each lookup; its Data is
// a dnsguard.Query.
const EventKind events.Kind = "dns.query"

// Sink is where batches go (*store.Store).
type Sink interface {
	InsertDNSQueries(ctx context.Context, qs []store.DNSQuery) error
	PurgeDNSQueries(ctx context.Context, actor string, before time.Time) (int64, error)
}

// Publisher is the event hub (*events.Hub); Publish must not block.
type Publisher interface {
	Publish(events.Event) int
}

// Options configure a Log. Zero values take the defaults given.
type Options struct {
	Sink       Sink          // required
	Events     Publisher     // optional
	Queue      int           // records waiting to be written; 4096
	BatchSize  int           // records per transaction at most; 512
	FlushEvery time.Duration // a partial batch waits at most this long; 1s
	Retention  time.Duration // rows older than this are purged; store.DefaultDNSLogRetention
	PurgeEvery time.Duration // 1h
	Now        func() time.Time
	Logger     *slog.Logger
	// ClientBudget is how many routine lookups of one client are stored a
	// minute; lookups the guard acted on are always stored. 0 means
	// DefaultClientBudget.
	ClientBudget int
	// ClientTable bounds the clients the budget tracks; 0 means
	// DefaultClientTable.
	ClientTable int
}

// Stats are the log's counters.
type Stats struct {
	Recorded uint64 // handed to Record
	Dropped  uint64 // refused because the queue was full
	// OverBudget are routine lookups not stored because their client went
	// over its budget for the minute (they were still published).
	OverBudget uint64
	Written    uint64 // committed to the database
	Failed     uint64 // lost in a batch the database refused
	Purged     uint64 // rows removed by retention
}

// Log is a dnsguard.Recorder backed by the database. Record is safe for
// concurrent use; Run must be running for records to reach the database.
type Log struct {
	opts Options
	log  *slog.Logger
	ch   chan dnsguard.Query
	bud  *budget

	recorded, dropped, written, failed, purged, overBudget atomic.Uint64
	lastDropWarn                                           atomic.Int64 // unix seconds of the last queue-full log line
}

var _ dnsguard.Recorder = (*Log)(nil)

// New checks opts and returns a Log; nothing runs until Run.
func New(opts Options) (*Log, error) {
	if opts.Sink == nil {
		return nil, errors.New("querylog: no sink")
	}
	if opts.Queue <= 0 {
		opts.Queue = 4096
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = store.DefaultDNSLogRetention
	}
	if opts.PurgeEvery <= 0 {
		opts.PurgeEvery = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.ClientBudget <= 0 {
		opts.ClientBudget = DefaultClientBudget
	}
	if opts.ClientTable <= 0 {
		opts.ClientTable = DefaultClientTable
	}
	return &Log{opts: opts, log: logger.With("component", "querylog"), ch: make(chan dnsguard.Query, opts.Queue),
		bud: newBudget(opts.ClientBudget, opts.ClientTable)}, nil
}

// Record queues q for the database and publishes it; it never blocks.
func (l *Log) Record(q dnsguard.Query) {
	l.recorded.Add(1)
	if l.opts.Events != nil {
		l.opts.Events.Publish(events.Event{Kind: EventKind, At: q.Time, Data: q})
	}
	keep, firstOver := l.bud.keep(q, l.opts.Now())
	if !keep {
		l.overBudget.Add(1)
		if firstOver {
			l.log.Warn("querylog: a client went over its lookup budget; its routine lookups are not stored for the rest of the minute",
				"client", q.Client, "mac", q.MAC, "segment", q.Segment, "budget_per_minute", l.opts.ClientBudget)
		}
		return
	}
	select {
	case l.ch <- q:
	default:
		l.dropped.Add(1)
		// The alarm: at most one line a minute, the count in Stats.
		now := l.opts.Now().Unix()
		if last := l.lastDropWarn.Load(); now-last >= 60 && l.lastDropWarn.CompareAndSwap(last, now) {
			l.log.Error("querylog: queue full, DNS log records dropped", "dropped_total", l.dropped.Load())
		}
	}
}

// Stats returns the counters so far.
func (l *Log) Stats() Stats {
	return Stats{Recorded: l.recorded.Load(), Dropped: l.dropped.Load(), Written: l.written.Load(),
		Failed: l.failed.Load(), Purged: l.purged.Load(), OverBudget: l.overBudget.Load()}
}

// writeTimeout bounds one batch's write. Writes are detached from Run's
// context, so that records already taken off the queue when the daemon stops
// are still written rather than lost to a cancelled transaction.
const writeTimeout = 10 * time.Second

// Run writes queued records and purges old ones until ctx ends, then writes
// what is still queued and returns nil. Database errors are logged and
// counted, not fatal: the DNS guard keeps answering meanwhile.
func (l *Log) Run(ctx context.Context) error {
	flush := time.NewTicker(l.opts.FlushEvery)
	defer flush.Stop()
	purge := time.NewTicker(l.opts.PurgeEvery)
	defer purge.Stop()
	l.purge(ctx)
	batch := make([]store.DNSQuery, 0, l.opts.BatchSize)
	write := func() {
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		defer cancel()
		if err := l.opts.Sink.InsertDNSQueries(wctx, batch); err != nil {
			l.failed.Add(uint64(len(batch)))
			l.log.Error("write dns query log", "queries", len(batch), "err", err)
		} else {
			l.written.Add(uint64(len(batch)))
		}
		batch = batch[:0]
	}
	add := func(q dnsguard.Query) {
		batch = append(batch, toRow(q))
		if len(batch) == l.opts.BatchSize {
			write()
		}
	}
	for {
		select {
		case <-ctx.Done():
		drain:
			for {
				select {
				case q := <-l.ch:
					add(q)
				default:
					break drain
				}
			}
			write()
			return nil
		case q := <-l.ch:
			add(q)
		case <-flush.C:
			write()
		case <-purge.C:
			l.purge(ctx)
		}
	}
}

func (l *Log) purge(ctx context.Context) {
	before := l.opts.Now().Add(-l.opts.Retention)
	n, err := l.opts.Sink.PurgeDNSQueries(ctx, "scheduler", before)
	l.purged.Add(uint64(n))
	switch {
	case err != nil && ctx.Err() == nil:
		l.log.Error("purge dns query log", "before", before, "err", err)
	case n > 0:
		l.log.Info("dns query log purged", "before", before, "rows", n)
	}
}

func toRow(q dnsguard.Query) store.DNSQuery {
	return store.DNSQuery{At: q.Time, Client: q.Client, MAC: q.MAC, Segment: q.Segment, Name: q.Name,
		Type: q.Type, Answer: q.Answer, Action: string(q.Action)}
}
