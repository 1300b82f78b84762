package dhcp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errStopped is returned to writers still waiting when the committer stops.
var errStopped = errors.New("dhcp: committer stopped")

// commitReq is one handler's writes. done is nil for writes nobody waits
// for (device sightings, releases); otherwise it receives the batch's
// outcome exactly once.
type commitReq struct {
	leases  []Lease
	devices []Device
	done    chan error
	// then, instead of done, is called with the batch's outcome by the
	// finisher goroutine (see run): an ACK that waits without a goroutine.
	then func(error)
	at   time.Time // when it was queued
}

// committer groups the writes of concurrent exchanges into one transaction:
// while one batch commits, the next fills up, so an fsync is shared by every
// ACK waiting on it and throughput does not fall to one commit per lease.
//
// A batch closes by size or by age: when it holds maxBatch writes, or when
// nothing more is queued and its oldest write has waited maxAge. Until
// then a short batch waits for the ACKs about to join it: at a few thousand
// exchanges a second, another arrives every fraction of a millisecond, and
// each that joins saves an fsync.
type committer struct {
	store    LeaseStore
	reqs     chan commitReq
	maxBatch int
	maxAge   time.Duration
	timeout  time.Duration
	m        *Metrics
	pending  []commitReq // reused between batches
	// finished carries each batch's then callbacks and outcome to the
	// finisher, so that what follows a commit (the kernel binding, the
	// reply) does not hold up the next batch.
	finished chan finished
}

// finished is one batch's callbacks and its outcome.
type finished struct {
	then []func(error)
	err  error
}

// Group commit bounds: at most commitMaxBatch writes in a transaction, and
// a write waits at most commitMaxAge for others to share its fsync (an
// fsync here takes 1-10 ms, so this adds little to an ACK's wait).
const (
	commitMaxBatch = 512
	commitMaxAge   = time.Millisecond
)

func newCommitter(st LeaseStore, m *Metrics) *committer {
	return &committer{store: st, reqs: make(chan commitReq, 4096), maxBatch: commitMaxBatch, maxAge: commitMaxAge, timeout: 10 * time.Second, m: m,
		finished: make(chan finished, 64)}
}

// commit queues writes and waits until they are durable.
func (c *committer) commit(ctx context.Context, leases []Lease, devices []Device) error {
	done := make(chan error, 1)
	select {
	case c.reqs <- commitReq{leases: leases, devices: devices, done: done, at: time.Now()}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitThen queues writes and returns; then is called with their outcome
// once the batch holding them is committed (or failed). It returns an
// error, and then is never called, when ctx ends before the writes could
// be queued.
func (c *committer) commitThen(ctx context.Context, leases []Lease, devices []Device, then func(error)) error {
	select {
	case c.reqs <- commitReq{leases: leases, devices: devices, then: then, at: time.Now()}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// record queues writes nobody waits for. When the queue is full the write
// is dropped and counted rather than stalling the packet path.
func (c *committer) record(leases []Lease, devices []Device) {
	select {
	case c.reqs <- commitReq{leases: leases, devices: devices, at: time.Now()}:
	default:
		c.m.inc(&c.m.RecordsDropped)
	}
}

// run commits batches until stop is closed, then commits what is queued and
// returns. ctx bounds each transaction, not the loop: the owner closes stop
// only after every handler has returned, so nothing is lost on shutdown.
func (c *committer) run(ctx context.Context, stop <-chan struct{}) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.finish()
	}()
	defer func() {
		close(c.finished)
		<-done
	}()
	for {
		select {
		case r := <-c.reqs:
			c.batch(ctx, r)
		case <-stop:
			for {
				select {
				case r := <-c.reqs:
					c.batch(ctx, r)
				default:
					return
				}
			}
		}
	}
}

func (c *committer) batch(ctx context.Context, first commitReq) {
	reqs := append(c.pending[:0], first)
	n := len(first.leases) + len(first.devices)
	var timer *time.Timer
fill:
	for n < c.maxBatch {
		select {
		case r := <-c.reqs:
			reqs = append(reqs, r)
			n += len(r.leases) + len(r.devices)
			continue
		default:
		}
		// Nothing queued: wait for more while the oldest write is young.
		wait := c.maxAge - time.Since(first.at)
		if wait <= 0 || first.done == nil && first.then == nil && len(reqs) == 1 {
			break
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case r := <-c.reqs:
			reqs = append(reqs, r)
			n += len(r.leases) + len(r.devices)
		case <-timer.C:
			break fill
		}
	}
	defer func() {
		clear(reqs)
		c.pending = reqs[:0]
	}()
	var leases []Lease
	devices := map[string]int{}
	var devs []Device
	for _, r := range reqs {
		leases = append(leases, r.leases...)
		for _, d := range r.devices {
			k := d.MAC.String()
			if i, ok := devices[k]; ok {
				first := devs[i].FirstSeen
				devs[i] = d
				if first.Before(d.FirstSeen) {
					devs[i].FirstSeen = first
				}
				continue
			}
			devices[k] = len(devs)
			devs = append(devs, d)
		}
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	err := c.store.SaveBatch(tctx, leases, devs)
	cancel()
	c.m.inc(&c.m.CommitBatches)
	if err != nil {
		c.m.inc(&c.m.CommitErrors)
		err = fmt.Errorf("dhcp: commit %d leases, %d devices: %w", len(leases), len(devs), err)
	} else {
		c.m.add(&c.m.LeasesCommitted, uint64(len(leases)))
	}
	var then []func(error)
	for _, r := range reqs {
		if r.done != nil {
			r.done <- err
		}
		if r.then != nil {
			then = append(then, r.then)
		}
	}
	if then != nil {
		c.finished <- finished{then: then, err: err}
	}
}

// finish runs the then callbacks of committed batches, in commit order,
// until run closes finished. A callback that panics is counted and
// dropped, as a packet's handler would be: the rest still run.
func (c *committer) finish() {
	for f := range c.finished {
		for _, fn := range f.then {
			c.call(fn, f.err)
		}
	}
}

func (c *committer) call(fn func(error), err error) {
	defer func() {
		if v := recover(); v != nil {
			c.m.inc(&c.m.Panics)
		}
	}()
	fn(err)
}
