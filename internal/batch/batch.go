// Package batch is the writer several components share between a hot path
// and the database: a bounded queue that never blocks its producers, writes
// of up to Size items at a time (one transaction each, by the caller's
// Write) as soon as a batch is full or FlushEvery has passed, a purge on an
// interval, and a last write of whatever is queued when its owner stops it.
//
// It owns the queue, the timers and the counters. It knows nothing of what
// it carries or where it goes: the caller's Write and Purge do that (the DNS
// query log, the findings store), so it imports no Gatehouse package.
package batch

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// Defaults of the zero Options fields.
const (
	DefaultQueue         = 4096
	DefaultSize          = 512
	DefaultFlushEvery    = time.Second
	DefaultPurgeEvery    = time.Hour
	DefaultWriteTimeout  = 10 * time.Second
	DefaultShutdownGrace = 5 * time.Second
)

// Options configure a Writer. Write is required.
type Options[T any] struct {
	// Name says what is written, in log lines ("dns query log").
	Name string
	// Write stores one batch, in one transaction. The slice is reused once
	// Write returns: Write must not keep it. An error is logged and the
	// batch counted as failed; the writer goes on.
	Write func(ctx context.Context, items []T) error
	// Purge, when set, removes what is past retention; it runs when Run
	// starts and then every PurgeEvery, with Run's context, and does its own
	// logging.
	Purge func(ctx context.Context)

	Queue      int           // items waiting to be written; DefaultQueue
	Size       int           // items per Write at most; DefaultSize
	FlushEvery time.Duration // a partial batch waits at most this long; DefaultFlushEvery
	PurgeEvery time.Duration // DefaultPurgeEvery
	// WriteTimeout bounds one Write. Writes are detached from Run's
	// context, so that items already taken off the queue when the daemon
	// stops are still written rather than lost to a cancelled transaction.
	WriteTimeout time.Duration
	// ShutdownGrace bounds the last writes after Run's context ends, so
	// that a broken database does not hold the shutdown up.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
}

// Stats are a writer's counters.
type Stats struct {
	Dropped uint64 // refused by Offer because the queue was full
	Written uint64 // in batches Write committed
	Failed  uint64 // in batches Write refused
}

// Writer queues items and writes them in batches while Run runs. Offer is
// safe for concurrent use.
type Writer[T any] struct {
	opts Options[T]
	log  *slog.Logger
	q    chan T

	dropped, written, failed atomic.Uint64
}

// New checks opts and returns a Writer; nothing is written until Run.
func New[T any](opts Options[T]) (*Writer[T], error) {
	if opts.Write == nil {
		return nil, errors.New("batch: new: Options.Write is nil")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.Queue, DefaultQueue)
	def(&opts.Size, DefaultSize)
	defDur(&opts.FlushEvery, DefaultFlushEvery)
	defDur(&opts.PurgeEvery, DefaultPurgeEvery)
	defDur(&opts.WriteTimeout, DefaultWriteTimeout)
	defDur(&opts.ShutdownGrace, DefaultShutdownGrace)
	if opts.Name == "" {
		opts.Name = "batch"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Writer[T]{opts: opts, log: log, q: make(chan T, opts.Queue)}, nil
}

// Offer queues item without blocking; when the queue is full it drops the
// item, counts it and returns false.
func (w *Writer[T]) Offer(item T) bool {
	select {
	case w.q <- item:
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

// TryOffer queues item without blocking and reports whether it was
// queued. Unlike Offer a full queue is not counted as a drop: the caller
// keeps the item and takes it another way (findingstore writes it at once).
func (w *Writer[T]) TryOffer(item T) bool {
	select {
	case w.q <- item:
		return true
	default:
		return false
	}
}

// Stats returns the counters so far.
func (w *Writer[T]) Stats() Stats {
	return Stats{Dropped: w.dropped.Load(), Written: w.written.Load(), Failed: w.failed.Load()}
}

// Run writes queued items and purges until ctx ends, then writes what is
// still queued (within ShutdownGrace) and returns nil. Write errors are
// logged and counted, never fatal: the producers keep going meanwhile.
func (w *Writer[T]) Run(ctx context.Context) error {
	flush := time.NewTicker(w.opts.FlushEvery)
	defer flush.Stop()
	purge := time.NewTicker(w.opts.PurgeEvery)
	defer purge.Stop()
	w.purge(ctx)

	// Writes are detached from ctx (see WriteTimeout), until ShutdownGrace
	// after ctx ends: then a write still running, or still to come, gives up.
	writes, stopWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWrites()
	stopWatch := context.AfterFunc(ctx, func() { time.AfterFunc(w.opts.ShutdownGrace, stopWrites) })
	defer stopWatch()
	batch := make([]T, 0, w.opts.Size)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case item := <-w.q:
					if batch = append(batch, item); len(batch) == w.opts.Size {
						batch = w.write(writes, batch)
					}
				default:
					w.write(writes, batch)
					return nil
				}
			}
		case item := <-w.q:
			if batch = append(batch, item); len(batch) == w.opts.Size {
				batch = w.write(writes, batch)
			}
		case <-flush.C:
			batch = w.write(writes, batch)
		case <-purge.C:
			w.purge(ctx)
		}
	}
}

func (w *Writer[T]) purge(ctx context.Context) {
	if w.opts.Purge != nil {
		w.opts.Purge(ctx)
	}
}

// write hands batch to Write and returns it emptied for reuse.
func (w *Writer[T]) write(ctx context.Context, batch []T) []T {
	if len(batch) == 0 {
		return batch
	}
	wctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
	defer cancel()
	if err := w.opts.Write(wctx, batch); err != nil {
		w.failed.Add(uint64(len(batch)))
		w.log.Error("write "+w.opts.Name, "count", len(batch), "err", err)
	} else {
		w.written.Add(uint64(len(batch)))
	}
	clear(batch) // drop references to what was written
	return batch[:0]
}
