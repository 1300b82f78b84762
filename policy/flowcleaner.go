package policy

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// The flow cleaner takes the conntrack cleanup of an eviction or a
// revocation off the caller's path. Those take effect in the kernel as
// soon as their nftables transaction commits: the not-admitted and the
// revoked rules come before established traffic is accepted in the forward
// chain, so the next packet of every open connection of the device is
// refused, conntrack entry or not. Deleting the entries afterwards only
// tidies (and frees NAT state); it is what used to make an eviction take
// milliseconds, since the table has to be dumped to find them.
//
// One goroutine does the deleting, from a bounded queue. A full queue
// makes the caller delete its own entries, as before: a flood of
// evictions may slow down, but no cleanup is ever skipped.
//
// The deleting waits flowCleanupDelay after the eviction. Deleting an
// entry while the connection's packets are in flight breaks the refusal:
// the server's reply to the device's last packet, with no entry to undo
// its masquerade, is addressed to the router itself, which resets the
// server, and the device hears nothing until its own TCP retransmits,
// after at least 200 ms (BenchmarkEvictDropsConnection's tail was exactly
// that). With the entry in place the reply reaches the device and the
// router refuses its very next packet with a reset, so both ends learn at
// once. An eviction's cleanup is skipped when the address is admitted
// again by then: the entries are the readmitted device's own.

// flowQueue bounds the cleanups waiting.
const flowQueue = 1024

// flowCleanupTimeout bounds one address's cleanup.
const flowCleanupTimeout = 30 * time.Second

// flowCleanupDelay is how long after an eviction its conntrack entries
// are deleted: longer than a round trip to anywhere on the internet.
const flowCleanupDelay = 2 * time.Second

type flowCleanup struct {
	ip      netip.Addr
	at      time.Time // when it is due
	evicted bool      // skip it if the address is admitted again by then
}

type flowCleaner struct {
	mu      sync.Mutex
	q       chan flowCleanup
	closed  bool
	closing chan struct{} // closed by closeCleaner: no more waiting
	done    chan struct{}
	pending sync.WaitGroup
}

// killFlowsSoon has the device's conntrack entries deleted a little after
// the caller returns (flowCleanupDelay), or now when the queue is full or
// closed. evicted says the addresses lost a portal admission, which a new
// admission gives back before the cleanup is due.
func (e *Enforcer) killFlowsSoon(ctx context.Context, evicted bool, ips ...netip.Addr) error {
	c := &e.cleaner
	var now []netip.Addr
	c.mu.Lock()
	if !c.closed && c.q == nil {
		c.q, c.closing, c.done = make(chan flowCleanup, flowQueue), make(chan struct{}), make(chan struct{})
		go e.cleanFlows()
	}
	due := time.Now().Add(flowCleanupDelay)
	for _, ip := range ips {
		if !ip.IsValid() {
			continue
		}
		if c.closed {
			now = append(now, ip)
			continue
		}
		c.pending.Add(1)
		select {
		case c.q <- flowCleanup{ip: ip, at: due, evicted: evicted}:
		default:
			c.pending.Done()
			now = append(now, ip)
		}
	}
	c.mu.Unlock()
	return e.killFlows(ctx, now...)
}

func (e *Enforcer) cleanFlows() {
	c := &e.cleaner
	defer close(c.done)
	for f := range c.q {
		if wait := time.Until(f.at); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.closing:
			}
			t.Stop()
		}
		if f.evicted && e.Admitted(f.ip, nil) {
			c.pending.Done()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), flowCleanupTimeout)
		if err := e.killFlows(ctx, f.ip); err != nil {
			e.log.Warn("deleting conntrack entries after the kernel stopped forwarding", "ip", f.ip, "err", err)
		}
		cancel()
		c.pending.Done()
	}
}

// waitFlows waits until every cleanup queued so far is done.
func (e *Enforcer) waitFlows() { e.cleaner.pending.Wait() }

// closeCleaner finishes the queued cleanups and stops the goroutine.
func (e *Enforcer) closeCleaner() {
	c := &e.cleaner
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	q, closing, done := c.q, c.closing, c.done
	c.mu.Unlock()
	if q != nil {
		close(closing)
		close(q)
		<-done
	}
}
