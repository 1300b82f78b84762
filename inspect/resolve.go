package inspect

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Resolutions remembers which names each client looked up and which
// addresses the answers gave it. A connection is then judged by the name
// behind its address (a TLS handshake without SNI to an address the client
// was given for a DoH or VPN service's name) and by the absence of one (a
// handshake to an address, or under a server name, that no lookup of the
// client's ever produced: the client has another source of names, or none
// was needed).
//
// The daemon's DNS guard sees every lookup on a segment with forced DNS and
// feeds them in through NoteAnswer; engines also feed it the DNS answers
// they see on the wire. One Resolutions may be shared by several engines.
// It is safe for concurrent use. Memory is bounded: each table keeps two
// generations of at most MaxEntries entries and drops the older generation
// when the newer one fills, so the least recently noted entries go first.
type Resolutions struct {
	keep   time.Duration
	warmup time.Duration

	mu      sync.Mutex
	addrs   genMap[addrKey, resolved]
	names   genMap[nameKey, time.Time]
	clients genMap[netip.Addr, seenSpan]
}

// ResolutionsConfig sizes a Resolutions. Zero values take the defaults.
type ResolutionsConfig struct {
	// MaxEntries bounds each generation of each table. Default 32768:
	// with two generations of addresses, names and clients, about 20 MB
	// at worst.
	MaxEntries int
	// Keep is how long a lookup counts as evidence. Default 1 hour, longer
	// than most answers may be cached by the client.
	Keep time.Duration
	// Warmup is how long a client must have been seen using our resolver
	// before "it never looked this up" is believed. Default 10 minutes, so
	// that connections to addresses cached before Gatehouse (re)started
	// are not mistaken for lookups made elsewhere.
	Warmup time.Duration
}

type addrKey struct{ client, addr netip.Addr }

type nameKey struct {
	client netip.Addr
	name   string
}

type resolved struct {
	name string
	at   time.Time
}

type seenSpan struct{ first, last time.Time }

// NewResolutions returns an empty Resolutions.
func NewResolutions(cfg ResolutionsConfig) *Resolutions {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 32768
	}
	if cfg.Keep <= 0 {
		cfg.Keep = time.Hour
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 10 * time.Minute
	}
	r := &Resolutions{keep: cfg.Keep, warmup: cfg.Warmup}
	r.addrs.init(cfg.MaxEntries)
	r.names.init(cfg.MaxEntries)
	r.clients.init(cfg.MaxEntries)
	return r
}

// Note records that client looked up name at time at and was given addrs
// (none for a failed or blocked lookup, which still shows that the client
// asked).
func (r *Resolutions) Note(client netip.Addr, name string, addrs []netip.Addr, at time.Time) {
	if !client.IsValid() {
		return
	}
	client = client.Unmap()
	name = normName(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	span, ok := r.clients.get(client)
	if !ok || at.Sub(span.last) > r.keep {
		span.first = at // a client silent for longer than keep starts over
	}
	span.last = at
	r.clients.put(client, span)
	if name == "" {
		return
	}
	r.names.put(nameKey{client, name}, at)
	for _, a := range addrs {
		if a.IsValid() {
			r.addrs.put(addrKey{client, a.Unmap()}, resolved{name, at})
		}
	}
}

// NoteAnswer records a lookup as the DNS guard summarises it: answer holds
// the addresses given, separated by spaces, possibly mixed with "cname
// <target>" and record type names, or just an rcode name; everything that
// is not an address is ignored.
func (r *Resolutions) NoteAnswer(client netip.Addr, name, answer string, at time.Time) {
	var buf [8]netip.Addr
	addrs := buf[:0]
	for _, f := range strings.Fields(answer) {
		if a, err := netip.ParseAddr(f); err == nil {
			addrs = append(addrs, a)
		}
	}
	r.Note(client, name, addrs, at)
}

// nameOf returns the name client was last given addr for, if it was within
// the keep window.
func (r *Resolutions) nameOf(client, addr netip.Addr, now time.Time) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.addrs.get(addrKey{client.Unmap(), addr.Unmap()})
	if !ok || now.Sub(v.at) > r.keep {
		return "", false
	}
	return v.name, true
}

// looked reports whether client looked name up within the keep window.
func (r *Resolutions) looked(client netip.Addr, name string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.names.get(nameKey{client.Unmap(), normName(name)})
	return ok && now.Sub(at) <= r.keep
}

// covered reports whether client's lookups have been seen long enough, and
// recently enough, that a lookup missing from the tables was not made
// through the school's resolver.
func (r *Resolutions) covered(client netip.Addr, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	span, ok := r.clients.get(client.Unmap())
	return ok && now.Sub(span.first) >= r.warmup && now.Sub(span.last) <= r.keep
}

// reset forgets everything.
func (r *Resolutions) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs.clear()
	r.names.clear()
	r.clients.clear()
}

func normName(n string) string {
	n = strings.TrimSuffix(n, ".")
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}

// genMap is a map bounded by keeping two generations: entries go into the
// current one, lookups that hit the old one move the entry forward, and
// when the current generation is full it becomes the old one.
type genMap[K comparable, V any] struct {
	max      int
	cur, old map[K]V
}

func (g *genMap[K, V]) init(max int) {
	g.max = max
	g.cur = make(map[K]V)
	g.old = make(map[K]V)
}

func (g *genMap[K, V]) get(k K) (V, bool) {
	if v, ok := g.cur[k]; ok {
		return v, true
	}
	v, ok := g.old[k]
	if ok {
		delete(g.old, k)
		g.put(k, v)
	}
	return v, ok
}

func (g *genMap[K, V]) put(k K, v V) {
	if _, ok := g.cur[k]; !ok && len(g.cur) >= g.max {
		g.old = g.cur
		g.cur = make(map[K]V, g.max/4)
	}
	g.cur[k] = v
}

func (g *genMap[K, V]) clear() {
	clear(g.cur)
	clear(g.old)
}

func (g *genMap[K, V]) len() int { return len(g.cur) + len(g.old) }
