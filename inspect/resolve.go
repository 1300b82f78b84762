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
	r.note(client, name, addrs, at, false)
}

// noteGrain is how close in time a lookup noted again is to its last
// noting for the tables to be left as they are. What reads them works in
// minutes (Warmup) and hours (Keep), and every lookup on a segment with
// forced DNS is noted twice within milliseconds (the guard's answer, and
// the same answer read off the wire by the segment's engine): the second
// noting, and a client's repeats within the second, cost lookups only.
const noteGrain = time.Second

// note is Note; borrowed says name's bytes are only lent for the call
// (an engine's decoding buffer), so that it is copied before being kept.
func (r *Resolutions) note(client netip.Addr, name string, addrs []netip.Addr, at time.Time, borrowed bool) {
	if !client.IsValid() {
		return
	}
	client = client.Unmap()
	name = normName(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fresh(client, name, addrs, at) {
		return
	}
	if borrowed {
		name = strings.Clone(name)
	}
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

// fresh reports whether this lookup is already in the current
// generations, noted within noteGrain of at: the client, the name, and
// each address given to the client. An address given within the grain
// for another name as well (names behind one CDN address) stays with the
// name it has: which of the two was "last" is a matter of milliseconds,
// and the judgement by the name behind an address is as ambiguous either
// way. r.mu is held.
func (r *Resolutions) fresh(client netip.Addr, name string, addrs []netip.Addr, at time.Time) bool {
	span, ok := r.clients.cur[client]
	if !ok || !near(at, span.last) {
		return false
	}
	if name == "" {
		return true
	}
	t, ok := r.names.cur[nameKey{client, name}]
	if !ok || !near(at, t) {
		return false
	}
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		v, ok := r.addrs.cur[addrKey{client, a.Unmap()}]
		if !ok || !near(at, v.at) {
			return false
		}
	}
	return true
}

func near(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -noteGrain && d < noteGrain
}

// NoteAnswer records a lookup as the DNS guard summarises it: answer holds
// the addresses given, separated by spaces, possibly mixed with "cname
// <target>" and record type names, or just an rcode name; everything that
// is not an address is ignored. It is called for every lookup the guard
// answers, so it splits answer in place rather than into a new slice.
func (r *Resolutions) NoteAnswer(client netip.Addr, name, answer string, at time.Time) {
	var buf [8]netip.Addr
	addrs := buf[:0]
	for answer != "" {
		var f string
		f, answer = nextField(answer)
		// Only what may be an address is parsed: a failed parse
		// allocates its error.
		if f == "" || !(f[0] >= '0' && f[0] <= '9' || strings.IndexByte(f, ':') >= 0) {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			addrs = append(addrs, a)
		}
	}
	r.Note(client, name, addrs, at)
}

// nextField returns the first space-separated field of s and the rest.
func nextField(s string) (field, rest string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isSpace(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
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
	if len(g.cur) >= g.max {
		if _, ok := g.cur[k]; !ok {
			g.old = g.cur
			g.cur = make(map[K]V, g.max/4)
		}
	}
	g.cur[k] = v
}

func (g *genMap[K, V]) clear() {
	clear(g.cur)
	clear(g.old)
}

func (g *genMap[K, V]) len() int { return len(g.cur) + len(g.old) }
