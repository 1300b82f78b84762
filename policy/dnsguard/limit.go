package dnsguard

import (
	"net/netip"
	"sync"
	"time"
)

// Defaults of the per-client query limit.
const (
	// DefaultClientQPS is each client's sustained query rate; twice as many
	// pass in a burst. A browser opening a busy page asks for tens of names
	// at once, then little; a flood meant to push real lookups out of the
	// log, or a DNS tunnel, asks for far more.
	DefaultClientQPS = 50
	// DefaultClientTable bounds the clients the limiter tracks.
	DefaultClientTable = 8192
)

// clientLimiter is a token bucket per client address in a bounded table.
// When the table is full, buckets idle long enough to be full again are
// dropped; if none is, the least recently used one goes (a full bucket is
// what a new client starts with, so forgetting one costs nothing).
type clientLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	max     int
	clients map[netip.Addr]*clientBucket
}

type clientBucket struct {
	tokens float64
	last   time.Time
}

func newClientLimiter(qps, max int) *clientLimiter {
	return &clientLimiter{rate: float64(qps), burst: float64(2 * qps), max: max, clients: map[netip.Addr]*clientBucket{}}
}

// allow spends one of client's tokens; false when it has none.
func (l *clientLimiter) allow(client netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[client]
	if b == nil {
		if len(l.clients) >= l.max {
			l.evict(now)
		}
		b = &clientBucket{tokens: l.burst, last: now}
		l.clients[client] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evict makes room: every bucket that has refilled completely goes, or the
// least recently used one.
func (l *clientLimiter) evict(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	var oldest netip.Addr
	var oldestAt time.Time
	for a, b := range l.clients {
		if now.Sub(b.last) >= full {
			delete(l.clients, a)
			continue
		}
		if oldestAt.IsZero() || b.last.Before(oldestAt) {
			oldest, oldestAt = a, b.last
		}
	}
	if len(l.clients) >= l.max {
		delete(l.clients, oldest)
	}
}

func (l *clientLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
