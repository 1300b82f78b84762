package policy

import (
	"fmt"
	"sync"
)

// Admissions that arrive together share one nftables transaction. At a
// morning rush a hundred visitors sign in within the same few
// milliseconds; each admission on its own is a netlink round trip (a
// batch sent, an acknowledgement per message read) taken under the
// enforcer's lock, so they queued for the lock one after another. Now an
// admission records its desired state under the lock as before, queues
// its element operations and waits; one goroutine sends everything queued
// as one transaction, without holding the lock while the kernel works, so
// the next admissions queue meanwhile. The caller still returns only once
// the kernel holds its element (or with the error the kernel gave it).
//
// Order is kept: every other kernel change (an eviction, a rebuild, a
// check) first waits for the transaction in flight and sends whatever
// admissions are still queued (drainLocked), so an eviction can never be
// overtaken by the admission it undoes. Only plain admissions are queued
// this way: one that moves a device from another address, or that brings
// a data quota (an object and a chain of its own), goes the old way.
//
// The queue carries element operations of any plain set change, not only
// admissions: BindMany (bind.go) queues a DHCP group commit's lease
// bindings here too, one entry per pair, with the same promises.

// admitQueueMax bounds the admissions one transaction carries.
const admitQueueMax = 256

type pendingAdmit struct {
	what string
	// bind, when what is empty, names the entry "bind DEVICE": BindMany
	// queues one entry a lease, and formatting every lease's name up
	// front, for an error that hardly ever comes, was a third of the
	// bytes a binding allocated.
	bind Device
	ops  []op // already recorded in the desired state
	one  [1]op
	err  error
	done chan struct{} // closed when err is set
}

// name is what the entry does, for its error.
func (p *pendingAdmit) name() string {
	if p.what == "" {
		return "bind " + p.bind.String()
	}
	return p.what
}

type admitBatcher struct {
	// nl is held while a transaction of queued admissions is in flight,
	// without e.mu: whoever holds e.mu and wants to talk to the kernel
	// waits for it first (drainLocked). Order: e.mu, then nl.
	nl      sync.Mutex
	pending []*pendingAdmit // guarded by e.mu
	// ops is sendAdmitsNL's storage for a transaction's ops, kept
	// between transactions (guarded by nl).
	ops     []op
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	started bool // guarded by e.mu
	closed  bool // guarded by e.mu
}

// queueAdmitLocked queues ops (recorded in the desired state already) for
// the next transaction and returns what to wait on. It returns nil when
// the batcher is closed: the caller sends the ops itself.
func (e *Enforcer) queueAdmitLocked(what string, ops []op) *pendingAdmit {
	p := e.newAdmitLocked()
	if p == nil {
		return nil
	}
	p.what, p.ops = what, ops
	return p
}

// queueBindLocked is queueAdmitLocked for one binding's op (recorded
// already), named after d, the op kept in the entry itself.
func (e *Enforcer) queueBindLocked(d Device, o op) *pendingAdmit {
	p := e.newAdmitLocked()
	if p == nil {
		return nil
	}
	p.bind, p.one[0] = d, o
	p.ops = p.one[:]
	return p
}

// newAdmitLocked queues an entry whose ops the caller sets before it
// lets go of e.mu (the batcher takes entries under it); nil when the
// batcher is closed.
func (e *Enforcer) newAdmitLocked() *pendingAdmit {
	b := &e.admits
	if b.closed {
		return nil
	}
	if !b.started {
		b.started = true
		b.kick, b.stop, b.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go e.sendAdmits()
	}
	p := &pendingAdmit{done: make(chan struct{})}
	b.pending = append(b.pending, p)
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return p
}

// sendAdmits is the goroutine that sends queued admissions; Close stops it.
func (e *Enforcer) sendAdmits() {
	b := &e.admits
	defer close(b.done)
	for {
		select {
		case <-b.stop:
			return
		case <-b.kick:
		}
		for e.sendAdmitBatch() {
		}
	}
}

// sendAdmitBatch sends up to admitQueueMax queued admissions in one
// transaction and reports whether more are queued.
func (e *Enforcer) sendAdmitBatch() bool {
	b := &e.admits
	e.mu.Lock()
	n := min(len(b.pending), admitQueueMax)
	if n == 0 {
		e.mu.Unlock()
		return false
	}
	batch := b.pending[:n:n]
	b.pending = append([]*pendingAdmit(nil), b.pending[n:]...)
	more := len(b.pending) > 0
	b.nl.Lock()
	e.mu.Unlock()
	// e.rs and e.cc stay put without e.mu: whoever would change them
	// holds e.mu and waits for nl first (drainLocked).
	e.sendAdmitsNL(batch)
	b.nl.Unlock()
	return more
}

// sendAdmitsNL sends batch as one transaction and answers each admission.
// The caller holds nl.
func (e *Enforcer) sendAdmitsNL(batch []*pendingAdmit) {
	now := e.now()
	send := func(ps []*pendingAdmit) error {
		// One sendOps for the whole transaction, so that the new
		// elements of every entry share one message per set.
		ops := ps[0].ops
		if len(ps) > 1 {
			ops = e.admits.ops[:0]
			for _, p := range ps {
				ops = append(ops, p.ops...)
			}
			defer func() {
				clear(ops)
				if cap(ops) <= admitQueueMax {
					e.admits.ops = ops[:0]
				}
			}()
		}
		return e.sendOps(ops, now)
	}
	err := send(batch)
	for _, p := range batch {
		p.err = err
		if err != nil && len(batch) > 1 {
			// The kernel takes a transaction whole or not at all:
			// find out whose admission it refused by sending each on
			// its own.
			p.err = send([]*pendingAdmit{p})
		}
		if p.err != nil {
			p.err = fmt.Errorf("policy: %s: %w", p.name(), p.err)
		}
		close(p.done)
	}
}

// drainLocked makes the kernel current with every admission queued so
// far, for a caller holding e.mu that is about to change or read the
// kernel's table (or e.rs): it waits for the transaction in flight, then
// sends what is still queued itself.
func (e *Enforcer) drainLocked() {
	b := &e.admits
	b.nl.Lock()
	defer b.nl.Unlock()
	if len(b.pending) == 0 {
		return
	}
	batch := b.pending
	b.pending = nil
	e.sendAdmitsNL(batch)
}

// closeAdmits stops the goroutine after the admissions queued so far are
// sent; later admissions send their own.
func (e *Enforcer) closeAdmits() {
	b := &e.admits
	e.mu.Lock()
	if b.closed {
		e.mu.Unlock()
		return
	}
	b.closed = true
	started := b.started
	e.drainLocked()
	e.mu.Unlock()
	if started {
		close(b.stop)
		<-b.done
	}
}
