// Package clientbudget is the per-device budget of records a minute that
// the finding store, the flow log and the DNS query log apply before they
// queue a write: a
// device doing something a detector notices produces a handful of records;
// a flood of crafted packets meant to bury the real ones (or fill the disk)
// produces thousands, and only the first of them are worth keeping.
//
// It owns the counting only: which device a record belongs to, what counts
// as a kind and what happens to a record left out are its callers'. Both
// of its tables are bounded (devices tracked, and kinds per device and
// minute), because the keys come from client packets.
package clientbudget

import (
	"sync"
	"time"
)

// Budget counts records per client and minute; K names a client (a MAC
// or address as text, a netip.Addr). Safe for concurrent use.
type Budget[K comparable] struct {
	mu      sync.Mutex
	limit   int
	kinds   int
	max     int
	clients map[K]*minute
}

type minute struct {
	start  time.Time
	n      int
	seen   map[string]bool // nil while the budget tracks no kinds
	warned bool            // the first record over the limit this minute was reported
}

// New returns a budget that keeps limit records of a client a minute,
// remembers up to kinds distinct kinds per client and minute (0: none, so
// nothing over the limit is kept for being unusual), and tracks at most
// clients clients (at least 1).
func New[K comparable](limit, kinds, clients int) *Budget[K] {
	return &Budget[K]{limit: limit, kinds: max(kinds, 0), max: max(clients, 1), clients: map[K]*minute{}}
}

// Allow counts one record of client at now and reports whether it is kept:
// one of the client's first limit this minute, or the first of a kind the
// client has not had this minute while fewer than the bound of kinds are
// remembered ("" is no kind). firstOver is true for the first record left
// out in the client's minute, so a caller logs once rather than per record.
// A record about no client (the zero K) is always kept and not counted.
func (b *Budget[K]) Allow(client K, kind string, now time.Time) (keep, firstOver bool) {
	var none K
	if client == none {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.current(client, now)
	novel := false
	if kind != "" && b.kinds > 0 && !c.seen[kind] && len(c.seen) < b.kinds {
		c.seen[kind] = true
		novel = true
	}
	if c.n < b.limit || novel {
		c.n++
		return true, false
	}
	first := !c.warned
	c.warned = true
	return false, first
}

// Count counts one record of client at now that its caller keeps whatever
// the budget (the flow a finding came from), so that it still uses up the
// client's minute.
func (b *Budget[K]) Count(client K, now time.Time) {
	var none K
	if client == none {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.current(client, now).n++
}

// Clients is how many clients the budget tracks now.
func (b *Budget[K]) Clients() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.clients)
}

// current returns client's minute at now, starting a new one when the last
// is over (or the clock went back). b.mu is held.
func (b *Budget[K]) current(client K, now time.Time) *minute {
	c := b.clients[client]
	if c == nil {
		if len(b.clients) >= b.max {
			b.evict(now)
		}
		c = &minute{start: now}
		if b.kinds > 0 {
			c.seen = map[string]bool{}
		}
		b.clients[client] = c
	}
	if now.Sub(c.start) >= time.Minute || now.Before(c.start) {
		c.start, c.n, c.warned = now, 0, false
		clear(c.seen)
	}
	return c
}

// evict forgets clients whose minute is over, or else the oldest. b.mu is
// held.
func (b *Budget[K]) evict(now time.Time) {
	var oldest K
	var oldestAt time.Time
	found := false
	for k, c := range b.clients {
		if now.Sub(c.start) >= time.Minute {
			delete(b.clients, k)
			continue
		}
		if !found || c.start.Before(oldestAt) {
			oldest, oldestAt, found = k, c.start, true
		}
	}
	if len(b.clients) >= b.max && found {
		delete(b.clients, oldest)
	}
}
