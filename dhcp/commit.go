package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
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
	// bindErr is the outcome of bind (nil without one). The binding is
	// made whether or not the batch commits: with err set and bindErr
	// nil, the callback must take it back.
	then func(err, bindErr error)
	// bind, with then, is the kernel binding the ACK waits for: the
	// binder goroutine binds a whole batch's leases in one call
	// (Binder.BindMany) while the batch commits, and the finisher runs
	// the batch's callbacks once both are done.
	bind *policy.Binding
	at   time.Time // when it was queued
}

// committer groups the writes of concurrent exchanges into one transaction:
// while one batch commits, the next fills up, so an fsync is shared by every
// ACK waiting on it and throughput does not fall to one commit per lease.
//
// A batch closes by size or by age: when it holds maxBatch writes, or when
// nothing more is queued and its oldest write has waited maxAge (zero by
// default, see commitMaxAge: what queued during the last commit is the
// batch).
type committer struct {
	store    LeaseStore
	reqs     chan commitReq
	maxBatch int
	maxAge   time.Duration
	timeout  time.Duration
	m        *Metrics
	pending  []commitReq // reused between batches
	// leases, devs and devIdx are the batch's writes, reused between
	// batches (only run's goroutine touches them): a Lease and a Device
	// are a few hundred bytes each, and growing fresh slices for every
	// batch was a quarter of the bytes an exchange allocated. SaveBatch
	// does not keep them (LeaseStore).
	leases []Lease
	devs   []Device
	devIdx map[string]int // devs' index by MAC bytes
	// finished carries each batch's then callbacks and outcome to the
	// finisher, so that what follows a commit (the kernel binding, the
	// reply) does not hold up the next batch.
	finished chan finished
	// binder, when set, binds each batch's leases (nil: no bindings, as
	// without a Config.Binder), on a goroutine of its own fed by binds.
	binder Binder
	binds  chan bindJob
	// flush, when set, runs after each batch's callbacks: the replies
	// they queued go out together (see sender.flush).
	flush func()
	log   *slog.Logger
	t     *Timings
}

// bindJob is one batch's bindings for the binder goroutine; done gets
// one outcome per binding (see bindAll).
type bindJob struct {
	binds []*policy.Binding
	done  chan []error
}

// finished is one batch's callbacks, the bindings they wait for (binds[i]
// is then[i]'s, or nil) and the batch's outcome.
type finished struct {
	then  []func(err, bindErr error)
	binds []*policy.Binding
	err   error
	// bound, when the batch had bindings, delivers their outcomes from
	// the binder goroutine.
	bound chan []error
	// queued is when each callback's writes were queued, committed when
	// the batch's commit ended (Timings).
	queued    []time.Time
	committed time.Time
}

// errBindPanicked marks a binding whose Bind panicked: its callback is
// dropped, as a callback that panics itself is.
var errBindPanicked = errors.New("dhcp: binding panicked")

// Group commit bounds: at most commitMaxBatch writes in a transaction, and
// a write waits at most commitMaxAge for others to share its fsync.
//
// commitMaxAge is zero: a batch takes what queued while the previous one
// committed and commits at once (the group commit of PostgreSQL's default,
// commit_delay 0). Sharing comes from the commit itself: writes queue for
// as long as one takes, so batches grow with the load. A wait on top of
// that added its own length to nearly every ACK and bought little: at
// 3,000 exchanges/s (bench/dhcp.sh, Timings) a 1 ms wait put the median
// ACK's time in the committer's queue at 0.77 ms against 0.32 ms without,
// for batches of 8-10 writes against 4-6.
const (
	commitMaxBatch = 512
	commitMaxAge   = 0
)

func newCommitter(st LeaseStore, b Binder, m *Metrics, t *Timings, log *slog.Logger) *committer {
	return &committer{store: st, reqs: make(chan commitReq, 4096), maxBatch: commitMaxBatch, maxAge: commitMaxAge, timeout: 10 * time.Second, m: m,
		finished: make(chan finished, 64), binds: make(chan bindJob, 64), binder: b, log: log, t: t}
}

