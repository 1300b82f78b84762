package querylog

import (
	"net/netip"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
)

// Defaults of the per-client budget.
const (
	// DefaultClientBudget is how many routine lookups (forwarded or cached)
	// of one client are stored per minute. A person browsing makes far
	// fewer; a flood meant to push real lookups out of what the DSL sees
	// makes far more.
	DefaultClientBudget = 300
	// DefaultClientTable bounds the clients the budget tracks.
	DefaultClientTable = 8192
)

// budget keeps the first and the unusual of each client's lookups: the first
// ClientBudget routine ones a minute, and every one the guard did something
// about (blocked, SafeSearch, refused before admission, failed). What is left
// out is counted, never silently lost.
type budget struct {
	mu      sync.Mutex
	limit   int
	max     int
	clients map[netip.Addr]*clientMinute
}

type clientMinute struct {
	start  time.Time
	n      int
	warned bool // the over-budget log line for this minute was written
}

func newBudget(limit, max int) *budget {
	return &budget{limit: limit, max: max, clients: map[netip.Addr]*clientMinute{}}
}

// routine reports whether the guard just answered q, as for any name.
func routine(q dnsguard.Query) bool {
	return q.Action == dnsguard.Forwarded || q.Action == dnsguard.Cached
}

// keep reports whether q is stored, and whether this is the client's first
// lookup left out this minute (to log once).
func (b *budget) keep(q dnsguard.Query, now time.Time) (keep, firstOver bool) {
	if !routine(q) {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.clients[q.Client]
	if c == nil {
		if len(b.clients) >= b.max {
			b.evict(now)
		}
		c = &clientMinute{start: now}
		b.clients[q.Client] = c
	}
	if now.Sub(c.start) >= time.Minute || now.Before(c.start) {
		c.start, c.n, c.warned = now, 0, false
	}
	if c.n < b.limit {
		c.n++
		return true, false
	}
	first := !c.warned
	c.warned = true
	return false, first
}

// evict drops clients whose minute is over, or else the oldest.
func (b *budget) evict(now time.Time) {
	var oldest netip.Addr
	var oldestAt time.Time
	for a, c := range b.clients {
		if now.Sub(c.start) >= time.Minute {
			delete(b.clients, a)
			continue
		}
		if oldestAt.IsZero() || c.start.Before(oldestAt) {
			oldest, oldestAt = a, c.start
		}
	}
	if len(b.clients) >= b.max {
		delete(b.clients, oldest)
	}
}

func (b *budget) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.clients)
}
