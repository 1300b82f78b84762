// Package querylog is the DNS guard's Recorder: it takes every lookup off the
// serving path through a bounded queue, writes them to the database in
// batches (one transaction each), purges rows older than the school's
// retention on an interval, and, when given an event hub, publishes each
// lookup as a "dns.query" event for inspection and alerting. A lookup
// the guard refused as a bypass service also becomes a finding, handed to
// Options.Findings (the finding store) rather than left to the hub.
//
// Each client's routine lookups are stored up to a budget a minute; lookups
// the guard acted on always are, so a flood cannot push the first and the
// unusual out of the log.
//
// It never blocks the DNS path: when the queue is full a record is dropped
// and counted. It does not own the table or its SQL (package store) or decide
// what a lookup means (the guard decides, subscribers judge).
package querylog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/internal/batch"
	"github.com/gatehouse-net/gatehouse/internal/clientbudget"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/store"
)

// Sink is where batches go (*store.Store).
type Sink interface {
	InsertDNSQueries(ctx context.Context, qs []store.DNSQuery) error
	PurgeDNSQueries(ctx context.Context, actor string, before time.Time) (int64, error)
}

// Options configure a Log. Zero values take the defaults given.
type Options struct {
	Sink   Sink        // required
	Events *events.Hub // optional: every lookup is published as an events.DNSQuery
	// Findings, when set, is handed a finding (BlockedFinding) for every
	// lookup the guard refused as a listed bypass service. It is the
	// finding store, which does not lose them as a hub subscriber that
	// falls behind would; its per-device budget bounds a flood, so a
	// direct write it may make under one cannot hold the DNS path for long.
	Findings   finding.Sink
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
	Written  uint64 // committed to the database
	Failed   uint64 // lost in a batch the database refused
	Purged   uint64 // rows removed by retention
	// OverBudget are routine lookups not stored because their client went
	// over its budget for the minute (they were still published).
	OverBudget uint64
}

// Log is a dnsguard.Recorder backed by the database. Record is safe for
// concurrent use; Run must be running for records to reach the database.
type Log struct {
	opts Options
	log  *slog.Logger
	w    *batch.Writer[store.DNSQuery]

	bud *clientbudget.Budget[netip.Addr]

	recorded, purged, overBudget atomic.Uint64
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
	l := &Log{opts: opts, log: logger.With("component", "querylog"), bud: clientbudget.New[netip.Addr](opts.ClientBudget, 0, opts.ClientTable)}
	var err error
	l.w, err = batch.New(batch.Options[store.DNSQuery]{
		Name:  "dns query log",
		Write: opts.Sink.InsertDNSQueries,
		Purge: l.purge,
		Queue: opts.Queue, Size: opts.BatchSize, FlushEvery: opts.FlushEvery, PurgeEvery: opts.PurgeEvery,
		WriteTimeout: writeTimeout,
		Logger:       l.log,
	})
	if err != nil {
		return nil, fmt.Errorf("querylog: %w", err)
	}
	return l, nil
}

// Event is a lookup as the hub carries it.
func Event(q dnsguard.Query) events.DNSQuery {
	return events.DNSQuery{Time: q.Time, Client: q.Client, MAC: q.MAC, Segment: q.Segment, Name: q.Name,
		Type: q.Type, Answer: q.Answer, Action: string(q.Action)}
}

// BlockedFinding is the finding for a lookup the guard refused as a listed
// DoH or VPN service.
func BlockedFinding(q dnsguard.Query) finding.Finding {
	return finding.Finding{Time: q.Time, Source: finding.SourceDNSGuard, Class: finding.ClassBlockedLookup, Segment: q.Segment,
		SrcIP: q.Client, SrcMAC: q.MAC, Proto: "dns", Detail: q.Name,
		Evidence: fmt.Sprintf("asked the school's DNS for %s (%s); refused as a listed bypass service", q.Name, q.Type)}
}

// Record queues q for the database and publishes it; it never blocks.
func (l *Log) Record(q dnsguard.Query) {
	l.recorded.Add(1)
	events.Publish(l.opts.Events, Event(q))
	if q.Action == dnsguard.Blocked && l.opts.Findings != nil {
		l.opts.Findings.Offer(BlockedFinding(q))
	}
	// Each client's first and unusual lookups are stored; a flood of
	// routine ones past the budget is counted and logged, not stored, so it
	// cannot push the rest out of what the DSL sees.
	keep, firstOver := true, false
	if routine(q) {
		// The minute a lookup counts against is the one it was asked in
		// (the guard stamps every Query): the hit log hands lookups on
		// milliseconds after they were answered, and reading the clock
		// again here was a quarter of Record's CPU (BenchmarkRecord).
		at := q.Time
		if at.IsZero() {
			at = l.opts.Now()
		}
		keep, firstOver = l.bud.Allow(q.Client, "", at)
	}
	if !keep {
		l.overBudget.Add(1)
		if firstOver {
			l.log.Warn("querylog: a client went over its lookup budget; its routine lookups are not stored for the rest of the minute",
				"client", q.Client, "mac", q.MAC, "segment", q.Segment, "budget_per_minute", l.opts.ClientBudget)
		}
		return
	}
	l.w.Offer(toRow(q))
}

// Stats returns the counters so far.
func (l *Log) Stats() Stats {
	w := l.w.Stats()
	return Stats{Recorded: l.recorded.Load(), Dropped: w.Dropped, Written: w.Written, Failed: w.Failed, Purged: l.purged.Load(),
		OverBudget: l.overBudget.Load()}
}

// writeTimeout bounds one batch's write. Writes are detached from Run's
// context, so that records already taken off the queue when the daemon stops
// are still written rather than lost to a cancelled transaction.
const writeTimeout = 10 * time.Second

// Run writes queued records and purges old ones until ctx ends, then writes
// what is still queued and returns nil. Database errors are logged and
// counted, not fatal: the DNS guard keeps answering meanwhile.
func (l *Log) Run(ctx context.Context) error { return l.w.Run(ctx) }

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