// panicked counts and logs a panic the finisher recovered from, as
// handleSafely does for one in a packet's handler: the ACK it was
// finishing is dropped.
func (c *committer) panicked(where string, v any) {
	c.m.inc(&c.m.Panics)
	c.log.Error("dhcp: handler panic, ACK dropped", "in", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
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
// once the batch holding them is committed (or failed) and, when bind is
// set and the batch committed, with the outcome of binding it in the
// kernel. It returns an error, and then is never called, when ctx ends
// before the writes could be queued.
func (c *committer) commitThen(ctx context.Context, leases []Lease, devices []Device, bind *policy.Binding, then func(err, bindErr error)) error {
	select {
	case c.reqs <- commitReq{leases: leases, devices: devices, then: then, bind: bind, at: time.Now()}:
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
		c.finish(ctx)
	}()
	bound := make(chan struct{})
	go func() {
		defer close(bound)
		for j := range c.binds {
			j.done <- c.bindAll(ctx, j.binds)
		}
	}()
	defer func() {
		close(c.binds)
		<-bound
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
	if c.devIdx == nil {
		c.devIdx = map[string]int{}
	}
	leases, devs, devices := c.leases[:0], c.devs[:0], c.devIdx
	defer func() {
		clear(reqs)
		c.pending = reqs[:0]
		// Nothing of this batch stays reachable from the scratch space.
		clear(leases)
		clear(devs)
		clear(devices)
		c.leases, c.devs = leases[:0], devs[:0]
	}()
	for _, r := range reqs {
		leases = append(leases, r.leases...)
		for _, d := range r.devices {
			if i, ok := devices[string(d.MAC)]; ok {
				first := devs[i].FirstSeen
				devs[i] = d
				if first.Before(d.FirstSeen) {
					devs[i].FirstSeen = first
				}
				continue
			}
			devices[string(d.MAC)] = len(devs)
			devs = append(devs, d)
		}
	}
	// The batch's kernel bindings are made while it commits rather than
	// after: the fsync and the netlink round trip overlap, so an ACK waits
	// for the longer of the two, not their sum, and the finisher is not
	// one binding behind the committer. The ACK still waits for both; a
	// binding whose lease then fails to commit is taken back by its
	// callback once the pool has undone the lease (pendingAck.finish).
	var f finished
	for _, r := range reqs {
		if r.then != nil {
			f.then = append(f.then, r.then)
			f.binds = append(f.binds, r.bind)
			f.queued = append(f.queued, r.at)
			c.t.AckQueue.since(r.at)
		}
	}
	c.t.BatchSize.add(uint64(n))
	if c.binder != nil && slices.ContainsFunc(f.binds, func(b *policy.Binding) bool { return b != nil }) {
		f.bound = make(chan []error, 1)
		c.binds <- bindJob{binds: f.binds, done: f.bound}
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	start := time.Now()
	err := c.store.SaveBatch(tctx, leases, devs)
	f.committed = time.Now()
	c.t.Commit.since(start)
	cancel()
	c.m.inc(&c.m.CommitBatches)
	if err != nil {
		c.m.inc(&c.m.CommitErrors)
		err = fmt.Errorf("dhcp: commit %d leases, %d devices: %w", len(leases), len(devs), err)
	} else {
		c.m.add(&c.m.LeasesCommitted, uint64(len(leases)))
	}
	for _, r := range reqs {
		if r.done != nil {
			r.done <- err
		}
	}
	if f.then != nil {
		f.err = err
		c.finished <- f
	}
}

// finish runs the then callbacks of committed batches, in commit order,
// until run closes finished, each once its batch's bindings are made (the
// binder goroutine binds a batch's leases in one call, so that the kernel
// work of a batch is one transaction rather than one per lease). A
// callback that panics is counted and dropped, as a packet's handler
// would be: the rest still run. After a batch's callbacks, flush sends
// the ACKs they queued.
func (c *committer) finish(ctx context.Context) {
	for f := range c.finished {
		c.t.FinishWait.since(f.committed)
		start := time.Now()
		bindErrs := make([]error, len(f.then))
		if f.bound != nil {
			bindErrs = <-f.bound
		}
		for i, fn := range f.then {
			if bindErrs[i] == errBindPanicked {
				continue
			}
			c.call(fn, f.err, bindErrs[i])
		}
		if c.flush != nil {
			c.flush()
		}
		c.t.Finish.since(start)
		for _, at := range f.queued {
			c.t.AckTotal.since(at)
		}
	}
}

// bindAll binds a batch's leases (binds[i] nil: none for that callback)
// and returns each callback's binding outcome.
func (c *committer) bindAll(ctx context.Context, binds []*policy.Binding) []error {
	errs := make([]error, len(binds))
	var bs []policy.Binding
	var at []int
	for i, b := range binds {
		if b != nil {
			bs = append(bs, *b)
			at = append(at, i)
		}
	}
	if len(bs) == 0 {
		return errs
	}
	got, ok := c.bindMany(ctx, bs)
	if !ok || len(got) != len(bs) {
		// BindMany panicked (or broke its contract): bind each lease on
		// its own, so that one bad lease costs only its own ACK.
		for _, i := range at {
			errs[i] = c.bindOne(ctx, *binds[i])
		}
		return errs
	}
	for j, i := range at {
		errs[i] = got[j]
	}
	return errs
}

func (c *committer) bindMany(ctx context.Context, bs []policy.Binding) (errs []error, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.panicked("binding a batch", v)
			ok = false
		}
	}()
	return c.binder.BindMany(ctx, bs), true
}

func (c *committer) bindOne(ctx context.Context, b policy.Binding) (err error) {
	defer func() {
		if v := recover(); v != nil {
			c.panicked("binding "+b.Device.String(), v)
			err = errBindPanicked
		}
	}()
	return c.binder.Bind(ctx, b.Device, b.Until)
}

func (c *committer) call(fn func(err, bindErr error), err, bindErr error) {
	defer func() {
		if v := recover(); v != nil {
			c.panicked("finishing an ACK", v)
		}
	}()
	fn(err, bindErr)
}
