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

// flowQueue bounds the cleanups waiting.
const flowQueue = 1024

// flowCleanupTimeout bounds one address's cleanup.
const flowCleanupTimeout = 30 * time.Second

type flowCleaner struct {
	mu      sync.Mutex
	q       chan netip.Addr
	closed  bool
	done    chan struct{}
	pending sync.WaitGroup
}

// killFlowsSoon has the device's conntrack entries deleted after the
// caller returns, or now when the queue is full or closed.
func (e *Enforcer) killFlowsSoon(ctx context.Context, ips ...netip.Addr) error {
	c := &e.cleaner
	var now []netip.Addr
	c.mu.Lock()
	if !c.closed && c.q == nil {
		c.q, c.done = make(chan netip.Addr, flowQueue), make(chan struct{})
		go e.cleanFlows()
	}
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
		case c.q <- ip:
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
	for ip := range c.q {
		ctx, cancel := context.WithTimeout(context.Background(), flowCleanupTimeout)
		if err := e.killFlows(ctx, ip); err != nil {
			e.log.Warn("deleting conntrack entries after the kernel stopped forwarding", "ip", ip, "err", err)
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
	q, done := c.q, c.done
	c.mu.Unlock()
	if q != nil {
		close(q)
		<-done
	}
}
