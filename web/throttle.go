package web

import (
	"net/netip"
	"sync"
	"time"
)

// ipThrottle counts failed logins for unknown user names per client address
// and blocks an address that reaches limit failures within window, for
// window. Known names are throttled by the account lock in the store; this
// covers guessing names, which has no account to lock.
//
// It lives in memory and is bounded: at capacity, expired records are
// dropped first, then the one whose block or window ends soonest.
type ipThrottle struct {
	limit    int
	window   time.Duration
	capacity int

	mu   sync.Mutex
	recs map[netip.Addr]*ipRecord
}

type ipRecord struct {
	failures     int
	first        time.Time // start of the counting window
	blockedUntil time.Time
}

func newIPThrottle(limit int, window time.Duration, capacity int) *ipThrottle {
	return &ipThrottle{limit: limit, window: window, capacity: capacity, recs: map[netip.Addr]*ipRecord{}}
}

// throttleKey groups IPv6 clients by /64: one host usually holds a whole
// /64 and could otherwise rotate addresses to dodge the count.
func throttleKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// end is when r stops mattering.
func (r *ipRecord) end(window time.Duration) time.Time {
	e := r.first.Add(window)
	if r.blockedUntil.After(e) {
		return r.blockedUntil
	}
	return e
}

func (t *ipThrottle) blocked(ip netip.Addr, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.recs[throttleKey(ip)]
	return ok && now.Before(r.blockedUntil)
}

func (t *ipThrottle) fail(ip netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := throttleKey(ip)
	r, ok := t.recs[k]
	if ok && !now.Before(r.end(t.window)) {
		ok = false
	}
	if !ok {
		if _, exists := t.recs[k]; !exists && len(t.recs) >= t.capacity {
			t.evict(now)
		}
		r = &ipRecord{first: now}
		t.recs[k] = r
	}
	r.failures++
	if r.failures >= t.limit {
		r.blockedUntil = now.Add(t.window)
	}
}

// evict makes room for one record. Called with mu held.
func (t *ipThrottle) evict(now time.Time) {
	var (
		victim    netip.Addr
		victimEnd time.Time
		found     bool
	)
	for k, r := range t.recs {
		end := r.end(t.window)
		if !now.Before(end) {
			delete(t.recs, k)
			continue
		}
		if !found || end.Before(victimEnd) {
			victim, victimEnd, found = k, end, true
		}
	}
	if len(t.recs) >= t.capacity && found {
		delete(t.recs, victim)
	}
}

func (t *ipThrottle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recs)
}
